//! What the benchmarks share, written once: the runtimes of `benches/net.rs` and
//! `benches/hook.rs` (and, in [`echo`], the `tcp_echo` workload both run), the context switches
//! of the process, the reading of a setting from the environment (`NET_ROUNDS`, ...), the median
//! and best of some rounds, and the watchdog that aborts the process when a round hangs.
//!
//! Each bench includes it with `mod support;`. Cargo makes a bench target only of
//! `benches/*.rs` and `benches/*/main.rs`, so this directory is not a benchmark of its own.
//!
//! Every bench compiles the whole module but uses a part of it (`benches/scheduler.rs` only the
//! watchdog), hence `dead_code` is allowed here.

#![allow(dead_code)]

pub mod echo;

use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Runtimes

/// Workers of every runtime of `benches/net.rs` and `benches/hook.rs` (2, the cores of the
/// machine the reference figures come from).
pub const WORKERS: usize = 2;

/// A fresh corun runtime of [`WORKERS`] workers.
pub fn corun_runtime() -> corun::Runtime {
    corun::runtime::Builder::new()
        .workers(WORKERS)
        .build()
        .expect("corun runtime")
}

/// A fresh tokio multi-threaded runtime of [`WORKERS`] workers, I/O and timers enabled.
pub fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Context switches (voluntary and involuntary) of every thread of this process so far, from
/// `/proc/self/task/*/status`. Read around a timed section, during which no thread exits, the
/// difference is the section's context switches (corun's netpoller thread included).
pub fn context_switches() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("status")).ok())
        .flat_map(|status| {
            status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split(':').nth(1)?.trim().parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

// ---------------------------------------------------------------------------------------------
// Rounds, statistics

/// The environment variable `name` parsed as a `T`, or `default` when it is not set; a value
/// that does not parse is reported on stderr and the default used.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v.parse().unwrap_or_else(|_| {
            eprintln!("{name}={v:?} is not valid; using the default");
            default
        }),
        Err(_) => default,
    }
}

/// The median of `values` (the mean of the middle two for an even count; NaN for none).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The median and best of some rounds, `higher_is_better` choosing what "best" means.
pub fn stats(values: &[f64], higher_is_better: bool) -> (f64, f64) {
    let best = values.iter().copied().fold(None, |acc: Option<f64>, v| {
        Some(match acc {
            None => v,
            Some(a) if higher_is_better => a.max(v),
            Some(a) => a.min(v),
        })
    });
    (median(values), best.unwrap_or(f64::NAN))
}

// ---------------------------------------------------------------------------------------------
// Watchdog: a hang is reported, not waited on.

/// What runs under [`watched`] now, and since when.
static WATCHED: Mutex<Option<(String, Instant)>> = Mutex::new(None);

/// Starts the watchdog thread: once a second it looks at what [`watched`] runs, and aborts the
/// process, naming it on stderr, when it has run for more than `limit` seconds.
pub fn start_watchdog(limit: u64) {
    thread::Builder::new()
        .name("bench-watchdog".into())
        .spawn(move || loop {
            thread::sleep(Duration::from_secs(1));
            if let Some((what, since)) = &*WATCHED.lock().unwrap() {
                if since.elapsed() > Duration::from_secs(limit) {
                    eprintln!("WATCHDOG: {what} has run for more than {limit} s; aborting");
                    std::process::abort();
                }
            }
        })
        .expect("watchdog thread");
}

/// Runs `f` (one round of a workload, or one step) under the watchdog, `what` naming it.
pub fn watched<T>(what: String, f: impl FnOnce() -> T) -> T {
    *WATCHED.lock().unwrap() = Some((what, Instant::now()));
    let out = f();
    *WATCHED.lock().unwrap() = None;
    out
}
