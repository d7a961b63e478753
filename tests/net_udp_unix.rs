//! corun::net UDP and Unix sockets: ping-pong, echo with many clients, datagrams, timeouts,
//! full queues and backlogs, shutdown, plain threads, conversions.

mod common;

use common::{runtime, within, SHORT};
use corun::net::{UdpSocket, UnixDatagram, UnixListener, UnixStream};
use std::io::{ErrorKind, IoSlice, IoSliceMut, Read, Write};
use std::net::{Ipv4Addr, Shutdown};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A socket path in the temp directory, unique to this process and call, removed on drop.
struct TempPath(PathBuf);

impl TempPath {
    fn new(tag: &str) -> TempPath {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "corun-{}-{tag}-{}.sock",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        let _ = std::fs::remove_file(&path);
        TempPath(path)
    }
}

impl AsRef<Path> for TempPath {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn socket_types_are_send_sync_debug() {
    fn assert<T: Send + Sync + std::fmt::Debug>() {}
    assert::<UdpSocket>();
    assert::<UnixListener>();
    assert::<UnixStream>();
    assert::<UnixDatagram>();
    assert::<corun::net::UnixIncoming<'static>>();
    // And they print something useful.
    let (a, _b) = UnixStream::pair().unwrap();
    assert!(format!("{a:?}").contains("UnixStream"));
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    assert!(format!("{udp:?}").contains("127.0.0.1"));
}

#[test]
fn udp_ping_pong_between_coroutines_many_pairs_many_rounds() {
    const PAIRS: u64 = 40;
    const ROUNDS: u64 = 200;
    within(SHORT * 2, || {
        let rt = runtime(2);
        rt.block_on(|| {
            let handles: Vec<_> = (0..PAIRS)
                .map(|pair| {
                    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
                    let client = UdpSocket::bind(("127.0.0.1", 0)).unwrap();
                    let server_addr = server.local_addr().unwrap();
                    let client_addr = client.local_addr().unwrap();
                    let s = corun::spawn(move || {
                        let mut buf = [0; 16];
                        for _ in 0..ROUNDS {
                            let (n, from) = server.recv_from(&mut buf).unwrap();
                            assert_eq!(n, 16);
                            assert_eq!(from, client_addr);
                            let value = u128::from_le_bytes(buf) + 1;
                            server.send_to(&value.to_le_bytes(), from).unwrap();
                        }
                    });
                    let c = corun::spawn(move || {
                        let mut buf = [0; 16];
                        for round in 0..ROUNDS {
                            let value = u128::from(pair) << 64 | u128::from(round);
                            // A string address: resolved by corun's `ToSocketAddrs`.
                            let to = server_addr.to_string();
                            client.send_to(&value.to_le_bytes(), to.as_str()).unwrap();
                            let (n, from) = client.recv_from(&mut buf).unwrap();
                            assert_eq!((n, from), (16, server_addr));
                            assert_eq!(u128::from_le_bytes(buf), value + 1, "pair {pair}");
                        }
                    });
                    (s, c)
                })
                .collect();
            for (s, c) in handles {
                c.join().unwrap();
                s.join().unwrap();
            }
        });
    });
}

#[test]
fn udp_recv_timeout_is_would_block_in_coroutines_and_threads() {
    within(SHORT, || {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(socket.set_read_timeout(Some(Duration::ZERO)).is_err());
        assert_eq!(socket.read_timeout().unwrap(), None);
        socket
            .set_read_timeout(Some(Duration::from_millis(30)))
            .unwrap();
        assert_eq!(
            socket.read_timeout().unwrap(),
            Some(Duration::from_millis(30))
        );
        socket
            .set_write_timeout(Some(Duration::from_millis(40)))
            .unwrap();
        assert_eq!(
            socket.write_timeout().unwrap(),
            Some(Duration::from_millis(40))
        );
        // A clone starts with the same timeouts.
        let clone = socket.try_clone().unwrap();
        assert_eq!(
            clone.read_timeout().unwrap(),
            Some(Duration::from_millis(30))
        );
        let check = move |socket: &UdpSocket| {
            let start = Instant::now();
            let err = socket.recv_from(&mut [0; 8]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::WouldBlock);
            assert!(start.elapsed() >= Duration::from_millis(30), "early");
            let err = socket.peek(&mut [0; 8]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::WouldBlock);
        };
        check(&socket); // a plain thread
        let rt = runtime(1);
        rt.block_on(|| check(&clone));
        // Non-blocking: at once, with no wait at all.
        socket.set_nonblocking(true).unwrap();
        socket.set_read_timeout(None).unwrap();
        let err = socket.recv(&mut [0; 8]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
        rt.block_on(|| {
            let err = socket.recv_from(&mut [0; 8]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::WouldBlock);
        });
    });
}

#[test]
fn udp_connect_send_recv_peek_and_options() {
    within(SHORT, || {
        let rt = runtime(2);
        rt.block_on(|| {
            let a = UdpSocket::bind("127.0.0.1:0").unwrap();
            let b = UdpSocket::bind("127.0.0.1:0").unwrap();
            let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
            let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
            assert_eq!(a.peer_addr().unwrap_err().kind(), ErrorKind::NotConnected);
            a.connect(b_addr).unwrap();
            b.connect(format!("127.0.0.1:{}", a_addr.port())).unwrap();
            assert_eq!(a.peer_addr().unwrap(), b_addr);
            // A connected socket only hears its peer: the stranger's datagram is dropped.
            stranger.send_to(b"stranger", a_addr).unwrap();
            let b = Arc::new(b);
            let sender = {
                let b = b.clone();
                corun::spawn(move || {
                    corun::sleep(Duration::from_millis(5)); // let `a` park in recv
                    assert_eq!(b.send(b"hello").unwrap(), 5);
                })
            };
            let mut buf = [0; 16];
            assert_eq!(a.peek(&mut buf).unwrap(), 5);
            assert_eq!(a.peek_from(&mut buf).unwrap(), (5, b_addr));
            assert_eq!(a.recv(&mut buf).unwrap(), 5);
            assert_eq!(&buf[..5], b"hello");
            sender.join().unwrap();
            a.send(b"back").unwrap();
            assert_eq!(b.recv_from(&mut buf).unwrap(), (4, a_addr));
            assert_eq!(&buf[..4], b"back");

            a.set_ttl(42).unwrap();
            assert_eq!(a.ttl().unwrap(), 42);
            a.set_broadcast(true).unwrap();
            assert!(a.broadcast().unwrap());
            a.set_multicast_loop_v4(false).unwrap();
            assert!(!a.multicast_loop_v4().unwrap());
            a.set_multicast_ttl_v4(3).unwrap();
            assert_eq!(a.multicast_ttl_v4().unwrap(), 3);
            assert!(a.take_error().unwrap().is_none());
            // Joining a group needs a multicast-capable interface; whatever the machine says,
            // it is an answer, not a panic.
            let group = Ipv4Addr::new(239, 255, 7, 7);
            if stranger
                .join_multicast_v4(&group, &Ipv4Addr::UNSPECIFIED)
                .is_ok()
            {
                stranger
                    .leave_multicast_v4(&group, &Ipv4Addr::UNSPECIFIED)
                    .unwrap();
            }
            // An address that resolves to nothing is an error, not a panic.
            let none: &[std::net::SocketAddr] = &[];
            assert_eq!(
                stranger.send_to(b"x", none).unwrap_err().kind(),
                ErrorKind::InvalidInput
            );
        });
    });
}

/// Serves echo on `listener` until it has handled `connections` connections.
fn unix_echo_server(listener: UnixListener, connections: usize) -> corun::JoinHandle<()> {
    corun::spawn(move || {
        let mut handles = Vec::new();
        for stream in (&listener).into_iter().take(connections) {
            let stream = stream.unwrap();
            handles.push(corun::spawn(move || common::echo_until_eof(stream)));
        }
        handles.into_iter().for_each(|h| h.join().unwrap());
    })
}

#[test]
fn unix_stream_echo_many_clients_random_payloads_byte_for_byte() {
    const CLIENTS: u64 = 150;
    within(SHORT * 2, || {
        let path = TempPath::new("echo");
        let rt = runtime(2);
        rt.block_on(|| {
            let listener = UnixListener::bind(&path).unwrap();
            assert_eq!(
                listener.local_addr().unwrap().as_pathname(),
                Some(path.as_ref())
            );
            let server = unix_echo_server(listener, CLIENTS as usize);
            let clients: Vec<_> = (0..CLIENTS)
                .map(|i| {
                    let path = path.0.clone();
                    corun::spawn(move || {
                        let payload = common::payload(i + 1, 64 * 1024);
                        let stream = UnixStream::connect(&path).unwrap();
                        assert_eq!(stream.peer_addr().unwrap().as_pathname(), Some(&*path));
                        let writer = stream.try_clone().unwrap();
                        let shut = |w: &UnixStream| w.shutdown(Shutdown::Write).unwrap();
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
            server.join().unwrap();
        });
    });
}

#[test]
fn unix_stream_pair_vectored_peek_timeout_and_shutdown() {
    within(SHORT, || {
        let rt = runtime(2);
        rt.block_on(|| {
            let (a, b) = UnixStream::pair().unwrap();
            assert!(a.local_addr().unwrap().is_unnamed());
            assert!(a.peer_addr().unwrap().is_unnamed());
            let writer = corun::spawn(move || {
                corun::sleep(Duration::from_millis(5)); // let the reader park in peek
                let n = (&b)
                    .write_vectored(&[IoSlice::new(b"hello "), IoSlice::new(b"world")])
                    .unwrap();
                assert_eq!(n, 11);
                b
            });
            let mut buf = [0; 11];
            let n = a.peek(&mut buf).unwrap();
            assert!(n > 0 && buf[..n] == b"hello world"[..n]);
            let b = writer.join().unwrap();
            let (mut x, mut y) = ([0; 6], [0; 5]);
            // One write of a Unix stream is one buffer in the kernel, and it is all there (the
            // writer has finished): one read takes it whole.
            let n = (&a)
                .read_vectored(&mut [IoSliceMut::new(&mut x), IoSliceMut::new(&mut y)])
                .unwrap();
            assert_eq!(n, 11);
            assert_eq!((&x, &y), (b"hello ", b"world"));

            a.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
            let start = Instant::now();
            let err = (&a).read(&mut buf).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::WouldBlock);
            assert!(start.elapsed() >= Duration::from_millis(20), "early");

            // A reader parked on the connection wakes up when the peer shuts its writes down.
            let reader = corun::spawn(move || {
                a.set_read_timeout(None).unwrap();
                (&a).read(&mut [0; 4]).unwrap()
            });
            corun::sleep(Duration::from_millis(5));
            b.shutdown(Shutdown::Write).unwrap();
            assert_eq!(reader.join().unwrap(), 0, "EOF is Ok(0)");
            assert!(b.take_error().unwrap().is_none());
        });
    });
}

#[test]
fn unix_datagram_pair_and_bound_send_to_recv_from() {
    within(SHORT, || {
        let rt = runtime(2);
        let (p1, p2) = (TempPath::new("dg-a"), TempPath::new("dg-b"));
        rt.block_on(|| {
            // A connected pair.
            let (x, y) = UnixDatagram::pair().unwrap();
            let y = corun::spawn(move || {
                let mut buf = [0; 8];
                let n = y.recv(&mut buf).unwrap();
                y.send(&buf[..n]).unwrap();
                y
            });
            x.send(b"ping").unwrap();
            let mut buf = [0; 8];
            assert_eq!(x.recv(&mut buf).unwrap(), 4);
            assert_eq!(&buf[..4], b"ping");
            drop(y.join().unwrap());

            // Two bound sockets, addressed by path.
            let a = UnixDatagram::bind(&p1).unwrap();
            let b = UnixDatagram::bind(&p2).unwrap();
            assert_eq!(a.local_addr().unwrap().as_pathname(), Some(p1.as_ref()));
            let b = corun::spawn(move || {
                let mut buf = [0; 64];
                for _ in 0..100 {
                    let (n, from) = b.recv_from(&mut buf).unwrap();
                    b.send_to(&buf[..n], from.as_pathname().unwrap()).unwrap();
                }
                b
            });
            for i in 0..100u32 {
                a.send_to(&i.to_le_bytes(), &p2).unwrap();
                let (n, from) = a.peek_from(&mut buf).unwrap();
                assert_eq!((n, from.as_pathname()), (4, Some(p2.as_ref())));
                let (n, from) = a.recv_from(&mut buf).unwrap();
                assert_eq!((n, from.as_pathname()), (4, Some(p2.as_ref())));
                assert_eq!(buf[..4], i.to_le_bytes());
            }
            let b = b.join().unwrap();

            // An unbound sender is unnamed to the receiver; a connected one needs no address.
            let u = UnixDatagram::unbound().unwrap();
            u.send_to(b"anon", &p2).unwrap();
            let (n, from) = b.recv_from(&mut buf).unwrap();
            assert_eq!(n, 4);
            assert!(from.is_unnamed());
            u.connect(&p2).unwrap();
            assert_eq!(u.peer_addr().unwrap().as_pathname(), Some(p2.as_ref()));
            u.send(b"conn").unwrap();
            assert_eq!(b.peek(&mut buf).unwrap(), 4);
            assert_eq!(b.recv(&mut buf).unwrap(), 4);
            assert_eq!(&buf[..4], b"conn");
            // Sending to a path nobody is bound to is the OS's error.
            let nowhere = TempPath::new("nowhere");
            assert_eq!(
                a.send_to(b"x", &nowhere).unwrap_err().kind(),
                ErrorKind::NotFound
            );
        });
    });
}

/// Sends to `path` from `filler`, without waiting, until the receiver's queue is full
/// (`net.unix.max_dgram_qlen`, 10 by default); returns how many it sent.
fn fill(filler: &UnixDatagram, path: &Path) -> usize {
    filler.set_nonblocking(true).unwrap();
    let mut queued = 0;
    loop {
        match filler.send_to(&u32::MAX.to_le_bytes(), path) {
            Ok(_) => queued += 1,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return queued,
            Err(e) => panic!("unexpected: {e}"),
        }
        assert!(queued < 1_000_000, "the queue never filled");
    }
}

#[test]
fn unix_datagram_send_to_a_full_receiver_waits_then_times_out() {
    const COUNT: u32 = 1000;
    within(SHORT, || {
        let rt = runtime(2);
        let path = TempPath::new("full");
        rt.block_on(|| {
            let receiver = UnixDatagram::bind(&path).unwrap();
            let filler = UnixDatagram::unbound().unwrap();
            let sender = UnixDatagram::unbound().unwrap();
            // The queue is full of another socket's datagrams: no event will ever tell the
            // sender there is room (the kernel wakes the socket whose datagram was consumed).
            let queued = fill(&filler, path.as_ref());
            let s = {
                let path = path.0.clone();
                corun::spawn(move || {
                    for i in 0..COUNT {
                        sender.send_to(&i.to_le_bytes(), &path).unwrap();
                    }
                    sender
                })
            };
            corun::sleep(Duration::from_millis(20)); // most likely waiting by now; either way
            let mut buf = [0; 8];
            for _ in 0..queued {
                assert_eq!(receiver.recv(&mut buf).unwrap(), 4);
                assert_eq!(buf[..4], u32::MAX.to_le_bytes());
            }
            for i in 0..COUNT {
                assert_eq!(receiver.recv(&mut buf).unwrap(), 4);
                assert_eq!(buf[..4], i.to_le_bytes(), "in order, none lost");
            }
            let sender = s.join().unwrap();

            // Full again: a send with a write timeout times out, in a coroutine...
            let queued = fill(&filler, path.as_ref());
            sender
                .set_write_timeout(Some(Duration::from_millis(20)))
                .unwrap();
            let start = Instant::now();
            let err = sender.send_to(b"late", &path).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::WouldBlock);
            assert!(start.elapsed() >= Duration::from_millis(20), "early");
            // ...and on a plain thread.
            let err = std::thread::scope(|s| {
                s.spawn(|| {
                    let start = Instant::now();
                    let err = sender.send_to(b"late", &path).unwrap_err();
                    assert!(start.elapsed() >= Duration::from_millis(20), "early");
                    err
                })
                .join()
                .unwrap()
            });
            assert_eq!(err.kind(), ErrorKind::WouldBlock);
            // Non-blocking: at once.
            sender.set_nonblocking(true).unwrap();
            let err = sender.send_to(b"late", &path).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::WouldBlock);
            for _ in 0..queued {
                assert_eq!(receiver.recv(&mut buf).unwrap(), 4);
            }
            receiver.set_nonblocking(true).unwrap();
            let err = receiver.recv(&mut buf).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::WouldBlock, "nothing else arrived");
        });
    });
}

#[test]
fn unix_connect_to_a_full_backlog_waits_for_room() {
    const CLIENTS: u32 = 20;
    within(SHORT, || {
        let rt = runtime(2);
        let path = TempPath::new("backlog");
        rt.block_on(|| {
            let listener = UnixListener::bind(&path).unwrap();
            // Shrink the backlog: Linux lets `listen` change it on a listening socket.
            // SAFETY: a valid descriptor, owned by `listener`, which outlives the call.
            let rc = unsafe { libc::listen(listener.as_raw_fd(), 1) };
            assert_eq!(rc, 0);
            let clients: Vec<_> = (0..CLIENTS)
                .map(|i| {
                    let path = path.0.clone();
                    corun::spawn(move || {
                        let mut s = UnixStream::connect(&path).unwrap();
                        s.write_all(&i.to_le_bytes()).unwrap();
                        s
                    })
                })
                .collect();
            corun::sleep(Duration::from_millis(20)); // most likely some are retrying by now
            let mut seen = vec![false; CLIENTS as usize];
            let mut accepted = Vec::new();
            for _ in 0..CLIENTS {
                let (mut s, peer) = listener.accept().unwrap();
                assert!(peer.is_unnamed());
                let mut id = [0; 4];
                s.read_exact(&mut id).unwrap();
                let id = u32::from_le_bytes(id) as usize;
                assert!(!seen[id], "connection {id} accepted twice");
                seen[id] = true;
                accepted.push(s);
            }
            clients.into_iter().for_each(|c| drop(c.join().unwrap()));
        });
    });
}

#[test]
fn a_shut_down_unix_listener_ends_incoming() {
    within(SHORT, || {
        let rt = runtime(1);
        let path = TempPath::new("shut");
        rt.block_on(|| {
            let listener = Arc::new(UnixListener::bind(&path).unwrap());
            let l = listener.clone();
            let server = corun::spawn(move || l.incoming().count());
            // Let it park in accept.
            corun::sleep(Duration::from_millis(10));
            // SAFETY: a valid descriptor, owned by `listener`, which outlives the call.
            let rc = unsafe { libc::shutdown(listener.as_raw_fd(), libc::SHUT_RDWR) };
            assert_eq!(rc, 0);
            assert_eq!(server.join().unwrap(), 0);
            // And accept says EINVAL from then on, as a TCP listener's does.
            let err = listener.accept().unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
        });
        // From a plain thread, too.
        let path = TempPath::new("shut-thread");
        let listener = Arc::new(UnixListener::bind(&path).unwrap());
        let l = listener.clone();
        let server = std::thread::spawn(move || l.incoming().count());
        std::thread::sleep(Duration::from_millis(10));
        // SAFETY: a valid descriptor, owned by `listener`, which outlives the call.
        let rc = unsafe { libc::shutdown(listener.as_raw_fd(), libc::SHUT_RDWR) };
        assert_eq!(rc, 0);
        assert_eq!(server.join().unwrap(), 0);
    });
}

#[test]
fn unix_and_udp_sockets_work_from_plain_threads() {
    within(SHORT, || {
        let path = TempPath::new("threads");
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0; 5];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf).unwrap();
            // Non-blocking listener: no connection waiting.
            listener.set_nonblocking(true).unwrap();
            assert_eq!(listener.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
        });
        let mut c = UnixStream::connect(&path).unwrap();
        c.write_all(b"hello").unwrap();
        let mut buf = [0; 5];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        server.join().unwrap();
        c.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        assert_eq!(c.read(&mut buf).unwrap(), 0);

        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b_addr = b.local_addr().unwrap();
        let echo = std::thread::spawn(move || {
            let mut buf = [0; 8];
            let (n, from) = b.recv_from(&mut buf).unwrap();
            b.send_to(&buf[..n], from).unwrap();
        });
        a.send_to(b"udp", b_addr).unwrap();
        assert_eq!(a.recv_from(&mut buf).unwrap(), (3, b_addr));
        echo.join().unwrap();

        let (x, y) = UnixDatagram::pair().unwrap();
        let t = std::thread::spawn(move || {
            let mut buf = [0; 8];
            let n = y.recv(&mut buf).unwrap();
            y.send(&buf[..n]).unwrap();
        });
        x.send(b"dgram").unwrap();
        assert_eq!(x.recv(&mut buf).unwrap(), 5);
        t.join().unwrap();
        x.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let start = Instant::now();
        assert_eq!(x.recv(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
        assert!(start.elapsed() >= Duration::from_millis(20), "early");
    });
}

#[test]
fn try_clone_shares_the_socket_between_coroutines() {
    within(SHORT, || {
        let rt = runtime(2);
        rt.block_on(|| {
            let (a, b) = UnixStream::pair().unwrap();
            a.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
            let a2 = a.try_clone().unwrap();
            assert_eq!(a2.write_timeout().unwrap(), Some(Duration::from_secs(5)));
            // One clone writes while the other reads.
            let w = corun::spawn(move || {
                for i in 0..1000u32 {
                    (&a2).write_all(&i.to_le_bytes()).unwrap();
                }
            });
            let echo = corun::spawn(move || {
                let mut buf = [0; 4];
                for _ in 0..1000 {
                    (&b).read_exact(&mut buf).unwrap();
                    (&b).write_all(&buf).unwrap();
                }
            });
            let mut buf = [0; 4];
            for i in 0..1000u32 {
                (&a).read_exact(&mut buf).unwrap();
                assert_eq!(u32::from_le_bytes(buf), i);
            }
            w.join().unwrap();
            echo.join().unwrap();

            let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
            let clone = udp.try_clone().unwrap();
            assert_eq!(clone.local_addr().unwrap(), udp.local_addr().unwrap());
            let addr = udp.local_addr().unwrap();
            let r = corun::spawn(move || {
                let mut buf = [0; 4];
                clone.recv(&mut buf).unwrap()
            });
            corun::sleep(Duration::from_millis(5));
            udp.send_to(b"self", addr).unwrap();
            assert_eq!(r.join().unwrap(), 4);

            let (d, e) = UnixDatagram::pair().unwrap();
            let d2 = d.try_clone().unwrap();
            d2.send(b"via clone").unwrap();
            assert_eq!(e.recv(&mut [0; 16]).unwrap(), 9);
            drop(d);
            let path = TempPath::new("clone"); // kept: dropping it removes the file
            let l = UnixListener::bind(&path).unwrap();
            let l2 = l.try_clone().unwrap();
            assert_eq!(
                l2.local_addr().unwrap().as_pathname(),
                l.local_addr().unwrap().as_pathname()
            );
        });
    });
}

#[test]
fn conversions_to_and_from_std_and_descriptors() {
    use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
    within(SHORT, || {
        let rt = runtime(1);
        rt.block_on(|| {
            let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
            let a = UnixStream::from(a);
            let b = UnixStream::from(OwnedFd::from(b));
            (&a).write_all(b"over").unwrap();
            let mut buf = [0; 4];
            (&b).read_exact(&mut buf).unwrap();
            // Back to std: blocking again, and the data is intact.
            (&b).write_all(b"back").unwrap();
            let mut a = std::os::unix::net::UnixStream::from(a);
            a.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"back");
            let raw = b.into_raw_fd();
            // SAFETY: `raw` was just given up by `into_raw_fd` and is owned by nobody else.
            let b = unsafe { UnixStream::from_raw_fd(raw) };
            a.write_all(b"raw!").unwrap();
            (&b).read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"raw!");

            let udp = UdpSocket::from(std::net::UdpSocket::bind("127.0.0.1:0").unwrap());
            udp.set_read_timeout(Some(Duration::from_millis(5)))
                .unwrap();
            assert_eq!(
                udp.recv(&mut buf).unwrap_err().kind(),
                ErrorKind::WouldBlock
            );
            let udp = std::net::UdpSocket::from(udp);
            assert!(udp.local_addr().is_ok());

            let (x, y) = std::os::unix::net::UnixDatagram::pair().unwrap();
            let x = UnixDatagram::from(x);
            y.send(b"dg").unwrap();
            assert_eq!(x.recv(&mut buf).unwrap(), 2);
            let path = TempPath::new("conv");
            let l = UnixListener::from(std::os::unix::net::UnixListener::bind(&path).unwrap());
            let c = corun::spawn({
                let path = path.0.clone();
                move || UnixStream::connect(path).unwrap()
            });
            let (_s, _) = l.accept().unwrap();
            drop(c.join().unwrap());
            let _l: OwnedFd = l.into();
        });
    });
}

/// A Unix stream read stops after a message that carried descriptors, with data still queued:
/// a read shorter than its buffer does not mean the queue is empty there, and the next read
/// must not wait for an edge that already came.
#[test]
fn a_unix_read_cut_short_by_a_descriptor_does_not_lose_the_rest() {
    within(SHORT, || {
        let rt = runtime(1);
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let a = UnixStream::from(std::os::fd::OwnedFd::from(a));
        let reader = rt.spawn(move || {
            let mut a = a;
            a.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut one = [0u8; 1];
            a.read_exact(&mut one).unwrap(); // registered with the netpoller by now
            let mut got = Vec::new();
            let mut buf = [0u8; 100];
            while got.len() < 20 {
                let n = a.read(&mut buf).unwrap();
                assert!(n > 0, "end-of-file after {} bytes", got.len());
                got.extend_from_slice(&buf[..n]);
            }
            got
        });
        std::thread::sleep(Duration::from_millis(50));
        let mut b = b;
        b.write_all(b"x").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let data = [1u8; 10];
        let mut iov = libc::iovec {
            iov_base: data.as_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        };
        let mut control = [0u64; 8];
        // SAFETY: an all-zero `msghdr` is valid; the pointers set below point at `iov`,
        // `control` and `data`, which outlive the `sendmsg` call, and the control message is
        // written within `control` (CMSG_SPACE(4) bytes of its 64).
        let sent = unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(4) as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(4) as _;
            *(libc::CMSG_DATA(cmsg) as *mut i32) = b.as_raw_fd();
            libc::sendmsg(b.as_raw_fd(), &msg, 0)
        };
        assert_eq!(sent, 10);
        b.write_all(&[2u8; 10]).unwrap();
        let got = reader.join().unwrap();
        assert_eq!(got, [[1u8; 10], [2u8; 10]].concat());
    });
}

/// A handle in non-blocking mode attempts its call even when its readiness cell has not heard
/// of the data yet: a caller that learned readiness elsewhere (here its own `poll(2)`, which
/// blocks the worker so that nobody harvests events meanwhile) gets the data, not a
/// `WouldBlock` from a stale cell.
#[test]
fn a_non_blocking_read_after_the_callers_own_poll_finds_the_data() {
    within(SHORT, || {
        let rt = runtime(1);
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let a = UnixStream::from(std::os::fd::OwnedFd::from(a));
        let reader = rt.spawn(move || {
            let mut a = a;
            let mut one = [0u8; 1];
            a.read_exact(&mut one).unwrap(); // registered, and the cell still says ready
            let mut buf = [0u8; 8];
            assert_eq!(a.read(&mut buf).unwrap(), 2);
            a.set_nonblocking(true).unwrap();
            let (mut stale, mut received) = (0, 0);
            while received < 20 {
                let mut pollfd = libc::pollfd {
                    fd: a.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid, exclusively borrowed `pollfd`, and a count of 1.
                assert_eq!(unsafe { libc::poll(&mut pollfd, 1, 10_000) }, 1);
                // The first read after `poll` must find the data; then read until
                // `WouldBlock`, which tells the cell "not ready" before the next round.
                match a.read(&mut buf) {
                    Ok(n) => received += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => stale += 1,
                    Err(e) => panic!("{e}"),
                }
                loop {
                    match a.read(&mut buf) {
                        Ok(n) => received += n,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            stale
        });
        let mut b = b;
        b.write_all(b"x").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        b.write_all(b"yz").unwrap();
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(5));
            b.write_all(b"q").unwrap();
        }
        assert_eq!(
            reader.join().unwrap(),
            0,
            "reads answered WouldBlock after poll"
        );
    });
}
