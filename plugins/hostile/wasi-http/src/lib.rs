//! A plugin that tries to reach the network through `wasi:http` (what componentize-js's
//! default build links): the host serves no `wasi:http`, and refuses the component at load,
//! naming the import.

use tradebox_sdk::prelude::*;

struct Caller;

impl Strategy for Caller {
    fn init(_config: &str) -> Result<Self, String> {
        let request = wasip2::http::types::OutgoingRequest::new(wasip2::http::types::Fields::new());
        let sent = wasip2::http::outgoing_handler::handle(request, None).is_ok();
        info!("sent {sent}");
        Ok(Caller)
    }
}

export_strategy!(Caller);
