//! Scheduler benchmarks: corun against tokio's multi-threaded runtime, same workloads, same
//! number of workers.
//!
//! Every workload is implemented twice, once per runtime, as a function that runs one round of
//! it on an already started runtime and returns the time the round took (runtime start-up is
//! never timed). The criterion groups put the two implementations side by side; with
//! `Throughput::Elements` set to the workload's unit count, criterion's "thrpt" line is the unit
//! rate. After criterion, a quick summary (best of 5 rounds per workload and runtime) prints
//! `workload corun_ns_per_unit tokio_ns_per_unit ratio`, plus the memory figure of
//! `many_idle` (bytes per parked coroutine/task), measured in a fresh child process so the
//! allocator state left by the other workloads does not skew it.
//!
//! ```text
//! cargo bench --bench scheduler                      # criterion groups, then the summary
//! cargo bench --bench scheduler -- ping_pong         # only the matching groups / summary rows
//! SCHED_SUMMARY_ONLY=1 cargo bench --bench scheduler # just the summary
//! SCHED_NO_SUMMARY=1 cargo bench --bench scheduler   # just criterion
//! SCHED_SUMMARY_ROUNDS=3 ...                         # summary tables to print (default 2)
//! SCHED_ONLY=corun ...                               # summary of one runtime (for perf)
//! ```
//!
//! A watchdog aborts the process, naming the workload, if one round runs for more than
//! `SCHED_WATCHDOG_SECS` seconds (default 120): a hang is reported rather than waited on.

use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput};
use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

mod support;

use support::{start_watchdog, watched};

/// Workers of both runtimes (the machine the reference figures come from has 2 cores).
const WORKERS: usize = 2;

const SPAWN_TASKS: usize = 100_000;
const YIELD_TASKS: usize = 200;
const YIELDS_PER_TASK: usize = 1_000;
const PING_PONG_PAIRS: usize = 1_000;
const PING_PONG_ROUNDS: u64 = 100;
const CHAIN_DEPTH: usize = 10_000;
const SWITCH_YIELDS: usize = 100_000;
const SKYNET_LEAVES: u64 = 1_000_000;
/// 1 + 10 + ... + 10^6: every coroutine of the tree, the root included.
const SKYNET_TASKS: u64 = 1_111_111;
const IDLE_TASKS: usize = 100_000;

/// Environment variable that turns the process into a `many_idle` child (value: runtime name).
const CHILD_ENV: &str = "SCHED_MANY_IDLE_CHILD";

// ---------------------------------------------------------------------------------------------
// Runtimes

fn corun_rt(workers: usize) -> corun::Runtime {
    corun::runtime::Builder::new()
        .workers(workers)
        .thread_name("bench-corun")
        .build()
        .expect("corun runtime")
}

fn tokio_rt(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("bench-tokio")
        .build()
        .expect("tokio runtime")
}

/// Runs `f` as a task on a worker of `rt` (not on the calling thread, as `block_on` would) and
/// waits for its output.
fn tokio_on_worker<F>(rt: &tokio::runtime::Runtime, f: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handle = rt.spawn(f);
    rt.block_on(handle).expect("task panicked")
}

// ---------------------------------------------------------------------------------------------
// spawn_many: 100k spawns, then join them all [ns per task]

fn corun_spawn_outside(rt: &corun::Runtime) -> Duration {
    let start = Instant::now();
    let handles: Vec<_> = (0..SPAWN_TASKS).map(|_| rt.spawn(|| ())).collect();
    for h in handles {
        h.join().unwrap();
    }
    start.elapsed()
}

fn tokio_spawn_outside(rt: &tokio::runtime::Runtime) -> Duration {
    let start = Instant::now();
    let handles: Vec<_> = (0..SPAWN_TASKS).map(|_| rt.spawn(async {})).collect();
    rt.block_on(async {
        for h in handles {
            h.await.unwrap();
        }
    });
    start.elapsed()
}

fn corun_spawn_inside(rt: &corun::Runtime) -> Duration {
    rt.block_on(|| {
        let start = Instant::now();
        let handles: Vec<_> = (0..SPAWN_TASKS).map(|_| corun::spawn(|| ())).collect();
        for h in handles {
            h.join().unwrap();
        }
        start.elapsed()
    })
}

fn tokio_spawn_inside(rt: &tokio::runtime::Runtime) -> Duration {
    tokio_on_worker(rt, async {
        let start = Instant::now();
        let handles: Vec<_> = (0..SPAWN_TASKS).map(|_| tokio::spawn(async {})).collect();
        for h in handles {
            h.await.unwrap();
        }
        start.elapsed()
    })
}

// ---------------------------------------------------------------------------------------------
// yield_many: 200 tasks x 1000 yields [ns per yield]

fn corun_yield_many(rt: &corun::Runtime) -> Duration {
    rt.block_on(|| {
        let start = Instant::now();
        let handles: Vec<_> = (0..YIELD_TASKS)
            .map(|_| {
                corun::spawn(|| {
                    for _ in 0..YIELDS_PER_TASK {
                        corun::yield_now();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        start.elapsed()
    })
}

fn tokio_yield_many(rt: &tokio::runtime::Runtime) -> Duration {
    tokio_on_worker(rt, async {
        let start = Instant::now();
        let handles: Vec<_> = (0..YIELD_TASKS)
            .map(|_| {
                tokio::spawn(async {
                    for _ in 0..YIELDS_PER_TASK {
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
        start.elapsed()
    })
}

// ---------------------------------------------------------------------------------------------
// ping_pong: 1000 pairs, each doing 100 round trips [ns per round trip]
//
// corun: a turn counter per pair, park/unpark as the signal (park may return spuriously, so
// each side parks in a loop on the counter). tokio: two `Notify`s per pair; `notify_one` stores
// a permit when nobody waits, the same token semantics as `unpark`.

fn corun_ping_pong(rt: &corun::Runtime) -> Duration {
    rt.block_on(|| {
        let start = Instant::now();
        let pairs: Vec<_> = (0..PING_PONG_PAIRS)
            .map(|_| {
                corun::spawn(|| {
                    let turn = Arc::new(AtomicU64::new(0));
                    let ping = corun::current();
                    let their_turn = turn.clone();
                    let pong = corun::spawn(move || {
                        for i in 0..PING_PONG_ROUNDS {
                            while their_turn.load(Ordering::Acquire) != 2 * i + 1 {
                                corun::park();
                            }
                            their_turn.store(2 * i + 2, Ordering::Release);
                            ping.unpark();
                        }
                    });
                    let pong_co = pong.coroutine().clone();
                    for i in 0..PING_PONG_ROUNDS {
                        turn.store(2 * i + 1, Ordering::Release);
                        pong_co.unpark();
                        while turn.load(Ordering::Acquire) != 2 * i + 2 {
                            corun::park();
                        }
                    }
                    pong.join().unwrap();
                })
            })
            .collect();
        for h in pairs {
            h.join().unwrap();
        }
        start.elapsed()
    })
}

fn tokio_ping_pong(rt: &tokio::runtime::Runtime) -> Duration {
    use tokio::sync::Notify;
    tokio_on_worker(rt, async {
        let start = Instant::now();
        let pairs: Vec<_> = (0..PING_PONG_PAIRS)
            .map(|_| {
                tokio::spawn(async {
                    let to_ping = Arc::new(Notify::new());
                    let to_pong = Arc::new(Notify::new());
                    let (ping_n, pong_n) = (to_ping.clone(), to_pong.clone());
                    let pong = tokio::spawn(async move {
                        for _ in 0..PING_PONG_ROUNDS {
                            pong_n.notified().await;
                            ping_n.notify_one();
                        }
                    });
                    for _ in 0..PING_PONG_ROUNDS {
                        to_pong.notify_one();
                        to_ping.notified().await;
                    }
                    pong.await.unwrap();
                })
            })
            .collect();
        for h in pairs {
            h.await.unwrap();
        }
        start.elapsed()
    })
}

// ---------------------------------------------------------------------------------------------
// chained_spawn: each task spawns the next, 10k deep; the last one signals [ns per task]

fn corun_chain(left: usize, done: Arc<AtomicBool>, waiter: corun::Coroutine) {
    if left == 0 {
        done.store(true, Ordering::Release);
        waiter.unpark();
    } else {
        drop(corun::spawn(move || corun_chain(left - 1, done, waiter)));
    }
}

fn corun_chained_spawn(rt: &corun::Runtime) -> Duration {
    rt.block_on(|| {
        let start = Instant::now();
        let done = Arc::new(AtomicBool::new(false));
        let (d, me) = (done.clone(), corun::current());
        drop(corun::spawn(move || corun_chain(CHAIN_DEPTH - 1, d, me)));
        while !done.load(Ordering::Acquire) {
            corun::park();
        }
        start.elapsed()
    })
}

fn tokio_chain(left: usize, tx: tokio::sync::oneshot::Sender<()>) {
    if left == 0 {
        let _ = tx.send(());
    } else {
        drop(tokio::spawn(async move { tokio_chain(left - 1, tx) }));
    }
}

fn tokio_chained_spawn(rt: &tokio::runtime::Runtime) -> Duration {
    tokio_on_worker(rt, async {
        let start = Instant::now();
        let (tx, rx) = tokio::sync::oneshot::channel();
        drop(tokio::spawn(
            async move { tokio_chain(CHAIN_DEPTH - 1, tx) },
        ));
        rx.await.unwrap();
        start.elapsed()
    })
}

// ---------------------------------------------------------------------------------------------
// ctx_switch: two tasks yielding to each other on ONE worker [ns per switch]

fn corun_ctx_switch(rt: &corun::Runtime) -> Duration {
    rt.block_on(|| {
        let start = Instant::now();
        let handles: Vec<_> = (0..2)
            .map(|_| {
                corun::spawn(|| {
                    for _ in 0..SWITCH_YIELDS {
                        corun::yield_now();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        start.elapsed()
    })
}

fn tokio_ctx_switch(rt: &tokio::runtime::Runtime) -> Duration {
    tokio_on_worker(rt, async {
        let start = Instant::now();
        let handles: Vec<_> = (0..2)
            .map(|_| {
                tokio::spawn(async {
                    for _ in 0..SWITCH_YIELDS {
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
        start.elapsed()
    })
}

// ---------------------------------------------------------------------------------------------
// skynet: every task spawns 10 children down to 1M leaves and sums them [ns per task]

fn corun_skynet_node(num: u64, size: u64) -> u64 {
    if size == 1 {
        return num;
    }
    let sub = size / 10;
    let children: Vec<_> = (0..10)
        .map(|i| corun::spawn(move || corun_skynet_node(num + i * sub, sub)))
        .collect();
    children.into_iter().map(|h| h.join().unwrap()).sum()
}

fn corun_skynet(rt: &corun::Runtime) -> Duration {
    rt.block_on(|| {
        let start = Instant::now();
        let sum = corun::spawn(|| corun_skynet_node(0, SKYNET_LEAVES))
            .join()
            .unwrap();
        let elapsed = start.elapsed();
        assert_eq!(sum, SKYNET_LEAVES * (SKYNET_LEAVES - 1) / 2);
        elapsed
    })
}

fn tokio_skynet_node(num: u64, size: u64) -> Pin<Box<dyn Future<Output = u64> + Send>> {
    Box::pin(async move {
        if size == 1 {
            return num;
        }
        let sub = size / 10;
        let children: Vec<_> = (0..10)
            .map(|i| tokio::spawn(tokio_skynet_node(num + i * sub, sub)))
            .collect();
        let mut sum = 0;
        for h in children {
            sum += h.await.unwrap();
        }
        sum
    })
}

fn tokio_skynet(rt: &tokio::runtime::Runtime) -> Duration {
    tokio_on_worker(rt, async {
        let start = Instant::now();
        let sum = tokio::spawn(tokio_skynet_node(0, SKYNET_LEAVES))
            .await
            .unwrap();
        let elapsed = start.elapsed();
        assert_eq!(sum, SKYNET_LEAVES * (SKYNET_LEAVES - 1) / 2);
        elapsed
    })
}

// ---------------------------------------------------------------------------------------------
// many_idle: 100k tasks parked at once [resident bytes per parked task]
//
// Runs in a child process (see `many_idle_child`) so the heap and the stack pool start clean.

/// Resident set size of this process, in bytes (`/proc/self/statm`, pages x 4096).
fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("statm resident field");
    pages * 4096
}

/// Waits (on this plain thread) until `counter` reaches `target`.
fn wait_count(counter: &AtomicUsize, target: usize) {
    while counter.load(Ordering::Acquire) < target {
        thread::sleep(Duration::from_millis(1));
    }
}

/// Returns (bytes per parked task, RSS before, RSS while parked).
fn corun_many_idle() -> (f64, usize, usize) {
    let rt = corun_rt(WORKERS);
    // Warm up: threads started, their first stacks and caches touched.
    for _ in 0..4 {
        rt.block_on(|| {
            let hs: Vec<_> = (0..64).map(|_| corun::spawn(corun::yield_now)).collect();
            hs.into_iter().for_each(|h| h.join().unwrap());
        });
    }
    let parked = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::with_capacity(IDLE_TASKS);
    let before = rss_bytes();
    for _ in 0..IDLE_TASKS {
        let (parked, release) = (parked.clone(), release.clone());
        handles.push(rt.spawn(move || {
            parked.fetch_add(1, Ordering::AcqRel);
            while !release.load(Ordering::Acquire) {
                corun::park();
            }
        }));
    }
    wait_count(&parked, IDLE_TASKS);
    let during = rss_bytes();
    release.store(true, Ordering::Release);
    for h in &handles {
        h.coroutine().unpark();
    }
    for h in handles {
        h.join().unwrap();
    }
    let per_task = (during as f64 - before as f64) / IDLE_TASKS as f64;
    (per_task, before, during)
}

fn tokio_many_idle() -> (f64, usize, usize) {
    use tokio::sync::Notify;
    let rt = tokio_rt(WORKERS);
    for _ in 0..4 {
        tokio_on_worker(&rt, async {
            let hs: Vec<_> = (0..64)
                .map(|_| tokio::spawn(tokio::task::yield_now()))
                .collect();
            for h in hs {
                h.await.unwrap();
            }
        });
    }
    let parked = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(Notify::new());
    let mut handles = Vec::with_capacity(IDLE_TASKS);
    let before = rss_bytes();
    for _ in 0..IDLE_TASKS {
        let (parked, release) = (parked.clone(), release.clone());
        handles.push(rt.spawn(async move {
            let notified = release.notified();
            tokio::pin!(notified);
            // Registered as a waiter before being counted, so `notify_waiters` reaches it.
            notified.as_mut().enable();
            parked.fetch_add(1, Ordering::AcqRel);
            notified.await;
        }));
    }
    wait_count(&parked, IDLE_TASKS);
    let during = rss_bytes();
    release.notify_waiters();
    rt.block_on(async {
        for h in handles {
            h.await.unwrap();
        }
    });
    let per_task = (during as f64 - before as f64) / IDLE_TASKS as f64;
    (per_task, before, during)
}

/// In the child process: measure one runtime and print the result on stdout.
fn many_idle_child(which: &str) {
    let (per_task, before, during) = match which {
        "corun" => corun_many_idle(),
        "tokio" => tokio_many_idle(),
        other => panic!("unknown runtime {other:?}"),
    };
    println!("many_idle {which} {per_task:.1} {before} {during}");
}

/// Runs the `many_idle` measurement of `which` in a fresh copy of this executable.
fn many_idle_in_child(which: &str) -> Option<(f64, usize, usize)> {
    let exe = std::env::current_exe().ok()?;
    let out = Command::new(exe).env(CHILD_ENV, which).output().ok()?;
    if !out.status.success() {
        eprintln!(
            "many_idle {which}: child failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find(|l| l.starts_with("many_idle "))?;
    let f: Vec<&str> = line.split_whitespace().collect();
    Some((f[2].parse().ok()?, f[3].parse().ok()?, f[4].parse().ok()?))
}

// ---------------------------------------------------------------------------------------------
// The workload table

/// Which runtime configuration a workload needs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rt {
    /// `WORKERS` workers.
    Multi,
    /// One worker.
    Single,
}

struct Workload {
    /// Summary row name; also the criterion group and the filter key.
    name: &'static str,
    /// Criterion group it belongs to (the two spawn_many variants share one).
    group: &'static str,
    /// Variant name inside the group ("" when the group has one variant).
    variant: &'static str,
    units: u64,
    unit: &'static str,
    rt: Rt,
    corun: fn(&corun::Runtime) -> Duration,
    tokio: fn(&tokio::runtime::Runtime) -> Duration,
}

const WORKLOADS: &[Workload] = &[
    Workload {
        name: "spawn_many_outside",
        group: "spawn_many",
        variant: "outside",
        units: SPAWN_TASKS as u64,
        unit: "task",
        rt: Rt::Multi,
        corun: corun_spawn_outside,
        tokio: tokio_spawn_outside,
    },
    Workload {
        name: "spawn_many_inside",
        group: "spawn_many",
        variant: "inside",
        units: SPAWN_TASKS as u64,
        unit: "task",
        rt: Rt::Multi,
        corun: corun_spawn_inside,
        tokio: tokio_spawn_inside,
    },
    Workload {
        name: "yield_many",
        group: "yield_many",
        variant: "",
        units: (YIELD_TASKS * YIELDS_PER_TASK) as u64,
        unit: "yield",
        rt: Rt::Multi,
        corun: corun_yield_many,
        tokio: tokio_yield_many,
    },
    Workload {
        name: "ping_pong",
        group: "ping_pong",
        variant: "",
        units: PING_PONG_PAIRS as u64 * PING_PONG_ROUNDS,
        unit: "round trip",
        rt: Rt::Multi,
        corun: corun_ping_pong,
        tokio: tokio_ping_pong,
    },
    Workload {
        name: "chained_spawn",
        group: "chained_spawn",
        variant: "",
        units: CHAIN_DEPTH as u64,
        unit: "task",
        rt: Rt::Multi,
        corun: corun_chained_spawn,
        tokio: tokio_chained_spawn,
    },
    Workload {
        name: "ctx_switch",
        group: "ctx_switch",
        variant: "",
        units: 2 * SWITCH_YIELDS as u64,
        unit: "switch",
        rt: Rt::Single,
        corun: corun_ctx_switch,
        tokio: tokio_ctx_switch,
    },
    Workload {
        name: "skynet",
        group: "skynet",
        variant: "",
        units: SKYNET_TASKS,
        unit: "task",
        rt: Rt::Multi,
        corun: corun_skynet,
        tokio: tokio_skynet,
    },
];

// ---------------------------------------------------------------------------------------------
// Criterion

fn configure(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>, units: u64) {
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(units));
}

fn criterion_benches(c: &mut Criterion) {
    let corun_multi = corun_rt(WORKERS);
    let corun_single = corun_rt(1);
    let tokio_multi = tokio_rt(WORKERS);
    let tokio_single = tokio_rt(1);
    let mut i = 0;
    while i < WORKLOADS.len() {
        let group_name = WORKLOADS[i].group;
        let mut group = c.benchmark_group(group_name);
        configure(&mut group, WORKLOADS[i].units);
        while i < WORKLOADS.len() && WORKLOADS[i].group == group_name {
            let w = &WORKLOADS[i];
            let (crt, trt) = match w.rt {
                Rt::Multi => (&corun_multi, &tokio_multi),
                Rt::Single => (&corun_single, &tokio_single),
            };
            let id = |rt: &str| {
                if w.variant.is_empty() {
                    rt.to_owned()
                } else {
                    format!("{rt}/{}", w.variant)
                }
            };
            group.bench_function(id("corun"), |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| watched(format!("{} corun", w.name), || black_box((w.corun)(crt))))
                        .sum()
                })
            });
            group.bench_function(id("tokio"), |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| watched(format!("{} tokio", w.name), || black_box((w.tokio)(trt))))
                        .sum()
                })
            });
            i += 1;
        }
        group.finish();
    }
}

// ---------------------------------------------------------------------------------------------
// Summary

const SUMMARY_BEST_OF: usize = 5;

fn best_ns_per_unit(units: u64, mut round: impl FnMut() -> Duration) -> f64 {
    (0..SUMMARY_BEST_OF)
        .map(|_| round())
        .min()
        .expect("at least one round")
        .as_nanos() as f64
        / units as f64
}

fn summary(filter: Option<&str>, round_no: usize) {
    // For profiling one side: SCHED_ONLY=corun or SCHED_ONLY=tokio.
    let only = std::env::var("SCHED_ONLY").ok();
    let only = only.as_deref();
    let corun_multi = corun_rt(WORKERS);
    let corun_single = corun_rt(1);
    let tokio_multi = tokio_rt(WORKERS);
    let tokio_single = tokio_rt(1);
    println!();
    println!(
        "summary round {round_no}: best of {SUMMARY_BEST_OF}, {WORKERS} workers (ctx_switch: 1)"
    );
    println!(
        "{:<20} {:>18} {:>18} {:>8}  unit",
        "workload", "corun_ns_per_unit", "tokio_ns_per_unit", "ratio"
    );
    for w in WORKLOADS {
        if filter.is_some_and(|f| !w.name.contains(f)) {
            continue;
        }
        let (crt, trt) = match w.rt {
            Rt::Multi => (&corun_multi, &tokio_multi),
            Rt::Single => (&corun_single, &tokio_single),
        };
        let c = if only.is_none_or(|o| o == "corun") {
            best_ns_per_unit(w.units, || {
                watched(format!("{} corun (summary)", w.name), || (w.corun)(crt))
            })
        } else {
            f64::NAN
        };
        let t = if only.is_none_or(|o| o == "tokio") {
            best_ns_per_unit(w.units, || {
                watched(format!("{} tokio (summary)", w.name), || (w.tokio)(trt))
            })
        } else {
            f64::NAN
        };
        println!(
            "{:<20} {:>18.1} {:>18.1} {:>8.2}  ns/{}",
            w.name,
            c,
            t,
            c / t,
            w.unit
        );
    }
    if only.is_none() && filter.is_none_or(|f| "many_idle".contains(f)) {
        let c = watched("many_idle corun".into(), || many_idle_in_child("corun"));
        let t = watched("many_idle tokio".into(), || many_idle_in_child("tokio"));
        match (c, t) {
            (Some(c), Some(t)) => {
                println!(
                    "{:<20} {:>18.1} {:>18.1} {:>8.2}  bytes/parked task (RSS {:.1} -> {:.1} MiB vs {:.1} -> {:.1} MiB)",
                    "many_idle",
                    c.0,
                    t.0,
                    c.0 / t.0,
                    c.1 as f64 / 1048576.0,
                    c.2 as f64 / 1048576.0,
                    t.1 as f64 / 1048576.0,
                    t.2 as f64 / 1048576.0,
                );
            }
            _ => println!("many_idle: measurement failed (see stderr)"),
        }
    }
}

// ---------------------------------------------------------------------------------------------

/// Criterion's options that take a value (so the value is not mistaken for the filter).
const VALUE_OPTIONS: &[&str] = &[
    "--color",
    "--colour",
    "-c",
    "--save-baseline",
    "-s",
    "--baseline",
    "-b",
    "--baseline-lenient",
    "--load-baseline",
    "--format",
    "--profile-time",
    "--sample-size",
    "--warm-up-time",
    "--measurement-time",
    "--nresamples",
    "--noise-threshold",
    "--confidence-level",
    "--significance-level",
    "--plotting-backend",
    "--output-format",
];

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

fn main() {
    if let Ok(which) = std::env::var(CHILD_ENV) {
        many_idle_child(&which);
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    let benchmarking = has("--bench") && !has("--test") && !has("--list") && !has("--profile-time");
    let filter = args
        .iter()
        .enumerate()
        .find(|(i, a)| {
            !a.starts_with('-') && (*i == 0 || !VALUE_OPTIONS.contains(&args[i - 1].as_str()))
        })
        .map(|(_, a)| a.clone());

    start_watchdog(
        std::env::var("SCHED_WATCHDOG_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(120),
    );
    if !env_flag("SCHED_SUMMARY_ONLY") {
        let mut c = Criterion::default().configure_from_args();
        criterion_benches(&mut c);
        c.final_summary();
    }
    if benchmarking && !env_flag("SCHED_NO_SUMMARY") || env_flag("SCHED_SUMMARY_ONLY") {
        let rounds = std::env::var("SCHED_SUMMARY_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2usize);
        for round in 1..=rounds {
            summary(filter.as_deref(), round);
        }
    }
}
