//! The wasmtime side: one engine per host, an epoch ticker, the compiled-component cache, and
//! the check that a component imports nothing beyond the contract.
//!
//! A cache entry is native code that wasmtime maps executable without checking it (its
//! `deserialize` is `unsafe` for that reason), into the process that holds the keys. So every
//! entry carries a keyed BLAKE3 tag (a MAC) under a per-host key (`cache.key`, 32 random bytes in an
//! owner-only file beside the entries), over the engine's compatibility key, the component's
//! sha256 and the compiled bytes; the tag is checked before anything is deserialised. An entry
//! that fails (written by someone else, swapped for another plugin's, torn, from another
//! host) is compiled again and overwritten, never loaded. Where the key file cannot be used
//! safely the host runs without a cache and says why.

use super::bindings::StrategyPre;
use super::host_api::PluginState;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tradebox_manifest::Manifest;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine};

/// The WIT package every plugin must be built against.
pub const WIT_PACKAGE: &str = "tradebox:strategy";
/// The contract version this host serves (semver: any 0.1.x plugin).
pub const WIT_VERSION: &str = "0.1.0";
/// Interfaces of the package a plugin may import.
const INTERFACES: &[&str] = &["types", "orders", "views", "feeds", "timers", "host"];

/// How CPU is bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// CPU deadline per call (epoch interruption, judged by the thread's CPU time).
    #[default]
    Live,
    /// Fuel per call: the same input stops at the same instruction every run (backtests).
    Deterministic,
}

/// Why a component could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Not a valid component (or a core module).
    #[error("not a valid wasm component: {0}")]
    Invalid(String),
    /// Imports something outside the contract.
    #[error(
        "plugin imports {0}, which neither the tradebox:strategy contract nor the host's locked-down \
         WASI provides; plugins get no ambient authority (no files, network or environment). Build it \
         with `tradebox plugin build` (Rust, Python or JavaScript)"
    )]
    ForbiddenImports(String),
    /// Built for a contract version this host does not serve.
    #[error("plugin was built for {found}; this host serves {WIT_PACKAGE}@0.1.x ({WIT_VERSION})")]
    Version {
        /// What the plugin imports.
        found: String,
    },
    /// Exports do not match the contract.
    #[error("plugin does not match the tradebox:strategy world: {0}")]
    Link(String),
    /// The manifest section is there but unreadable.
    #[error("{0}")]
    Manifest(String),
}

/// The shared wasmtime engine and everything compiled with it.
pub struct Runtime {
    engine: Engine,
    linker: Linker<PluginState>,
    mode: Mode,
    cache: Option<Cache>,
    engine_key: String,
    ticking: Arc<AtomicBool>,
}

/// A compiled, checked plugin, ready to instantiate many times.
#[derive(Clone)]
pub struct Compiled {
    /// Pre-linked instance template.
    pub pre: StrategyPre<PluginState>,
    /// sha256 of the component bytes, hex.
    pub hash: String,
    /// True when it came from the on-disk cache.
    pub from_cache: bool,
    /// The contract version it was built against, e.g. `tradebox:strategy@0.1.0`.
    pub contract: String,
    /// What it says about itself; `None` when it carries no manifest.
    pub manifest: Option<Arc<Manifest>>,
    /// Whether it imports WASI (an interpreter's runtime, or a Rust `wasm32-wasip2` build).
    pub imports_wasi: bool,
}

impl Compiled {
    /// The language whose default limits apply: what the manifest says, but an interpreter's
    /// only when the component links WASI as every interpreter does. A manifest is the author's
    /// word, so a component without WASI that calls itself JavaScript gets Rust's defaults (a
    /// bigger cap for the asking otherwise); the operator's own `memory_mib` always wins.
    pub fn language(&self) -> tradebox_manifest::Language {
        match self.manifest.as_ref().map(|m| m.language).unwrap_or_default() {
            language if self.imports_wasi => language,
            _ => tradebox_manifest::Language::Rust,
        }
    }
}

impl Runtime {
    /// An engine for `mode`, caching compiled components in `cache_dir` (none: no cache).
    pub fn new(mode: Mode, cache_dir: Option<PathBuf>) -> anyhow::Result<Arc<Self>> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.consume_fuel(mode == Mode::Deterministic);
        // Room for deep but legitimate recursion; beyond it a plugin traps with a stack overflow.
        config.max_wasm_stack(1 << 20);
        // `perf` can name plugin functions when asked (profiling a strategy; see BENCHMARKS.md).
        if std::env::var_os("TRADEBOX_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        super::bindings::Strategy::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
        super::wasi::add_to_linker(&mut linker)?;
        let engine_key = {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            engine.precompile_compatibility_hash().hash(&mut h);
            format!("{:016x}", h.finish())
        };
        let ticking = Arc::new(AtomicBool::new(true));
        {
            // One ticker for all plugins: a call's deadline is a number of 1 ms ticks.
            let engine = engine.clone();
            let ticking = ticking.clone();
            std::thread::Builder::new().name("wasm-epoch".into()).spawn(move || {
                while ticking.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(1));
                    engine.increment_epoch();
                }
            })?;
        }
        let cache = cache_dir.and_then(|dir| match Cache::open(&dir) {
            Ok(cache) => Some(cache),
            Err(why) => {
                tracing::warn!(dir = %dir.display(), %why, "compiled-plugin cache off: plugins compile at every load");
                None
            }
        });
        Ok(Arc::new(Self { engine, linker, mode, cache, engine_key, ticking }))
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// CPU mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Compiles (or loads from cache), checks imports, and pre-links a component.
    pub fn compile(&self, bytes: &[u8]) -> Result<Compiled, LoadError> {
        let hash = hex::encode(Sha256::digest(bytes));
        let manifest = read_manifest(bytes)?.map(Arc::new);
        let (component, from_cache) = self.component(bytes, &hash)?;
        let contract = check_imports(&self.engine, &component)?;
        let imports_wasi = component.component_type().imports(&self.engine).any(|(name, _)| name.starts_with("wasi:"));
        let pre = self.linker.instantiate_pre(&component).map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let pre = StrategyPre::new(pre).map_err(|e| LoadError::Link(format!("{e:#}")))?;
        Ok(Compiled { pre, hash, from_cache, contract, manifest, imports_wasi })
    }

    fn cache_path(&self, hash: &str) -> Option<PathBuf> {
        self.cache.as_ref().map(|c| c.dir.join(format!("{hash}-{}.cwasm", self.engine_key)))
    }

    fn component(&self, bytes: &[u8], hash: &str) -> Result<(Component, bool), LoadError> {
        if let (Some(cache), Some(path)) = (&self.cache, self.cache_path(hash))
            && path.exists()
        {
            match cache.read(&path, &self.engine_key, hash).and_then(|code| deserialize(&self.engine, &code)) {
                Ok(c) => return Ok((c, true)),
                // Not ours, not for this component, damaged or stale: compile again, overwrite.
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "ignoring unusable cache entry"),
            }
        }
        if let Some(why) = not_a_component(bytes) {
            return Err(LoadError::Invalid(why));
        }
        let component = Component::new(&self.engine, bytes)
            .map_err(|e| LoadError::Invalid(crate::logging::plugin_text(format!("{e:#}"))))?;
        if let (Some(cache), Some(path)) = (&self.cache, self.cache_path(hash))
            && let Err(e) = cache.write(&path, &self.engine_key, hash, &component)
        {
            // The cache only saves time: a failure to write it must not fail the load.
            tracing::warn!(path = %path.display(), error = %e, "could not cache the compiled component");
        }
        Ok((component, false))
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticking.store(false, Ordering::Relaxed);
    }
}

/// The component's manifest, refused when it is malformed or written for another contract
/// series than the one this host serves.
pub fn read_manifest(bytes: &[u8]) -> Result<Option<Manifest>, LoadError> {
    let section = tradebox_package::sections::find_section(bytes, tradebox_manifest::SECTION)
        .map_err(|e| LoadError::Invalid(crate::logging::plugin_text(e.to_string())))?;
    let Some(section) = section else { return Ok(None) };
    // The error may quote the plugin's own text (an unknown key): escaped and capped.
    let manifest =
        Manifest::from_json(section).map_err(|e| LoadError::Manifest(crate::logging::plugin_text(e.to_string())))?;
    if manifest.contract_series() != tradebox_manifest::contract_series(WIT_VERSION) {
        return Err(LoadError::Version { found: manifest.contract });
    }
    Ok(Some(manifest))
}

/// Why `bytes` cannot be a component, judged by the header alone, in words: wasmparser would
/// describe a wrong file by dumping its first bytes, and a core module (a build that was never
/// turned into a component) deserves the fix rather than a parser error.
pub fn not_a_component(bytes: &[u8]) -> Option<String> {
    match tradebox_package::sections::wasm_kind(bytes) {
        Ok(tradebox_package::sections::WasmKind::Component) => None,
        Ok(tradebox_package::sections::WasmKind::Module) => Some(
            "this is a core wasm module, not a component; turn it into a component (`tradebox plugin build` \
             or `cargo xtask plugins` does)"
                .into(),
        ),
        Err(e) => Some(e.to_string()),
    }
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, code: &[u8]) -> anyhow::Result<Component> {
    // SAFETY: `code` carried a valid tag under this host's cache key (checked by `Cache::read`
    // just before), so this host's `Cache::write` wrote it from `Component::serialize` of an
    // engine with the same compatibility key, for the component with this sha256. wasmtime
    // still checks the header and version before using it.
    Ok(unsafe { Component::deserialize(engine, code) }?)
}

/// Bytes of the tag at the end of every cache entry.
const TAG_BYTES: usize = 32;

/// The compiled-component cache: a directory of entries and the key that vouches for them.
struct Cache {
    dir: PathBuf,
    /// Wiped when the runtime is dropped.
    key: zeroize::Zeroizing<[u8; 32]>,
}

impl Cache {
    /// Opens `dir` (creating it, owner-only) and its key (creating one on first use).
    fn open(dir: &Path) -> Result<Self, String> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        #[cfg(not(unix))]
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        // A directory others can write would let them swap the key file between our checks.
        check_cache_dir(dir)?;
        let key = cache_key(&dir.join("cache.key"))?;
        Ok(Self { dir: dir.to_path_buf(), key })
    }

    /// The keyed BLAKE3 hash (a MAC: keyed mode is BLAKE3's PRF) over what the entry vouches
    /// for. BLAKE3 rather than HMAC-SHA256: the tag is checked on every load from the cache,
    /// and over half a megabyte of code it costs a fraction of HMAC's time.
    fn mac(&self, engine_key: &str, hash: &str) -> blake3::Hasher {
        let mut mac = blake3::Hasher::new_keyed(&self.key);
        // Fixed-length fields first, so no two (engine, component, code) triples sign alike.
        mac.update(b"tradebox compiled component v2\0");
        mac.update(engine_key.as_bytes());
        mac.update(b"\0");
        mac.update(hash.as_bytes());
        mac.update(b"\0");
        mac
    }

    /// The compiled code of the entry at `path`, if its tag holds for this host, engine and
    /// component.
    fn read(&self, path: &Path, engine_key: &str, hash: &str) -> anyhow::Result<Vec<u8>> {
        let mut bytes = std::fs::read(path)?;
        let Some(split) = bytes.len().checked_sub(TAG_BYTES) else {
            anyhow::bail!("too short to carry a tag");
        };
        let mut mac = self.mac(engine_key, hash);
        mac.update(&bytes[..split]);
        let tag: [u8; TAG_BYTES] = bytes[split..].try_into()?;
        // `blake3::Hash` compares in constant time.
        if mac.finalize() != blake3::Hash::from_bytes(tag) {
            anyhow::bail!("its tag does not match this host's cache key; not loaded");
        }
        bytes.truncate(split);
        Ok(bytes)
    }

    fn write(&self, path: &Path, engine_key: &str, hash: &str, component: &Component) -> anyhow::Result<()> {
        let mut bytes = component.serialize()?;
        let mut mac = self.mac(engine_key, hash);
        mac.update(&bytes);
        bytes.extend_from_slice(mac.finalize().as_bytes());
        // Write then rename, so a concurrent reader never sees half a file; the temporary name
        // is unique per process and call, so concurrent writers of the same entry do not collide.
        // A fresh random name, created exclusively and never through a link.
        let tmp = path.with_extension(format!("tmp-{:016x}", rand::random::<u64>()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600).custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
        }
        let written = options.open(&tmp).and_then(|mut f| std::io::Write::write_all(&mut f, &bytes));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.into());
        }
        std::fs::rename(&tmp, path)?;
        Ok(())
    }
}

/// The cache key in `path`: read when it is a regular file of 32 bytes that only its owner
/// (this user) can read or write, created (exclusively, never through a link) when absent.
fn cache_key(path: &Path) -> Result<zeroize::Zeroizing<[u8; 32]>, String> {
    let mut key = zeroize::Zeroizing::new([0u8; 32]);
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            rand::fill(&mut key[..]);
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600).custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
            }
            let written = options.open(path).and_then(|mut f| std::io::Write::write_all(&mut f, &key[..]));
            match written {
                Ok(()) => return Ok(key),
                // Another host process created it first: read theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(format!("cannot create the cache key {}: {e}", path.display())),
            }
        }
        Err(e) => return Err(format!("{}: {e}", path.display())),
        Ok(_) => {}
    }
    // Opened once, never through a link, and checked on the open descriptor: what is read is
    // what was checked.
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    let mut file = options.open(path).map_err(|e| format!("the cache key {}: {e}", path.display()))?;
    let meta = file.metadata().map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.file_type().is_file() {
        return Err(format!("the cache key {} is not a regular file", path.display()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!("the cache key {} can be read or written by others (mode {mode:o})", path.display()));
        }
        if meta.uid() != rustix::process::geteuid().as_raw() {
            return Err(format!("the cache key {} belongs to another user", path.display()));
        }
    }
    let mut bytes = zeroize::Zeroizing::new(Vec::new());
    std::io::Read::read_to_end(&mut file, &mut bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() != key.len() {
        return Err(format!("the cache key {} is not 32 bytes; delete it to make a new one", path.display()));
    }
    key.copy_from_slice(&bytes);
    Ok(key)
}

/// Refuses any import outside `tradebox:strategy@0.1.x`, naming each one; returns the
/// contract version the component imports (`tradebox:strategy@0.1.0`).
pub fn check_imports(engine: &Engine, component: &Component) -> Result<String, LoadError> {
    let mut foreign = Vec::new();
    let mut contract = format!("{WIT_PACKAGE}@{WIT_VERSION}");
    for (name, _) in component.component_type().imports(engine) {
        let (path, version) = name.split_once('@').unwrap_or((name, ""));
        let Some(interface) = path.strip_prefix(WIT_PACKAGE).and_then(|r| r.strip_prefix('/')) else {
            // A language runtime's WASI is served locked down (`super::wasi`); anything else,
            // `wasi:http` included, is refused by name.
            if !super::wasi::allowed(name) {
                foreign.push(format!("`{name}`"));
            }
            continue;
        };
        if !version.starts_with("0.1.") {
            return Err(LoadError::Version { found: format!("{WIT_PACKAGE}@{version}") });
        }
        if !INTERFACES.contains(&interface) {
            foreign.push(format!("`{name}`"));
        }
        contract = format!("{WIT_PACKAGE}@{version}");
    }
    if foreign.is_empty() { Ok(contract) } else { Err(LoadError::ForbiddenImports(foreign.join(", "))) }
}

/// Checks that only this user can change the compiled-component cache in `dir`: entries are
/// authenticated by the key beside them, and a directory others can write would let them
/// replace that key file. Run for every cache; where signatures are required a failure stops
/// the start, elsewhere it turns the cache off.
pub fn check_cache_dir(dir: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let meta = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o022 != 0 {
            return Err(format!(
                "the compiled-plugin cache {} can be written by others (mode {mode:o}); chmod go-w it, or set \
                 [runtime] cache_dir to a directory only you can write",
                dir.display()
            ));
        }
        // Who "this user" is, without unsafe code: the owner of a file created here now.
        let probe = tempfile::NamedTempFile::new_in(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let me = probe.as_file().metadata().map_err(|e| format!("{}: {e}", dir.display()))?.uid();
        if meta.uid() != me {
            return Err(format!(
                "the compiled-plugin cache {} belongs to another user; set [runtime] cache_dir to a directory of yours",
                dir.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The default cache directory: `$XDG_CACHE_HOME/tradebox` or `~/.cache/tradebox`.
pub fn default_cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("tradebox").join("components"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_cache_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        assert_eq!(check_cache_dir(dir.path()), Ok(()));
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
        assert!(check_cache_dir(dir.path()).expect_err("world-writable").contains("chmod go-w"));
    }

    /// Two components that compile to different code.
    fn component(n: u32) -> Vec<u8> {
        wat::parse_str(format!(
            r#"(component (core module (func (export "f") (result i32) i32.const {n})) (core instance (instantiate 0)))"#
        ))
        .expect("wat")
    }

    #[test]
    fn a_cache_entry_is_loaded_only_with_this_hosts_tag() {
        let dir = tempfile::tempdir().expect("tmp");
        let runtime = Runtime::new(Mode::Live, Some(dir.path().to_path_buf())).expect("runtime");
        let (a, b) = (component(1), component(2));
        let (ha, hb) = (hex::encode(Sha256::digest(&a)), hex::encode(Sha256::digest(&b)));
        assert!(!runtime.component(&a, &ha).expect("compiles").1);
        assert!(runtime.component(&a, &ha).expect("cached").1, "a good entry is loaded");
        let (pa, pb) = (runtime.cache_path(&ha).expect("path"), runtime.cache_path(&hb).expect("path"));

        // Someone swaps in the compiled code of another (say, unsigned) component under the
        // name of a signed one: valid wasmtime code, valid tag, but for another component.
        std::fs::copy(&pa, &pb).expect("swap");
        assert!(!runtime.component(&b, &hb).expect("compiles").1, "another component's entry was loaded");
        assert!(runtime.component(&b, &hb).expect("cached").1, "the entry was rewritten for b");

        // A damaged entry, and one without any tag (as written before tags, or by anyone else).
        let mut bytes = std::fs::read(&pa).expect("entry");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        std::fs::write(&pa, &bytes).expect("damage");
        assert!(!runtime.component(&a, &ha).expect("compiles").1, "a damaged entry was loaded");
        let untagged = wasmtime::component::Component::new(runtime.engine(), &a).expect("c").serialize().expect("s");
        std::fs::write(&pa, untagged).expect("untagged");
        assert!(!runtime.component(&a, &ha).expect("compiles").1, "an untagged entry was loaded");

        // Another host (another key) wrote it.
        let other = tempfile::tempdir().expect("tmp");
        let theirs = Runtime::new(Mode::Live, Some(other.path().to_path_buf())).expect("runtime");
        theirs.component(&a, &ha).expect("compiles");
        std::fs::copy(theirs.cache_path(&ha).expect("path"), &pa).expect("copy");
        assert!(!runtime.component(&a, &ha).expect("compiles").1, "another host's entry was loaded");
    }

    #[cfg(unix)]
    #[test]
    fn a_cache_key_others_can_read_turns_the_cache_off() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tmp");
        let runtime = Runtime::new(Mode::Live, Some(dir.path().to_path_buf())).expect("runtime");
        assert!(runtime.cache.is_some());
        let key = dir.path().join("cache.key");
        assert_eq!(std::fs::metadata(&key).expect("key").permissions().mode() & 0o777, 0o600);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(Runtime::new(Mode::Live, Some(dir.path().to_path_buf())).expect("runtime").cache.is_none());
        std::fs::remove_file(&key).expect("rm");
        std::os::unix::fs::symlink("/etc/hostname", &key).expect("link");
        assert!(Runtime::new(Mode::Live, Some(dir.path().to_path_buf())).expect("runtime").cache.is_none());
        // A directory others can write: they could replace the key between two looks at it.
        std::fs::remove_file(&key).expect("rm");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
        assert!(Runtime::new(Mode::Live, Some(dir.path().to_path_buf())).expect("runtime").cache.is_none());
    }

    #[test]
    fn the_manifest_crate_builds_for_the_contract_this_host_serves() {
        assert_eq!(tradebox_manifest::CONTRACT, format!("{WIT_PACKAGE}@{WIT_VERSION}"));
        let wit = include_str!("../../../wit/strategy.wit");
        assert!(wit.contains(&format!("package {WIT_PACKAGE}@{WIT_VERSION};")), "wit/strategy.wit declares it");
    }
}
