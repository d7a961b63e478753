//! Network and timer benchmarks: corun against tokio's multi-threaded runtime, same workloads,
//! same number of workers (2, the cores of the machine the reference figures come from), in the
//! same run. Each line prints both runtimes and the ratio corun/tokio.
//!
//! * `tcp_echo`: 100 connections × 1000 round trips of 64 bytes over loopback, the echo server
//!   (one coroutine/task per connection) and the 100 clients all in the runtime under test,
//!   `TCP_NODELAY` on both ends. Timed from the moment every client is connected (a barrier)
//!   until the last one has finished; reported in round trips per second (higher is better).
//! * `http_hello`: a hand-written HTTP/1.1 keep-alive "hello world" loop (the same function
//!   answers the requests for both runtimes), served in this process and loaded by
//!   `wrk -t1 -c100 -d3s`; reported in wrk's Requests/sec (higher is better). Without `wrk` on
//!   the `PATH` the workload is skipped with a message (`apt-get install wrk`). wrk runs on the
//!   same machine, so it competes with the server for the cores, equally for both runtimes.
//! * `sleep_many`: 100,000 coroutines/tasks each sleeping 10 ms, spawned from inside the runtime,
//!   timed from the first spawn until all are joined. Reported: the total, the overhead per task
//!   beyond the sleep, `(total - 10 ms) / 100k` (lower is better), and memory. Memory is read from
//!   `/proc/self/status`, whose `VmHWM` (peak resident set) is process-wide and only ever
//!   grows, so each runtime is measured in a fresh child process (this executable, re-run with
//!   `NET_SLEEP_CHILD=corun|tokio`): the child starts its runtime, reads `VmRSS` (the baseline:
//!   binary, libraries, runtime threads), runs the workload once, then reads `VmHWM`. The figure
//!   reported is the peak growth `VmHWM - baseline`, in total and per task.
//!
//! * `stuck_neighbour`: one coroutine/task computes without yielding (it holds one of the two
//!   workers), while a plain thread plays 1000 one-byte round trips over a Unix socket pair
//!   with an echo coroutine/task on the other worker, which sleeps between messages. Reported
//!   in µs per round trip (lower is better): whether a worker stuck in one coroutine delays the
//!   network events of the others (corun: until its monitor excuses it, 10 ms; see
//!   `src/io/pollers.rs`). The spinner starts 50 ms before the timed section.
//!
//! `tcp_echo` and `http_hello` also print the context switches per round trip / request: the
//! `voluntary_ctxt_switches` and `nonvoluntary_ctxt_switches` of every thread of the process
//! (`/proc/self/task/*/status`, corun's netpoller thread included; not wrk's), read just before
//! and just after the timed section, during which no thread starts or exits.
//!
//! Runtime start-up is never timed: every round of every workload starts a fresh runtime
//! (and, for `http_hello`, a fresh server), runs, and drops it, so only one runtime is alive at
//! a time. Rounds alternate corun and tokio; the summary reports the median and the best round.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo bench --bench net
//! NET_ONLY=tcp_echo ...          # one workload (tcp_echo, http_hello, sleep_many,
//!                                # stuck_neighbour; or a list)
//! NET_ROUNDS=5 ...               # rounds per workload and runtime (default 3)
//! NET_RUNTIME=corun ...          # one runtime only (e.g. under perf); no ratios then
//! NET_WRK_SECS=10 ...            # wrk's duration (default 3)
//! NET_WATCHDOG_SECS=60 ...       # abort if one step takes longer (default 120)
//! ```
//!
//! To profile one runtime, run the binary directly (it only measures when given `--bench`):
//! `NET_ONLY=tcp_echo NET_RUNTIME=corun perf record -g target-bench/release/deps/net-HASH --bench`.
//!
//! Reference figures (from the issue, on the 2-core machine): tcp_echo tokio 264k, Go 249k,
//! may 326k round trips/s; http_hello tokio 205k req/s; sleep_many overhead tokio 1.2 µs,
//! Go 1.3 µs per task.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

mod support;

use support::echo;
use support::{
    context_switches, corun_runtime, env_or, start_watchdog, stats, tokio_runtime, watched, WORKERS,
};

const HTTP_CONNS: usize = 100;
const HTTP_RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!";

const SLEEPERS: usize = 100_000;
const SLEEP: Duration = Duration::from_millis(10);
const SLEEP_CHILD_ENV: &str = "NET_SLEEP_CHILD";

const WORKLOADS: [&str; 4] = ["tcp_echo", "http_hello", "sleep_many", "stuck_neighbour"];

const STUCK_ROUND_TRIPS: u32 = 1000;

/// Which runtime a measurement is of.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Which {
    Corun,
    Tokio,
}

impl Which {
    fn name(self) -> &'static str {
        match self {
            Which::Corun => "corun",
            Which::Tokio => "tokio",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// stuck_neighbour

/// One round: µs per round trip while a coroutine/task holds the other worker.
fn stuck_round(which: Which) -> f64 {
    use std::sync::atomic::{AtomicBool, Ordering};
    let (mut near, far) = std::os::unix::net::UnixStream::pair().expect("socket pair");
    let stop = Arc::new(AtomicBool::new(false));
    let play = |near: &mut std::os::unix::net::UnixStream| {
        thread::sleep(Duration::from_millis(50)); // the spinner is noticed meanwhile
        let start = Instant::now();
        let mut byte = [0u8; 1];
        for _ in 0..STUCK_ROUND_TRIPS {
            near.write_all(b"x").unwrap();
            near.read_exact(&mut byte).unwrap();
        }
        start.elapsed().as_secs_f64() * 1e6 / f64::from(STUCK_ROUND_TRIPS)
    };
    match which {
        Which::Corun => {
            let rt = corun_runtime();
            let spin = stop.clone();
            let spinner = rt.spawn(move || {
                while !spin.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            });
            let mut far = corun::net::UnixStream::from(std::os::fd::OwnedFd::from(far));
            let echo = rt.spawn(move || {
                let mut byte = [0u8; 1];
                for _ in 0..STUCK_ROUND_TRIPS {
                    far.read_exact(&mut byte).unwrap();
                    far.write_all(&byte).unwrap();
                }
            });
            let us = play(&mut near);
            stop.store(true, Ordering::Relaxed);
            echo.join().unwrap();
            spinner.join().unwrap();
            us
        }
        Which::Tokio => {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let rt = tokio_runtime();
            let spin = stop.clone();
            let spinner = rt.spawn(async move {
                while !spin.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            });
            far.set_nonblocking(true).unwrap();
            let echo = rt.spawn(async move {
                let mut far = tokio::net::UnixStream::from_std(far).unwrap();
                let mut byte = [0u8; 1];
                for _ in 0..STUCK_ROUND_TRIPS {
                    far.read_exact(&mut byte).await.unwrap();
                    far.write_all(&byte).await.unwrap();
                }
            });
            let us = play(&mut near);
            stop.store(true, Ordering::Relaxed);
            rt.block_on(async {
                echo.await.unwrap();
                spinner.await.unwrap();
            });
            us
        }
    }
}

// ---------------------------------------------------------------------------------------------
// tcp_echo

/// Round trips per second of one round, and context switches per round trip.
fn echo_round(which: Which) -> (f64, f64) {
    echo::rates(match which {
        Which::Corun => echo::corun_echo(),
        Which::Tokio => echo::tokio_echo(),
    })
}

// ---------------------------------------------------------------------------------------------
// http_hello

/// The request loop's work, shared by both servers: answers every complete request head at
/// the start of `input` (removing it), appending one response each to `out`. Requests are
/// bodiless GETs (wrk's); the head ends at the first empty line.
fn answer_requests(input: &mut Vec<u8>, out: &mut Vec<u8>) {
    let mut start = 0;
    while let Some(end) = input[start..].windows(4).position(|w| w == b"\r\n\r\n") {
        start += end + 4;
        out.extend_from_slice(HTTP_RESPONSE);
    }
    input.drain(..start);
}

fn corun_http_conn(mut stream: corun::net::TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut input = Vec::with_capacity(4096);
    let mut out = Vec::with_capacity(4096);
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => input.extend_from_slice(&buf[..n]),
        }
        answer_requests(&mut input, &mut out);
        if !out.is_empty() {
            if stream.write_all(&out).is_err() {
                return;
            }
            out.clear();
        }
    }
}

async fn tokio_http_conn(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = stream.set_nodelay(true);
    let mut input = Vec::with_capacity(4096);
    let mut out = Vec::with_capacity(4096);
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => input.extend_from_slice(&buf[..n]),
        }
        answer_requests(&mut input, &mut out);
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
    }
}

/// What a wrk run reported.
struct WrkResult {
    requests_per_sec: f64,
    /// Requests completed in all ("N requests in Ts").
    requests: u64,
    /// wrk's "Socket errors" and "Non-2xx" lines, if any.
    problems: Vec<String>,
}

/// Whether `wrk` can be run.
fn wrk_available() -> bool {
    // It exits with status 1 after printing its version: that it ran is enough.
    Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Runs wrk against `port` for `secs` seconds, killing it if it overruns by 20 s.
fn run_wrk(port: u16, secs: u64) -> Result<WrkResult, String> {
    let mut child = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{HTTP_CONNS}"),
            &format!("-d{secs}s"),
            "--timeout",
            "2s",
            &format!("http://127.0.0.1:{port}/"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run wrk: {e}"))?;
    let limit = Instant::now() + Duration::from_secs(secs + 20);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < limit => thread::sleep(Duration::from_millis(50)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("wrk did not finish within {} s", secs + 20));
            }
            Err(e) => return Err(format!("waiting for wrk: {e}")),
        }
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("wrk output: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let requests_per_sec = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| {
            format!(
                "no Requests/sec in wrk's output ({}):\n{stdout}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
    let requests = stdout
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let problems = stdout
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("Socket errors") || l.starts_with("Non-2xx"))
        .map(str::to_owned)
        .collect();
    Ok(WrkResult {
        requests_per_sec,
        requests,
        problems,
    })
}

/// One round: start a server on a fresh runtime, load it with wrk, stop it. Requests per
/// second, and context switches (of this process: wrk is another) per request.
fn http_round(which: Which, secs: u64) -> Result<(f64, f64), String> {
    let result = match which {
        Which::Corun => {
            let rt = corun_runtime();
            let listener = corun::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let port = listener.local_addr().unwrap().port();
            let fd = listener.as_raw_fd();
            let acceptor = rt.spawn(move || {
                // Ends when the listener is shut down below.
                for stream in listener.incoming() {
                    match stream {
                        Ok(stream) => drop(corun::spawn(move || corun_http_conn(stream))),
                        Err(e) => eprintln!("http_hello corun: accept: {e}"),
                    }
                }
            });
            let switches = context_switches();
            let result = run_wrk(port, secs).map(|r| (r, context_switches() - switches));
            // SAFETY: the listener is alive until the acceptor, joined next, sees the shutdown.
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
            acceptor.join().unwrap();
            drop(rt); // unwinds connections wrk left open, if any
            result
        }
        Which::Tokio => {
            let rt = tokio_runtime();
            let listener = rt
                .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
                .expect("bind");
            let port = listener.local_addr().unwrap().port();
            rt.spawn(async move {
                loop {
                    match listener.accept().await {
                        Ok((stream, _)) => drop(tokio::spawn(tokio_http_conn(stream))),
                        Err(e) => eprintln!("http_hello tokio: accept: {e}"),
                    }
                }
            });
            let switches = context_switches();
            let result = run_wrk(port, secs).map(|r| (r, context_switches() - switches));
            drop(rt); // cancels the acceptor and the connections
            result
        }
    };
    let (result, switches) = result?;
    for problem in &result.problems {
        eprintln!("  http_hello {}: wrk: {problem}", which.name());
    }
    Ok((
        result.requests_per_sec,
        switches as f64 / result.requests.max(1) as f64,
    ))
}

// ---------------------------------------------------------------------------------------------
// sleep_many

/// A field of `/proc/self/status`, in KiB.
fn proc_status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// In the child process: one measurement of `which`, printed on stdout as
/// `sleep_many NAME ELAPSED_NS BASELINE_KIB HWM_KIB`.
fn sleep_child(which: &str) {
    let (elapsed, baseline) = match which {
        "corun" => {
            let rt = corun_runtime();
            let baseline = proc_status_kib("VmRSS");
            let elapsed = rt.block_on(|| {
                let start = Instant::now();
                let handles: Vec<_> = (0..SLEEPERS)
                    .map(|_| corun::spawn(|| corun::sleep(SLEEP)))
                    .collect();
                handles.into_iter().for_each(|h| h.join().unwrap());
                start.elapsed()
            });
            (elapsed, baseline)
        }
        "tokio" => {
            let rt = tokio_runtime();
            let baseline = proc_status_kib("VmRSS");
            let elapsed = rt.block_on(async {
                tokio::spawn(async {
                    let start = Instant::now();
                    let handles: Vec<_> = (0..SLEEPERS)
                        .map(|_| tokio::spawn(tokio::time::sleep(SLEEP)))
                        .collect();
                    for h in handles {
                        h.await.unwrap();
                    }
                    start.elapsed()
                })
                .await
                .unwrap()
            });
            (elapsed, baseline)
        }
        other => panic!("unknown runtime {other:?}"),
    };
    let hwm = proc_status_kib("VmHWM");
    println!("sleep_many {which} {} {baseline} {hwm}", elapsed.as_nanos());
}

/// One `sleep_many` measurement in a fresh child process.
struct SleepResult {
    total: Duration,
    /// `VmHWM - baseline`, bytes.
    peak_growth: u64,
}

impl SleepResult {
    /// Overhead per task beyond the sleep, in µs.
    fn overhead_us(&self) -> f64 {
        self.total.saturating_sub(SLEEP).as_secs_f64() * 1e6 / SLEEPERS as f64
    }
}

fn sleep_round(which: Which) -> Result<SleepResult, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .env(SLEEP_CHILD_ENV, which.name())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the child: {e}"))?;
    let limit = Instant::now() + Duration::from_secs(60);
    while child.try_wait().map_err(|e| e.to_string())?.is_none() {
        if Instant::now() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err("the child ran for more than 60 s".into());
        }
        thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let parsed = stdout
        .lines()
        .find(|l| l.starts_with("sleep_many "))
        .and_then(|line| {
            let f: Vec<u64> = line
                .split_whitespace()
                .skip(2)
                .filter_map(|v| v.parse().ok())
                .collect();
            (f.len() == 3).then(|| SleepResult {
                total: Duration::from_nanos(f[0]),
                peak_growth: f[2].saturating_sub(f[1]) * 1024,
            })
        });
    parsed.ok_or_else(|| {
        format!(
            "child failed ({}): {}{}",
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Rounds, the table

/// Results of one workload: per runtime, the rounds of each figure.
#[derive(Default)]
struct Rounds {
    corun: Vec<Vec<f64>>,
    tokio: Vec<Vec<f64>>,
}

impl Rounds {
    fn push(&mut self, which: Which, figures: Vec<f64>) {
        match which {
            Which::Corun => self.corun.push(figures),
            Which::Tokio => self.tokio.push(figures),
        }
    }

    /// Figure `i` of every round of `which`.
    fn column(&self, which: Which, i: usize) -> Vec<f64> {
        let rounds = match which {
            Which::Corun => &self.corun,
            Which::Tokio => &self.tokio,
        };
        rounds.iter().map(|r| r[i]).collect()
    }
}

/// How a figure is printed.
struct Figure {
    name: &'static str,
    unit: &'static str,
    /// Divides the value for printing (1e3 to print thousands, ...).
    scale: f64,
    higher_is_better: bool,
}

fn print_summary(workload: &str, figures: &[Figure], rounds: &Rounds, runtimes: &[Which]) {
    println!("\n{workload}: median (best) of the rounds");
    for (i, fig) in figures.iter().enumerate() {
        let mut medians = Vec::new();
        let label = match fig.unit {
            "" => fig.name.to_owned(),
            unit => format!("{} [{unit}]", fig.name),
        };
        let mut line = format!("  {label:<22}");
        for &which in runtimes {
            let column = rounds.column(which, i);
            let (med, best) = stats(&column, fig.higher_is_better);
            medians.push(med);
            line += &format!(
                "  {} {:>9.2} ({:>9.2})",
                which.name(),
                med / fig.scale,
                best / fig.scale
            );
        }
        if let [corun, tokio] = medians[..] {
            line += &format!(
                "  corun/tokio {:.2} ({})",
                corun / tokio,
                if fig.higher_is_better {
                    "higher: corun better"
                } else {
                    "lower: corun better"
                }
            );
        }
        println!("{line}");
    }
}

// ---------------------------------------------------------------------------------------------

fn main() {
    if let Ok(which) = std::env::var(SLEEP_CHILD_ENV) {
        sleep_child(&which);
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        // `cargo test --benches` and `--list`: nothing to run as a test.
        println!("net: a benchmark; run it with `cargo bench --bench net` (or pass --bench)");
        return;
    }

    let only: Option<Vec<String>> = std::env::var("NET_ONLY")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect());
    if let Some(only) = &only {
        for name in only {
            if !WORKLOADS.contains(&name.as_str()) {
                eprintln!("NET_ONLY: unknown workload {name:?} (known: {WORKLOADS:?})");
                std::process::exit(2);
            }
        }
    }
    let selected = |w: &str| only.as_ref().is_none_or(|o| o.iter().any(|n| n == w));
    let runtimes: Vec<Which> = match std::env::var("NET_RUNTIME").as_deref() {
        Ok("corun") => vec![Which::Corun],
        Ok("tokio") => vec![Which::Tokio],
        Ok(other) => {
            eprintln!("NET_RUNTIME must be corun or tokio, not {other:?}");
            std::process::exit(2);
        }
        Err(_) => vec![Which::Corun, Which::Tokio],
    };
    let rounds: usize = env_or("NET_ROUNDS", 3usize).max(1);
    let wrk_secs: u64 = env_or("NET_WRK_SECS", 3u64).max(1);
    start_watchdog(env_or("NET_WATCHDOG_SECS", 120u64));
    println!(
        "net: {WORKERS} workers per runtime, {rounds} round(s), {} CPUs",
        thread::available_parallelism().map_or(0, |n| n.get())
    );

    if selected("tcp_echo") {
        let mut results = Rounds::default();
        for round in 1..=rounds {
            for &which in &runtimes {
                let (rate, switches) =
                    watched(format!("tcp_echo {} round {round}", which.name()), || {
                        echo_round(which)
                    });
                println!(
                    "tcp_echo   round {round} {:<5} {:>8.1}k round trips/s, {switches:.3} context switches/round trip",
                    which.name(),
                    rate / 1e3
                );
                results.push(which, vec![rate, switches]);
            }
        }
        let figures = [
            Figure {
                name: "round trips/s",
                unit: "k",
                scale: 1e3,
                higher_is_better: true,
            },
            Figure {
                name: "ctx switches/rt",
                unit: "",
                scale: 1.0,
                higher_is_better: false,
            },
        ];
        print_summary("tcp_echo", &figures, &results, &runtimes);
    }

    if selected("http_hello") {
        if !wrk_available() {
            println!("\nhttp_hello: skipped: wrk is not installed (apt-get install wrk)");
        } else {
            let mut results = Rounds::default();
            let mut failed = false;
            'rounds: for round in 1..=rounds {
                for &which in &runtimes {
                    let what = format!("http_hello {} round {round}", which.name());
                    match watched(what, || http_round(which, wrk_secs)) {
                        Ok((rate, switches)) => {
                            println!(
                                "http_hello round {round} {:<5} {:>8.1}k requests/s, {switches:.3} context switches/request",
                                which.name(),
                                rate / 1e3
                            );
                            results.push(which, vec![rate, switches]);
                        }
                        Err(e) => {
                            println!("http_hello: {} failed: {e}", which.name());
                            failed = true;
                            break 'rounds;
                        }
                    }
                }
            }
            if !failed {
                let figures = [
                    Figure {
                        name: "requests/s",
                        unit: "k",
                        scale: 1e3,
                        higher_is_better: true,
                    },
                    Figure {
                        name: "ctx switches/req",
                        unit: "",
                        scale: 1.0,
                        higher_is_better: false,
                    },
                ];
                print_summary("http_hello", &figures, &results, &runtimes);
            }
        }
    }

    if selected("sleep_many") {
        let mut results = Rounds::default();
        let mut failed = false;
        'sleep: for round in 1..=rounds {
            for &which in &runtimes {
                // The child has its own 60 s limit; this is for the parent's bookkeeping.
                let what = format!("sleep_many {} round {round}", which.name());
                match watched(what, || sleep_round(which)) {
                    Ok(r) => {
                        println!(
                            "sleep_many round {round} {:<5} total {:>7.2} ms, overhead {:.3} µs/task, peak +{:.1} MiB ({:.0} B/task)",
                            which.name(),
                            r.total.as_secs_f64() * 1e3,
                            r.overhead_us(),
                            r.peak_growth as f64 / (1 << 20) as f64,
                            r.peak_growth as f64 / SLEEPERS as f64,
                        );
                        results.push(
                            which,
                            vec![
                                r.total.as_secs_f64() * 1e3,
                                r.overhead_us(),
                                r.peak_growth as f64 / (1 << 20) as f64,
                            ],
                        );
                    }
                    Err(e) => {
                        println!("sleep_many: {} failed: {e}", which.name());
                        failed = true;
                        break 'sleep;
                    }
                }
            }
        }
        if !failed {
            let figures = [
                Figure {
                    name: "total",
                    unit: "ms",
                    scale: 1.0,
                    higher_is_better: false,
                },
                Figure {
                    name: "overhead/task",
                    unit: "µs",
                    scale: 1.0,
                    higher_is_better: false,
                },
                Figure {
                    name: "peak growth",
                    unit: "MiB",
                    scale: 1.0,
                    higher_is_better: false,
                },
            ];
            print_summary("sleep_many", &figures, &results, &runtimes);
        }
    }

    if selected("stuck_neighbour") {
        let mut results = Rounds::default();
        for round in 1..=rounds {
            for &which in &runtimes {
                let us = watched(
                    format!("stuck_neighbour {} round {round}", which.name()),
                    || stuck_round(which),
                );
                println!(
                    "stuck_neighbour round {round} {:<5} {us:>8.2} µs/round trip",
                    which.name()
                );
                results.push(which, vec![us]);
            }
        }
        let figures = [Figure {
            name: "round trip",
            unit: "µs",
            scale: 1.0,
            higher_is_better: false,
        }];
        print_summary("stuck_neighbour", &figures, &results, &runtimes);
    }
}
