//! The `hook` feature: std's and C's blocking calls, made in a coroutine, park the coroutine
//! instead of blocking its worker thread; outside coroutines they behave exactly as libc's.
//!
//! Every test here uses only std's types (`std::net`, `std::os::unix::net`, `std::thread::sleep`)
//! and raw `libc` calls for the I/O under test; corun provides only the runtime, the spawning
//! and the handshakes between coroutines.
//!
//! Most tests run on a runtime of one worker *and no spare threads* ([`one_worker`]): there, a
//! call that blocks the worker's thread stops every other coroutine for as long as it blocks
//! (corun's monitor would otherwise start a spare thread after 10 ms and hide the mistake), so
//! a test whose other coroutines must make progress meanwhile (a writer, a ticker) hangs, and
//! fails at its [`within`] bound, unless the hook parked the caller. Handshakes are
//! deterministic on one worker: a coroutine sets a flag just before its blocking call, and once
//! another coroutine sees the flag, the first one has given the worker up, i.e. it is parked in
//! that call.
//!
//! The hooks change every libc call in the binary they are linked into (the test harness's
//! included), so these tests are a test binary of their own, built only with `--features hook`.

mod common;

use common::{within, LONG, SHORT};
use std::ffi::CStr;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// A runtime of one worker that may not start spare threads: a blocking call on its worker
/// stops every coroutine of the runtime until the call returns.
fn one_worker() -> corun::Runtime {
    corun::runtime::Builder::new()
        .workers(1)
        .max_threads(1)
        .build()
        .expect("build a one-worker runtime")
}

/// Runs `body` as a coroutine on a fresh [`one_worker`] runtime, failing the test if it has
/// not finished within [`SHORT`].
fn on_one_worker<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> T {
    within(SHORT, || one_worker().block_on(body))
}

/// Held by the tests that open thousands of descriptors, and by the `select` test: `fd_set`
/// holds descriptors below `FD_SETSIZE` (1024) only, which the tests running meanwhile could
/// otherwise push the new descriptors' numbers past.
static MANY_FDS: Mutex<()> = Mutex::new(());

/// A coroutine that only counts and yields. On a [`one_worker`] runtime it advances only while
/// the worker's thread is free, never while some coroutine blocks that thread in a system call.
struct Ticker {
    ticks: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    handle: corun::JoinHandle<()>,
}

impl Ticker {
    /// Starts the ticker on the current runtime (call it from a coroutine).
    fn start() -> Ticker {
        let ticks = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let (ticks, stop) = (ticks.clone(), stop.clone());
            corun::spawn(move || {
                // Bounded by `stop`, and by the test's `within` if that is never set.
                while !stop.load(Ordering::SeqCst) {
                    ticks.fetch_add(1, Ordering::SeqCst);
                    corun::yield_now();
                }
            })
        };
        Ticker {
            ticks,
            stop,
            handle,
        }
    }

    fn ticks(&self) -> u64 {
        self.ticks.load(Ordering::SeqCst)
    }

    /// Stops the ticker, joins it and returns its final count.
    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().unwrap();
        self.ticks.load(Ordering::SeqCst)
    }
}

/// Yields until `flag` is set. On a [`one_worker`] runtime, by a coroutine that sets it just
/// before a blocking call: once seen, that coroutine is parked in the call.
fn wait_for(flag: &AtomicBool) {
    let start = Instant::now();
    while !flag.load(Ordering::SeqCst) {
        assert!(start.elapsed() < SHORT, "the other coroutine never started");
        corun::yield_now();
    }
}

/// Spawns a coroutine that writes `bytes` to `peer` once `flag` is set (by a coroutine about to
/// block, see [`wait_for`]), and hands `peer` back.
fn writes_when(
    flag: &Arc<AtomicBool>,
    peer: UnixStream,
    bytes: &'static [u8],
) -> corun::JoinHandle<UnixStream> {
    let flag = flag.clone();
    corun::spawn(move || {
        wait_for(&flag);
        (&peer).write_all(bytes).unwrap();
        peer
    })
}

/// This thread's `errno`, as left by the last failed call.
fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .expect("an OS error")
}

/// A pipe: (read end, write end), both blocking.
fn pipe() -> (RawFd, RawFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    (fds[0], fds[1])
}

/// `libc::read` into `buf`, returning the raw result.
fn raw_read(fd: RawFd, buf: &mut [u8]) -> isize {
    // SAFETY: `buf` is valid for writes of its length.
    unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) }
}

/// `libc::write` of `buf`, returning the raw result.
fn raw_write(fd: RawFd, buf: &[u8]) -> isize {
    // SAFETY: `buf` is valid for reads of its length.
    unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) }
}

/// In a coroutine: reads `message` from `r` with `libc::read`, while another coroutine writes
/// it to `w` once the read has begun (and `delay` more has passed). Returns the bytes read.
fn read_what_another_writes(
    r: RawFd,
    w: RawFd,
    message: &'static [u8],
    delay: Duration,
) -> Vec<u8> {
    let reading = Arc::new(AtomicBool::new(false));
    let writer = {
        let reading = reading.clone();
        corun::spawn(move || {
            wait_for(&reading);
            if !delay.is_zero() {
                corun::sleep(delay);
            }
            assert_eq!(raw_write(w, message), message.len() as isize);
        })
    };
    reading.store(true, Ordering::SeqCst);
    let mut buf = vec![0u8; message.len()];
    let mut got = Vec::new();
    // Bounded: each read returns at least one byte, or the assertion fails.
    for _ in 0..message.len() {
        if got.len() == message.len() {
            break;
        }
        let n = raw_read(r, &mut buf[..message.len() - got.len()]);
        assert!(n > 0, "read returned {n} (errno {})", errno());
        got.extend_from_slice(&buf[..n as usize]);
    }
    writer.join().unwrap();
    got
}

/// In a coroutine: a TCP socket the hooks know and have registered with the netpoller (a read
/// on it waited, and timed out), as a raw descriptor the caller owns, and its peer.
fn registered_socket() -> (TcpStream, RawFd) {
    let (client, server) = tcp_pair();
    client
        .set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    let err = (&client).read(&mut [0u8; 1]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    (server, client.into_raw_fd())
}

/// Closes `fd` with the raw system call, which the hooks do not see.
fn sys_close(fd: RawFd) {
    // SAFETY: closes a descriptor of ours.
    assert_eq!(unsafe { libc::syscall(libc::SYS_close, fd) }, 0);
}

/// Runs `create`, which makes one descriptor (or the first of a pair), so that it gets the
/// number `free` (closed just before): the kernel gives the lowest free number, so every free
/// number below `free` is held meanwhile by a raw `dup` (unseen by the hooks). Returns what
/// `create` returned, and whether the number came out as `free` (not if a test running
/// meanwhile took it first).
fn created_as<T>(
    free: RawFd,
    create: impl FnOnce() -> T,
    fd_of: impl Fn(&T) -> RawFd,
) -> (T, bool) {
    let mut held = Vec::new();
    let got_free = loop {
        // SAFETY: duplicates standard error, with the raw system call.
        let d = unsafe { libc::syscall(libc::SYS_dup, 2) } as RawFd;
        assert!(d >= 0, "dup: errno {}", errno());
        if d >= free || held.len() > 1024 {
            sys_close(d);
            break d == free;
        }
        held.push(d);
    };
    let created = create();
    held.into_iter().for_each(sys_close);
    let reused = got_free && fd_of(&created) == free;
    (created, reused)
}

/// `libc::connect` of `fd` to `addr`, a `sockaddr_in` or `sockaddr_un`: the result, and errno
/// if it failed (0 otherwise).
fn raw_connect<A>(fd: RawFd, addr: &A) -> (libc::c_int, i32) {
    // SAFETY: `addr` is a valid socket address of its type's size.
    let r = unsafe {
        libc::connect(
            fd,
            (addr as *const A).cast(),
            std::mem::size_of::<A>() as libc::socklen_t,
        )
    };
    (r, if r < 0 { errno() } else { 0 })
}

/// `libc::close`, returning the raw result.
fn raw_close(fd: RawFd) -> i32 {
    // SAFETY: closing a descriptor number only affects that descriptor, which the caller owns.
    unsafe { libc::close(fd) }
}

/// A connected pair of std TCP streams over loopback: (client, server side). Works in a
/// coroutine or on a thread (a loopback connect completes in the listener's backlog).
fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

/// The address of a loopback port that (almost surely) nobody listens on: bound, then closed.
fn closed_port() -> std::net::SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// 1000 std TCP echo clients and their 1000 server coroutines (accepted by a std listener in a
/// coroutine) all share one worker, payloads checked byte for byte, while a ticker coroutine
/// keeps advancing: a read, write, accept or connect that would block parks its coroutine, not
/// the worker. Without the hook the first blocking read holds the only worker for ever and the
/// test fails at its bound.
#[test]
fn a_thousand_std_echo_clients_share_one_worker_with_a_ticker() {
    const CLIENTS: usize = 1000;
    within(LONG, || {
        let _fds = MANY_FDS.lock().unwrap_or_else(PoisonError::into_inner);
        let rt = one_worker();
        rt.block_on(|| {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            // std listens with a backlog of 128, and the thousand connects come before the
            // first accept: a full queue drops SYNs, which come back a second or more later.
            // Listening again only resizes the queue.
            // SAFETY: the listener's descriptor, open for the duration of the call.
            assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 1024) }, 0);
            let ticker = Ticker::start();
            let server = corun::spawn(move || {
                let connections: Vec<_> = (0..CLIENTS)
                    .map(|_| {
                        let (stream, _) = listener.accept().unwrap();
                        corun::spawn(move || common::echo_until_eof(stream))
                    })
                    .collect();
                connections.into_iter().for_each(|c| c.join().unwrap());
            });
            let before = ticker.ticks();
            let clients: Vec<_> = (0..CLIENTS as u64)
                .map(|i| {
                    corun::spawn(move || {
                        let stream = TcpStream::connect(addr).unwrap();
                        let writer = stream.try_clone().unwrap();
                        let shut = |w: &TcpStream| w.shutdown(Shutdown::Write).unwrap();
                        let payload = common::payload(i + 1, 16 * 1024);
                        common::assert_echoed(
                            stream,
                            writer,
                            shut,
                            payload,
                            &format!("client {i}"),
                        );
                    })
                })
                .collect();
            clients.into_iter().for_each(|c| c.join().unwrap());
            let after = ticker.ticks();
            server.join().unwrap();
            ticker.stop();
            assert!(
                after > before,
                "the ticker did not advance during the exchanges ({before} ticks before and after)"
            );
        });
    });
}

/// 10,000 coroutines each call `std::thread::sleep(100 ms)` on two workers: the sleeps overlap
/// (parked on the timer wheel), so all are done in well under a second (asserted: under 5 s;
/// serially it would take 1000 s, with each sleep holding a thread 500 s on two workers, and
/// still some 15 s with the monitor's 64 spare threads), and none wakes early.
#[test]
fn ten_thousand_std_sleeps_overlap_and_none_wakes_early() {
    const SLEEPERS: usize = 10_000;
    const SLEEP: Duration = Duration::from_millis(100);
    within(LONG, || {
        let rt = common::runtime(2);
        let start = Instant::now();
        let early = rt.block_on(|| {
            let sleepers: Vec<_> = (0..SLEEPERS)
                .map(|_| {
                    corun::spawn(|| {
                        let t = Instant::now();
                        thread::sleep(SLEEP);
                        t.elapsed() < SLEEP
                    })
                })
                .collect();
            sleepers
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(|&early| early)
                .count()
        });
        let total = start.elapsed();
        assert_eq!(early, 0, "sleepers woke early");
        assert!(total < Duration::from_secs(5), "took {total:?}");
    });
}

/// `libc::read` on an empty pipe in a coroutine parks it until another coroutine of the same
/// single worker writes (a thread-blocking read would hang the worker), and returns the bytes.
#[test]
fn libc_read_on_an_empty_pipe_parks_until_another_coroutine_writes() {
    within(SHORT, || {
        let (r, w) = pipe();
        let rt = one_worker();
        let got = rt
            .block_on(move || read_what_another_writes(r, w, b"through the pipe", Duration::ZERO));
        assert_eq!(got, b"through the pipe");
        assert_eq!(raw_close(r), 0);
        assert_eq!(raw_close(w), 0);
    });
}

/// A std TCP stream the user set non-blocking keeps plain `EAGAIN` semantics in a coroutine:
/// a read with nothing to read returns `WouldBlock` at once instead of parking (which, with
/// nobody ever writing, would hang the test).
#[test]
fn a_non_blocking_std_socket_still_returns_would_block_in_a_coroutine() {
    on_one_worker(|| {
        let (client, server) = tcp_pair();
        client.set_nonblocking(true).unwrap();
        let err = (&client).read(&mut [0u8; 8]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
        // And it still reads what arrives.
        (&server).write_all(b"x").unwrap();
        let start = Instant::now();
        let mut byte = [0u8; 1];
        let n = loop {
            match (&client).read(&mut byte) {
                Ok(n) => break n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    assert!(start.elapsed() < SHORT, "the byte never arrived");
                    corun::yield_now();
                }
                Err(e) => panic!("read: {e}"),
            }
        };
        assert_eq!((n, byte), (1, *b"x"));
    });
}

/// `SO_RCVTIMEO` and `SO_SNDTIMEO` are honoured in a coroutine: a std TCP stream and a std Unix
/// stream with a 50 ms read timeout, and a Unix stream with a 50 ms write timeout and a full
/// buffer, return `WouldBlock` after at least 50 ms, and a ticker on the same single worker
/// advances during each wait (it would not if the call held the worker's thread).
#[test]
fn socket_timeouts_return_would_block_while_the_worker_runs_others() {
    const TIMEOUT: Duration = Duration::from_millis(50);

    /// Runs `call`, which must fail with `WouldBlock` after at least `TIMEOUT`, and checks that
    /// `ticker` advanced meanwhile. Up to three times, until the ticker has advanced during
    /// one: a machine loaded enough to keep the whole process off the cores for a timeout can
    /// stall the ticker once, while a call that holds the worker stalls it every time.
    fn times_out(what: &str, ticker: &Ticker, mut call: impl FnMut() -> std::io::Result<usize>) {
        let mut advanced = false;
        for _ in 0..3 {
            let before = ticker.ticks();
            let start = Instant::now();
            let err = call().expect_err(what);
            let elapsed = start.elapsed();
            advanced = ticker.ticks() > before;
            assert_eq!(err.kind(), ErrorKind::WouldBlock, "{what}: {err}");
            assert!(
                elapsed >= TIMEOUT,
                "{what}: timed out early, after {elapsed:?}"
            );
            if advanced {
                break;
            }
        }
        assert!(advanced, "{what}: the ticker stood still meanwhile");
    }

    on_one_worker(|| {
        let ticker = Ticker::start();

        let (client, _server) = tcp_pair();
        client.set_read_timeout(Some(TIMEOUT)).unwrap();
        times_out("TCP read", &ticker, || (&client).read(&mut [0u8; 8]));

        let (near, _far) = UnixStream::pair().unwrap();
        near.set_read_timeout(Some(TIMEOUT)).unwrap();
        times_out("Unix read", &ticker, || (&near).read(&mut [0u8; 8]));

        let (near, _far) = UnixStream::pair().unwrap();
        near.set_write_timeout(Some(TIMEOUT)).unwrap();
        // Fill the buffer (nobody reads `_far`) until a write times out; then every write that
        // finds it full times out. Bounded: the socket buffers hold a few hundred KiB, far
        // below 10,000 × 4 KiB.
        let chunk = [0u8; 4096];
        let filled = (0..10_000).any(|_| (&near).write(&chunk).is_err());
        assert!(filled, "the Unix socket never filled up");
        times_out("Unix write", &ticker, || (&near).write(&chunk));
        ticker.stop();
    });
}

/// On a fresh one-worker runtime: runs `call(fd)` in a coroutine, and closes `fd` from another
/// coroutine once the call has begun (on one worker, the call is then parked). Returns what the
/// call returned. The other end of the pair, `peer`, stays open meanwhile (no end-of-file).
fn close_under<T: Send + 'static>(
    fd: RawFd,
    peer: UnixStream,
    call: impl FnOnce(RawFd) -> T + Send + 'static,
) -> T {
    let result = on_one_worker(move || {
        let started = Arc::new(AtomicBool::new(false));
        let caller = {
            let started = started.clone();
            corun::spawn(move || {
                started.store(true, Ordering::SeqCst);
                call(fd)
            })
        };
        wait_for(&started);
        assert_eq!(raw_close(fd), 0, "close: errno {}", errno());
        caller.join().unwrap()
    });
    drop(peer);
    result
}

/// `libc::close` of a descriptor another coroutine is blocked reading on (one end of a std
/// Unix stream pair, read with `libc::read`) wakes that coroutine with an error: `read`
/// returns -1 with `errno` `EBADF`, while the peer is still open (so no end-of-file).
#[test]
fn closing_a_descriptor_wakes_its_blocked_reader_with_ebadf() {
    let (near, far) = UnixStream::pair().unwrap();
    let (n, err) = close_under(near.into_raw_fd(), far, |fd| {
        let n = raw_read(fd, &mut [0u8; 8]);
        (n, if n < 0 { errno() } else { 0 })
    });
    assert_eq!(n, -1, "the read returned {n} instead of failing");
    assert_eq!(err, libc::EBADF, "errno");
}

/// The same for a coroutine blocked in `poll` on the descriptor (with no timeout): the close
/// wakes it, and its poll reports the closed descriptor `POLLNVAL`, instead of sleeping for
/// ever (which is what the kernel's own `poll` does when another thread closes a descriptor
/// under it) or keeping the close waiting.
#[test]
fn closing_a_descriptor_ends_a_poll_on_it_with_pollnval() {
    let (near, far) = UnixStream::pair().unwrap();
    let (n, revents) = close_under(near.into_raw_fd(), far, |fd| {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid `pollfd`.
        let n = unsafe { libc::poll(&mut pfd, 1, -1) };
        (n, pfd.revents)
    });
    assert_eq!((n, revents), (1, libc::POLLNVAL));
}

/// `libc::poll` on two std Unix sockets in a coroutine parks until a writer coroutine (on the
/// same single worker) makes the second one readable, and reports only that one; `poll` with a
/// 50 ms timeout and nothing ready returns 0 after at least 50 ms, a ticker advancing meanwhile.
#[test]
fn poll_parks_until_one_of_two_sockets_is_ready_and_times_out_not_early() {
    on_one_worker(|| {
        let (a, _a_peer) = UnixStream::pair().unwrap();
        let (b, b_peer) = UnixStream::pair().unwrap();
        let polling = Arc::new(AtomicBool::new(false));
        let writer = writes_when(&polling, b_peer, b"!");
        let mut fds = [
            libc::pollfd {
                fd: a.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: b.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        polling.store(true, Ordering::SeqCst);
        // SAFETY: `fds` is valid for its two entries. A 10 s timeout bounds the wait.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, 10_000) };
        assert_eq!(n, 1, "poll returned {n}");
        assert_eq!(fds[0].revents, 0, "the first socket reported ready");
        assert_ne!(
            fds[1].revents & libc::POLLIN,
            0,
            "the second socket not readable"
        );
        let _b_peer = writer.join().unwrap();
        let mut byte = [0u8; 1];
        (&b).read_exact(&mut byte).unwrap();
        assert_eq!(&byte, b"!");

        // Nothing ready: a timeout. Up to three times, until the ticker advanced during one
        // (see `times_out` in `socket_timeouts_return_would_block_while_the_worker_runs_others`).
        let ticker = Ticker::start();
        let advanced = (0..3).any(|_| {
            for fd in &mut fds {
                fd.revents = 0;
            }
            let before = ticker.ticks();
            let start = Instant::now();
            // SAFETY: as above.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, 50) };
            let elapsed = start.elapsed();
            assert_eq!(n, 0, "poll returned {n} with nothing to read");
            assert!(elapsed >= Duration::from_millis(50), "early: {elapsed:?}");
            ticker.ticks() > before
        });
        ticker.stop();
        assert!(advanced, "the ticker stood still during the timed poll");
    });
}

/// `libc::select` on one std Unix socket (an `fd_set` built with `FD_SET`) in a coroutine parks
/// until a writer coroutine on the same single worker makes it readable, and reports it with
/// `FD_ISSET`; with nothing to read and a 30 ms timeout it returns 0, not early.
#[test]
fn select_parks_until_its_socket_is_readable() {
    /// `select` for reading on `fd` alone, with `timeout`; the count and whether `fd` is set.
    fn select_read(fd: RawFd, timeout: Duration) -> (i32, bool) {
        // SAFETY: an all-zero `fd_set` is a valid (empty) one; FD_SET checks its range.
        let mut set: libc::fd_set = unsafe { std::mem::zeroed() };
        unsafe {
            libc::FD_ZERO(&mut set);
            libc::FD_SET(fd, &mut set);
        }
        let mut tv = libc::timeval {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_usec: timeout.subsec_micros() as libc::suseconds_t,
        };
        let null = std::ptr::null_mut();
        // SAFETY: the set and the timeval are valid for the call; the others are null.
        let n = unsafe { libc::select(fd + 1, &mut set, null, null, &mut tv) };
        // SAFETY: as above.
        (n, unsafe { libc::FD_ISSET(fd, &set) })
    }

    within(LONG + SHORT, || {
        // The 1000-connection test may hold descriptors up to several thousands meanwhile.
        let _fds = MANY_FDS.lock().unwrap_or_else(PoisonError::into_inner);
        let rt = one_worker();
        rt.block_on(|| {
            let (near, far) = UnixStream::pair().unwrap();
            let fd = near.as_raw_fd();
            assert!((fd as usize) < libc::FD_SETSIZE, "descriptor {fd} too high");
            let selecting = Arc::new(AtomicBool::new(false));
            let writer = writes_when(&selecting, far, b"?");
            selecting.store(true, Ordering::SeqCst);
            let (n, set) = select_read(fd, Duration::from_secs(10));
            assert_eq!((n, set), (1, true), "select after the write");
            let _far = writer.join().unwrap();
            let mut byte = [0u8; 1];
            (&near).read_exact(&mut byte).unwrap();
            assert_eq!(&byte, b"?");

            let start = Instant::now();
            let (n, set) = select_read(fd, Duration::from_millis(30));
            let elapsed = start.elapsed();
            assert_eq!((n, set), (0, false), "select with nothing to read");
            assert!(elapsed >= Duration::from_millis(30), "early: {elapsed:?}");
        });
    });
}

/// A UDP ping-pong of 100 rounds over std `UdpSocket`s between two coroutines on one worker:
/// `send`/`recv` on a connected socket against `recv_from`/`send_to`, every value checked.
#[test]
fn udp_ping_pong_between_two_coroutines_on_one_worker() {
    const ROUNDS: u32 = 100;
    on_one_worker(|| {
        let ping = UdpSocket::bind("127.0.0.1:0").unwrap();
        let pong = UdpSocket::bind("127.0.0.1:0").unwrap();
        let ping_addr = ping.local_addr().unwrap();
        ping.connect(pong.local_addr().unwrap()).unwrap();
        let ponger = corun::spawn(move || {
            let mut buf = [0u8; 16];
            for _ in 0..ROUNDS {
                let (n, from) = pong.recv_from(&mut buf).unwrap();
                assert_eq!((n, from), (4, ping_addr));
                let value = u32::from_le_bytes(buf[..4].try_into().unwrap());
                pong.send_to(&(value + 1).to_le_bytes(), from).unwrap();
            }
        });
        let mut buf = [0u8; 16];
        for round in 0..ROUNDS {
            ping.send(&(2 * round).to_le_bytes()).unwrap();
            let n = ping.recv(&mut buf).unwrap();
            assert_eq!(n, 4);
            let value = u32::from_le_bytes(buf[..4].try_into().unwrap());
            assert_eq!(value, 2 * round + 1, "round {round}");
        }
        ponger.join().unwrap();
    });
}

/// In a coroutine, std's `TcpStream::connect` reaches a std listener served by another
/// coroutine (a byte goes each way), a connect to a closed port fails with
/// `ConnectionRefused`, and `TcpStream::connect_timeout` (std's non-blocking connect and `poll`)
/// connects, and is refused by a closed port, too.
#[test]
fn connect_connect_timeout_and_refused_connects_in_a_coroutine() {
    on_one_worker(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = corun::spawn(move || {
            for _ in 0..2 {
                let (mut stream, _) = listener.accept().unwrap();
                let mut byte = [0u8; 1];
                stream.read_exact(&mut byte).unwrap();
                stream.write_all(&[byte[0] + 1]).unwrap();
            }
        });
        let round_trip = |mut stream: TcpStream, byte: u8| {
            stream.write_all(&[byte]).unwrap();
            let mut back = [0u8; 1];
            stream.read_exact(&mut back).unwrap();
            assert_eq!(back[0], byte + 1);
        };
        round_trip(TcpStream::connect(addr).unwrap(), 1);
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap();
        round_trip(stream, 41);
        server.join().unwrap();

        let closed = closed_port();
        let err = TcpStream::connect(closed).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "connect: {err}");
        let err = TcpStream::connect_timeout(&closed, Duration::from_secs(10)).unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::ConnectionRefused,
            "connect_timeout: {err}"
        );
    });
}

/// Outside coroutines the hooks are libc's calls: a std TCP echo between plain threads (client
/// writer, client reader, server) exchanges 64 KiB byte for byte.
#[test]
fn outside_coroutines_a_std_tcp_echo_runs_on_plain_threads() {
    within(SHORT, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let payload: Vec<u8> = (0..64 * 1024u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let echoed = thread::scope(|s| {
            s.spawn(move || common::echo_until_eof(listener.accept().unwrap().0));
            let stream = TcpStream::connect(addr).unwrap();
            let writer = stream.try_clone().unwrap();
            let sent = &payload;
            s.spawn(move || {
                (&writer).write_all(sent).unwrap();
                writer.shutdown(Shutdown::Write).unwrap();
            });
            let mut echoed = Vec::new();
            (&stream).read_to_end(&mut echoed).unwrap();
            echoed
        });
        assert!(echoed == payload, "echo differs ({} bytes)", echoed.len());
    });
}

/// Outside coroutines: `std::thread::sleep` is not early, a non-blocking std socket returns
/// `WouldBlock` at once, and a read timeout returns `WouldBlock` after at least the timeout.
#[test]
fn outside_coroutines_sleep_non_blocking_and_timeouts_behave_as_libc() {
    within(SHORT, || {
        let start = Instant::now();
        thread::sleep(Duration::from_millis(20));
        let slept = start.elapsed();
        assert!(slept >= Duration::from_millis(20), "slept {slept:?}");

        let (client, _server) = tcp_pair();
        client.set_nonblocking(true).unwrap();
        let err = (&client).read(&mut [0u8; 8]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock);

        client.set_nonblocking(false).unwrap();
        client
            .set_read_timeout(Some(Duration::from_millis(30)))
            .unwrap();
        let start = Instant::now();
        let err = (&client).read(&mut [0u8; 8]).unwrap_err();
        let waited = start.elapsed();
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
        assert!(
            waited >= Duration::from_millis(30),
            "timed out after {waited:?}"
        );
    });
}

/// `errno` is set as libc sets it, on a plain thread and in a coroutine: `read(-1)` and
/// `close(-1)` return -1 with `EBADF`, and a read of a pipe the user made non-blocking returns
/// -1 with `EAGAIN`.
#[test]
fn errno_is_set_as_libc_sets_it_inside_and_outside_coroutines() {
    fn check(place: &str) {
        assert_eq!(raw_read(-1, &mut [0u8; 4]), -1, "{place}: read(-1)");
        assert_eq!(errno(), libc::EBADF, "{place}: read(-1)'s errno");
        assert_eq!(raw_close(-1), -1, "{place}: close(-1)");
        assert_eq!(errno(), libc::EBADF, "{place}: close(-1)'s errno");
        let (r, w) = pipe();
        // SAFETY: `r` is an open descriptor of ours.
        let flags = unsafe { libc::fcntl(r, libc::F_GETFL) };
        assert_eq!(
            unsafe { libc::fcntl(r, libc::F_SETFL, flags | libc::O_NONBLOCK) },
            0
        );
        assert_eq!(
            raw_read(r, &mut [0u8; 4]),
            -1,
            "{place}: empty non-blocking read"
        );
        assert_eq!(
            errno(),
            libc::EAGAIN,
            "{place}: empty non-blocking read's errno"
        );
        assert_eq!(raw_close(r), 0);
        assert_eq!(raw_close(w), 0);
    }
    within(SHORT, || {
        check("thread");
        let rt = one_worker();
        rt.block_on(|| check("coroutine"));
    });
}

/// `std::net::TcpStream::connect("localhost:PORT")` in a coroutine resolves the name
/// (`getaddrinfo`, which the hook runs on corun's blocking pool) and connects to a std listener
/// on 127.0.0.1 served by another coroutine; resolving with `to_socket_addrs` works too.
#[test]
fn connecting_to_localhost_resolves_in_a_coroutine() {
    use std::net::ToSocketAddrs;
    on_one_worker(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let resolved: Vec<_> = format!("localhost:{port}")
            .to_socket_addrs()
            .unwrap()
            .collect();
        assert!(
            !resolved.is_empty()
                && resolved
                    .iter()
                    .all(|a| a.ip().is_loopback() && a.port() == port),
            "localhost resolved to {resolved:?}"
        );
        let server = corun::spawn(move || {
            let (mut stream, peer) = listener.accept().unwrap();
            stream.write_all(b"hi").unwrap();
            peer
        });
        // Tries each address in turn: ::1 (if listed) is refused, 127.0.0.1 answers.
        let mut stream = TcpStream::connect(format!("localhost:{port}")).unwrap();
        let mut buf = [0u8; 2];
        stream.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hi");
        assert_eq!(server.join().unwrap(), stream.local_addr().unwrap());
    });
}

/// The hook's own use of a descriptor does not show: after a coroutine parked in a read of a
/// pipe, `fcntl(F_GETFL)` shows no `O_NONBLOCK` (in the coroutine and on a thread), and a plain
/// thread reading the pipe afterwards blocks until data comes (it gets the bytes, not
/// `EAGAIN`). The user's own `O_NONBLOCK` does show, and makes a coroutine's read fail with
/// `EAGAIN` at once.
#[test]
fn a_coroutines_read_leaves_the_descriptor_blocking_for_threads() {
    fn non_blocking(fd: RawFd) -> bool {
        // SAFETY: F_GETFL has no side effects; `fd` is an open descriptor of ours.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        assert!(flags >= 0, "F_GETFL: errno {}", errno());
        flags & libc::O_NONBLOCK != 0
    }
    within(SHORT, || {
        let (r, w) = pipe();
        let rt = one_worker();
        rt.block_on(move || {
            assert_eq!(
                read_what_another_writes(r, w, b"ping", Duration::ZERO),
                b"ping"
            );
            assert!(!non_blocking(r), "O_NONBLOCK shows in the coroutine");
        });
        assert!(!non_blocking(r), "O_NONBLOCK shows on a thread");

        // A plain thread's read still blocks until the write.
        let (about_to_read_tx, about_to_read_rx) = mpsc::channel();
        let reader = thread::spawn(move || {
            about_to_read_tx.send(()).unwrap();
            let mut buf = [0u8; 4];
            let n = raw_read(r, &mut buf);
            (n, if n < 0 { errno() } else { 0 }, buf)
        });
        about_to_read_rx.recv().unwrap();
        thread::sleep(Duration::from_millis(50));
        assert_eq!(raw_write(w, b"pong"), 4);
        let (n, err, buf) = reader.join().unwrap();
        assert_eq!(
            n, 4,
            "the thread's read failed (errno {err}) instead of waiting"
        );
        assert_eq!(&buf, b"pong");

        // The user's own O_NONBLOCK shows, and holds in a coroutine.
        // SAFETY: `r` is an open descriptor of ours.
        let flags = unsafe { libc::fcntl(r, libc::F_GETFL) };
        assert_eq!(
            unsafe { libc::fcntl(r, libc::F_SETFL, flags | libc::O_NONBLOCK) },
            0
        );
        assert!(non_blocking(r), "the user's O_NONBLOCK does not show");
        let (n, err) = rt.block_on(move || {
            let n = raw_read(r, &mut [0u8; 4]);
            (n, if n < 0 { errno() } else { 0 })
        });
        assert_eq!(
            (n, err),
            (-1, libc::EAGAIN),
            "a non-blocking read in a coroutine"
        );
        assert!(non_blocking(r), "the user's O_NONBLOCK was lost");
        assert_eq!(raw_close(r), 0);
        assert_eq!(raw_close(w), 0);
    });
}

/// The hooks are in the process's global symbol scope: for each hooked name, what a shared
/// library (or `dlsym(RTLD_DEFAULT, ..)`) finds is not libc's own function (found through a
/// `dlopen("libc.so.6", RTLD_NOLOAD)` handle), so C code calling `read` reaches the hook too.
#[test]
fn shared_libraries_resolving_the_hooked_names_reach_the_hooks() {
    const HOOKED: [&CStr; 52] = [
        c"read",
        c"write",
        c"readv",
        c"writev",
        c"recv",
        c"recvfrom",
        c"recvmsg",
        c"send",
        c"sendto",
        c"sendmsg",
        c"accept",
        c"accept4",
        c"connect",
        c"poll",
        c"select",
        c"nanosleep",
        c"clock_nanosleep",
        c"usleep",
        c"sleep",
        c"close",
        c"shutdown",
        c"socket",
        c"socketpair",
        c"pipe",
        c"pipe2",
        c"dup",
        c"dup2",
        c"dup3",
        c"fcntl",
        c"ioctl",
        c"setsockopt",
        c"getaddrinfo",
        c"gethostbyname",
        c"fcntl64",
        c"__read_chk",
        c"__recv_chk",
        c"__recvfrom_chk",
        c"__poll_chk",
        c"open",
        c"open64",
        c"openat",
        c"openat64",
        c"creat",
        c"creat64",
        c"eventfd",
        c"epoll_create",
        c"epoll_create1",
        c"timerfd_create",
        c"signalfd",
        c"memfd_create",
        c"inotify_init",
        c"inotify_init1",
    ];
    // SAFETY: libc.so.6 is loaded (RTLD_NOLOAD only looks it up); the handle is closed below.
    let libc_so =
        unsafe { libc::dlopen(c"libc.so.6".as_ptr(), libc::RTLD_NOLOAD | libc::RTLD_LAZY) };
    assert!(!libc_so.is_null(), "libc.so.6 is not loaded");
    let mut not_hooked = Vec::new();
    for name in HOOKED {
        // SAFETY: dlsym with a valid handle (or RTLD_DEFAULT) and a C string only looks up.
        let global = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
        let in_libc = unsafe { libc::dlsym(libc_so, name.as_ptr()) };
        assert!(!global.is_null(), "{name:?} is not in the global scope");
        assert!(!in_libc.is_null(), "{name:?} is not in libc.so.6");
        if global == in_libc {
            not_hooked.push(name);
        }
    }
    // SAFETY: the handle from dlopen above, closed once.
    assert_eq!(unsafe { libc::dlclose(libc_so) }, 0);
    assert!(
        not_hooked.is_empty(),
        "these names resolve to libc's own functions, not the hooks: {not_hooked:?}"
    );
}

/// A pipe made with the raw system call, which the hooks never see: to them it is a
/// descriptor of unknown origin, possibly shared with another process (as standard input and
/// output are).
fn raw_pipe() -> (RawFd, RawFd) {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors.
    let r = unsafe { libc::syscall(libc::SYS_pipe2, fds.as_mut_ptr(), 0) };
    assert_eq!(r, 0, "pipe2: errno {}", errno());
    (fds[0], fds[1])
}

/// The open file's flags, asked of the kernel itself (the hooked `fcntl` hides corun's own
/// `O_NONBLOCK`).
fn kernel_flags(fd: RawFd) -> libc::c_long {
    // SAFETY: F_GETFL reads no memory.
    let flags = unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_GETFL) };
    assert!(flags >= 0, "F_GETFL: errno {}", errno());
    flags
}

/// A pipe the process did not create through the hooks may be shared with another process, so
/// corun never sets `O_NONBLOCK` on it: a coroutine's read passes through (it blocks the worker
/// until the monitor hands the other coroutines to a spare thread), and the open file stays
/// blocking for everyone. A pipe made through the hooks, read the same way, does get it
/// underneath.
#[test]
fn descriptors_of_unknown_origin_are_never_made_non_blocking() {
    within(SHORT, || {
        let rt = common::runtime(1); // spare threads allowed: the read blocks the worker
        for (made_by_hook, (r, w)) in [(false, raw_pipe()), (true, pipe())] {
            let got = rt.block_on(move || {
                read_what_another_writes(r, w, b"data", Duration::from_millis(20))
            });
            assert_eq!(got, b"data");
            let nonblocking = kernel_flags(r) & libc::O_NONBLOCK as libc::c_long != 0;
            assert_eq!(
                nonblocking, made_by_hook,
                "made by the hooks: {made_by_hook}; O_NONBLOCK underneath: {nonblocking}"
            );
            assert_eq!(raw_close(r), 0);
            assert_eq!(raw_close(w), 0);
        }
    });
}

/// A descriptor closed behind the hooks' back (the raw system call), after a coroutine waited
/// on it, leaves a stale entry and readiness cell; the next descriptor of the same number,
/// created through the hooks, starts afresh: a read on it parks and is woken by a write. (With
/// the stale cell kept, the new pipe would never be registered with the netpoller, and the read
/// would hang.)
#[test]
fn a_descriptor_closed_behind_the_hooks_back_leaves_nothing_stale() {
    let reused = within(SHORT, || {
        let rt = one_worker();
        let attempt = || {
            let (_peer, old) = registered_socket();
            sys_close(old);
            let ((r, w), reused) = created_as(old, pipe, |&(r, _)| r);
            if !reused {
                assert_eq!(raw_close(r), 0);
                assert_eq!(raw_close(w), 0);
                return false; // a test running meanwhile took the number: again
            }
            assert_eq!(
                read_what_another_writes(r, w, b"fresh", Duration::ZERO),
                b"fresh"
            );
            assert_eq!(raw_close(r), 0);
            assert_eq!(raw_close(w), 0);
            true
        };
        (0..100).any(|_| rt.block_on(attempt))
    });
    assert!(reused, "the pipe never got the stale descriptor's number");
}

/// A blocking stream write in a coroutine writes everything before it returns, as the kernel's
/// blocking write does (not the short count a non-blocking one gives), parking while the
/// socket's buffer is full; the reader on the same single worker drains it meanwhile. And
/// `recv` with `MSG_WAITALL` waits for all it asked for, across several arrivals.
#[test]
fn blocking_writes_write_everything_and_waitall_waits_for_everything() {
    const LEN: usize = 4 << 20; // far more than a socket buffer
    on_one_worker(|| {
        let (client, server) = UnixStream::pair().unwrap();
        let mut payload = common::payload(7, LEN);
        payload.resize(LEN, 0x5a);
        let expected = payload.clone();
        let reader = corun::spawn(move || {
            let mut got = vec![0u8; LEN];
            // SAFETY: `got` is valid for writes of `LEN` bytes.
            let n = unsafe {
                libc::recv(
                    server.as_raw_fd(),
                    got.as_mut_ptr().cast(),
                    LEN,
                    libc::MSG_WAITALL,
                )
            };
            (n, got)
        });
        let n = raw_write(client.as_raw_fd(), &payload);
        assert_eq!(n, LEN as isize, "errno {}", errno());
        let (n, got) = reader.join().unwrap();
        assert_eq!(n, LEN as isize, "MSG_WAITALL returned early");
        assert!(got == expected, "the bytes differ");
    });
}

/// A runtime dropped while a coroutine is blocked in a hooked call does not hang: the call
/// fails with `ECANCELED` (a hooked call cannot unwind through its C caller), and the
/// coroutine is unwound at its next switch.
#[test]
fn a_shutdown_fails_blocked_hooked_calls_with_ecanceled() {
    within(SHORT, || {
        let (a, _b) = UnixStream::pair().unwrap();
        let outcome = Arc::new(Mutex::new(None));
        let blocked = Arc::new(AtomicBool::new(false));
        let rt = common::runtime(1);
        {
            let (outcome, blocked) = (outcome.clone(), blocked.clone());
            rt.spawn(move || {
                blocked.store(true, Ordering::SeqCst);
                let result = (&a).read(&mut [0u8; 1]);
                *outcome.lock().unwrap() = Some(result.map_err(|e| e.raw_os_error()));
                corun::yield_now(); // unwinds with `Cancelled` here
                unreachable!("the coroutine went on after its shutdown");
            });
        }
        common::wait_until(SHORT, "the reader is blocked", || {
            blocked.load(Ordering::SeqCst)
        });
        thread::sleep(Duration::from_millis(20));
        drop(rt);
        assert_eq!(*outcome.lock().unwrap(), Some(Err(Some(libc::ECANCELED))));
    });
}

/// A peek leaves the bytes queued: std's `TcpStream::peek` (protocol sniffing) that sees fewer
/// bytes than it asked for, then `read`, gets them, instead of parking for an event that will
/// not come (a short peek must not count as a short read).
#[test]
fn a_short_peek_then_a_read_gets_the_bytes() {
    within(SHORT, || {
        let rt = one_worker();
        let n = rt.block_on(|| {
            let (mut client, server) = tcp_pair();
            let reader = corun::spawn(move || {
                let mut buf = [0u8; 64];
                assert_eq!(server.peek(&mut buf).unwrap(), 5); // waits, registering the socket
                (&server).read(&mut buf).unwrap()
            });
            corun::sleep(Duration::from_millis(20));
            client.write_all(b"hello").unwrap();
            reader.join().unwrap()
        });
        assert_eq!(n, 5);
    });
}

/// `MSG_WAITALL` means nothing to a datagram socket: `recv` returns the one datagram, as the
/// kernel's does, rather than waiting to fill the buffer with more.
#[test]
fn waitall_on_a_datagram_socket_returns_one_datagram() {
    within(SHORT, || {
        let rt = one_worker();
        let (n, got) = rt.block_on(|| {
            let a = UdpSocket::bind("127.0.0.1:0").unwrap();
            let b = UdpSocket::bind("127.0.0.1:0").unwrap();
            b.connect(a.local_addr().unwrap()).unwrap();
            let receiver = corun::spawn(move || {
                let mut buf = [0u8; 64];
                // SAFETY: `buf` is valid for writes of 64 bytes.
                let n = unsafe {
                    libc::recv(
                        a.as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        64,
                        libc::MSG_WAITALL,
                    )
                };
                (n, buf[..n.max(0) as usize].to_vec())
            });
            corun::sleep(Duration::from_millis(20));
            b.send(b"one").unwrap();
            receiver.join().unwrap()
        });
        assert_eq!((n, got.as_slice()), (3, &b"one"[..]));
    });
}

/// A `poll` for urgent data only (`POLLPRI`) that finds none must not clear the readiness that
/// ordinary readers of the same socket rely on: the bytes queued meanwhile are read at once.
#[test]
fn a_poll_for_urgent_data_does_not_hide_ordinary_data() {
    within(SHORT, || {
        let rt = one_worker();
        let n = rt.block_on(|| {
            let (mut client, server) = tcp_pair();
            // A first read that waits registers the socket with the netpoller.
            let server = {
                let reader = corun::spawn(move || {
                    assert_eq!((&server).read(&mut [0u8; 1]).unwrap(), 1);
                    server
                });
                corun::sleep(Duration::from_millis(20));
                client.write_all(b"x").unwrap();
                reader.join().unwrap()
            };
            client.write_all(b"hello").unwrap();
            corun::sleep(Duration::from_millis(20)); // its event has come: the cell says ready
            let mut pfd = libc::pollfd {
                fd: server.as_raw_fd(),
                events: libc::POLLPRI,
                revents: 0,
            };
            // SAFETY: one valid `pollfd`.
            assert_eq!(unsafe { libc::poll(&mut pfd, 1, 20) }, 0);
            (&server).read(&mut [0u8; 16]).unwrap()
        });
        assert_eq!(n, 5);
    });
}

/// A close from a plain thread racing a coroutine's first wait on a fresh descriptor (the
/// coroutine registering it with the netpoller just as the close looks for a cell to wake):
/// every close completes, and wakes the reader. Repeated with the close landing at varying
/// points; a lost wake-up shows as a close that does not return.
///
/// The close is a `dup2` of a dead socket (its peer gone: reads say end-of-file) over the
/// descriptor, which closes it as `close` does, but keeps the number: a plain `close` would
/// free it for the other tests running meanwhile, and a reader that comes late would read
/// their data.
///
/// A stress test, and a weak one: with the fix for that race removed, it still passed here;
/// the loom model `a_close_racing_the_first_registration` (`loom-tests/tests/hook_close.rs`)
/// is what catches it.
#[test]
fn a_close_racing_the_first_wait_always_completes() {
    const ROUNDS: u64 = 2000;
    within(LONG, || {
        let rt = common::runtime(2);
        let (dead, peer) = UnixStream::pair().unwrap();
        drop(peer);
        let dead = dead.as_raw_fd();
        for i in 0..ROUNDS {
            let (near, far) = UnixStream::pair().unwrap();
            let fd = near.into_raw_fd();
            let started = Arc::new(AtomicBool::new(false));
            let reader = {
                let started = started.clone();
                rt.spawn(move || {
                    started.store(true, Ordering::SeqCst);
                    raw_read(fd, &mut [0u8; 1])
                })
            };
            let spin_started = Instant::now();
            while !started.load(Ordering::SeqCst) {
                assert!(spin_started.elapsed() < SHORT, "the reader never started");
                std::hint::spin_loop();
            }
            for _ in 0..(i * 7919) % 4000 {
                std::hint::spin_loop();
            }
            let (closed_tx, closed_rx) = mpsc::channel();
            thread::spawn(move || {
                // SAFETY: both descriptors are ours.
                let _ = closed_tx.send(unsafe { libc::dup2(dead, fd) });
            });
            match closed_rx.recv_timeout(SHORT) {
                Ok(r) => assert_eq!(r, fd, "round {i}: dup2 failed (errno {})", errno()),
                Err(_) => panic!("round {i}: the close never completed"),
            }
            // Woken by the close (EBADF), or, come after it, reading the dead socket (0).
            let n = common::join_within(reader, SHORT).unwrap();
            assert!(n <= 0, "round {i}: read {n} bytes of a closed descriptor");
            assert_eq!(raw_close(fd), 0);
            drop(far);
        }
    });
}

/// A socket closed by glibc itself (`fclose` of an `fdopen`ed stream: its internal `close`,
/// which the hooks never see) leaves its entry behind; a file opened under the same number
/// (`open` is hooked for this) is read as a file, not taken for that socket.
#[test]
fn a_file_opened_over_a_stale_socket_entry_is_read_as_a_file() {
    let reused = within(SHORT, || {
        let rt = one_worker();
        let attempt = || {
            let (_peer, old) = registered_socket();
            // SAFETY: `old` is our socket; the stream takes it over, and `fclose` closes it.
            unsafe {
                let stream = libc::fdopen(old, c"r+".as_ptr());
                assert!(!stream.is_null(), "fdopen: errno {}", errno());
                assert_eq!(libc::fclose(stream), 0);
            }
            let open = || {
                // SAFETY: a valid path; the descriptor is closed below.
                unsafe { libc::open(c"/dev/zero".as_ptr(), libc::O_RDONLY) }
            };
            // If a test running meanwhile took the number, do it all again.
            let (fd, reused) = created_as(old, open, |&fd| fd);
            let result = reused.then(|| {
                let mut buf = [1u8; 4];
                (raw_read(fd, &mut buf), errno(), buf)
            });
            assert_eq!(raw_close(fd), 0);
            result
        };
        (0..100).find_map(|_| rt.block_on(attempt))
    });
    let (n, err, buf) = reused.expect("the file never got the stale socket's number");
    assert_eq!(n, 4, "read of /dev/zero failed: errno {err}");
    assert_eq!(buf, [0; 4]);
}

/// A plain thread writing to a pipe that corun made non-blocking underneath (because a
/// coroutine waited on it) still gets a blocking write's behaviour: all of a write larger than
/// the pipe, while a reader drains it, not the short count of a non-blocking write.
#[test]
fn a_thread_writes_everything_to_a_pipe_made_non_blocking_underneath() {
    const LEN: usize = 1 << 20; // 16 pipe buffers
    within(SHORT, || {
        let (r, w) = pipe();
        let rt = one_worker();
        // A coroutine waits to read the pipe: corun sets O_NONBLOCK on it.
        let got = rt.block_on(move || read_what_another_writes(r, w, b"x", Duration::ZERO));
        assert_eq!(got, b"x");
        let reader = thread::spawn(move || {
            let mut total = 0usize;
            let mut buf = vec![0u8; 64 * 1024];
            while total < LEN {
                let n = raw_read(r, &mut buf);
                assert!(n > 0, "the reader's read returned {n} (errno {})", errno());
                total += n as usize;
            }
            total
        });
        let payload = vec![7u8; LEN];
        assert_eq!(raw_write(w, &payload), LEN as isize, "errno {}", errno());
        assert_eq!(reader.join().unwrap(), LEN);
        assert_eq!(raw_close(r), 0);
        assert_eq!(raw_close(w), 0);
    });
}

/// A blocking `connect` in a coroutine honours `SO_SNDTIMEO` (`EINPROGRESS` when it passes, as
/// the kernel's), and a second `connect` while the first is still in progress waits for it, as
/// the kernel's blocking one does, rather than saying `EALREADY`. The connection is held up by
/// a listener whose accept queue is full (its SYNs are dropped, then retransmitted).
#[test]
fn connect_times_out_and_a_second_connect_waits_for_the_first() {
    on_one_worker(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        // SAFETY: the listener's descriptor; a backlog of 0 holds one connection.
        assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 0) }, 0);
        // Fill the accept queue: with a backlog of 0 it holds one connection (a connect
        // into a full queue is not refused: its SYN is dropped, and retransmitted later).
        let filler = TcpStream::connect(addr).unwrap();
        // SAFETY: a new socket, closed below; `sa` and `tv` are valid for their sizes.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
        assert!(fd >= 0);
        let std::net::SocketAddr::V4(v4) = addr else {
            unreachable!()
        };
        let sa = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: v4.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*v4.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        let set_timeout =
            |ms: u64| set_timeout_option(fd, libc::SO_SNDTIMEO, Duration::from_millis(ms));
        let connect = || raw_connect(fd, &sa);
        set_timeout(50);
        let start = Instant::now();
        assert_eq!(connect(), (-1, libc::EINPROGRESS), "the first connect");
        assert!(
            start.elapsed() >= Duration::from_millis(50),
            "timed out early"
        );
        // Make room in the queue, then connect again: the retransmitted SYN gets in.
        drop(filler);
        let acceptor = corun::spawn(move || {
            for _ in 0..3 {
                let _ = listener.accept();
            }
        });
        set_timeout(0);
        assert_eq!(connect(), (0, 0), "the second connect");
        assert_eq!(raw_close(fd), 0);
        drop(acceptor);
    });
}

/// Every sleep of libc parks the coroutine on the timer wheel (a ticker on the same single
/// worker advances during each), none returns early, and bad arguments get the kernel's
/// errors: `nanosleep` (with the time left zeroed), `usleep`, `clock_nanosleep` (relative and
/// absolute, returning its error instead of setting errno), and `select` with no descriptors.
#[test]
fn every_libc_sleep_parks_the_coroutine() {
    const NAP: Duration = Duration::from_millis(30);
    on_one_worker(|| {
        let ticker = Ticker::start();
        let timespec = |d: Duration| libc::timespec {
            tv_sec: d.as_secs() as libc::time_t,
            tv_nsec: d.subsec_nanos() as libc::c_long,
        };
        // Up to three times, until the ticker advanced during one (see `times_out` in
        // `socket_timeouts_return_would_block_while_the_worker_runs_others`).
        let check = |what: &str, sleep: &mut dyn FnMut()| {
            let advanced = (0..3).any(|_| {
                let (before, start) = (ticker.ticks(), Instant::now());
                sleep();
                let elapsed = start.elapsed();
                assert!(elapsed >= NAP, "{what}: woke early, after {elapsed:?}");
                ticker.ticks() > before
            });
            assert!(advanced, "{what}: the worker was blocked");
        };
        check("nanosleep", &mut || {
            let mut left = timespec(Duration::from_secs(9));
            // SAFETY: valid `timespec`s.
            assert_eq!(unsafe { libc::nanosleep(&timespec(NAP), &mut left) }, 0);
            assert_eq!((left.tv_sec, left.tv_nsec), (0, 0), "time left");
        });
        check("usleep", &mut || {
            // SAFETY: no pointers.
            assert_eq!(unsafe { libc::usleep(NAP.as_micros() as libc::c_uint) }, 0);
        });
        check("clock_nanosleep", &mut || {
            // SAFETY: a valid `timespec`; no time left asked for.
            let r = unsafe {
                libc::clock_nanosleep(
                    libc::CLOCK_MONOTONIC,
                    0,
                    &timespec(NAP),
                    std::ptr::null_mut(),
                )
            };
            assert_eq!(r, 0);
        });
        check("clock_nanosleep, absolute", &mut || {
            let mut now = timespec(Duration::ZERO);
            // SAFETY: valid `timespec`s.
            unsafe {
                assert_eq!(libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now), 0);
                let until = Duration::new(now.tv_sec as u64, now.tv_nsec as u32) + NAP;
                let r = libc::clock_nanosleep(
                    libc::CLOCK_MONOTONIC,
                    libc::TIMER_ABSTIME,
                    &timespec(until),
                    std::ptr::null_mut(),
                );
                assert_eq!(r, 0);
            }
        });
        check("select with no descriptors", &mut || {
            let mut tv = libc::timeval {
                tv_sec: 0,
                tv_usec: NAP.as_micros() as libc::suseconds_t,
            };
            let none = std::ptr::null_mut();
            // SAFETY: no sets, a valid `timeval`.
            assert_eq!(unsafe { libc::select(0, none, none, none, &mut tv) }, 0);
        });
        let bad = libc::timespec {
            tv_sec: 0,
            tv_nsec: 1_000_000_000,
        };
        // SAFETY: valid pointers; the request is malformed on purpose.
        unsafe {
            assert_eq!(libc::nanosleep(&bad, std::ptr::null_mut()), -1);
            assert_eq!(errno(), libc::EINVAL);
            let r = libc::clock_nanosleep(libc::CLOCK_MONOTONIC, 0, &bad, std::ptr::null_mut());
            assert_eq!(r, libc::EINVAL);
        }
        ticker.stop();
    });
}

/// `shutdown` of a socket a coroutine is blocked reading ends the read with end-of-file, as
/// the kernel's; `accept4` with `SOCK_NONBLOCK` gives a socket with plain `EAGAIN` semantics;
/// and a duplicate (`dup`) made non-blocking with `fcntl` is non-blocking through either
/// descriptor (they share the open file).
#[test]
fn shutdown_accept4_flags_and_duplicates_keep_the_kernels_semantics() {
    on_one_worker(|| {
        // shutdown(SHUT_RD) under a blocked reader.
        let (_client, server) = tcp_pair();
        let fd = server.as_raw_fd();
        let reading = Arc::new(AtomicBool::new(false));
        let reader = {
            let reading = reading.clone();
            corun::spawn(move || {
                reading.store(true, Ordering::SeqCst);
                let n = raw_read(fd, &mut [0u8; 8]);
                (n, server)
            })
        };
        wait_for(&reading);
        // SAFETY: a socket of ours.
        assert_eq!(unsafe { libc::shutdown(fd, libc::SHUT_RD) }, 0);
        assert_eq!(reader.join().unwrap().0, 0, "read after shutdown");

        // accept4(SOCK_NONBLOCK).
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        // SAFETY: no address asked for.
        let accepted = unsafe {
            libc::accept4(
                listener.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            )
        };
        assert!(accepted >= 0, "accept4: errno {}", errno());
        assert_eq!(raw_read(accepted, &mut [0u8; 8]), -1);
        assert_eq!(errno(), libc::EAGAIN);
        assert_eq!(raw_close(accepted), 0);

        // A duplicate made non-blocking.
        let (_client, server) = tcp_pair();
        let fd = server.as_raw_fd();
        // SAFETY: plain descriptor calls on a socket of ours.
        let dup = unsafe { libc::dup(fd) };
        assert!(dup >= 0);
        unsafe {
            let flags = libc::fcntl(dup, libc::F_GETFL);
            assert_eq!(libc::fcntl(dup, libc::F_SETFL, flags | libc::O_NONBLOCK), 0);
        }
        for d in [dup, fd] {
            assert_eq!(raw_read(d, &mut [0u8; 8]), -1, "descriptor {d}");
            assert_eq!(errno(), libc::EAGAIN, "descriptor {d}");
        }
        assert_eq!(raw_close(dup), 0);
    });
}

/// A send timeout bounds a blocking write that goes on after short parts as a whole, not each
/// part: against a reader that empties the socket every 20 ms (each part's wait is shorter
/// than the timeout), a 4 MiB write with a 100 ms `SO_SNDTIMEO` returns what it wrote when the
/// timeout passes, instead of going on for the many rounds the whole write takes.
#[test]
fn a_send_timeout_bounds_the_whole_write() {
    const LEN: usize = 4 << 20;
    on_one_worker(|| {
        let (writer, reader) = UnixStream::pair().unwrap();
        writer
            .set_write_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let trickle = {
            let stop = stop.clone();
            corun::spawn(move || {
                // Each read takes all there is, so the writer can go on at once.
                let mut buf = vec![0u8; 1 << 20];
                // Bounded by `stop`, and by the test's `within`.
                while !stop.load(Ordering::SeqCst) {
                    corun::sleep(Duration::from_millis(20));
                    let _ = (&reader).read(&mut buf);
                }
            })
        };
        let payload = vec![1u8; LEN];
        let n = raw_write(writer.as_raw_fd(), &payload);
        stop.store(true, Ordering::SeqCst);
        drop(writer); // ends the reader's last read
        trickle.join().unwrap();
        assert!(n > 0, "nothing written (errno {})", errno());
        assert!(
            (n as usize) < LEN,
            "the whole write went through: the timeout restarted with every part"
        );
    });
}

/// `select` on `exceptfds` alone waits for urgent data only: a socket whose peer has hung up
/// (which `poll` reports, and select's exception set does not) does not end the wait early.
#[test]
fn select_for_exceptions_ignores_a_hang_up() {
    const TIMEOUT: Duration = Duration::from_millis(50);
    within(LONG + SHORT, || {
        let _fds = MANY_FDS.lock().unwrap_or_else(PoisonError::into_inner);
        let rt = one_worker();
        rt.block_on(|| {
            let (near, far) = UnixStream::pair().unwrap();
            drop(far); // hung up
            let fd = near.as_raw_fd();
            assert!(
                fd < libc::FD_SETSIZE as RawFd,
                "descriptor {fd} beyond an fd_set"
            );
            // SAFETY: an `fd_set` is plain data; `fd` is below FD_SETSIZE.
            let mut except: libc::fd_set = unsafe { std::mem::zeroed() };
            unsafe { libc::FD_SET(fd, &mut except) };
            let mut tv = libc::timeval {
                tv_sec: 0,
                tv_usec: TIMEOUT.as_micros() as libc::suseconds_t,
            };
            let start = Instant::now();
            let none = std::ptr::null_mut();
            // SAFETY: valid sets and `timeval`.
            let n = unsafe { libc::select(fd + 1, none, none, &mut except, &mut tv) };
            assert_eq!(n, 0, "select reported something");
            assert!(start.elapsed() >= TIMEOUT, "select returned early");
        });
    });
}

/// In a coroutine: reads one byte from `fd` with `libc::read` while another coroutine writes it
/// after `delay` (so the read has to wait, and the descriptor gets registered). Returns the
/// read's result and errno.
fn read_one_written_later(fd: RawFd, w: RawFd, delay: Duration) -> (isize, i32) {
    let writer = corun::spawn(move || {
        corun::sleep(delay);
        raw_write(w, b"x")
    });
    let n = raw_read(fd, &mut [0u8; 1]);
    let e = if n < 0 { errno() } else { 0 };
    assert_eq!(writer.join().unwrap(), 1);
    (n, e)
}

/// Sets `SO_RCVTIMEO` on `fd`.
fn a_receive_timeout(fd: RawFd, t: Duration) {
    set_timeout_option(fd, libc::SO_RCVTIMEO, t);
}

/// Sets the socket timeout `option` (`SO_RCVTIMEO` or `SO_SNDTIMEO`) on `fd` (zero: none).
fn set_timeout_option(fd: RawFd, option: libc::c_int, t: Duration) {
    let tv = libc::timeval {
        tv_sec: t.as_secs() as libc::time_t,
        tv_usec: t.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: a valid `timeval` of its size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "setsockopt: errno {}", errno());
}

/// A forked child that closes an inherited socket (the classic pre-fork server: the child
/// closes what it does not use) must not take the parent's netpoller registration with it:
/// the epoll instance is shared with the parent, and `EPOLL_CTL_DEL` in the child removes the
/// parent's (fd, file) entry.
#[test]
fn a_forked_childs_close_does_not_deregister_the_parents_socket() {
    within(SHORT, || {
        let (a, b) = UnixStream::pair().unwrap();
        let (fa, fb) = (a.into_raw_fd(), b.into_raw_fd());
        // A read timeout, so that a lost registration shows as EAGAIN rather than a hang.
        a_receive_timeout(fa, Duration::from_secs(3));
        let rt = one_worker();
        let first = rt.block_on(move || read_one_written_later(fa, fb, Duration::from_millis(20)));
        assert_eq!(first, (1, 0));
        // SAFETY: the child only closes a descriptor and exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            unsafe {
                libc::close(fa);
                libc::_exit(0);
            }
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        let second = rt.block_on(move || read_one_written_later(fa, fb, Duration::from_millis(20)));
        assert_eq!(second, (1, 0), "the parent's read after the child's close");
        raw_close(fa);
        raw_close(fb);
    });
}

/// A forked child that closes a socket a parent coroutine is blocked on at the fork must not
/// hang: the child has no such coroutine, so the count of waiters it inherited never drops.
#[test]
fn a_forked_childs_close_of_a_socket_the_parent_waits_on_returns() {
    within(SHORT, || {
        let (a, b) = UnixStream::pair().unwrap();
        let (fa, fb) = (a.into_raw_fd(), b.into_raw_fd());
        let rt = one_worker();
        let reading = Arc::new(AtomicBool::new(false));
        let reader = {
            let reading = reading.clone();
            rt.spawn(move || {
                reading.store(true, Ordering::SeqCst);
                raw_read(fa, &mut [0u8; 1])
            })
        };
        common::wait_until(SHORT, "the reader starts", || {
            reading.load(Ordering::SeqCst)
        });
        thread::sleep(Duration::from_millis(50)); // parked in the read
                                                  // SAFETY: the child only closes a descriptor and exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            unsafe {
                libc::close(fa);
                libc::_exit(0);
            }
        }
        let start = Instant::now();
        let mut status = 0;
        let exited = loop {
            // SAFETY: our own child.
            if unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } == pid {
                break true;
            }
            if start.elapsed() > Duration::from_secs(3) {
                unsafe { libc::kill(pid, libc::SIGKILL) };
                unsafe { libc::waitpid(pid, &mut status, 0) };
                break false;
            }
            thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(raw_write(fb, b"x"), 1);
        assert_eq!(reader.join().unwrap(), 1);
        assert!(exited, "the child hung in close()");
    });
}

/// A std socket that a hooked call once waited on (registered by the hooks), then handed to
/// `corun::net` (`From<std::os::unix::net::UnixStream>`): corun::net's own registration of the
/// same descriptor must not fail with EEXIST.
#[test]
fn a_std_socket_handed_to_corun_net_after_a_hooked_wait_still_works() {
    within(SHORT, || {
        let rt = one_worker();
        let result = rt.block_on(|| {
            let (a, b) = UnixStream::pair().unwrap();
            let (fa, fb) = (a.as_raw_fd(), b.as_raw_fd());
            assert_eq!(
                read_one_written_later(fa, fb, Duration::from_millis(20)),
                (1, 0)
            );
            let a = corun::net::UnixStream::from(a);
            let writer = corun::spawn(move || {
                corun::sleep(Duration::from_millis(20));
                (&b).write_all(b"y").unwrap();
                b
            });
            let mut buf = [0u8; 1];
            let r = (&a).read(&mut buf).map_err(|e| e.to_string());
            drop(writer.join().unwrap());
            r
        });
        assert_eq!(result, Ok(1));
    });
}

/// A socket accepted by a plain thread from a listener the hooks never learned (inherited from
/// systemd or a parent, made by the raw system call, ...) is a stream: a coroutine's
/// `MSG_WAITALL` receive on it waits for all the bytes, as the kernel's does.
#[test]
fn waitall_on_a_socket_accepted_by_a_thread_from_an_unlearned_listener() {
    within(SHORT, || {
        // The listener, made behind the hooks' back.
        // SAFETY: the raw system call, no pointers.
        let lfd = unsafe {
            libc::syscall(libc::SYS_socket, libc::AF_INET, libc::SOCK_STREAM, 0) as RawFd
        };
        assert!(lfd >= 0);
        // The table may hold a stale entry for the number: the raw socket is never seen.
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as _,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes([127, 0, 0, 1]),
            },
            sin_zero: [0; 8],
        };
        // SAFETY: a valid `sockaddr_in` of its size.
        unsafe {
            assert_eq!(
                libc::bind(
                    lfd,
                    (&addr as *const libc::sockaddr_in).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as _
                ),
                0
            );
            assert_eq!(libc::listen(lfd, 8), 0);
        }
        // SAFETY: all-zero is a valid `sockaddr_in`; `getsockname` writes at most `len` bytes.
        let mut bound: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        unsafe { libc::getsockname(lfd, (&mut bound as *mut libc::sockaddr_in).cast(), &mut len) };
        let port = u16::from_be(bound.sin_port);
        let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        // A plain thread accepts.
        // SAFETY: no address asked for.
        let sfd = unsafe { libc::accept(lfd, std::ptr::null_mut(), std::ptr::null_mut()) };
        assert!(sfd >= 0);
        let rt = one_worker();
        let n = rt.block_on(move || {
            let writer = corun::spawn(move || {
                (&client).write_all(b"12345").unwrap();
                corun::sleep(Duration::from_millis(50));
                (&client).write_all(b"67890").unwrap();
                client
            });
            let mut buf = [0u8; 10];
            // SAFETY: `buf` is valid for writes of 10 bytes.
            let n = unsafe { libc::recv(sfd, buf.as_mut_ptr().cast(), 10, libc::MSG_WAITALL) };
            drop(writer.join().unwrap());
            n
        });
        assert_eq!(n, 10, "MSG_WAITALL returned a short count");
        raw_close(sfd);
        raw_close(lfd);
    });
}

/// A blocking `connect` retried every millisecond (a Unix listener's backlog is full, which
/// epoll does not report) ends with `EBADF` when another coroutine closes its descriptor, and
/// lets the close go on, rather than retrying on a number that may already be another
/// descriptor's.
#[test]
fn a_connect_retrying_on_a_full_backlog_ends_when_its_descriptor_is_closed() {
    on_one_worker(|| {
        let dir = std::env::temp_dir().join(format!("corun-hook-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("full-backlog.sock");
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        // SAFETY: the listener's descriptor; a backlog of 0.
        assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 0) }, 0);
        // Fill the backlog with non-blocking connects until one says EAGAIN (bounded).
        let mut fillers = Vec::new();
        for _ in 0..64 {
            let filler = UnixStream::connect(&path);
            match filler {
                Ok(filler) => fillers.push(filler),
                Err(e) => panic!("a filler's connect: {e}"),
            }
            // SAFETY: a probe socket, closed below.
            let probe =
                unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0) };
            let full = raw_connect(probe, &sockaddr_un(&path)) == (-1, libc::EAGAIN);
            raw_close(probe);
            if full {
                break;
            }
        }
        // SAFETY: a new blocking socket, closed by the other coroutine.
        let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) };
        let connecting = Arc::new(AtomicBool::new(false));
        let connector = {
            let (connecting, path) = (connecting.clone(), path.clone());
            corun::spawn(move || {
                let addr = sockaddr_un(&path);
                connecting.store(true, Ordering::SeqCst);
                raw_connect(fd, &addr)
            })
        };
        wait_for(&connecting);
        corun::sleep(Duration::from_millis(5)); // retrying
        assert_eq!(raw_close(fd), 0);
        assert_eq!(connector.join().unwrap(), (-1, libc::EBADF));
        drop(fillers);
        drop(listener);
        let _ = std::fs::remove_file(&path);
    });
}

/// A `sockaddr_un` for `path`.
fn sockaddr_un(path: &std::path::Path) -> libc::sockaddr_un {
    // SAFETY: all-zero is a valid `sockaddr_un`.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_encoded_bytes();
    assert!(bytes.len() < addr.sun_path.len(), "path too long");
    for (slot, &b) in addr.sun_path.iter_mut().zip(bytes) {
        *slot = b as libc::c_char;
    }
    addr
}

/// A C library reaches the hooks too: a shared library, compiled here from C with the system's
/// `cc` and loaded with `dlopen`, whose functions call `read`, `poll` and `usleep` (through
/// its PLT, which binds to the executable's definitions), parks its calling coroutine in each:
/// on one worker with no spare threads, the writer coroutine and a ticker run meanwhile.
#[test]
fn a_c_library_loaded_with_dlopen_calls_the_hooks() {
    const C_SOURCE: &str = r#"
        #include <poll.h>
        #include <unistd.h>
        long c_read(int fd, char *buf, long n) { return read(fd, buf, n); }
        int c_poll_in(int fd, int timeout_ms) {
            struct pollfd p = { fd, POLLIN, 0 };
            return poll(&p, 1, timeout_ms);
        }
        int c_usleep(unsigned us) { return usleep(us); }
    "#;
    let dir = std::env::temp_dir().join(format!("corun-hook-c-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (source, library) = (dir.join("hooked.c"), dir.join("libhooked.so"));
    std::fs::write(&source, C_SOURCE).unwrap();
    let compiled = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-D_FORTIFY_SOURCE=2", "-o"])
        .arg(&library)
        .arg(&source)
        .status()
        .expect("this test needs a C compiler: `cc` (gcc or clang) on the PATH");
    assert!(compiled.success(), "cc failed");
    let path = std::ffi::CString::new(library.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid path; the library is never unloaded (its functions are used below).
    let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    assert!(!handle.is_null(), "dlopen failed");
    type ReadFn = unsafe extern "C" fn(libc::c_int, *mut u8, libc::c_long) -> libc::c_long;
    type PollFn = unsafe extern "C" fn(libc::c_int, libc::c_int) -> libc::c_int;
    type SleepFn = unsafe extern "C" fn(libc::c_uint) -> libc::c_int;
    // SAFETY: the library's functions, whose C prototypes these types spell.
    let (c_read, c_poll_in, c_usleep) = unsafe {
        let find = |name: &CStr| {
            let f = libc::dlsym(handle, name.as_ptr());
            assert!(!f.is_null(), "{name:?} not found");
            f
        };
        (
            std::mem::transmute::<*mut libc::c_void, ReadFn>(find(c"c_read")),
            std::mem::transmute::<*mut libc::c_void, PollFn>(find(c"c_poll_in")),
            std::mem::transmute::<*mut libc::c_void, SleepFn>(find(c"c_usleep")),
        )
    };
    within(SHORT, move || {
        let rt = one_worker();
        rt.block_on(move || {
            let ticker = Ticker::start();
            let (near, far) = UnixStream::pair().unwrap();
            let fd = near.as_raw_fd();
            let writer = corun::spawn(move || {
                corun::sleep(Duration::from_millis(20));
                (&far).write_all(b"from C").unwrap();
                far
            });
            let before = ticker.ticks();
            // SAFETY: a valid descriptor; no timeout.
            assert_eq!(unsafe { c_poll_in(fd, -1) }, 1, "poll from C");
            let mut buf = [0u8; 16];
            // SAFETY: `buf` is valid for writes of 16 bytes.
            let n = unsafe { c_read(fd, buf.as_mut_ptr(), 16) };
            assert_eq!(&buf[..n as usize], b"from C", "read from C");
            // SAFETY: no pointers.
            assert_eq!(unsafe { c_usleep(20_000) }, 0, "usleep from C");
            // A usleep or two more if the ticker has not moved yet (see `times_out` in
            // `socket_timeouts_return_would_block_while_the_worker_runs_others`).
            let advanced = ticker.ticks() > before
                || (0..2).any(|_| {
                    let before = ticker.ticks();
                    // SAFETY: no pointers.
                    assert_eq!(unsafe { c_usleep(20_000) }, 0, "usleep from C");
                    ticker.ticks() > before
                });
            assert!(advanced, "the worker was blocked in C");
            drop(writer.join().unwrap());
            ticker.stop();
        });
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// A runtime dropped under coroutines written with std alone, which loop over hooked calls
/// and never make the switch from Rust code that would unwind them (a heartbeat of
/// `thread::sleep`, an accept loop that logs its errors and goes on): the drop returns. Their
/// hooked calls fail (or return early) at once after the shutdown, and each gives the drain
/// its turn, whose bounded rounds end by abandoning them.
#[test]
fn a_runtime_dropped_under_std_only_loops_returns() {
    within(SHORT, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let rt = common::runtime(2);
        let beats = Arc::new(AtomicU64::new(0));
        {
            let beats = beats.clone();
            rt.spawn(move || loop {
                thread::sleep(Duration::from_millis(5));
                beats.fetch_add(1, Ordering::SeqCst);
            });
        }
        rt.spawn(move || {
            for stream in listener.incoming() {
                if let Err(e) = stream {
                    let _ = e; // "logged": the loop goes on
                }
            }
        });
        common::wait_until(SHORT, "the heartbeat beats", || {
            beats.load(Ordering::SeqCst) > 0
        });
        drop(rt);
    });
}

/// A child process whose `pre_exec` closure (run in the forked child, on the coroutine's stack
/// that called `spawn`) makes a blocking `read`: in the child the hooks pass through, so the
/// read blocks the child until the parent writes, then the child execs. (Taken for a
/// coroutine's call, the read would park into a copy of the parent's scheduler, and `spawn`
/// would wait for ever for the exec.)
#[test]
fn a_pre_exec_closure_in_a_forked_child_blocks_as_plain_code() {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    within(SHORT, || {
        let rt = common::runtime(2);
        let out = rt.block_on(|| {
            let (r, w) = pipe();
            let mut command = Command::new("sh");
            command.args(["-c", "echo child"]).stdout(Stdio::piped());
            // SAFETY: the closure makes one `read` (async-signal-safe) and allocates only
            // for an error, as std's docs allow in practice for such closures.
            unsafe {
                command.pre_exec(move || {
                    let mut byte = [0u8; 1];
                    if libc::read(r, byte.as_mut_ptr().cast(), 1) != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            // The go-ahead comes from a plain thread: a coroutine would be copied into the
            // child with the rest of the runtime's memory, and a copy of the scheduler there
            // could run it and let the child go ahead by itself.
            let writer = thread::spawn(move || {
                thread::sleep(Duration::from_millis(50));
                assert_eq!(raw_write(w, b"g"), 1);
                w
            });
            let child = command.spawn().expect("spawn");
            let w = writer.join().unwrap();
            let output = child.wait_with_output().unwrap();
            // The child shares the pipe's open file: a read the hooks had taken for a
            // coroutine's would have made it non-blocking underneath.
            let nonblocking = kernel_flags(r) & libc::O_NONBLOCK as libc::c_long != 0;
            assert!(!nonblocking, "the child's read was a coroutine's");
            assert_eq!(raw_close(r), 0);
            assert_eq!(raw_close(w), 0);
            output
        });
        assert!(out.status.success());
        assert_eq!(out.stdout, b"child\n");
    });
}
