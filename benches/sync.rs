//! `corun::sync` benchmarks, with tokio (and parking_lot on OS threads) beside each workload.
//!
//! `mutex_contention`: 8 coroutines (tasks, threads) × 100k lock / increment / unlock of one
//! shared counter, on 2 workers (corun, tokio) or 8 OS threads (parking_lot). Reported in ns per
//! lock. `channels`: mpsc with 4 producers and 1 consumer, 1M messages, unbounded and
//! bounded(1024); and a oneshot ping-pong (a fresh oneshot per round trip). After criterion, a
//! summary prints the best of 5 rounds of each and the ratios.
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

const PRODUCERS: usize = 4;
const MESSAGES: usize = 1_000_000;
const PING_PONGS: usize = 100_000;

/// A sender of either kind, so one workload serves both channel flavours.
enum AnySender {
    Unbounded(corun::sync::mpsc::Sender<usize>),
    Bounded(corun::sync::mpsc::SyncSender<usize>),
}

impl AnySender {
    fn send(&self, v: usize) {
        match self {
            AnySender::Unbounded(tx) => tx.send(v).unwrap(),
            AnySender::Bounded(tx) => tx.send(v).unwrap(),
        }
    }

    fn clone_sender(&self) -> AnySender {
        match self {
            AnySender::Unbounded(tx) => AnySender::Unbounded(tx.clone()),
            AnySender::Bounded(tx) => AnySender::Bounded(tx.clone()),
        }
    }
}

/// 4 producers -> 1 consumer, `MESSAGES` in all; `bound`: `None` unbounded.
fn corun_mpsc(rt: &corun::Runtime, bound: Option<usize>) -> Duration {
    rt.block_on(|| {
        let start = Instant::now();
        let (tx, rx) = match bound {
            None => {
                let (tx, rx) = corun::sync::mpsc::channel();
                (AnySender::Unbounded(tx), rx)
            }
            Some(b) => {
                let (tx, rx) = corun::sync::mpsc::sync_channel(b);
                (AnySender::Bounded(tx), rx)
            }
        };
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|_| {
                let tx = tx.clone_sender();
                corun::spawn(move || {
                    for i in 0..MESSAGES / PRODUCERS {
                        tx.send(i);
                    }
                })
            })
            .collect();
        drop(tx);
        let count = rx.iter().count();
        producers.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(count, MESSAGES);
        start.elapsed()
    })
}

fn tokio_mpsc(rt: &tokio::runtime::Runtime, bound: Option<usize>) -> Duration {
    // Inside a spawned task, like corun's `block_on` (which runs its closure on a worker).
    rt.block_on(async move { tokio::spawn(tokio_mpsc_task(bound)).await.unwrap() })
}

async fn tokio_mpsc_task(bound: Option<usize>) -> Duration {
    {
        let start = Instant::now();
        let mut producers = Vec::new();
        let mut count = 0;
        match bound {
            None => {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                for _ in 0..PRODUCERS {
                    let tx = tx.clone();
                    producers.push(tokio::spawn(async move {
                        for i in 0..MESSAGES / PRODUCERS {
                            tx.send(i).unwrap();
                        }
                    }));
                }
                drop(tx);
                while rx.recv().await.is_some() {
                    count += 1;
                }
            }
            Some(b) => {
                let (tx, mut rx) = tokio::sync::mpsc::channel(b);
                for _ in 0..PRODUCERS {
                    let tx = tx.clone();
                    producers.push(tokio::spawn(async move {
                        for i in 0..MESSAGES / PRODUCERS {
                            tx.send(i).await.unwrap();
                        }
                    }));
                }
                drop(tx);
                while rx.recv().await.is_some() {
                    count += 1;
                }
            }
        }
        for p in producers {
            p.await.unwrap();
        }
        assert_eq!(count, MESSAGES);
        start.elapsed()
    }
}

/// Round trips between two coroutines: one sends a fresh oneshot sender over an mpsc channel
/// and waits for the reply on it.
fn corun_oneshot_ping_pong(rt: &corun::Runtime) -> Duration {
    rt.block_on(|| {
        let (tx, rx) = corun::sync::mpsc::channel::<corun::sync::oneshot::Sender<usize>>();
        let ponger = corun::spawn(move || {
            for (i, reply) in rx.iter().enumerate() {
                reply.send(i).unwrap();
            }
        });
        let start = Instant::now();
        for i in 0..PING_PONGS {
            let (reply_tx, reply_rx) = corun::sync::oneshot::channel();
            tx.send(reply_tx).unwrap();
            assert_eq!(reply_rx.recv().unwrap(), i);
        }
        let elapsed = start.elapsed();
        drop(tx);
        ponger.join().unwrap();
        elapsed
    })
}

fn tokio_oneshot_ping_pong(rt: &tokio::runtime::Runtime) -> Duration {
    // Inside a spawned task, like corun's `block_on` (which runs its closure on a worker).
    rt.block_on(async { tokio::spawn(tokio_oneshot_ping_pong_task()).await.unwrap() })
}

async fn tokio_oneshot_ping_pong_task() -> Duration {
    {
        let (tx, mut rx) =
            tokio::sync::mpsc::unbounded_channel::<tokio::sync::oneshot::Sender<usize>>();
        let ponger = tokio::spawn(async move {
            let mut i = 0;
            while let Some(reply) = rx.recv().await {
                reply.send(i).unwrap();
                i += 1;
            }
        });
        let start = Instant::now();
        for i in 0..PING_PONGS {
            let (reply_tx, reply_rx) = tokio::sync::oneshot::channel();
            tx.send(reply_tx).unwrap();
            assert_eq!(reply_rx.await.unwrap(), i);
        }
        let elapsed = start.elapsed();
        drop(tx);
        ponger.await.unwrap();
        elapsed
    }
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
        let mut group = c.benchmark_group("channels");
        group
            .sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .measurement_time(Duration::from_secs(3))
            .throughput(Throughput::Elements(MESSAGES as u64));
        for (name, bound) in [("unbounded", None), ("bounded_1024", Some(1024))] {
            group.bench_function(format!("mpsc_{name}/corun"), |b| {
                b.iter_custom(|iters| (0..iters).map(|_| corun_mpsc(&corun, bound)).sum())
            });
            group.bench_function(format!("mpsc_{name}/tokio"), |b| {
                b.iter_custom(|iters| (0..iters).map(|_| tokio_mpsc(&tokio, bound)).sum())
            });
        }
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
    println!("\nchannels, best of 5 (ns per message / per round trip; tokio beside)");
    for (name, bound) in [
        ("mpsc_unbounded 4->1", None),
        ("mpsc_bounded(1024) 4->1", Some(1024)),
    ] {
        let c = best_of(5, || corun_mpsc(&corun, bound)).as_nanos() as f64 / MESSAGES as f64;
        let t = best_of(5, || tokio_mpsc(&tokio, bound)).as_nanos() as f64 / MESSAGES as f64;
        println!(
            "  {name:<26} corun {c:7.1}  tokio {t:7.1}  ratio {:.2}",
            c / t
        );
    }
    let c = best_of(5, || corun_oneshot_ping_pong(&corun)).as_nanos() as f64 / PING_PONGS as f64;
    let t = best_of(5, || tokio_oneshot_ping_pong(&tokio)).as_nanos() as f64 / PING_PONGS as f64;
    println!(
        "  {:<26} corun {c:7.1}  tokio {t:7.1}  ratio {:.2}",
        "oneshot ping_pong",
        c / t
    );
}
