//! TEMPORARY STUB (replaced by the real simulated venue).
#![allow(missing_docs, unused)]
use super::*;
use std::sync::Arc;
#[derive(Debug, Clone, serde::Deserialize)]
pub struct SimConfig {
    pub seed: u64,
}
impl SimConfig {
    pub fn demo() -> Self {
        Self { seed: 1 }
    }
}
#[derive(Debug, thiserror::Error)]
#[error("sim")]
pub struct SimError;
pub struct SimVenue {
    rx: parking_lot::Mutex<Option<mpsc::UnboundedReceiver<VenueEvent>>>,
}
impl SimVenue {
    pub fn new(_c: SimConfig) -> Result<Arc<Self>, SimError> {
        let (_tx, rx) = mpsc::unbounded_channel();
        Ok(Arc::new(Self { rx: parking_lot::Mutex::new(Some(rx)) }))
    }
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async {})
    }
    pub fn step(&self) {}
}
#[async_trait::async_trait]
impl Venue for SimVenue {
    fn name(&self) -> &str {
        "sim"
    }
    fn instruments(&self) -> Vec<InstrumentSpec> {
        vec![]
    }
    fn take_events(&self) -> Option<mpsc::UnboundedReceiver<VenueEvent>> {
        self.rx.lock().take()
    }
    async fn place(&self, _o: NewOrder) -> Result<PlaceAck, VenueError> {
        todo!()
    }
    async fn cancel(&self, _i: InstrumentId, _c: &str) -> Result<(), VenueError> {
        todo!()
    }
    async fn amend(
        &self,
        _i: InstrumentId,
        _c: &str,
        _p: Option<Decimal>,
        _s: Option<Decimal>,
    ) -> Result<(), VenueError> {
        todo!()
    }
    async fn open_orders(&self) -> Result<Vec<OrderReport>, VenueError> {
        todo!()
    }
    async fn balances(&self) -> Result<Vec<BalanceReport>, VenueError> {
        Ok(vec![])
    }
    async fn positions(&self) -> Result<Vec<PositionReport>, VenueError> {
        todo!()
    }
}
