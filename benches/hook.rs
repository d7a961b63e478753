//! The `hook` feature's benchmark: what std's blocking sockets cost in coroutines, made to park
//! by the hooks, against the same program on `corun::net` and against tokio, same workload, same
//! number of workers (2, the cores of the machine the reference figures come from), in the same
//! run.
//!
//! * `tcp_echo` (the workload of `benches/net.rs`, one program for both in
//!   `benches/support/echo.rs` so that the figures compare): 100 connections × 1000 round trips
//!   of 64 bytes over loopback, the echo server (one coroutine/task per connection) and the 100
//!   clients all in the runtime under test, `TCP_NODELAY` on both ends. Timed from the moment
//!   every client is connected (a barrier) until the last one has finished; reported in round
//!   trips per second (higher is better), with the context switches per round trip of every
//!   thread of the process (`/proc/self/task/*/status`, read just before and after the timed
//!   section). Three variants:
//!   - `std`: `std::net::TcpListener`/`TcpStream` in corun coroutines, under the hooks;
//!   - `corun`: the very same program text with `corun::net::TcpListener`/`TcpStream` (same
//!     method names; one macro, `blocking_echo!`, instantiated twice);
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

use std::thread;
use std::time::{Duration, Instant};

mod support;

use support::echo;
use support::{env_or, start_watchdog, stats, watched, WORKERS};

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

// ---------------------------------------------------------------------------------------------
// tcp_echo

/// One round with std's sockets, made to park by the hooks.
fn std_echo() -> (Duration, u64) {
    echo::blocking_echo!(std::net::TcpListener, std::net::TcpStream)
}

/// Round trips per second of one round, and context switches per round trip.
fn echo_round(which: Which) -> (f64, f64) {
    echo::rates(match which {
        Which::Std => std_echo(),
        Which::Corun => echo::corun_echo(),
        Which::Tokio => echo::tokio_echo(),
    })
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
