//! `/plugins`: list, load, reload and unload plugins in the running host.
//!
//! - `GET /plugins`: every plugin with its run and trading state, component hash and
//!   contract, reloads, source file, limits, subscriptions, PnL, counters and open orders;
//! - `POST /plugins`: load. The body is a `[[plugin]]` table as JSON (`name`, `path`,
//!   `instruments`, `config`, `risk`, ...; `[defaults]` of the host's config apply), where
//!   `wasm_base64` may replace `path` to upload the component, and `by` names who asks;
//! - `POST /plugins/{name}/reload` `{"path"?, "wasm_base64"?, "config"?, "reduce_only"?, "by"?}`:
//!   hot reload; without a component the plugin's source file is read again;
//! - `POST /plugins/inspect` `{"wasm_base64"}`: what `tradebox plugin inspect --json` says of
//!   the file (manifest, contract, imports, signature against this host's `[signing]`,
//!   verdict), before the operator decides on a grant; nothing is loaded;
//! - `DELETE /plugins/{name}?orders=leave&by=...`: unload; its open orders are cancelled
//!   unless `orders=leave`;
//! - staging (`[staging]`): a load with `"staged": true` or a reload with `"staged": true`
//!   puts the plugin (or its new version) on the staging venue (paper or simulated), listed under
//!   `staged`; `POST /plugins/{name}/promote` `{"by"?}` moves it here.
//!
//! Compiling and swapping block, so they run on tokio's blocking pool.

use super::{Ctx, authorized, error, unauthorized};
use crate::config::PluginConfig;
use crate::plugin::{ReloadError, StartError};
use crate::running::lifecycle::{LifecycleError, LoadOptions, ReloadRequest};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

fn who(by: Option<String>) -> String {
    by.filter(|b| !b.trim().is_empty()).unwrap_or_else(|| "admin API".into())
}

fn decode(wasm_base64: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(wasm_base64.trim())
        .map_err(|e| format!("wasm_base64 is not base64: {e}"))
}

pub(super) async fn list(State(ctx): State<Arc<Ctx>>, headers: HeaderMap) -> Response {
    if !authorized(&ctx, &headers) {
        return unauthorized();
    }
    let host = &ctx.host;
    let sources: HashMap<String, PathBuf> = host.sources().into_iter().collect();
    let plugins: Vec<Value> = host
        .report()
        .into_iter()
        .map(|p| {
            let slot = host.slot(&p.name);
            let orders: Vec<Value> = slot
                .as_ref()
                .map(|s| host.hub().open_orders(s.id))
                .unwrap_or_default()
                .into_iter()
                .map(|o| {
                    let symbol = host.hub().instrument(o.instrument).map(|i| i.symbol.clone());
                    json!({"client_id": o.client_id, "instrument": symbol, "side": o.side, "price": o.price,
                           "size": o.size, "filled": o.filled, "status": o.status})
                })
                .collect();
            let status = host.plugin_status(&p.name);
            json!({
                "name": p.name, "run_state": format!("{:?}", p.state),
                "trading_state": slot.as_ref().map(|s| s.state().as_str()),
                "hash": p.hash, "reloads": p.reloads, "source": sources.get(&p.name),
                "contract": status.as_ref().map(|s| s.contract.clone()),
                "version": status.as_ref().and_then(|s| s.manifest.as_ref().map(|m| m.version.clone())),
                "signer": status.as_ref().map(|s| s.signer.clone()),
                "granted": slot.as_ref().map(|s| s.permissions().granted.clone()),
                "requested": slot.as_ref().map(|s| s.permissions().requested.clone()),
                "withheld": status.as_ref().map(|s| s.withheld.clone()),
                "limits": slot.as_ref().map(|s| s.risk.limits()),
                "subscriptions": slot.as_ref().map(|s| {
                    host.hub()
                        .subscriptions(s)
                        .into_iter()
                        .map(|(i, c)| {
                            let symbol = host.hub().instrument(i).map_or_else(|| i.to_string(), |x| x.symbol.clone());
                            format!("{symbol} {c:?}")
                        })
                        .collect::<Vec<_>>()
                }),
                "failures": p.failures, "last_error": p.last_error,
                "orders_sent": p.orders_sent, "denied": p.denied, "rejected": p.rejected, "fills": p.fills,
                "events": p.events, "positions": p.positions,
                "realized": p.realized, "unrealized": p.unrealized, "fees": p.fees,
                "open_orders": orders,
            })
        })
        .collect();
    let staged: Vec<Value> = host
        .staging()
        .map(|staging| {
            staging
                .report()
                .into_iter()
                .map(|p| {
                    let status = staging.plugin_status(&p.name);
                    json!({
                        "name": p.name, "run_state": format!("{:?}", p.state),
                        "hash": status.as_ref().map(|s| s.hash.clone()),
                        "version": status.and_then(|s| s.manifest.map(|m| m.version.clone())),
                        "orders_sent": p.orders_sent, "denied": p.denied, "fills": p.fills,
                        "realized": p.realized, "unrealized": p.unrealized, "fees": p.fees,
                        "last_error": p.last_error,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    axum::Json(json!({ "plugins": plugins, "staged": staged })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InspectBody {
    wasm_base64: String,
}

pub(super) async fn inspect(State(ctx): State<Arc<Ctx>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if !authorized(&ctx, &headers) {
        return unauthorized();
    }
    let req: InspectBody = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(StatusCode::BAD_REQUEST, format!("bad inspect request ({{\"wasm_base64\": ...}}): {e}"));
        }
    };
    let bytes = match decode(&req.wasm_base64) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let Ok(_one) = ctx.inspections.acquire().await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the admin API is stopping");
    };
    let host = ctx.host.clone();
    // Compiling (or reading the compiled cache) blocks.
    let report = tokio::task::spawn_blocking(move || {
        let trust = host.trust();
        serde_json::to_value(crate::plugin::inspect::inspect(host.runtime(), &bytes, Some(&trust)))
    })
    .await;
    match report {
        Ok(Ok(v)) => axum::Json(v).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("the inspection did not serialise: {e}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("the inspection failed: {e}")),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct PromoteBody {
    by: Option<String>,
}

pub(super) async fn promote(
    State(ctx): State<Arc<Ctx>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !authorized(&ctx, &headers) {
        return unauthorized();
    }
    let body: PromoteBody = if body.is_empty() {
        PromoteBody::default()
    } else {
        match super::parse(&body) {
            Ok(b) => b,
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        }
    };
    let by = who(body.by);
    let host = ctx.host.clone();
    let target = name.clone();
    match tokio::task::spawn_blocking(move || host.promote(&target, &by)).await {
        Ok(Ok(done)) => {
            let (how, from, to) = match done {
                crate::running::staging::Promoted::Loaded => ("loaded", None, None),
                crate::running::staging::Promoted::Reloaded { from, to } => ("reloaded", Some(from), Some(to)),
            };
            axum::Json(json!({"plugin": name, "promoted": how, "from": from, "to": to})).into_response()
        }
        Ok(Err(e)) => error(lifecycle_status(&e), e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("the promote task failed: {e}")),
    }
}

fn lifecycle_status(e: &LifecycleError) -> StatusCode {
    match e {
        LifecycleError::Unknown(_) | LifecycleError::NotStaged(_) => StatusCode::NOT_FOUND,
        LifecycleError::NoSource(_) | LifecycleError::Read { .. } => StatusCode::BAD_REQUEST,
        LifecycleError::NoStaging => StatusCode::CONFLICT,
        LifecycleError::Reload(ReloadError::Timeout(..)) => StatusCode::GATEWAY_TIMEOUT,
        LifecycleError::Reload(ReloadError::NotRunning(_)) => StatusCode::CONFLICT,
        LifecycleError::Start(StartError::Duplicate(_)) => StatusCode::CONFLICT,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

pub(super) async fn load(State(ctx): State<Arc<Ctx>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if !authorized(&ctx, &headers) {
        return unauthorized();
    }
    let mut fields: serde_json::Map<String, Value> = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("bad load request (a [[plugin]] table as JSON): {e}")),
    };
    let by = who(fields.remove("by").and_then(|v| v.as_str().map(str::to_string)));
    let wasm = match fields.remove("wasm_base64") {
        Some(Value::String(b64)) => match decode(&b64) {
            Ok(bytes) => Some(bytes),
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        },
        Some(_) => return error(StatusCode::BAD_REQUEST, "wasm_base64 must be a string"),
        None => None,
    };
    if wasm.is_some() {
        fields.entry("path").or_insert_with(|| Value::String(String::new()));
    }
    let plugin: PluginConfig = match serde_json::from_value(Value::Object(fields)) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("bad load request: {e}")),
    };
    if let Err(e) = plugin.validate(&ctx.defaults) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, format!("{e:#}"));
    }
    let source = wasm.is_none().then(|| plugin.path.clone());
    let host = ctx.host.clone();
    let defaults = ctx.defaults.clone();
    let name = plugin.name.clone();
    let staged = plugin.staged;
    let outcome = tokio::task::spawn_blocking(move || {
        let spec = plugin
            .spec(&defaults, std::path::Path::new(""), wasm)
            .map_err(|e| (StatusCode::UNPROCESSABLE_ENTITY, format!("{e:#}")))?;
        let options = LoadOptions { source, start_reduce_only: plugin.start_reduce_only, by };
        if plugin.staged {
            return host.stage(spec, options).map_err(|e| (lifecycle_status(&e), e.to_string()));
        }
        host.load_with(spec, options).map_err(|e| match e {
            StartError::Duplicate(_) => (StatusCode::CONFLICT, e.to_string()),
            other => (StatusCode::UNPROCESSABLE_ENTITY, other.to_string()),
        })
    })
    .await;
    match outcome {
        Ok(Ok(())) if staged => {
            let status = ctx.host.staging().and_then(|h| h.plugin_status(&name));
            axum::Json(json!({"plugin": name, "staged": true, "hash": status.map(|s| s.hash)})).into_response()
        }
        Ok(Ok(())) => {
            let slot = ctx.host.slot(&name);
            let status = ctx.host.plugin_status(&name);
            axum::Json(json!({
                "plugin": name, "hash": status.map(|s| s.hash),
                "trading_state": slot.map(|s| s.state().as_str()),
            }))
            .into_response()
        }
        Ok(Err((status, message))) => error(status, message),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("the load task failed: {e}")),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct ReloadBody {
    path: Option<PathBuf>,
    wasm_base64: Option<String>,
    config: Option<serde_json::Map<String, Value>>,
    reduce_only: Option<bool>,
    /// Put the new version on the staging venue instead (the running one keeps trading).
    staged: bool,
    by: Option<String>,
}

pub(super) async fn reload(
    State(ctx): State<Arc<Ctx>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !authorized(&ctx, &headers) {
        return unauthorized();
    }
    let body: ReloadBody = match super::parse(&body) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let wasm = match body.wasm_base64.as_deref().map(decode).transpose() {
        Ok(w) => w,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let request = ReloadRequest {
        wasm,
        path: body.path,
        config: body.config.map(|c| Value::Object(c).to_string()),
        reduce_only: body.reduce_only,
        by: who(body.by),
    };
    let host = ctx.host.clone();
    let target = name.clone();
    if body.staged {
        return match tokio::task::spawn_blocking(move || host.stage_reload(&target, request)).await {
            Ok(Ok(())) => axum::Json(json!({"plugin": name, "staged": true})).into_response(),
            Ok(Err(e)) => error(lifecycle_status(&e), e.to_string()),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("the staging task failed: {e}")),
        };
    }
    match tokio::task::spawn_blocking(move || host.reload(&target, request)).await {
        Ok(Ok(done)) => axum::Json(json!({
            "plugin": name, "from": done.swap.old_hash, "to": done.swap.new_hash,
            "state_bytes": done.swap.state_bytes, "queued_events": done.swap.queued,
            "from_cache": done.from_cache, "compile_ms": done.compile_time.as_secs_f64() * 1e3,
            "total_ms": done.total.as_secs_f64() * 1e3, "trading_state": done.trading_state.as_str(),
        }))
        .into_response(),
        Ok(Err(e)) => error(lifecycle_status(&e), e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("the reload task failed: {e}")),
    }
}

pub(super) async fn unload(
    State(ctx): State<Arc<Ctx>>,
    UrlPath(name): UrlPath<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&ctx, &headers) {
        return unauthorized();
    }
    let cancel_orders = match query.get("orders").map(String::as_str) {
        None | Some("cancel") => true,
        Some("leave") => false,
        Some(other) => return error(StatusCode::BAD_REQUEST, format!("orders={other}: use cancel or leave")),
    };
    let by = who(query.get("by").cloned());
    let open = ctx.host.slot(&name).map(|s| ctx.host.hub().open_orders(s.id).len());
    let host = ctx.host.clone();
    let target = name.clone();
    match tokio::task::spawn_blocking(move || host.unload_by(&target, cancel_orders, &by)).await {
        Ok(true) => axum::Json(json!({
            "plugin": name, "unloaded": true,
            "orders": if cancel_orders { "cancelled" } else { "left working" }, "open_orders": open,
        }))
        .into_response(),
        Ok(false) => error(StatusCode::NOT_FOUND, format!("no plugin named {name:?}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("the unload task failed: {e}")),
    }
}
