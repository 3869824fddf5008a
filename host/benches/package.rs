#![allow(missing_docs)] // criterion_group! generates undocumented items.
//! What sharing adds to every load and reload (issue "Sharing"): checking a signed component's
//! ed25519 signature against the trusted keys, and reading its manifest. Run with
//! `cargo xtask bench --bench package` (the plugins must be built).

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::PathBuf;
use tradebox::plugin::runtime::read_manifest;
use tradebox::plugin::trust::Trust;
use tradebox_package::signature;

fn sma_cross() -> Vec<u8> {
    let dir = std::env::var_os("TRADEBOX_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/plugins"));
    std::fs::read(dir.join("sma-cross.wasm")).expect("sma-cross.wasm: run `cargo xtask plugins` first")
}

fn sharing_checks(c: &mut Criterion) {
    let key = signature::generate().expect("a key");
    let signed = signature::sign(&sma_cross(), &key).expect("signs");
    let trust = Trust::new(true, vec![signature::public_key(&key)]);
    let mut group = c.benchmark_group("package");
    group.bench_function("verify_signed_sma_cross", |b| {
        b.iter(|| black_box(trust.check(black_box(&signed)).expect("trusted")));
    });
    group.bench_function("read_manifest_sma_cross", |b| {
        b.iter(|| black_box(read_manifest(black_box(&signed)).expect("reads")));
    });
    group.finish();
}

criterion_group!(benches, sharing_checks);
criterion_main!(benches);
