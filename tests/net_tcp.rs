//! corun::net TCP: echo with many clients, accepts, timeouts, EOF, errors, plain threads.

mod common;

use common::{runtime, within, SHORT};
use corun::net::{TcpListener, TcpStream};
use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

/// Serves echo on `listener` until it has handled `connections` connections.
fn echo_server(listener: TcpListener, connections: usize) -> corun::JoinHandle<()> {
    corun::spawn(move || {
        let mut handles = Vec::new();
        for _ in 0..connections {
            let (stream, _) = listener.accept().unwrap();
            handles.push(corun::spawn(move || common::echo_until_eof(stream)));
        }
        handles.into_iter().for_each(|h| h.join().unwrap());
    })
}

#[test]
fn two_hundred_clients_echo_random_payloads_byte_for_byte() {
    within(SHORT * 2, || {
        let rt = runtime(2);
        rt.block_on(|| {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let server = echo_server(listener, 200);
            let clients: Vec<_> = (0..200u64)
                .map(|i| {
                    corun::spawn(move || {
                        let payload = common::payload(i + 1, 64 * 1024);
                        let stream = TcpStream::connect(addr).unwrap();
                        // Write from one coroutine while this one reads: `&TcpStream` is both.
                        let writer = stream.try_clone().unwrap();
                        let shut = |w: &TcpStream| w.shutdown(std::net::Shutdown::Write).unwrap();
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
fn a_thousand_concurrent_connects_are_all_accepted() {
    within(SHORT * 2, || {
        let rt = runtime(2);
        rt.block_on(|| {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let clients: Vec<_> = (0..1000u32)
                .map(|i| {
                    corun::spawn(move || {
                        let mut s = TcpStream::connect(addr).unwrap();
                        s.write_all(&i.to_le_bytes()).unwrap();
                        s
                    })
                })
                .collect();
            let mut seen = vec![false; 1000];
            let mut accepted = Vec::new();
            for _ in 0..1000 {
                let (mut s, peer) = listener.accept().unwrap();
                assert!(peer.ip().is_loopback());
                let mut id = [0; 4];
                s.read_exact(&mut id).unwrap();
                let id = u32::from_le_bytes(id) as usize;
                assert!(!seen[id], "connection {id} accepted twice");
                seen[id] = true;
                accepted.push(s);
            }
            assert!(seen.iter().all(|&s| s));
            clients.into_iter().for_each(|c| drop(c.join().unwrap()));
        });
    });
}

#[test]
fn read_timeout_returns_would_block_and_eof_is_ok_zero() {
    within(SHORT, || {
        let rt = runtime(1);
        rt.block_on(|| {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let client = corun::spawn(move || TcpStream::connect(addr).unwrap());
            let (server, _) = listener.accept().unwrap();
            let client = client.join().unwrap();
            assert!(client.set_read_timeout(Some(Duration::ZERO)).is_err());
            client
                .set_read_timeout(Some(Duration::from_millis(30)))
                .unwrap();
            assert_eq!(
                client.read_timeout().unwrap(),
                Some(Duration::from_millis(30))
            );
            let start = std::time::Instant::now();
            let err = (&client).read(&mut [0; 8]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::WouldBlock);
            assert!(
                start.elapsed() >= Duration::from_millis(30),
                "timed out early"
            );
            drop(server);
            assert_eq!((&client).read(&mut [0; 8]).unwrap(), 0, "EOF is Ok(0)");
        });
    });
}

#[test]
fn connecting_to_a_closed_port_is_refused() {
    within(SHORT, || {
        // Bind then drop, so the port is (almost surely) closed.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let rt = runtime(1);
        let err = rt.block_on(move || TcpStream::connect(addr).unwrap_err());
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
        // And from a plain thread.
        let err = TcpStream::connect(addr).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    });
}

#[test]
fn the_socket_types_work_from_plain_threads() {
    within(SHORT, || {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0; 5];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf).unwrap();
        });
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"hello").unwrap();
        let mut buf = [0; 5];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        server.join().unwrap();
        c.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        assert_eq!(c.read(&mut buf).unwrap(), 0);
    });
}

#[test]
fn a_shut_down_listener_ends_incoming() {
    use std::os::fd::AsRawFd;
    within(SHORT, || {
        let rt = runtime(1);
        rt.block_on(|| {
            let listener = std::sync::Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
            let l = listener.clone();
            let server = corun::spawn(move || l.incoming().count());
            // Let it park in accept.
            corun::sleep(Duration::from_millis(10));
            // SAFETY: a valid descriptor, owned by `listener`, which outlives the call.
            let rc = unsafe { libc::shutdown(listener.as_raw_fd(), libc::SHUT_RDWR) };
            assert_eq!(rc, 0);
            assert_eq!(server.join().unwrap(), 0);
        });
    });
}

#[test]
fn shutdown_unwinds_coroutines_parked_in_accept_read_and_sleep() {
    use common::DropCounter;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    within(SHORT, || {
        let dropped = Arc::new(AtomicUsize::new(0));
        let started = Arc::new(AtomicUsize::new(0));
        let rt = runtime(2);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        // The reader connects elsewhere: a listener nobody accepts on (the connection completes
        // in its backlog).
        let backlog = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = backlog.local_addr().unwrap();
        let d = DropCounter(dropped.clone());
        let s = started.clone();
        rt.spawn(move || {
            let _d = d;
            s.fetch_add(1, Ordering::SeqCst);
            let _ = listener.accept();
            unreachable!("nobody connects");
        });
        let d = DropCounter(dropped.clone());
        let s = started.clone();
        rt.spawn(move || {
            let _d = d;
            s.fetch_add(1, Ordering::SeqCst);
            let stream = TcpStream::connect(addr).unwrap();
            let _ = (&stream).read(&mut [0; 1]);
            unreachable!("nobody writes");
        });
        let d = DropCounter(dropped.clone());
        let s = started.clone();
        rt.spawn(move || {
            let _d = d;
            s.fetch_add(1, Ordering::SeqCst);
            corun::sleep(Duration::from_secs(3600));
        });
        common::wait_until(SHORT, "all three start", || {
            started.load(Ordering::SeqCst) == 3
        });
        std::thread::sleep(Duration::from_millis(20)); // most likely parked by now; either way
        drop(rt);
        assert_eq!(dropped.load(Ordering::SeqCst), 3, "every coroutine unwound");
    });
}

/// A vectored read with more buffers than the kernel takes at once (`IOV_MAX`, 1024) is short
/// with data still queued; the next call must not wait for an edge that already came.
#[test]
fn a_vectored_read_over_iov_max_does_not_lose_the_rest() {
    within(SHORT, || {
        let rt = runtime(1);
        rt.block_on(|| {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let writer = corun::spawn(move || {
                let (mut stream, _) = listener.accept().unwrap();
                stream.write_all(b"x").unwrap();
                corun::sleep(Duration::from_millis(50)); // the reader registers and waits
                stream.write_all(&[7u8; 1999]).unwrap();
                stream
            });
            let mut stream = TcpStream::connect(addr).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut first = [0u8; 1];
            stream.read_exact(&mut first).unwrap();
            let mut store = vec![[0u8; 1]; 1999];
            let mut total = 0;
            while total < 1999 {
                let mut bufs: Vec<_> = store[total..]
                    .iter_mut()
                    .map(|b| std::io::IoSliceMut::new(&mut b[..]))
                    .collect();
                total += stream
                    .read_vectored(&mut bufs)
                    .unwrap_or_else(|e| panic!("after {total} bytes: {e}"));
            }
            assert!(store.iter().all(|b| b[0] == 7));
            drop(writer.join().unwrap());
        });
    });
}

/// Settings that std keeps in the socket survive the way in and out of corun, and clones
/// start with them: timeouts (`SO_RCVTIMEO`/`SO_SNDTIMEO` both ways) and the non-blocking mode.
#[test]
fn conversions_and_clones_keep_timeouts_and_the_non_blocking_mode() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let std_stream = std::net::TcpStream::connect(addr).unwrap();
    let (_peer, _) = listener.accept().unwrap();
    std_stream
        .set_read_timeout(Some(Duration::from_millis(250)))
        .unwrap();
    let stream = TcpStream::from(std_stream);
    // The kernel keeps timeouts in its own ticks (jiffies), so it may round them up a little.
    let within_a_tick_of = |dur: Option<Duration>, want: u64| {
        dur.is_some_and(|d| {
            d >= Duration::from_millis(want) && d <= Duration::from_millis(want + 20)
        })
    };
    let got = stream.read_timeout().unwrap();
    assert!(within_a_tick_of(got, 250), "{got:?}");
    assert_eq!(stream.write_timeout().unwrap(), None);

    stream.set_nonblocking(true).unwrap();
    let clone = stream.try_clone().unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(
        (&clone).read(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock,
        "the clone is non-blocking too"
    );
    drop(clone);

    // Back to std in non-blocking mode: the descriptor stays non-blocking.
    let std_stream: std::net::TcpStream = stream.into();
    assert_eq!(
        (&std_stream).read(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    // Blocking mode with a timeout: std's socket times out as the handle did.
    let stream = TcpStream::from(std_stream);
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let std_stream: std::net::TcpStream = stream.into();
    let got = std_stream.read_timeout().unwrap();
    assert!(within_a_tick_of(got, 20), "{got:?}");
    assert_eq!(
        (&std_stream).read(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock,
        "a blocking read that timed out"
    );

    // A listener's clone keeps the mode as well.
    listener.set_nonblocking(true).unwrap();
    let listener_clone = listener.try_clone().unwrap();
    assert_eq!(
        listener_clone.accept().unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
}

#[test]
fn io_wait_on_a_negative_descriptor_is_ebadf_everywhere() {
    let on_thread = corun::io::wait(-1, corun::io::Interest::READABLE, None).unwrap_err();
    assert_eq!(on_thread.raw_os_error(), Some(libc::EBADF));
    let in_coroutine =
        corun::spawn(|| corun::io::wait(-1, corun::io::Interest::READABLE, None).unwrap_err())
            .join()
            .unwrap();
    assert_eq!(in_coroutine.raw_os_error(), Some(libc::EBADF));
}
