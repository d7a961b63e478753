//! Helpers shared by the integration tests: every wait is bounded, so a bug shows up as a failed
//! test with a message rather than as a hung test run.

#![allow(dead_code)] // each test binary uses a different subset

use std::any::Any;
use std::panic;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Generous bound for anything that should take milliseconds (the machine is small and loaded).
pub const SHORT: Duration = Duration::from_secs(30);
/// Generous bound for the heavier tests.
pub const LONG: Duration = Duration::from_secs(120);

/// Runs `body` on a fresh thread and returns its result; fails the test if it has not finished
/// within `limit` (the stuck thread is left behind: the test has failed anyway). A panic in
/// `body` is propagated.
pub fn within<T: Send + 'static>(limit: Duration, body: impl FnOnce() -> T + Send + 'static) -> T {
    let name = thread::current().name().unwrap_or("test").to_owned();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let handle = thread::Builder::new()
        .name(format!("{name} (body)"))
        .spawn(move || {
            let value = body();
            let _ = done_tx.send(());
            value
        })
        .expect("spawn the test body's thread");
    match done_rx.recv_timeout(limit) {
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Ok(value) => value,
            Err(payload) => panic::resume_unwind(payload),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{name}: did not finish within {limit:?}: hung or starved")
        }
    }
}

/// Polls `condition` (sleeping a little between polls) until it holds; panics with `what` if it
/// does not within `limit`.
pub fn wait_until(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting until {what}"
        );
        thread::sleep(Duration::from_millis(1));
    }
}

/// Joins a coroutine from a plain thread, failing the test if it has not finished within `limit`.
pub fn join_within<T>(handle: corun::JoinHandle<T>, limit: Duration) -> thread::Result<T> {
    let id = handle.coroutine().id();
    wait_until(limit, &format!("coroutine {id:?} finishes"), || {
        handle.is_finished()
    });
    handle.join()
}

/// The message of a panic payload (`&str` or `String`), if it has one.
pub fn panic_message(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

/// Counts its drops in a shared counter.
#[derive(Debug)]
pub struct DropCounter(pub Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A runtime with `workers` workers and otherwise default settings.
pub fn runtime(workers: usize) -> corun::Runtime {
    corun::runtime::Builder::new()
        .workers(workers)
        .build()
        .expect("build a runtime")
}

/// Resident set size of this process in bytes, from `/proc/self/statm`.
pub fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .expect("statm has a resident field");
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * page.max(4096) as usize
}

/// Echoes what `stream` reads back to it until end-of-file (a test server's connection).
pub fn echo_until_eof<S: std::io::Read + std::io::Write>(mut stream: S) {
    let mut buf = vec![0; 16 * 1024];
    loop {
        match stream.read(&mut buf).unwrap() {
            0 => break,
            n => stream.write_all(&buf[..n]).unwrap(),
        }
    }
}

/// A random payload of 0 to `max` bytes, the same for the same `seed` (xorshift64*).
pub fn payload(seed: u64, max: usize) -> Vec<u8> {
    let mut x = seed.max(1);
    let mut next = move || {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let len = (next() % (max as u64 + 1)) as usize;
    (0..len).map(|_| next() as u8).collect()
}

/// A client's half of an echo exchange: writes `payload` on `writer` (a clone of `stream`) from
/// a second coroutine, then shuts its write side, while this coroutine reads the echo back to
/// end-of-file; checks it byte for byte. `what` names the client in a failure.
pub fn assert_echoed<S>(
    stream: S,
    writer: S,
    shut_write: impl FnOnce(&S) + Send + 'static,
    payload: Vec<u8>,
    what: &str,
) where
    S: Send + 'static,
    for<'a> &'a S: std::io::Read + std::io::Write,
{
    use std::io::{Read, Write};
    let sent = payload.clone();
    let w = corun::spawn(move || {
        (&writer).write_all(&sent).unwrap();
        shut_write(&writer);
    });
    let mut echoed = Vec::with_capacity(payload.len());
    (&stream).read_to_end(&mut echoed).unwrap();
    w.join().unwrap();
    assert!(
        echoed == payload,
        "{what}: echo differs ({} bytes)",
        payload.len()
    );
}
