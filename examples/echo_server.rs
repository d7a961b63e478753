//! A TCP echo server: one coroutine per connection, written as plain blocking code.
//!
//! ```text
//! cargo run --release --example echo_server               # listens on 127.0.0.1:7878
//! cargo run --release --example echo_server -- 0.0.0.0:9000
//! printf 'hello\n' | nc -q1 127.0.0.1 7878                # prints "hello"
//! ```
//!
//! Every accepted connection gets its own coroutine, which reads and writes back until the
//! peer closes. A read or write parks only that coroutine; the runtime's workers serve all the
//! others meanwhile.
//!
//! Ctrl-C stops it cleanly: the handler shuts the listening socket down (`shutdown(2)`), which
//! makes the pending `accept` fail, so `incoming()` ends and `block_on` returns; dropping the
//! runtime then unwinds the connection coroutines still parked in `read`, closing their sockets.
//! A second Ctrl-C exits at once.
//!
//! It sets no timeouts, to stay short: an idle client keeps its coroutine and descriptor until
//! it closes. `http_hello` shows a server that does not trust its clients.

use corun::net::{TcpListener, TcpStream};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Mutex};

const DEFAULT_ADDR: &str = "127.0.0.1:7878";

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| DEFAULT_ADDR.to_owned());
    let runtime = corun::Runtime::new()?;
    let listener = TcpListener::bind(&addr)?;
    println!("echo server listening on {}", listener.local_addr()?);

    // The descriptor the Ctrl-C handler shuts down: cleared (under the lock) before the
    // listener is closed, so the handler never touches a descriptor number reused since.
    let stop_fd: Arc<Mutex<Option<RawFd>>> = Arc::new(Mutex::new(Some(listener.as_raw_fd())));
    let handler_fd = stop_fd.clone();
    ctrlc::set_handler(move || {
        if let Some(fd) = handler_fd.lock().unwrap().take() {
            eprintln!("\nstopping");
            // SAFETY: `fd` is the listener's descriptor, still open: main takes it out of the
            // mutex before the listener is dropped.
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
        } else {
            // A second Ctrl-C (or one while shutting down): stop at once.
            eprintln!("\nstopping at once");
            std::process::exit(130);
        }
    })
    .map_err(io::Error::other)?;

    let connections = runtime.block_on(|| {
        let mut connections = 0u64;
        let mut backoff = AcceptBackoff::default();
        for stream in listener.incoming() {
            match stream {
                Ok(stream) => {
                    backoff.succeeded();
                    connections += 1;
                    corun::spawn(move || serve(stream));
                }
                // Out of descriptors (the listener stays ready, so trying again at once would
                // spin), a connection reset before it was accepted...: wait a little, go on.
                Err(e) => backoff.failed(&e),
            }
        }
        connections
    });

    stop_fd.lock().unwrap().take();
    drop(listener);
    // Unwinds the coroutines still serving connections (their sockets close as they unwind).
    drop(runtime);
    println!("served {connections} connections; bye");
    Ok(())
}

/// Echoes everything the peer sends until it closes its side (or an error).
fn serve(mut stream: TcpStream) {
    let peer = stream.peer_addr().ok();
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
    if let (Err(e), Some(peer)) = (result, peer) {
        eprintln!("{peer}: {e}");
    }
}

/// What the accept loop does after an error: most likely the process is out of descriptors,
/// and the pending connection stays queued (the listener stays ready), so trying again at once
/// would spin. Wait 5 ms, doubling up to 1 s while the errors go on (Go's net/http does the
/// same), and report the first error of each streak rather than every attempt.
#[derive(Default)]
struct AcceptBackoff {
    delay: Option<std::time::Duration>,
}

impl AcceptBackoff {
    fn failed(&mut self, error: &std::io::Error) {
        let delay = match self.delay {
            None => {
                eprintln!("accept: {error} (retrying with back-off)");
                std::time::Duration::from_millis(5)
            }
            Some(delay) => (delay * 2).min(std::time::Duration::from_secs(1)),
        };
        self.delay = Some(delay);
        corun::sleep(delay);
    }

    fn succeeded(&mut self) {
        self.delay = None;
    }
}
