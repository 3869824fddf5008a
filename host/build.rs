//! Fetches the console's one JavaScript dependency (uPlot, pinned with its integrity hash in
//! `console/package-lock.json`) with `npm ci` into `OUT_DIR`, where `admin/console/assets.rs`
//! embeds it. Nothing built is committed, and a user's machine needs no step of its own.
//!
//! Without npm (or with the registry out of reach) the host still builds: the console then
//! says, in place of the page, why it is missing and what to install, and cargo prints the
//! same as a warning.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What `npm ci` must leave behind, copied under these names.
const FILES: &[(&str, &str)] = &[
    ("node_modules/uplot/dist/uPlot.iife.min.js", "uPlot.js"),
    ("node_modules/uplot/dist/uPlot.min.css", "uPlot.css"),
];

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let console = manifest.join("../console");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for f in ["package.json", "package-lock.json"] {
        println!("cargo:rerun-if-changed={}", console.join(f).display());
    }
    let assets = out.join("console");
    let missing = match fetch(&console, &out.join("console-npm"), &assets) {
        Ok(()) => String::new(),
        Err(why) => {
            println!("cargo:warning=the operator's console is left out of this build: {why}");
            // Empty files, so the embedding compiles; the host serves the reason instead.
            let _ = std::fs::create_dir_all(&assets);
            for (_, name) in FILES {
                let _ = std::fs::write(assets.join(name), "");
            }
            why
        }
    };
    std::fs::write(out.join("console-missing.txt"), missing).expect("OUT_DIR is writable");
}

fn fetch(console: &Path, work: &Path, assets: &Path) -> Result<(), String> {
    std::fs::create_dir_all(work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    std::fs::create_dir_all(assets).map_err(|e| format!("cannot create {}: {e}", assets.display()))?;
    let lock =
        std::fs::read(console.join("package-lock.json")).map_err(|e| format!("console/package-lock.json: {e}"))?;
    let done = work.join("installed-lock.json");
    // The same lock already installed here: nothing to fetch.
    let installed =
        std::fs::read(&done).is_ok_and(|l| l == lock) && FILES.iter().all(|(from, _)| work.join(from).is_file());
    if !installed {
        for f in ["package.json", "package-lock.json"] {
            std::fs::copy(console.join(f), work.join(f)).map_err(|e| format!("copying console/{f}: {e}"))?;
        }
        let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
        let output = Command::new(npm)
            .args(["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"])
            .current_dir(work)
            .output()
            .map_err(|e| format!("npm could not be started ({e}); install Node.js 20+ with npm and build again"))?;
        if !output.status.success() {
            let err = String::from_utf8_lossy(&output.stderr);
            let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message");
            return Err(format!("`npm ci` in {} failed: {last}", work.display()));
        }
        std::fs::write(&done, &lock).map_err(|e| format!("{}: {e}", done.display()))?;
    }
    for (from, name) in FILES {
        std::fs::copy(work.join(from), assets.join(name)).map_err(|e| format!("{from} after npm ci: {e}"))?;
    }
    Ok(())
}
