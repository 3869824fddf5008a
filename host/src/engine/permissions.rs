//! What a plugin may do: the operator's grant intersected with what the plugin's manifest
//! requested. Checked on every host call that names an instrument, a channel or an order type
//! (views, subscriptions, intents), so a plugin gets neither more than its author said it needs
//! nor more than the operator allowed.

use crate::risk::RiskLimits;
use serde::{Deserialize, Serialize};
use tradebox_core::{Channel, OrderKind};

/// What an operator granted a plugin. Deny by default: an empty grant sees nothing.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// Instrument symbols, `*` for all, or a prefix pattern like `BTC-*`.
    #[serde(default)]
    pub instruments: Vec<String>,
    /// Order kinds allowed; empty means every kind.
    #[serde(default)]
    pub order_kinds: Vec<OrderKind>,
    /// Market data channels allowed; empty means every channel.
    #[serde(default)]
    pub channels: Vec<Channel>,
    /// Run a plugin whose manifest asks for more than this with only what is granted, instead
    /// of refusing it.
    #[serde(default)]
    pub partial: bool,
}

impl Grants {
    /// True when `symbol` matches a granted pattern.
    pub fn allows_instrument(&self, symbol: &str) -> bool {
        self.instruments.iter().any(|p| tradebox_manifest::pattern_matches(p, symbol))
    }

    /// True when `kind` may be used.
    pub fn allows_kind(&self, kind: OrderKind) -> bool {
        self.order_kinds.is_empty() || self.order_kinds.contains(&kind)
    }

    /// True when `channel` may be subscribed.
    pub fn allows_channel(&self, channel: Channel) -> bool {
        self.channels.is_empty() || self.channels.contains(&channel)
    }
}

/// What a component's manifest asks for, its `{setting}` placeholders resolved against the
/// plugin's config. A component without a manifest asks for nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Requested {
    /// Instrument symbols or patterns.
    pub instruments: Vec<String>,
    /// Channels.
    pub channels: Vec<Channel>,
    /// Order kinds.
    pub order_kinds: Vec<OrderKind>,
    /// The order rate it expects to need.
    pub max_orders_per_sec: Option<u32>,
    /// The largest order notional it expects to send.
    pub max_order_notional: Option<f64>,
}

/// Which side of the intersection refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// The operator did not grant it.
    Grant,
    /// The plugin's manifest did not request it.
    Request,
}

/// The effective permission of a plugin.
#[derive(Debug, Clone, Default)]
pub struct Permissions {
    /// The operator's grant.
    pub granted: Grants,
    /// The manifest's request; `None` for code inside the host (native strategies in tests
    /// and benchmarks), which only the grant limits.
    pub requested: Option<Requested>,
}

impl Permissions {
    /// A wasm plugin's: the grant and the request.
    pub fn new(granted: Grants, requested: Requested) -> Self {
        Self { granted, requested: Some(requested) }
    }

    /// Code inside the host: only the grant.
    pub fn granted_only(granted: Grants) -> Self {
        Self { granted, requested: None }
    }

    /// May the plugin see and trade `symbol`?
    pub fn instrument(&self, symbol: &str) -> Result<(), Missing> {
        let requested = |r: &Requested| r.instruments.iter().any(|p| tradebox_manifest::pattern_matches(p, symbol));
        both(self.granted.allows_instrument(symbol), self.requested.as_ref().map(requested))
    }

    /// True when the plugin may see `symbol`.
    pub fn allows_instrument(&self, symbol: &str) -> bool {
        self.instrument(symbol).is_ok()
    }

    /// May the plugin use order type `kind`?
    pub fn kind(&self, kind: OrderKind) -> Result<(), Missing> {
        both(self.granted.allows_kind(kind), self.requested.as_ref().map(|r| r.order_kinds.contains(&kind)))
    }

    /// May the plugin subscribe to `channel`?
    pub fn channel(&self, channel: Channel) -> Result<(), Missing> {
        both(self.granted.allows_channel(channel), self.requested.as_ref().map(|r| r.channels.contains(&channel)))
    }
}

/// Granted, and requested unless the plugin is host code (`None`).
fn both(granted: bool, requested: Option<bool>) -> Result<(), Missing> {
    match (granted, requested) {
        (false, _) => Err(Missing::Grant),
        (true, Some(false)) => Err(Missing::Request),
        _ => Ok(()),
    }
}

/// Everything `requested` asks beyond `granted` and the plugin's risk limits, one line each;
/// empty when the grant covers the request.
pub fn excess(requested: &Requested, granted: &Grants, risk: &RiskLimits) -> Vec<String> {
    let mut out = Vec::new();
    for pattern in &requested.instruments {
        if !granted.instruments.iter().any(|g| tradebox_manifest::pattern_covers(g, pattern)) {
            out.push(format!("instrument {pattern} (granted: {})", list(&granted.instruments)));
        }
    }
    for channel in requested.channels.iter().filter(|c| !granted.allows_channel(**c)) {
        out.push(format!("channel {} (granted: {})", wire_name(channel), list(&granted.channels)));
    }
    for kind in requested.order_kinds.iter().filter(|k| !granted.allows_kind(**k)) {
        out.push(format!("order type {} (granted: {})", wire_name(kind), list(&granted.order_kinds)));
    }
    if let Some(rate) = requested.max_orders_per_sec
        && rate > risk.max_orders_per_sec
    {
        out.push(format!("{rate} orders/s (its limit: {})", risk.max_orders_per_sec));
    }
    if let Some(notional) = requested.max_order_notional
        && notional > risk.max_order_notional
    {
        out.push(format!("orders of {notional} notional (its limit: {})", risk.max_order_notional));
    }
    out
}

/// Lowers `risk` to what the plugin said it needs: an author's own ceiling is enforced too.
/// In place, because the pre-trade check calls it on its own copy of the limits.
pub fn narrow(risk: &mut RiskLimits, requested: &Requested) {
    if let Some(rate) = requested.max_orders_per_sec {
        risk.max_orders_per_sec = risk.max_orders_per_sec.min(rate);
    }
    if let Some(notional) = requested.max_order_notional {
        risk.max_order_notional = risk.max_order_notional.min(notional);
    }
}

/// A config/manifest name (`post_only`, `tickers`) for messages.
pub(crate) fn wire_name<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

fn list<T: Serialize>(items: &[T]) -> String {
    if items.is_empty() {
        return "none".into();
    }
    items.iter().map(wire_name).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn granted() -> Grants {
        Grants { instruments: vec!["BTC-*".into()], order_kinds: vec![OrderKind::Limit], ..Grants::default() }
    }

    fn requested() -> Requested {
        Requested {
            instruments: vec!["BTC-USDT".into()],
            channels: vec![Channel::Tickers],
            order_kinds: vec![OrderKind::Limit],
            ..Requested::default()
        }
    }

    #[test]
    fn the_effective_permission_is_the_intersection() {
        let p = Permissions::new(granted(), requested());
        assert_eq!(p.instrument("BTC-USDT"), Ok(()));
        assert_eq!(p.instrument("BTC-USDT-SWAP"), Err(Missing::Request));
        assert_eq!(p.instrument("ETH-USDT"), Err(Missing::Grant));
        assert_eq!(p.kind(OrderKind::Market), Err(Missing::Grant));
        assert_eq!(p.channel(Channel::Trades), Err(Missing::Request));
        assert_eq!(p.channel(Channel::Tickers), Ok(()));
        let host_code = Permissions::granted_only(granted());
        assert_eq!(host_code.instrument("BTC-USDT-SWAP"), Ok(()));
    }

    #[test]
    fn a_request_beyond_the_grant_is_listed_item_by_item() {
        let mut r = requested();
        r.instruments.push("ETH-*".into());
        r.order_kinds.push(OrderKind::Market);
        r.max_orders_per_sec = Some(1000);
        let risk = RiskLimits::default();
        let excess = excess(&r, &granted(), &risk);
        assert_eq!(
            excess,
            [
                "instrument ETH-* (granted: BTC-*)".to_string(),
                "order type market (granted: limit)".to_string(),
                format!("1000 orders/s (its limit: {})", risk.max_orders_per_sec),
            ]
        );
        assert!(super::excess(&requested(), &granted(), &risk).is_empty());
    }

    #[test]
    fn an_authors_own_ceiling_lowers_the_limit_and_never_raises_it() {
        let mut n = RiskLimits { max_orders_per_sec: 10, max_order_notional: 1000.0, ..RiskLimits::default() };
        let r = Requested { max_orders_per_sec: Some(3), max_order_notional: Some(5000.0), ..Requested::default() };
        narrow(&mut n, &r);
        assert_eq!((n.max_orders_per_sec, n.max_order_notional), (3, 1000.0));
    }
}
