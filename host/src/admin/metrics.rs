//! `GET /metrics`: Prometheus text (0.0.4), read from the host's live counters at each scrape,
//! so the trading path does no extra work for it. Per plugin (label `plugin`): orders sent,
//! denied, rejected, fills, events, instance failures (traps), reloads, open orders, trading
//! state, and a histogram of call durations. For the account: trading state. For the venue:
//! whatever it reports (OKX: rate-limit waits and refusals, feed reconnects, book gaps...).

use super::{Ctx, authorized, unauthorized};
use crate::running::Host;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::sync::Arc;

/// Reads the host at each scrape.
struct HostCollector(Arc<Host>);

impl std::fmt::Debug for HostCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostCollector")
    }
}

/// A metric family with one series per plugin.
fn per_plugin<'a>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    counter: bool,
    values: impl Iterator<Item = (&'a str, f64)>,
) -> std::fmt::Result {
    let kind = if counter { MetricType::Counter } else { MetricType::Gauge };
    let mut family = encoder.encode_descriptor(name, help, None, kind)?;
    for (plugin, value) in values {
        let labels = [("plugin", plugin)];
        if counter {
            ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
        } else {
            ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

fn single(encoder: &mut DescriptorEncoder, name: &str, help: &str, counter: bool, value: f64) -> std::fmt::Result {
    if counter {
        ConstCounter::new(value).encode(encoder.encode_descriptor(name, help, None, MetricType::Counter)?)
    } else {
        ConstGauge::new(value).encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)
    }
}

impl Collector for HostCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let host = &self.0;
        let reports = host.report();
        let states: Vec<(String, f64)> = reports
            .iter()
            .map(|r| (r.name.clone(), host.slot(&r.name).map_or(2.0, |s| f64::from(s.state() as u8))))
            .collect();
        let series = |f: fn(&crate::running::PluginReport) -> f64| reports.iter().map(move |r| (r.name.as_str(), f(r)));
        let e = &mut encoder;
        per_plugin(
            e,
            "tradebox_plugin_orders_sent",
            "Orders sent to the venue",
            true,
            series(|r| r.orders_sent as f64),
        )?;
        per_plugin(
            e,
            "tradebox_plugin_orders_denied",
            "Intents denied by the host",
            true,
            series(|r| r.denied as f64),
        )?;
        per_plugin(
            e,
            "tradebox_plugin_orders_rejected",
            "Orders rejected by the venue",
            true,
            series(|r| r.rejected as f64),
        )?;
        per_plugin(e, "tradebox_plugin_fills", "Fills", true, series(|r| r.fills as f64))?;
        per_plugin(e, "tradebox_plugin_events", "Events delivered to the plugin", true, series(|r| r.events as f64))?;
        per_plugin(
            e,
            "tradebox_plugin_failures",
            "Instance failures (traps, deadlines)",
            true,
            series(|r| f64::from(r.failures)),
        )?;
        per_plugin(e, "tradebox_plugin_reloads", "Hot reloads", true, series(|r| f64::from(r.reloads)))?;
        per_plugin(e, "tradebox_plugin_open_orders", "Open orders now", false, series(|r| r.open_orders as f64))?;
        per_plugin(
            e,
            "tradebox_plugin_trading_state",
            "0 active, 1 reduce-only, 2 halted",
            false,
            states.iter().map(|(n, v)| (n.as_str(), *v)),
        )?;
        let histograms = host.call_histograms();
        let mut family = e.encode_descriptor(
            "tradebox_plugin_call_seconds",
            "Duration of each call into the plugin",
            None,
            MetricType::Histogram,
        )?;
        for (plugin, histogram) in &histograms {
            histogram.encode(family.encode_family(&[("plugin", plugin.as_str())])?)?;
        }
        single(e, "tradebox_plugins_loaded", "Plugins loaded", false, reports.len() as f64)?;
        let account = f64::from(host.hub().account_state() as u8);
        single(e, "tradebox_account_trading_state", "0 active, 1 reduce-only, 2 halted", false, account)?;
        for m in host.venue().metrics() {
            single(e, m.name, m.help, m.counter, m.value)?;
        }
        Ok(())
    }
}

/// The registry behind `/metrics`.
pub(super) fn registry(host: Arc<Host>) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(HostCollector(host)));
    registry
}

pub(super) async fn serve(State(ctx): State<Arc<Ctx>>, headers: HeaderMap) -> Response {
    if !authorized(&ctx, &headers) {
        return unauthorized();
    }
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut text, &ctx.metrics) {
        return super::error(StatusCode::INTERNAL_SERVER_ERROR, format!("encoding metrics: {e}"));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}
