//! `tradebox plugin inspect`: everything an operator should read before granting a plugin
//! file someone sent them, without running any of its code: who wrote it and what it asks for
//! (the manifest), which contract it was built for and whether this host serves it, every
//! import (so a reviewer sees there is no network, file or environment access) and export,
//! its size and sha256, and who signed it.

use super::runtime::{self, Runtime, WIT_PACKAGE, WIT_VERSION};
use super::trust::{Signer, Trust};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use tradebox_manifest::Manifest;
use tradebox_package::signature::{self, SignatureStatus};
use wasmtime::component::types::ComponentItem;

/// The report.
#[derive(Debug, Serialize)]
pub struct Inspection {
    /// Bytes.
    pub size: usize,
    /// sha256, hex.
    pub sha256: String,
    /// The manifest, when it has one and it reads.
    pub manifest: Option<Manifest>,
    /// Why the manifest section could not be read.
    pub manifest_error: Option<String>,
    /// The contract its imports name (`tradebox:strategy@0.1.0`), when they name one.
    pub contract: Option<String>,
    /// The contract this host serves.
    pub host_contract: String,
    /// Whether this host serves the plugin's contract.
    pub contract_served: bool,
    /// Every import: an interface and the functions it brings.
    pub imports: Vec<Item>,
    /// Every export.
    pub exports: Vec<Item>,
    /// The signature.
    pub signature: SignatureReport,
    /// Whether this host would load it, and if not, why (grants aside: those are per plugin).
    pub verdict: Result<(), String>,
}

/// One import or export.
#[derive(Debug, Serialize)]
pub struct Item {
    /// Its name.
    pub name: String,
    /// The functions of an interface (empty for a single function or a type).
    pub functions: Vec<String>,
}

/// What the signature says.
#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum SignatureReport {
    /// No signature.
    Unsigned,
    /// Valid for these bytes.
    Valid {
        /// `ed25519:...`.
        signer: String,
        /// Among the trusted publishers (`None`: no trust list was given).
        trusted: Option<bool>,
    },
    /// Not valid for these bytes.
    Invalid {
        /// Why.
        reason: String,
    },
}

/// Inspects a plugin file. `trust`, when given, decides the signature part of the verdict.
pub fn inspect(runtime: &Runtime, bytes: &[u8], trust: Option<&Trust>) -> Inspection {
    let sha256 = hex::encode(Sha256::digest(bytes));
    let (manifest, manifest_error) = match runtime::read_manifest(bytes) {
        Ok(m) => (m, None),
        Err(e) => (None, Some(e.to_string())),
    };
    let signature = match signature::verify(bytes) {
        Ok(SignatureStatus::Unsigned) => SignatureReport::Unsigned,
        Ok(SignatureStatus::Valid { signer }) => SignatureReport::Valid {
            signer: signer.to_string(),
            trusted: trust.map(|t| matches!(t.check(bytes), Ok(Signer::Trusted(_)))),
        },
        Ok(SignatureStatus::Invalid { reason, .. }) => SignatureReport::Invalid { reason },
        Err(e) => SignatureReport::Invalid { reason: e.to_string() },
    };
    let host_contract = format!("{WIT_PACKAGE}@{WIT_VERSION}");
    let mut report = Inspection {
        size: bytes.len(),
        sha256,
        manifest,
        manifest_error,
        contract: None,
        host_contract,
        contract_served: false,
        imports: Vec::new(),
        exports: Vec::new(),
        signature,
        verdict: Ok(()),
    };
    let component = match wasmtime::component::Component::new(runtime.engine(), bytes) {
        Ok(c) => c,
        Err(e) => {
            report.verdict = match (runtime::not_a_component(bytes), &report.signature) {
                // What the file is comes first: a text file has no signature to be invalid.
                (Some(why), _) => Err(format!("not a valid wasm component: {why}")),
                (None, SignatureReport::Invalid { reason }) => {
                    Err(format!("the plugin's signature is invalid: {reason}"))
                }
                (None, _) => Err(format!("not a valid wasm component: {e:#}")),
            };
            return report;
        }
    };
    let engine = runtime.engine();
    let ty = component.component_type();
    report.imports = ty.imports(engine).map(|(name, item)| describe(engine, name, &item.ty)).collect();
    report.exports = ty.exports(engine).map(|(name, item)| describe(engine, name, &item.ty)).collect();
    report.contract = report
        .imports
        .iter()
        .find_map(|i| i.name.strip_prefix(WIT_PACKAGE)?.split_once('@').map(|(_, v)| format!("{WIT_PACKAGE}@{v}")))
        .or_else(|| report.manifest.as_ref().map(|m| m.contract.clone()));
    report.contract_served = report.contract.as_deref().is_some_and(|c| {
        tradebox_manifest::contract_series(c) == tradebox_manifest::contract_series(&report.host_contract)
    });
    report.verdict = (|| {
        // In the order the host checks on load: the signature, then the component.
        if let SignatureReport::Invalid { reason } = &report.signature {
            return Err(format!("the plugin's signature is invalid: {reason}"));
        }
        if let Some(trust) = trust {
            trust.check(bytes).map_err(|e| e.to_string())?;
        }
        if let Some(e) = &report.manifest_error {
            return Err(e.clone());
        }
        runtime.compile(bytes).map_err(|e| e.to_string())?;
        Ok(())
    })();
    report
}

fn describe(engine: &wasmtime::Engine, name: &str, item: &ComponentItem) -> Item {
    let functions = match item {
        ComponentItem::ComponentInstance(instance) => instance
            .exports(engine)
            .filter(|(_, e)| matches!(e.ty, ComponentItem::ComponentFunc(_)))
            .map(|(f, _)| f.to_string())
            .collect(),
        _ => Vec::new(),
    };
    Item { name: name.to_string(), functions }
}

impl Inspection {
    /// The report for a person.
    pub fn render(&self, file: &str) -> String {
        let mut out = String::new();
        let mut line = |label: &str, text: &str| {
            let _ = writeln!(out, "{label:<11}{text}");
        };
        line("file", &format!("{file} ({} bytes)", self.size));
        line("sha256", &self.sha256);
        match (&self.manifest, &self.manifest_error) {
            (Some(m), _) => {
                line("name", &format!("{} {}", m.name, m.version));
                if !m.description.is_empty() {
                    line("about", &m.description);
                }
                line("authors", &if m.authors.is_empty() { "(none given)".into() } else { m.authors.join(", ") });
                line("license", if m.license.is_empty() { "(none given)" } else { &m.license });
                line("sdk", &format!("tradebox-sdk {}, built for {}", m.sdk, m.contract));
                // The default cap follows the language only for a component that links WASI, as
                // interpreters do (`Compiled::language`): say which cap that gives.
                let wasi = self.imports.iter().any(|i| i.name.starts_with("wasi:"));
                let effective = if wasi { m.language } else { tradebox_manifest::Language::Rust };
                let cap = super::Limits::default().fitted(effective).memory_mib;
                line(
                    "language",
                    &format!(
                        "{} (default memory cap {cap} MiB, unless the operator sets memory_mib)",
                        m.language.name()
                    ),
                );
                line("requests", &requests(m));
                for (i, (key, s)) in m.config.iter().enumerate() {
                    let default = s.default.as_ref().map_or("required".to_string(), |d| format!("default {d}"));
                    let kind = serde_json::to_value(s.kind).ok().and_then(|v| v.as_str().map(str::to_string));
                    let text = format!("{key} ({}, {default}): {}", kind.unwrap_or_default(), s.description);
                    line(if i == 0 { "config" } else { "" }, &text);
                }
            }
            (None, Some(e)) => line("manifest", &format!("unreadable: {e}")),
            (None, None) => {
                line("manifest", "none: the plugin is granted nothing (no instruments, channels or orders)")
            }
        }
        let served = if self.contract_served { "served by this host" } else { "NOT served by this host" };
        let contract = self.contract.as_deref().unwrap_or("(no tradebox:strategy import)");
        line("contract", &format!("{contract}: {served} ({})", self.host_contract));
        let (contract_imports, rest): (Vec<&Item>, Vec<&Item>) =
            self.imports.iter().partition(|i| i.name.starts_with(WIT_PACKAGE));
        let (wasi, foreign): (Vec<&Item>, Vec<&Item>) = rest.into_iter().partition(|i| super::wasi::allowed(&i.name));
        for (i, item) in contract_imports.iter().enumerate() {
            let text = if item.functions.is_empty() {
                item.name.clone()
            } else {
                format!("{}: {}", item.name, item.functions.join(", "))
            };
            line(if i == 0 { "imports" } else { "" }, &text);
        }
        if !wasi.is_empty() {
            // What a language runtime links: served locked down, so its functions say nothing
            // about what the plugin can reach. Named, not listed function by function.
            let names: Vec<&str> = wasi.iter().map(|i| i.name.as_str()).collect();
            line(
                "wasi",
                &format!(
                    "{} interfaces, served locked down: no files, environment, arguments or network; stdout and stderr to the plugin's log; the host's clocks",
                    names.len()
                ),
            );
            line("", &names.join(", "));
        }
        if foreign.is_empty() && wasi.is_empty() {
            line("", "(only the tradebox:strategy contract: no network, files, environment or clocks)");
        } else if foreign.is_empty() {
            line("", "(nothing outside the tradebox:strategy contract and the locked-down WASI)");
        } else {
            let names: Vec<&str> = foreign.iter().map(|i| i.name.as_str()).collect();
            line("", &format!("(OUTSIDE what this host serves: {})", names.join(", ")));
        }
        line("exports", &self.exports.iter().map(|e| e.name.as_str()).collect::<Vec<_>>().join(", "));
        line(
            "signature",
            &match &self.signature {
                SignatureReport::Unsigned => "none".to_string(),
                SignatureReport::Valid { signer, trusted: Some(true) } => format!("valid, by {signer} (trusted)"),
                SignatureReport::Valid { signer, trusted: Some(false) } => {
                    format!("valid, by {signer} (NOT among the trusted publishers)")
                }
                SignatureReport::Valid { signer, trusted: None } => {
                    format!("valid, by {signer} (trust not checked: give --config)")
                }
                SignatureReport::Invalid { reason } => format!("INVALID: {reason}"),
            },
        );
        line(
            "verdict",
            &match &self.verdict {
                Ok(()) => "this host can load it (grant what it requests in the plugin's config)".to_string(),
                Err(e) => format!("refused: {e}"),
            },
        );
        out
    }
}

fn requests(m: &Manifest) -> String {
    let p = &m.permissions;
    let names = |v: &[String]| if v.is_empty() { "none".to_string() } else { v.join(", ") };
    let to_names = |v: serde_json::Value| {
        v.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect::<Vec<_>>())
    };
    let channels = to_names(serde_json::to_value(&p.channels).unwrap_or_default()).unwrap_or_default();
    let orders = to_names(serde_json::to_value(&p.order_types).unwrap_or_default()).unwrap_or_default();
    let mut text =
        format!("instruments {}; channels {}; order types {}", names(&p.instruments), names(&channels), names(&orders));
    if let Some(rate) = p.max_orders_per_sec {
        let _ = write!(text, "; at most {rate} orders/s");
    }
    if let Some(notional) = p.max_order_notional {
        let _ = write!(text, "; orders up to {notional} notional");
    }
    text
}
