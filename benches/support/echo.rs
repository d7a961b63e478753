//! The `tcp_echo` workload, one program for `benches/net.rs` and `benches/hook.rs` so that their
//! figures compare: 100 connections × 1000 round trips of 64 bytes over loopback, the echo server
//! (one coroutine/task per connection) and the 100 clients all in the runtime under test,
//! `TCP_NODELAY` on both ends. Timed from the moment every client is connected (a barrier) until
//! the last one has finished, with the context switches of the process meanwhile.
//!
//! The corun program is the macro [`blocking_echo!`], written against std-like blocking sockets:
//! [`corun_echo`] instantiates it with `corun::net`'s types, `benches/hook.rs` again with std's
//! (made to park by the hooks). [`tokio_echo`] is the same program on tokio.

use super::{context_switches, tokio_runtime};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Connections of a round, one client coroutine/task each.
pub const ECHO_CONNS: usize = 100;
/// Round trips of each connection.
pub const ECHO_ROUND_TRIPS: usize = 1000;
/// Bytes of a message.
pub const ECHO_MSG: usize = 64;

/// One round of the blocking-style echo on a fresh corun runtime with `$Listener`/`$Stream` as
/// the socket types (they need std's `bind`, `local_addr`, `accept`, `connect`, `set_nodelay`
/// and `Read`/`Write`): the elapsed time of the 100 × 1000 round trips, and the context switches
/// meanwhile. The same text serves std's types (under the hooks) and corun::net's.
macro_rules! blocking_echo {
    ($Listener:ty, $Stream:ty) => {{
        use std::io::{Read, Write};
        use std::sync::Arc;
        use std::time::Instant;
        use $crate::support::echo::{ECHO_CONNS, ECHO_MSG, ECHO_ROUND_TRIPS};
        use $crate::support::{context_switches, corun_runtime};
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
/// The macro by path, `support::echo::blocking_echo!`; only `benches/hook.rs` names it so.
#[allow(unused_imports)]
pub(crate) use blocking_echo;

/// One round with corun::net's sockets.
pub fn corun_echo() -> (Duration, u64) {
    blocking_echo!(corun::net::TcpListener, corun::net::TcpStream)
}

/// One round on tokio, the same shape (the driving code in a spawned task, like corun's
/// `block_on`, which runs its closure on a worker).
pub fn tokio_echo() -> (Duration, u64) {
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

/// A round's figures from what [`corun_echo`], [`tokio_echo`] or another instance of
/// [`blocking_echo!`] returned: round trips per second, and context switches per round trip.
pub fn rates((elapsed, switches): (Duration, u64)) -> (f64, f64) {
    let round_trips = (ECHO_CONNS * ECHO_ROUND_TRIPS) as f64;
    (
        round_trips / elapsed.as_secs_f64(),
        switches as f64 / round_trips,
    )
}
