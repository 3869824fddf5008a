//! For a plugin's build script: writes the manifest the SDK's `embed_manifest!()` puts in the
//! component.
//!
//! In `build.rs` of a strategy crate (with `tradebox-manifest` as a build-dependency), `main`
//! calls `tradebox_manifest::build::embed()`, and the crate's `lib.rs` calls
//! `tradebox_sdk::embed_manifest!()`.
//!
//! Name, version, authors, description and license come from the crate's `Cargo.toml`;
//! permissions and the config schema from `tradebox.toml` beside it. A mistake in either fails
//! the build, where the author sees it, rather than the load, where an operator would.

use crate::{CONTRACT, FORMAT, Manifest, ManifestError, Permissions, SDK_VERSION, Setting};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The file `embed_manifest!()` includes, in `OUT_DIR`.
pub const FILE: &str = "tradebox-manifest.json";

/// What Cargo knows about the plugin crate.
#[derive(Debug, Clone, Default)]
pub struct Package {
    /// `CARGO_PKG_NAME`.
    pub name: String,
    /// `CARGO_PKG_VERSION`.
    pub version: String,
    /// `CARGO_PKG_AUTHORS`, split.
    pub authors: Vec<String>,
    /// `CARGO_PKG_DESCRIPTION`.
    pub description: String,
    /// `CARGO_PKG_LICENSE`.
    pub license: String,
}

/// `tradebox.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Source {
    #[serde(default)]
    permissions: Permissions,
    #[serde(default)]
    config: BTreeMap<String, Setting>,
}

/// The manifest of `package` with the permissions and settings of `tradebox_toml`.
pub fn from_sources(package: &Package, tradebox_toml: &str) -> Result<Manifest, ManifestError> {
    let source: Source = toml::from_str(tradebox_toml)?;
    let manifest = Manifest {
        format: FORMAT,
        name: package.name.clone(),
        version: package.version.clone(),
        authors: package.authors.clone(),
        description: package.description.clone(),
        license: package.license.clone(),
        sdk: SDK_VERSION.to_string(),
        contract: CONTRACT.to_string(),
        permissions: source.permissions,
        config: source.config,
        language: crate::Language::Rust,
    };
    manifest.validate()?;
    Ok(manifest)
}

/// Run from a build script: reads the crate's metadata and `tradebox.toml`, writes
/// `$OUT_DIR/tradebox-manifest.json`, and stops the build with a clear message on a mistake.
pub fn embed() {
    if let Err(message) = try_embed() {
        eprintln!("error: tradebox manifest: {message}");
        std::process::exit(1);
    }
}

fn try_embed() -> Result<(), String> {
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let package = Package {
        name: env("CARGO_PKG_NAME"),
        version: env("CARGO_PKG_VERSION"),
        authors: env("CARGO_PKG_AUTHORS").split(':').filter(|a| !a.is_empty()).map(str::to_string).collect(),
        description: env("CARGO_PKG_DESCRIPTION"),
        license: env("CARGO_PKG_LICENSE"),
    };
    let dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let path = dir.join("tradebox.toml");
    println!("cargo:rerun-if-changed={}", path.display());
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("cargo:warning=no tradebox.toml: the plugin requests no permissions and can trade nothing");
            String::new()
        }
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    let manifest = from_sources(&package, &text).map_err(|e| format!("{}: {e}", path.display()))?;
    let out = PathBuf::from(std::env::var("OUT_DIR").map_err(|_| "OUT_DIR is not set: call embed() from build.rs")?);
    let file = out.join(FILE);
    std::fs::write(&file, manifest.to_json()).map_err(|e| format!("writing {}: {e}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_tradebox_toml_asks_for_nothing() {
        let m = from_sources(&Package { name: "x".into(), version: "0.1.0".into(), ..Package::default() }, "")
            .expect("valid");
        assert_eq!(m.permissions, Permissions::default());
        assert!(m.config.is_empty());
    }

    #[test]
    fn mistakes_in_tradebox_toml_name_the_field() {
        let package = Package { name: "x".into(), version: "0.1.0".into(), ..Package::default() };
        let err = from_sources(&package, "[permissions]\nchannels = [\"orderbook\"]").expect_err("unknown channel");
        assert!(err.to_string().contains("orderbook"), "{err}");
        let err = from_sources(&package, "[config.n]\ntype = \"integer\"\ndefault = \"ten\"").expect_err("bad default");
        assert!(err.to_string().contains("config.n"), "{err}");
    }
}
