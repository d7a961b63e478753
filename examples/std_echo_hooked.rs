//! A TCP echo server written with `std::net` alone, as if for one thread per connection, but
//! with `corun::spawn` in place of `std::thread::spawn`: the `hook` feature makes it concurrent.
//! In each connection's coroutine, std's blocking `read` and `write` go through corun's hooks,
//! which park the coroutine on the netpoller instead of blocking the worker's thread.
//!
//! Needs the `hook` feature:
//!
//! ```text
//! cargo run --release --features hook --example std_echo_hooked              # 127.0.0.1:7878
//! cargo run --release --features hook --example std_echo_hooked -- 127.0.0.1:9000
//! printf 'hello\n' | nc -q1 127.0.0.1 7878                                   # prints "hello"
//! ```
//!
//! The accept loop runs on the main thread, a plain thread, where the hooks are libc's own calls:
//! `accept` blocks that thread, as it would without the hook. `echo_server` is the same server
//! written with `corun::net` (and a clean Ctrl-C).

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7878".to_owned());
    let listener = TcpListener::bind(&addr)?;
    println!(
        "std echo server (hooked) listening on {}",
        listener.local_addr()?
    );
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                corun::spawn(move || serve(stream));
            }
            Err(e) => {
                // Most likely out of descriptors: the connection stays queued, so wait a little.
                eprintln!("accept: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    Ok(())
}

/// Echoes everything the peer sends until it closes its side (or an error).
fn serve(mut stream: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    let result = loop {
        match stream.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                if let Err(e) = stream.write_all(&buf[..n]) {
                    break Err(e);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    if let Err(e) = result {
        eprintln!(
            "{}: {e}",
            stream.peer_addr().map_or("?".into(), |a| a.to_string())
        );
    }
}
