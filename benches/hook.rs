//! The `hook` feature's benchmark: what std's blocking sockets cost in coroutines, made to park
//! by the hooks, against the same program on `corun::net` and against tokio, same workload, same
//! number of workers (2, the cores of the machine the reference figures come from), in the same
//! run.
//!
//! * `tcp_echo` (the workload of `benches/net.rs`, whose echo code is copied here so that the
//!   figures compare): 100 connections × 1000 round trips of 64 bytes over loopback, the echo
//!   server (one coroutine/task per connection) and the 100 clients all in the runtime under
//!   test, `TCP_NODELAY` on both ends. Timed from the moment every client is connected (a
//!   barrier) until the last one has finished; reported in round trips per second (higher is
//!   better), with the context switches per round trip of every thread of the process
//!   (`/proc/self/task/*/status`, read just before and after the timed section). Three variants:
//!   - `std`: `std::net::TcpListener`/`TcpStream` in corun coroutines, under the hooks;
//!   - `corun`: the very same program text with `corun::net::TcpListener`/`TcpStream` (same
//!     method names; one macro instantiated twice);
//!   - `tokio`: tokio's multi-threaded runtime, 2 workers, as in `benches/net.rs`.
//!
//! * `call_overhead`: what a hook adds to a call that does not block, in ns per call: the hooked
//!   function (`libc::write`, through the hook) against the real one (libc's, found with
//!   `dlsym(RTLD_NEXT, ..)` as the hooks find it), the same call in a tight loop of 200k, best
//!   of the rounds. Three cases: `write` of one byte to `/dev/null` from a plain thread (the
//!   pass-through every non-coroutine call pays) and from a coroutine (a descriptor that is not
//!   a socket or pipe: one table lookup), and a one-byte `send` then `recv` on a connected Unix
//!   socket pair from a coroutine (the managed path: `MSG_DONTWAIT`, the readiness cell; the
//!   real calls take `MSG_DONTWAIT` too).
//!
//! The hooks are linked into this whole binary, so every libc call of every variant passes
//! through them: tokio's (mio's) reads and writes, and corun::net's own, pay one thread-local
//! read each to learn they are not a coroutine's blocking call, and then make the real call.
//! The `corun` and `tokio` figures may therefore sit a little below those of `benches/net.rs`.
//!
//! Runtime start-up is never timed: every round starts a fresh runtime, runs, and drops it, so
//! only one runtime is alive at a time. Rounds alternate the three variants; the summary reports
//! the median and the best round, and the ratios std/corun (the hooks' cost over corun::net)
//! and corun/tokio, of the medians.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo bench --features hook --bench hook
//! HOOK_ROUNDS=5 ...              # rounds per variant (default 3)
//! HOOK_ONLY=call_overhead ...    # one workload (tcp_echo or call_overhead)
//! HOOK_WATCHDOG_SECS=60 ...      # abort if one round takes longer (default 120)
//! ```

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Workers of every runtime.
const WORKERS: usize = 2;

const ECHO_CONNS: usize = 100;
const ECHO_ROUND_TRIPS: usize = 1000;
const ECHO_MSG: usize = 64;

// ---------------------------------------------------------------------------------------------
// Runtimes

fn corun_runtime() -> corun::Runtime {
    corun::runtime::Builder::new()
        .workers(WORKERS)
        .build()
        .expect("corun runtime")
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Which program a measurement is of.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Which {
    /// std's sockets in corun coroutines, under the hooks.
    Std,
    /// corun::net's sockets in corun coroutines.
    Corun,
    Tokio,
}

impl Which {
    const ALL: [Which; 3] = [Which::Std, Which::Corun, Which::Tokio];

    fn name(self) -> &'static str {
        match self {
            Which::Std => "std",
            Which::Corun => "corun",
            Which::Tokio => "tokio",
        }
    }
}

/// Context switches (voluntary and involuntary) of every thread of this process so far, from
/// `/proc/self/task/*/status`. Read around a timed section, during which no thread exits, the
/// difference is the section's context switches (corun's netpoller thread included).
fn context_switches() -> u64 {
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
// tcp_echo

/// One round of the blocking-style echo on corun with `$Listener`/`$Stream` as the socket
/// types: the elapsed time of the 100 × 1000 round trips, and the context switches meanwhile.
/// The same text serves std's types (under the hooks) and corun::net's (`benches/net.rs`'s
/// `corun_echo`).
macro_rules! blocking_echo {
    ($Listener:ty, $Stream:ty) => {{
        type Listener = $Listener;
        type Stream = $Stream;
        let rt = corun_runtime();
        rt.block_on(|| {
            let listener = Listener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().unwrap();
            let server = corun::spawn(move || {
                let conns: Vec<_> = (0..ECHO_CONNS)
                    .map(|_| {
                        let (mut stream, _) = listener.accept().expect("accept");
                        stream.set_nodelay(true).unwrap();
                        corun::spawn(move || {
                            let mut buf = [0u8; 4096];
                            loop {
                                match stream.read(&mut buf).expect("server read") {
                                    0 => break,
                                    n => stream.write_all(&buf[..n]).expect("server write"),
                                }
                            }
                        })
                    })
                    .collect();
                conns.into_iter().for_each(|c| c.join().unwrap());
            });
            let barrier = Arc::new(corun::sync::Barrier::new(ECHO_CONNS + 1));
            let clients: Vec<_> = (0..ECHO_CONNS)
                .map(|_| {
                    let barrier = barrier.clone();
                    corun::spawn(move || {
                        let mut stream = Stream::connect(addr).expect("connect");
                        stream.set_nodelay(true).unwrap();
                        let msg = [7u8; ECHO_MSG];
                        let mut buf = [0u8; ECHO_MSG];
                        barrier.wait();
                        for _ in 0..ECHO_ROUND_TRIPS {
                            stream.write_all(&msg).expect("client write");
                            stream.read_exact(&mut buf).expect("client read");
                        }
                    })
                })
                .collect();
            barrier.wait();
            let switches = context_switches();
            let start = Instant::now();
            clients.into_iter().for_each(|c| c.join().unwrap());
            let elapsed = start.elapsed();
            let switches = context_switches() - switches;
            server.join().unwrap();
            (elapsed, switches)
        })
    }};
}

/// One round with std's sockets, made to park by the hooks.
fn std_echo() -> (Duration, u64) {
    blocking_echo!(std::net::TcpListener, std::net::TcpStream)
}

/// One round with corun::net's sockets.
fn corun_echo() -> (Duration, u64) {
    blocking_echo!(corun::net::TcpListener, corun::net::TcpStream)
}

/// One round on tokio, the same shape (the driving code in a spawned task, like corun's
/// `block_on`, which runs its closure on a worker).
fn tokio_echo() -> (Duration, u64) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio_runtime();
    rt.block_on(async {
        tokio::spawn(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().unwrap();
            let server = tokio::spawn(async move {
                let mut conns = Vec::new();
                for _ in 0..ECHO_CONNS {
                    let (mut stream, _) = listener.accept().await.expect("accept");
                    stream.set_nodelay(true).unwrap();
                    conns.push(tokio::spawn(async move {
                        let mut buf = [0u8; 4096];
                        loop {
                            match stream.read(&mut buf).await.expect("server read") {
                                0 => break,
                                n => stream.write_all(&buf[..n]).await.expect("server write"),
                            }
                        }
                    }));
                }
                for c in conns {
                    c.await.unwrap();
                }
            });
            let barrier = Arc::new(tokio::sync::Barrier::new(ECHO_CONNS + 1));
            let clients: Vec<_> = (0..ECHO_CONNS)
                .map(|_| {
                    let barrier = barrier.clone();
                    tokio::spawn(async move {
                        let mut stream =
                            tokio::net::TcpStream::connect(addr).await.expect("connect");
                        stream.set_nodelay(true).unwrap();
                        let msg = [7u8; ECHO_MSG];
                        let mut buf = [0u8; ECHO_MSG];
                        barrier.wait().await;
                        for _ in 0..ECHO_ROUND_TRIPS {
                            stream.write_all(&msg).await.expect("client write");
                            stream.read_exact(&mut buf).await.expect("client read");
                        }
                    })
                })
                .collect();
            barrier.wait().await;
            let switches = context_switches();
            let start = Instant::now();
            for c in clients {
                c.await.unwrap();
            }
            let elapsed = start.elapsed();
            let switches = context_switches() - switches;
            server.await.unwrap();
            (elapsed, switches)
        })
        .await
        .unwrap()
    })
}

/// Round trips per second of one round, and context switches per round trip.
fn echo_round(which: Which) -> (f64, f64) {
    let (elapsed, switches) = match which {
        Which::Std => std_echo(),
        Which::Corun => corun_echo(),
        Which::Tokio => tokio_echo(),
    };
    let round_trips = (ECHO_CONNS * ECHO_ROUND_TRIPS) as f64;
    (
        round_trips / elapsed.as_secs_f64(),
        switches as f64 / round_trips,
    )
}

// ---------------------------------------------------------------------------------------------
// Rounds, statistics

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v.parse().unwrap_or_else(|_| {
            eprintln!("{name}={v:?} is not valid; using the default");
            default
        }),
        Err(_) => default,
    }
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The median and best of some rounds, `higher_is_better` choosing what "best" means.
fn stats(values: &[f64], higher_is_better: bool) -> (f64, f64) {
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

static WATCHED: Mutex<Option<(String, Instant)>> = Mutex::new(None);

fn start_watchdog(limit: u64) {
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

fn watched<T>(what: String, f: impl FnOnce() -> T) -> T {
    *WATCHED.lock().unwrap() = Some((what, Instant::now()));
    let out = f();
    *WATCHED.lock().unwrap() = None;
    out
}

// ---------------------------------------------------------------------------------------------
// call_overhead

/// Calls per measurement.
const CALLS: u32 = 200_000;

type WriteFn = unsafe extern "C" fn(libc::c_int, *const libc::c_void, usize) -> isize;
type SendFn = unsafe extern "C" fn(libc::c_int, *const libc::c_void, usize, libc::c_int) -> isize;
type RecvFn = unsafe extern "C" fn(libc::c_int, *mut libc::c_void, usize, libc::c_int) -> isize;

/// libc's own `name`, past the hook (what the hooks call).
fn libc_fn(name: &std::ffi::CStr) -> *mut libc::c_void {
    // SAFETY: a NUL-terminated name and a valid pseudo-handle.
    let f = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) };
    assert!(!f.is_null(), "no libc {name:?}");
    f
}

/// Nanoseconds per iteration of `body`, over `CALLS` iterations.
fn per_call(mut body: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..CALLS {
        body();
    }
    start.elapsed().as_nanos() as f64 / f64::from(CALLS)
}

/// One round: for each case, (hooked ns, real ns).
fn overhead_round() -> [(f64, f64); 3] {
    // SAFETY: libc's `write`, `send` and `recv`, whose prototypes these types spell.
    let (real_write, real_send, real_recv) = unsafe {
        (
            std::mem::transmute::<*mut libc::c_void, WriteFn>(libc_fn(c"write")),
            std::mem::transmute::<*mut libc::c_void, SendFn>(libc_fn(c"send")),
            std::mem::transmute::<*mut libc::c_void, RecvFn>(libc_fn(c"recv")),
        )
    };
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .expect("open /dev/null");
    let fd = std::os::fd::AsRawFd::as_raw_fd(&null);
    let byte = [0u8; 1];
    // SAFETY (all the calls below): one valid byte, on descriptors open for the whole round.
    let devnull = |hooked: bool| {
        per_call(|| unsafe {
            let n = if hooked {
                libc::write(fd, byte.as_ptr().cast(), 1)
            } else {
                real_write(fd, byte.as_ptr().cast(), 1)
            };
            assert_eq!(n, 1);
        })
    };
    let thread = (devnull(true), devnull(false));
    let rt = corun::runtime::Builder::new()
        .workers(1)
        .build()
        .expect("corun runtime");
    let (coroutine, socket) = rt.block_on(|| {
        let coroutine = (devnull(true), devnull(false));
        let (a, b) = std::os::unix::net::UnixStream::pair().expect("socket pair");
        let (a, b) = (
            std::os::fd::AsRawFd::as_raw_fd(&a),
            std::os::fd::AsRawFd::as_raw_fd(&b),
        );
        let mut buf = [0u8; 1];
        let mut ping = |hooked: bool| {
            per_call(|| unsafe {
                let (sent, got) = if hooked {
                    (
                        libc::send(a, byte.as_ptr().cast(), 1, 0),
                        libc::recv(b, buf.as_mut_ptr().cast(), 1, 0),
                    )
                } else {
                    (
                        real_send(a, byte.as_ptr().cast(), 1, libc::MSG_DONTWAIT),
                        real_recv(b, buf.as_mut_ptr().cast(), 1, libc::MSG_DONTWAIT),
                    )
                };
                assert_eq!((sent, got), (1, 1));
            })
        };
        let socket = (ping(true), ping(false));
        (coroutine, socket)
    });
    [thread, coroutine, socket]
}

fn call_overhead(rounds: usize) {
    const CASES: [&str; 3] = [
        "write /dev/null, thread",
        "write /dev/null, coroutine",
        "send+recv socket pair, coroutine",
    ];
    let mut best = [(f64::MAX, f64::MAX); 3];
    for round in 1..=rounds {
        let results = watched(format!("call_overhead round {round}"), overhead_round);
        for (i, (hooked, real)) in results.into_iter().enumerate() {
            println!(
                "call_overhead round {round} {:<34} hooked {hooked:>7.1} ns  real {real:>7.1} ns",
                CASES[i]
            );
            best[i] = (best[i].0.min(hooked), best[i].1.min(real));
        }
    }
    println!("\ncall_overhead: best of the rounds, ns per call (pair, for send+recv)");
    for (i, (hooked, real)) in best.into_iter().enumerate() {
        println!(
            "  {:<34} hooked {hooked:>7.1}  real {real:>7.1}  hook adds {:>6.1}",
            CASES[i],
            hooked - real
        );
    }
}

// ---------------------------------------------------------------------------------------------

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        // `cargo test --benches` and `--list`: nothing to run as a test.
        println!("hook: a benchmark; run it with `cargo bench --features hook --bench hook`");
        return;
    }
    let rounds: usize = env_or("HOOK_ROUNDS", 3usize).max(1);
    start_watchdog(env_or("HOOK_WATCHDOG_SECS", 120u64));
    let only = std::env::var("HOOK_ONLY").unwrap_or_default();
    if only.is_empty() || only.contains("call_overhead") {
        call_overhead(rounds);
    }
    if !only.is_empty() && !only.contains("tcp_echo") {
        return;
    }
    println!(
        "hook: tcp_echo, {WORKERS} workers per runtime, {rounds} round(s), {} CPUs",
        thread::available_parallelism().map_or(0, |n| n.get())
    );

    // Per variant (in `Which::ALL`'s order), the rounds' (round trips/s, switches/round trip).
    let mut results: [Vec<(f64, f64)>; 3] = Default::default();
    for round in 1..=rounds {
        for (i, which) in Which::ALL.into_iter().enumerate() {
            let (rate, switches) =
                watched(format!("tcp_echo {} round {round}", which.name()), || {
                    echo_round(which)
                });
            println!(
                "tcp_echo round {round} {:<5} {:>8.1}k round trips/s, {switches:.3} context switches/round trip",
                which.name(),
                rate / 1e3
            );
            results[i].push((rate, switches));
        }
    }

    println!("\ntcp_echo: median (best) of the rounds");
    let mut medians = [0.0; 3];
    for (i, which) in Which::ALL.into_iter().enumerate() {
        let rates: Vec<f64> = results[i].iter().map(|r| r.0).collect();
        let switches: Vec<f64> = results[i].iter().map(|r| r.1).collect();
        let (rate_med, rate_best) = stats(&rates, true);
        let (sw_med, sw_best) = stats(&switches, false);
        medians[i] = rate_med;
        println!(
            "  {:<5}  round trips/s [k] {:>9.2} ({:>9.2})  ctx switches/rt {:>6.3} ({:>6.3})",
            which.name(),
            rate_med / 1e3,
            rate_best / 1e3,
            sw_med,
            sw_best
        );
    }
    let [std_rate, corun_rate, tokio_rate] = medians;
    println!(
        "  std/corun   {:.2} (the hooks' cost over corun::net; higher: std better)",
        std_rate / corun_rate
    );
    println!(
        "  corun/tokio {:.2} (higher: corun better)",
        corun_rate / tokio_rate
    );
}
