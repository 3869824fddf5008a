//! The REST client: typed calls, each signed over exactly the bytes it sends.
//!
//! A call serialises its query string and JSON body once; those same bytes are signed, shown to
//! the [`Observer`] (the host's audit log) and sent. Every request is stamped with the
//! [`ClockSync`]'s corrected time; a 50102 (timestamp expired) re-syncs the clock and retries once,
//! which is safe because OKX refused the request before looking at it.

use crate::clock::ClockSync;
use crate::error::{OkxError, codes, excerpt};
use crate::model::*;
use crate::sign::Signer;
use crate::tls::{PinMismatch, TlsSettings};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tradebox_core::system_ms;

/// A request as it goes on the wire, minus the secret headers.
#[derive(Debug, Clone, Copy)]
pub struct SentRequest<'a> {
    /// `GET` / `POST`.
    pub method: &'a str,
    /// Path and query, exactly as sent and signed.
    pub path: &'a str,
    /// Body, exactly as sent and signed.
    pub body: &'a [u8],
    /// `OK-ACCESS-TIMESTAMP` (private calls).
    pub timestamp: Option<&'a str>,
    /// `x-simulated-trading: 1` was sent.
    pub demo: bool,
    /// `expTime` header, ms.
    pub exp_time: Option<i64>,
    /// Who the request is made for.
    pub caller: Option<&'a Caller>,
}

/// An answer as received.
#[derive(Debug, Clone, Copy)]
pub struct ReceivedResponse<'a> {
    /// The request's path and query.
    pub path: &'a str,
    /// HTTP status.
    pub status: u16,
    /// Body as received.
    pub body: &'a [u8],
    /// Round trip.
    pub elapsed: Duration,
    /// Who the request was made for.
    pub caller: Option<&'a Caller>,
}

/// Sees every request and response (for the audit log). Called inline: keep it quick.
pub trait Observer: Send + Sync {
    /// Before sending.
    fn request(&self, request: &SentRequest<'_>);
    /// After receiving (not called when nothing was received).
    fn response(&self, response: &ReceivedResponse<'_>);
}

/// Who a request is made for, passed through to the [`Observer`] untouched: the host names the
/// plugin an order came from and its component hash, so the audit log can tie every request to
/// the exact code that asked for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// A name (the host uses the plugin's name).
    pub name: String,
    /// A content hash (the host uses the plugin's sha256).
    pub hash: String,
}

/// Per-call options.
#[derive(Debug, Clone, Default)]
pub struct CallOpts {
    /// OKX drops the request if it arrives after this (ms since the epoch, exchange time).
    pub exp_time: Option<i64>,
    /// Passed to the observer.
    pub caller: Option<Caller>,
}

/// A successful (or per-item) answer.
#[derive(Debug, Clone)]
pub struct Reply<T> {
    /// HTTP status.
    pub http_status: u16,
    /// `"0"`, or `"1"`/`"2"` when items failed.
    pub code: String,
    /// Top-level message.
    pub msg: String,
    /// Items.
    pub data: Vec<T>,
    /// OKX gateway receive time, µs.
    pub in_time: Option<String>,
    /// OKX gateway send time, µs.
    pub out_time: Option<String>,
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct RestConfig {
    /// e.g. `https://www.okx.com` or the simulator's `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// Send `x-simulated-trading: 1` (demo trading).
    pub demo: bool,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Certificate pins and extra roots for `base_url`'s host; the default is the HTTP
    /// library's own TLS, as before pinning existed.
    pub tls: TlsSettings,
}

/// Which order a query or cancel is about.
#[derive(Debug, Clone, Copy)]
pub enum OrderRef<'a> {
    /// By exchange id.
    OrdId(&'a str),
    /// By client id.
    ClOrdId(&'a str),
}

/// The REST client. Cheap to clone.
#[derive(Clone)]
pub struct RestClient {
    http: reqwest::Client,
    config: RestConfig,
    signer: Option<crate::sign::SharedSigner>,
    clock: Arc<ClockSync>,
    observer: Option<Arc<dyn Observer>>,
}

impl std::fmt::Debug for RestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestClient")
            .field("base_url", &self.config.base_url)
            .field("demo", &self.config.demo)
            .field("signer", &self.signer)
            .finish_non_exhaustive()
    }
}

/// Percent-encodes a query value; OKX's values (ids, symbols, comma lists) pass through as is.
fn encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b',' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `path?k=v&k2=v2` with empty values left out (as python-okx does).
pub fn path_and_query(path: &str, query: &[(&str, &str)]) -> String {
    let mut s = path.to_string();
    let mut first = true;
    for (k, v) in query.iter().filter(|(_, v)| !v.is_empty()) {
        s.push(if first { '?' } else { '&' });
        first = false;
        s.push_str(k);
        s.push('=');
        s.push_str(&encode(v));
    }
    s
}

/// A header value the HTTP stack treats as sensitive (kept out of its debug output and HPACK's
/// index).
fn sensitive(value: &str) -> Result<reqwest::header::HeaderValue, OkxError> {
    let mut v = reqwest::header::HeaderValue::from_str(value)
        .map_err(|_| OkxError::Usage("the passphrase holds characters an HTTP header cannot carry".into()))?;
    v.set_sensitive(true);
    Ok(v)
}

enum Method {
    Get,
    Post,
}

impl RestClient {
    /// A client; `signer` is needed for private endpoints only.
    pub fn new(config: RestConfig, signer: Option<Signer>, clock: Arc<ClockSync>) -> Result<Self, OkxError> {
        config.tls.check_url(&config.base_url).map_err(|e| OkxError::Usage(e.to_string()))?;
        let mut builder = reqwest::Client::builder()
            // A redirect would carry the signed OK-ACCESS-* headers (the passphrase among
            // them) to whatever host it names: never followed, answered as an error.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)));
        if !config.tls.is_default() {
            // HTTP/1.1 only, as reqwest offers without its http2 feature.
            let tls = config.tls.client_config(&[b"http/1.1"]).map_err(|e| OkxError::Usage(e.to_string()))?;
            builder = builder.use_preconfigured_tls(tls);
        }
        let http = builder.build().map_err(|e| OkxError::Usage(format!("HTTP client: {e}")))?;
        Ok(Self { http, config, signer: signer.map(crate::sign::SharedSigner::new), clock, observer: None })
    }

    /// The signer in use, shared: what the WebSocket logins sign with, and what a key rotation
    /// replaces.
    pub fn signer(&self) -> Option<&crate::sign::SharedSigner> {
        self.signer.as_ref()
    }

    /// The same client (connection pool, URL, TLS, clock) signing with `signer` alone and
    /// reporting to `observer` (not this client's: what a key on trial meets is its own): to try
    /// a new key before it replaces the one in use.
    pub fn probe_with(&self, signer: Signer, observer: Option<Arc<dyn Observer>>) -> Self {
        Self { signer: Some(crate::sign::SharedSigner::new(signer)), observer, ..self.clone() }
    }

    /// Reports every request and response to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The clock requests are stamped with.
    pub fn clock(&self) -> &Arc<ClockSync> {
        &self.clock
    }

    /// Settings.
    pub fn config(&self) -> &RestConfig {
        &self.config
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        pq: &str,
        body: &[u8],
        private: bool,
        opts: &CallOpts,
    ) -> Result<Reply<T>, OkxError> {
        match self.send_once(&method, pq, body, private, opts).await {
            Err(e) if private && e.is_clock_skew() => {
                tracing::warn!("OKX says our timestamp is off (50102): re-syncing the clock and retrying once");
                self.clock.reset();
                self.sync_clock().await?;
                self.send_once(&method, pq, body, private, opts).await
            }
            other => other,
        }
    }

    async fn send_once<T: DeserializeOwned>(
        &self,
        method: &Method,
        pq: &str,
        body: &[u8],
        private: bool,
        opts: &CallOpts,
    ) -> Result<Reply<T>, OkxError> {
        let name = match method {
            Method::Get => "GET",
            Method::Post => "POST",
        };
        let url = format!("{}{}", self.config.base_url.trim_end_matches('/'), pq);
        let mut req = match method {
            Method::Get => self.http.get(&url),
            Method::Post => self.http.post(&url).body(body.to_vec()),
        };
        req = req.header("Content-Type", "application/json").header("Accept", "application/json");
        if self.config.demo {
            req = req.header("x-simulated-trading", "1");
        }
        if let Some(exp) = opts.exp_time {
            req = req.header("expTime", exp.to_string());
        }
        let mut timestamp = None;
        if private {
            let signer = self.signer.as_ref().ok_or_else(|| {
                OkxError::Usage(format!("{pq} needs API credentials ({})", "OKX_API_KEY/SECRET/PASSPHRASE"))
            })?;
            let h = signer.current().headers(self.clock.timestamp(), name, pq, body);
            req = req
                .header("OK-ACCESS-KEY", &h.key)
                .header("OK-ACCESS-SIGN", &h.sign)
                .header("OK-ACCESS-TIMESTAMP", &h.timestamp)
                .header("OK-ACCESS-PASSPHRASE", sensitive(&h.passphrase)?);
            timestamp = Some(h.timestamp);
        }
        let caller = opts.caller.as_ref();
        if let Some(o) = &self.observer {
            o.request(&SentRequest {
                method: name,
                path: pq,
                body,
                timestamp: timestamp.as_deref(),
                demo: self.config.demo,
                exp_time: opts.exp_time,
                caller,
            });
        }
        let start = Instant::now();
        let timeout_ms = u64::try_from(self.config.timeout.as_millis()).unwrap_or(u64::MAX);
        let resp = req.send().await.map_err(|e| transport(e, timeout_ms))?;
        let status = resp.status().as_u16();
        if resp.status().is_redirection() {
            let to = resp.headers().get(reqwest::header::LOCATION).and_then(|l| l.to_str().ok()).unwrap_or("?");
            return Err(OkxError::Redirected { http_status: status, location: excerpt(to.as_bytes(), 100) });
        }
        let bytes = resp.bytes().await.map_err(|e| transport(e, timeout_ms))?;
        if let Some(o) = &self.observer {
            o.response(&ReceivedResponse { path: pq, status, body: &bytes, elapsed: start.elapsed(), caller });
        }
        parse(status, &bytes)
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        private: bool,
    ) -> Result<Reply<T>, OkxError> {
        self.call(Method::Get, &path_and_query(path, query), b"", private, &CallOpts::default()).await
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
        opts: &CallOpts,
    ) -> Result<Reply<T>, OkxError> {
        let bytes = serde_json::to_vec(body).map_err(|e| OkxError::Usage(format!("serialising {path}: {e}")))?;
        self.call(Method::Post, path, &bytes, true, opts).await
    }

    // ----- public -----

    /// `GET /api/v5/public/time`: server time, ms.
    pub async fn server_time(&self) -> Result<i64, OkxError> {
        // Straight to the wire: public, so no clock re-sync (which calls this) can be needed.
        let r: Reply<ServerTime> =
            self.send_once(&Method::Get, "/api/v5/public/time", b"", false, &CallOpts::default()).await?;
        first(r).map(|t| t.ts)
    }

    /// Takes one clock sample; returns the new offset (ms).
    pub async fn sync_clock(&self) -> Result<i64, OkxError> {
        let sent = system_ms();
        let server = self.server_time().await?;
        let received = system_ms();
        Ok(self.clock.record(sent, server, received))
    }

    /// `GET /api/v5/public/instruments?instType=...`.
    pub async fn instruments(&self, inst_type: &str) -> Result<Vec<Instrument>, OkxError> {
        Ok(self.get("/api/v5/public/instruments", &[("instType", inst_type)], false).await?.data)
    }

    /// `GET /api/v5/market/ticker?instId=...`.
    pub async fn ticker(&self, inst_id: &str) -> Result<Ticker, OkxError> {
        first(self.get("/api/v5/market/ticker", &[("instId", inst_id)], false).await?)
    }

    /// `GET /api/v5/market/books?instId=...&sz=N`.
    pub async fn books(&self, inst_id: &str, depth: u32) -> Result<Book, OkxError> {
        let sz = depth.to_string();
        first(self.get("/api/v5/market/books", &[("instId", inst_id), ("sz", &sz)], false).await?)
    }

    // ----- trading -----

    /// `POST /api/v5/trade/order`. A failed item is `OkxError::Item` with OKX's sCode/sMsg.
    pub async fn place_order(&self, order: &PlaceOrder, opts: &CallOpts) -> Result<OrderAck, OkxError> {
        item(self.post("/api/v5/trade/order", order, opts).await?)
    }

    /// `POST /api/v5/trade/batch-orders`: one result per order, in order.
    pub async fn batch_place_orders(
        &self,
        orders: &[PlaceOrder],
        opts: &CallOpts,
    ) -> Result<Vec<Result<OrderAck, OkxError>>, OkxError> {
        Ok(items(self.post("/api/v5/trade/batch-orders", &orders, opts).await?))
    }

    /// `POST /api/v5/trade/cancel-order`. Success means accepted, not yet cancelled.
    pub async fn cancel_order(&self, cancel: &CancelOrder, opts: &CallOpts) -> Result<OrderAck, OkxError> {
        item(self.post("/api/v5/trade/cancel-order", cancel, opts).await?)
    }

    /// `POST /api/v5/trade/cancel-batch-orders`.
    pub async fn batch_cancel_orders(
        &self,
        cancels: &[CancelOrder],
        opts: &CallOpts,
    ) -> Result<Vec<Result<OrderAck, OkxError>>, OkxError> {
        Ok(items(self.post("/api/v5/trade/cancel-batch-orders", &cancels, opts).await?))
    }

    /// `POST /api/v5/trade/amend-order`. Success means accepted, not yet applied.
    pub async fn amend_order(&self, amend: &AmendOrder, opts: &CallOpts) -> Result<OrderAck, OkxError> {
        item(self.post("/api/v5/trade/amend-order", amend, opts).await?)
    }

    /// `GET /api/v5/trade/order`. An unknown order is an error with code 51603.
    pub async fn order_details(&self, inst_id: &str, order: OrderRef<'_>) -> Result<OrderDetails, OkxError> {
        let by = match order {
            OrderRef::OrdId(id) => ("ordId", id),
            OrderRef::ClOrdId(id) => ("clOrdId", id),
        };
        let r = self.get("/api/v5/trade/order", &[("instId", inst_id), by], true).await?;
        r.data.into_iter().next().ok_or_else(|| OkxError::Api {
            http_status: r.http_status,
            code: codes::NO_ORDER.into(),
            msg: "Order does not exist.".into(),
        })
    }

    /// `GET /api/v5/trade/orders-pending`, every page.
    pub async fn pending_orders(
        &self,
        inst_type: Option<&str>,
        inst_id: Option<&str>,
    ) -> Result<Vec<OrderDetails>, OkxError> {
        let mut all: Vec<OrderDetails> = Vec::new();
        loop {
            let after = all.last().map(|o| o.ord_id.clone()).unwrap_or_default();
            let query = [("instType", inst_type.unwrap_or("")), ("instId", inst_id.unwrap_or("")), ("after", &after)];
            let page = self.get::<OrderDetails>("/api/v5/trade/orders-pending", &query, true).await?.data;
            let full = page.len() >= 100;
            all.extend(page);
            if !full {
                return Ok(all);
            }
        }
    }

    /// `GET /api/v5/trade/fills`: one page, newest first (`after`: bills older than this one).
    pub async fn fills_page(
        &self,
        inst_type: Option<&str>,
        after: Option<u64>,
        limit: u8,
    ) -> Result<Vec<Fill>, OkxError> {
        let after = after.map(|a| a.to_string()).unwrap_or_default();
        let limit = limit.clamp(1, FILLS_PAGE).to_string();
        let query = [("instType", inst_type.unwrap_or("")), ("after", after.as_str()), ("limit", limit.as_str())];
        Ok(self.get::<Fill>("/api/v5/trade/fills", &query, true).await?.data)
    }

    /// The newest fill's bill id (`None`: no fills in OKX's three days): one `limit=1` read,
    /// which is where a run starts counting fills as new.
    pub async fn newest_fill(&self) -> Result<Option<u64>, OkxError> {
        Ok(self.fills_page(None, None, 1).await?.iter().filter_map(|f| f.bill_id.parse::<u64>().ok()).max())
    }

    /// The fills with a bill id above `since_bill` (all three days' when `None`), oldest first,
    /// every page at once. For tools and tests: the host walks the pages itself ([`FillWalk`])
    /// so that each takes its own rate-limit permit.
    pub async fn fills_since(&self, inst_type: Option<&str>, since_bill: Option<u64>) -> Result<Vec<Fill>, OkxError> {
        let mut walk = FillWalk::new(since_bill);
        while let Some(after) = walk.next_page() {
            walk.take(self.fills_page(inst_type, after, FILLS_PAGE).await?);
        }
        Ok(walk.finish())
    }

    /// `GET /api/v5/account/balance[?ccy=a,b]`.
    pub async fn balance(&self, ccys: &[&str]) -> Result<Balance, OkxError> {
        let ccy = ccys.join(",");
        first(self.get("/api/v5/account/balance", &[("ccy", &ccy)], true).await?)
    }

    /// `GET /api/v5/account/positions[?instType=...]`.
    pub async fn positions(&self, inst_type: Option<&str>) -> Result<Vec<Position>, OkxError> {
        Ok(self.get("/api/v5/account/positions", &[("instType", inst_type.unwrap_or(""))], true).await?.data)
    }

    /// `GET /api/v5/account/config`: the key's permissions among other things.
    pub async fn account_config(&self) -> Result<AccountConfig, OkxError> {
        first(self.get("/api/v5/account/config", &[], true).await?)
    }

    /// `GET /api/v5/trade/account-rate-limit`: the sub-account's order cap (1 request/s).
    pub async fn account_rate_limit(&self) -> Result<AccountRateLimit, OkxError> {
        first(self.get("/api/v5/trade/account-rate-limit", &[], true).await?)
    }

    /// `POST /api/v5/trade/cancel-all-after`: the exchange cancels our orders (with `tag`) if
    /// not re-armed within `timeout_s` seconds (0 disarms).
    pub async fn cancel_all_after(&self, timeout_s: u32, tag: Option<&str>) -> Result<CancelAllAfterAck, OkxError> {
        let body = CancelAllAfter { time_out: timeout_s.to_string(), tag: tag.map(str::to_string) };
        first(self.post("/api/v5/trade/cancel-all-after", &body, &CallOpts::default()).await?)
    }
}

fn transport(e: reqwest::Error, timeout_ms: u64) -> OkxError {
    // Before anything else: a refused pin is also a connect error, and must not look like one.
    if let Some(m) = PinMismatch::find(&e) {
        OkxError::PinMismatch(m.clone())
    } else if e.is_timeout() {
        OkxError::Timeout { timeout_ms }
    } else if e.is_connect() || e.is_builder() {
        OkxError::NotSent(with_cause(e))
    } else {
        OkxError::Transport(with_cause(e))
    }
}

/// The HTTP library's message ("error sending request") with its deepest cause ("Connection
/// refused"), which is what tells an operator what to fix.
pub fn with_cause(e: reqwest::Error) -> String {
    let mut cause = None;
    let mut next = std::error::Error::source(&e);
    // Bounded: a chain is short, and a cycle must not hang an error report.
    for _ in 0..16 {
        let Some(s) = next else { break };
        cause = Some(s.to_string());
        next = s.source();
    }
    let text = e.without_url().to_string();
    match cause {
        Some(c) if !c.is_empty() && !text.contains(&c) => format!("{text}: {c}"),
        _ => text,
    }
}

/// Maps a raw answer to a reply or an error.
pub fn parse<T: DeserializeOwned>(status: u16, bytes: &[u8]) -> Result<Reply<T>, OkxError> {
    let envelope = serde_json::from_slice::<Envelope<T>>(bytes);
    let envelope = match envelope {
        Ok(e) => e,
        Err(typed) => {
            // Not the shape we expected: an error body, a 5xx page, or a real surprise.
            match serde_json::from_slice::<Envelope<Value>>(bytes) {
                Ok(e) if e.code != "0" => return Err(OkxError::from_code(status, e.code, e.msg)),
                _ if status == 429 => {
                    return Err(OkxError::from_code(429, codes::RATE_LIMIT.into(), excerpt(bytes, 100)));
                }
                _ if status >= 500 => {
                    return Err(OkxError::Server { http_status: status, excerpt: excerpt(bytes, 200) });
                }
                _ => {
                    return Err(OkxError::Decode {
                        http_status: status,
                        reason: typed.to_string(),
                        excerpt: excerpt(bytes, 200),
                    });
                }
            }
        }
    };
    let per_item = (envelope.code == "1" || envelope.code == "2") && !envelope.data.is_empty();
    if envelope.code != "0" && !per_item {
        return Err(OkxError::from_code(status, envelope.code, envelope.msg));
    }
    if status >= 500 {
        return Err(OkxError::Server { http_status: status, excerpt: excerpt(bytes, 200) });
    }
    Ok(Reply {
        http_status: status,
        code: envelope.code,
        msg: envelope.msg,
        data: envelope.data,
        in_time: envelope.in_time,
        out_time: envelope.out_time,
    })
}

fn first<T>(r: Reply<T>) -> Result<T, OkxError> {
    let status = r.http_status;
    r.data.into_iter().next().ok_or_else(|| OkxError::Decode {
        http_status: status,
        reason: "empty data".into(),
        excerpt: String::new(),
    })
}

/// Reads one order item's `sCode`/`sMsg`: `"0"` is success, throttling codes are a rate limit,
/// anything else is that item's error. Public so the fuzz targets (`fuzz/`) can check it.
pub fn ack(a: OrderAck) -> Result<OrderAck, OkxError> {
    if a.s_code == "0" {
        Ok(a)
    } else if [codes::RATE_LIMIT, codes::SUB_ACCOUNT_RATE_LIMIT, codes::BUSY].contains(&a.s_code.as_str()) {
        Err(OkxError::RateLimited { code: a.s_code, msg: a.s_msg })
    } else {
        Err(OkxError::Item { code: a.s_code, msg: a.s_msg })
    }
}

fn item(r: Reply<OrderAck>) -> Result<OrderAck, OkxError> {
    first(r).and_then(ack)
}

fn items(r: Reply<OrderAck>) -> Vec<Result<OrderAck, OkxError>> {
    r.data.into_iter().map(ack).collect()
}

/// Fills per page of `/trade/fills` (OKX's maximum).
pub const FILLS_PAGE: u8 = 100;

/// A walk of `/trade/fills` back from the newest fill to a cursor, one page at a time, so the
/// caller decides what each page waits for. OKX returns fills newest first and `after=B` pages
/// to bills older than B; walking back relies on `after` alone, whose meaning every client
/// agrees on (what `before` returns when more than a page is newer is not documented).
#[derive(Debug)]
pub struct FillWalk {
    since: u64,
    after: Option<u64>,
    newer: Vec<Fill>,
    done: bool,
}

impl FillWalk {
    /// Fills with a bill id above `since` (every fill when `None`).
    pub fn new(since: Option<u64>) -> Self {
        Self { since: since.unwrap_or(0), after: None, newer: Vec::new(), done: false }
    }

    /// The `after` of the next page to read, or `None` once the walk reached the cursor.
    pub fn next_page(&self) -> Option<Option<u64>> {
        (!self.done).then_some(self.after)
    }

    /// Takes one page (as [`RestClient::fills_page`] returned it, `FILLS_PAGE` long at most).
    pub fn take(&mut self, page: Vec<Fill>) {
        let full = page.len() >= usize::from(FILLS_PAGE);
        let oldest = page.iter().filter_map(|f| f.bill_id.parse::<u64>().ok()).min();
        let since = self.since;
        self.newer.extend(page.into_iter().filter(|f| f.bill_id.parse::<u64>().is_ok_and(|b| b > since)));
        match oldest {
            // Each page must reach further back than the last: a server that ignored `after`
            // would otherwise be asked for the same page forever.
            Some(oldest) if full && oldest > since && self.after.is_none_or(|a| oldest < a) => {
                self.after = Some(oldest)
            }
            _ => self.done = true,
        }
    }

    /// The fills found, oldest first, each once.
    pub fn finish(mut self) -> Vec<Fill> {
        self.newer.sort_by_key(|f| f.bill_id.parse::<u64>().unwrap_or(0));
        self.newer.dedup_by(|a, b| a.bill_id == b.bill_id);
        self.newer
    }
}

#[cfg(test)]
mod tests;
