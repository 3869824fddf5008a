//! OKX API v5 wire protocol: what the host needs to talk to OKX (or to the project's own
//! OKX-compatible simulator) and nothing about plugins.
