//! `corun::sync` benchmarks, with tokio (and parking_lot on OS threads) beside each workload.
//!
//! `mutex_contention`: 8 coroutines (tasks, threads) × 100k lock / increment / unlock of one
//! shared counter, on 2 workers (corun, tokio) or 8 OS threads (parking_lot). Reported in ns per
//! lock. After criterion, a summary prints the best of 5 rounds of each and the ratios.
//!
//! ```text
//! cargo bench --bench sync
//! SYNC_SUMMARY_ONLY=1 cargo bench --bench sync
//! ```

use criterion::{Criterion, SamplingMode, Throughput};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WORKERS: usize = 2;
const CONTENDERS: usize = 8;
const LOCKS_EACH: u64 = 100_000;
const TOTAL_LOCKS: u64 = CONTENDERS as u64 * LOCKS_EACH;

fn corun_mutex(rt: &corun::Runtime) -> Duration {
    let counter = Arc::new(corun::sync::Mutex::new(0u64));
    let start = Instant::now();
    let handles: Vec<_> = (0..CONTENDERS)
        .map(|_| {
            let counter = counter.clone();
            rt.spawn(move || {
                for _ in 0..LOCKS_EACH {
                    *counter.lock() += 1;
                }
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    let elapsed = start.elapsed();
    assert_eq!(*counter.lock(), TOTAL_LOCKS);
    elapsed
}

fn tokio_mutex(rt: &tokio::runtime::Runtime) -> Duration {
    let counter = Arc::new(tokio::sync::Mutex::new(0u64));
    let start = Instant::now();
    rt.block_on(async {
        let handles: Vec<_> = (0..CONTENDERS)
            .map(|_| {
                let counter = counter.clone();
                tokio::spawn(async move {
                    for _ in 0..LOCKS_EACH {
                        *counter.lock().await += 1;
                    }
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
    });
    let elapsed = start.elapsed();
    assert_eq!(*counter.try_lock().unwrap(), TOTAL_LOCKS);
    elapsed
}

fn parking_lot_threads() -> Duration {
    let counter = Arc::new(parking_lot::Mutex::new(0u64));
    let start = Instant::now();
    let handles: Vec<_> = (0..CONTENDERS)
        .map(|_| {
            let counter = counter.clone();
            std::thread::spawn(move || {
                for _ in 0..LOCKS_EACH {
                    *counter.lock() += 1;
                }
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    let elapsed = start.elapsed();
    assert_eq!(*counter.lock(), TOTAL_LOCKS);
    elapsed
}

fn runtimes() -> (corun::Runtime, tokio::runtime::Runtime) {
    let corun = corun::runtime::Builder::new()
        .workers(WORKERS)
        .thread_name("bench-corun")
        .build()
        .expect("corun runtime");
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .build()
        .expect("tokio runtime");
    (corun, tokio)
}

fn ns_per_lock(d: Duration) -> f64 {
    d.as_nanos() as f64 / TOTAL_LOCKS as f64
}

fn best_of(rounds: usize, mut f: impl FnMut() -> Duration) -> Duration {
    (0..rounds).map(|_| f()).min().expect("at least one round")
}

fn main() {
    let (corun, tokio) = runtimes();
    if std::env::var_os("SYNC_SUMMARY_ONLY").is_none() {
        let mut c = Criterion::default().configure_from_args();
        let mut group = c.benchmark_group("mutex_contention");
        group
            .sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .measurement_time(Duration::from_secs(3))
            .throughput(Throughput::Elements(TOTAL_LOCKS));
        group.bench_function("corun", |b| {
            b.iter_custom(|iters| (0..iters).map(|_| corun_mutex(&corun)).sum())
        });
        group.bench_function("tokio", |b| {
            b.iter_custom(|iters| (0..iters).map(|_| tokio_mutex(&tokio)).sum())
        });
        group.bench_function("parking_lot_8_threads", |b| {
            b.iter_custom(|iters| (0..iters).map(|_| parking_lot_threads()).sum())
        });
        group.finish();
        c.final_summary();
    }
    let corun_ns = ns_per_lock(best_of(5, || corun_mutex(&corun)));
    let tokio_ns = ns_per_lock(best_of(5, || tokio_mutex(&tokio)));
    let pl_ns = ns_per_lock(best_of(5, parking_lot_threads));
    println!("\nmutex_contention, best of 5: {CONTENDERS} contenders x {LOCKS_EACH} locks");
    println!("  corun (2 workers)          {corun_ns:8.1} ns/lock");
    println!(
        "  tokio (2 workers)          {tokio_ns:8.1} ns/lock   corun/tokio {:.2}",
        corun_ns / tokio_ns
    );
    println!(
        "  parking_lot (8 threads)    {pl_ns:8.1} ns/lock   corun/parking_lot {:.2}",
        corun_ns / pl_ns
    );
}
