//! Key rotation without a restart (`tradebox keys reload`, SIGHUP): the new key is tried with
//! OKX on its own before it signs anything of the host's, then swapped in for REST and the
//! private WebSocket at once.

use super::limited::{Failed, How};
use super::{OkxVenue, OkxVenueError, trade_modes};
use std::sync::Arc;
use tradebox_core::KeySwitch;
use tradebox_okx::Signer;
use tradebox_okx::limits::{Endpoint, Request};

impl OkxVenue {
    /// Rotates the API key without a restart: reads the credentials again (command, file,
    /// systemd, environment), checks the new key before it signs anything of the host's
    /// (accepted by OKX with this clock, may trade, may not withdraw unless allowed, the same
    /// account in the same modes), then puts it in use for REST and logs the private
    /// WebSocket in again with it. Refused, the old key stays in use. Audited either way.
    pub async fn reload_keys(&self) -> Result<KeySwitch, OkxVenueError> {
        let result = self.try_reload_keys().await;
        if let Some(log) = &self.audit {
            use crate::audit::StateChange;
            let (event, detail) = match &result {
                Ok(switch) if switch.changed => {
                    (StateChange::KeySwitched, format!("from {} to {}", switch.from, switch.to))
                }
                Ok(switch) => (StateChange::KeyUnchanged, format!("{} read again: the same key", switch.to)),
                Err(e) => (StateChange::KeyRefused, e.to_string()),
            };
            log.append(None, None, &crate::audit::Entry::State { event, detail });
        }
        result
    }

    async fn try_reload_keys(&self) -> Result<KeySwitch, OkxVenueError> {
        let refused = |why: String| OkxVenueError::KeyRefused(why);
        let shared = self.rest.signer().ok_or_else(|| refused("this venue signs nothing".into()))?;
        let from = shared.current().credentials().key_hint();
        // A credentials command may take seconds: off the async workers.
        let config = self.config.clone();
        let read = tokio::task::spawn_blocking(move || config.credentials())
            .await
            .map_err(|e| refused(format!("reading it: {e}")))?;
        let credentials =
            read.map_err(|e| refused(format!("reading it from {}: {e}", self.config.credentials_source())))?;
        if let Some(log) = &self.audit {
            for secret in credentials.forbidden_values() {
                log.forbid(secret);
            }
        }
        let to = credentials.key_hint();
        if shared.current().credentials().same_as(&credentials) {
            // Nothing to switch (the environment and systemd's credentials do not change while
            // the host runs): no trial, no new login.
            return Ok(KeySwitch { from, to, changed: false });
        }
        // The trial's requests go to the audit log, not to the watch of the key in use: a
        // refused new key is not an attack on the old one.
        let audit = self.audit.clone().map(|log| log as Arc<dyn tradebox_okx::Observer>);
        let probe = self.rest.probe_with(Signer::new(credentials), audit);
        let account = self
            .limited(Request::new(Endpoint::AccountConfig, 0), How::ONCE, || probe.account_config())
            .await
            .map_err(|failed| match failed {
                Failed::Throttled(e) => refused(format!("no permit to check it: {e}")),
                other => refused(format!("OKX refused it: {}", tradebox_okx::OkxError::from(other))),
            })?;
        if !account.can_trade() {
            return Err(refused(format!("it has no trade permission ({})", account.perm)));
        }
        if account.can_withdraw() && !self.config.allow_withdraw_key {
            return Err(refused(format!(
                "it has withdraw permission ({}); a trading host never needs it (allow_withdraw_key)",
                account.perm
            )));
        }
        if account.uid.is_empty() || account.uid != self.uid {
            return Err(refused(
                "it belongs to another account: orders of this one would be left untracked; start a new host for it"
                    .into(),
            ));
        }
        let modes = trade_modes(&account, &self.config)?;
        if (modes.level, modes.positions) != (self.modes.level, self.modes.positions) {
            return Err(refused(format!(
                "its account reports {} / {} where the host started with {} / {}; restart to trade in the new modes",
                modes.level.name(),
                modes.positions.code(),
                self.modes.level.name(),
                self.modes.positions.code()
            )));
        }
        if !account.ip_bound() {
            tracing::warn!("the new API key is not bound to an IP address; OKX recommends binding trading keys");
        }
        if let Some(next) = probe.signer() {
            shared.take_from(next);
        }
        if let Some(streams) = self.streams.get() {
            streams.relogin();
        }
        tracing::info!(%from, %to, "OKX key switched");
        Ok(KeySwitch { from, to, changed: true })
    }
}
