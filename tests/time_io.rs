//! Timers (`corun::sleep`, `corun::park_timeout`, timed waits), `corun::io::wait`, and running
//! out of file descriptors.

mod common;

use common::{runtime, within, LONG, SHORT};
use corun::io::Interest;
use std::io::{ErrorKind, Write};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

#[test]
fn ten_thousand_sleepers_wake_none_early_and_together() {
    within(LONG, || {
        let rt = runtime(2);
        let start = Instant::now();
        let early = rt.block_on(|| {
            let sleepers: Vec<_> = (0..10_000u64)
                .map(|i| {
                    corun::spawn(move || {
                        let dur = Duration::from_millis(20 + i % 30);
                        let t = Instant::now();
                        corun::sleep(dur);
                        t.elapsed() < dur
                    })
                })
                .collect();
            sleepers
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(|&early| early)
                .count()
        });
        assert_eq!(early, 0, "sleepers woke early");
        // Serially this is 10,000 × 20..50 ms = over 5 minutes; concurrently, well under that.
        let total = start.elapsed();
        assert!(total < Duration::from_secs(60), "took {total:?}");
    });
}

#[test]
fn park_timeout_times_out_or_ends_on_unpark() {
    within(SHORT, || {
        let rt = runtime(1);
        rt.block_on(|| {
            // Nobody unparks: it returns after the timeout (a spurious return is allowed, so
            // loop on the clock as a caller would).
            let start = Instant::now();
            while start.elapsed() < Duration::from_millis(20) {
                corun::park_timeout(Duration::from_millis(20) - start.elapsed());
            }
            // Unparked: it returns long before its hour is up.
            let me = corun::current();
            let waker = corun::spawn(move || me.unpark());
            corun::park_timeout(Duration::from_secs(3600));
            waker.join().unwrap();
        });
        // A plain thread: std's park_timeout.
        let start = Instant::now();
        corun::park_timeout(Duration::from_millis(5));
        corun::sleep(Duration::from_millis(5));
        assert!(start.elapsed() >= Duration::from_millis(5));
    });
}

#[test]
fn sleep_is_not_ended_by_unpark() {
    within(SHORT, || {
        let rt = runtime(1);
        rt.block_on(|| {
            let sleeper = corun::spawn(|| {
                let t = Instant::now();
                corun::sleep(Duration::from_millis(30));
                t.elapsed()
            });
            let c = sleeper.coroutine().clone();
            for _ in 0..10 {
                c.unpark();
                corun::yield_now();
            }
            assert!(sleeper.join().unwrap() >= Duration::from_millis(30));
        });
    });
}

#[test]
fn a_timed_wait_gives_up_at_its_deadline_not_before() {
    within(SHORT, || {
        let rt = runtime(2);
        rt.block_on(|| {
            let (_tx, rx) = corun::sync::mpsc::channel::<()>();
            let t = Instant::now();
            assert!(rx.recv_timeout(Duration::from_millis(25)).is_err());
            assert!(t.elapsed() >= Duration::from_millis(25));
        });
    });
}

#[test]
fn io_wait_parks_until_ready_or_times_out() {
    within(SHORT, || {
        let rt = runtime(1);
        rt.block_on(|| {
            let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
            let t = Instant::now();
            let e = corun::io::wait(
                a.as_raw_fd(),
                Interest::READABLE,
                Some(Duration::from_millis(20)),
            )
            .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::TimedOut);
            assert!(t.elapsed() >= Duration::from_millis(20));
            // Another coroutine on the one worker makes it readable: the worker was free.
            let writer = corun::spawn(move || {
                corun::sleep(Duration::from_millis(5));
                (&b).write_all(b"x").unwrap();
                b
            });
            corun::io::wait(a.as_raw_fd(), Interest::READABLE, None).unwrap();
            let _b = writer.join().unwrap();
            // Writable at once; readable still (the byte is unread): level semantics.
            corun::io::wait(a.as_raw_fd(), Interest::WRITABLE, None).unwrap();
            corun::io::wait(a.as_raw_fd(), Interest::READABLE | Interest::WRITABLE, None).unwrap();
            // A regular file is always ready; a closed descriptor is an error.
            let f = std::fs::File::open("Cargo.toml").unwrap();
            corun::io::wait(f.as_raw_fd(), Interest::READABLE, None).unwrap();
            let bad = corun::io::wait(1 << 20, Interest::READABLE, None).unwrap_err();
            assert_eq!(bad.raw_os_error(), Some(libc::EBADF));
        });
        // A plain thread blocks in poll(2).
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let e = corun::io::wait(
            a.as_raw_fd(),
            Interest::READABLE,
            Some(Duration::from_millis(5)),
        );
        assert_eq!(e.unwrap_err().kind(), ErrorKind::TimedOut);
    });
}

/// The child-process part of `accept_reports_emfile_and_keeps_the_listener`.
const EMFILE_CHILD: &str = "CORUN_TEST_EMFILE_CHILD";

#[test]
fn accept_reports_emfile_and_keeps_the_listener() {
    if std::env::var_os(EMFILE_CHILD).is_some() {
        emfile_child();
        return;
    }
    within(SHORT * 2, || {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "accept_reports_emfile_and_keeps_the_listener",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(EMFILE_CHILD, "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "child failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

fn emfile_child() {
    use corun::net::TcpListener;
    use std::io::Read;
    let rt = runtime(1);
    rt.block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        corun::sleep(Duration::from_millis(1)); // the netpoller and its timers are up
                                                // Lower the limit to what is open now plus a few, then fill the table.
        let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
        let limit = libc::rlimit {
            rlim_cur: open + 8,
            rlim_max: open + 64,
        };
        // SAFETY: a valid rlimit, read by the call.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
        let mut fillers = Vec::new();
        loop {
            match std::fs::File::open("/dev/null") {
                Ok(f) => fillers.push(f),
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(libc::EMFILE));
                    break;
                }
            }
            assert!(fillers.len() < 1000, "the limit did not take");
        }
        // One descriptor for the client; then the table is full again.
        drop(fillers.pop());
        let mut client = std::net::TcpStream::connect(addr).unwrap();
        client.write_all(b"!").unwrap();
        for _ in 0..3 {
            let e = listener.accept().unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}");
        }
        // Free a descriptor: the same listener accepts the connection that waited.
        drop(fillers.pop());
        let (mut s, _) = listener.accept().unwrap();
        let mut byte = [0];
        s.read_exact(&mut byte).unwrap();
        assert_eq!(&byte, b"!");
    });
}
