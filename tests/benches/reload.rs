//! Hot-reload figures (issue "Hot loading"): how long a reload of `sma-cross` takes from the
//! request to the new instance serving, with the compiled cache warm (and, for scale, cold);
//! and how many events are lost or repeated across 1,000 reloads under a 10,000 events/s feed.
//! Run with `cargo bench -p tradebox-e2e --bench reload` (build the plugins first:
//! `cargo xtask plugins`).

use std::time::Duration;
use tradebox::plugin::Mode;
use tradebox::running::lifecycle::ReloadRequest;
use tradebox_e2e::{TestHost, plugin, soak, spec};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

async fn sma_reloads(t: &TestHost, name: &str, n: usize) -> (Vec<Duration>, Vec<Duration>, Vec<Duration>) {
    let config = r#"{"symbol":"BTC-USDT","fast":5,"slow":20,"size":0.01}"#;
    t.load(spec(name, "sma-cross", config, &["BTC-USDT"])).await.expect("sma-cross loads");
    t.drive_until("sma-cross to hold prices", Duration::from_secs(60), |t| t.report(name).events > 50).await;
    let wasm = plugin("sma-cross");
    let (mut total, mut compile, mut swap) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let request = ReloadRequest { wasm: Some(wasm.clone()), by: "bench".into(), ..ReloadRequest::default() };
        let done = tokio::task::block_in_place(|| t.host.reload(name, request)).expect("reload");
        assert!(done.swap.state_bytes > 2, "the prices went across");
        total.push(done.total);
        compile.push(done.compile_time);
        swap.push(done.swap.swap_time);
        t.venue.step();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    for v in [&mut total, &mut compile, &mut swap] {
        v.sort();
    }
    (total, compile, swap)
}

fn report(label: &str, (total, compile, swap): &(Vec<Duration>, Vec<Duration>, Vec<Duration>)) {
    println!(
        "{label}: {} reloads; request → new instance serving: median {}, p90 {}, max {}; \
         of which compile/cache median {}, swap (instantiate + init + snapshot/restore) median {}",
        total.len(),
        ms(percentile(total, 0.5)),
        ms(percentile(total, 0.9)),
        ms(percentile(total, 1.0)),
        ms(percentile(compile, 0.5)),
        ms(percentile(swap, 0.5)),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // Criterion's harness passes flags such as `--bench`; this binary takes none.
    let warm = TestHost::new(Mode::Live).await;
    let warm_figures = sma_reloads(&warm, "sma", 200).await;
    report("sma-cross, warm cache", &warm_figures);
    warm.host.shutdown().await;

    let cold = TestHost::with_cache(Mode::Live, None).await;
    let cold_figures = sma_reloads(&cold, "sma", 10).await;
    report("sma-cross, no cache (compiles every time)", &cold_figures);
    cold.host.shutdown().await;

    let t = TestHost::new(Mode::Live).await;
    let out = soak::reloads_under_feed(&t, "counter", 1_000, 10_000).await;
    let mut times = out.reloads.clone();
    times.sort();
    println!(
        "noop, 1000 reloads under a 10,000 trades/s feed: {} trades sent, {} counted by the plugin, \
         {} out of order; lost or repeated: {}; reload median {}, p99 {}",
        out.sent,
        out.counted,
        out.out_of_order,
        out.sent.abs_diff(out.counted) + out.out_of_order,
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
    );
    t.host.shutdown().await;
}
