#![cfg(loom)]
//! Models of the netpoller's readiness cell (`src/io/readiness.rs`): a loom thread stands in
//! for the netpoller, others for coroutines doing I/O on one descriptor.
//!
//! The "kernel" is a counter of bytes waiting in the socket. An attempt takes one byte if there
//! is one (else it would block); the poller adds a byte, then reports the edge, as epoll does
//! in edge-triggered mode: one event per arrival, none for data that was already there. A
//! reader that misses an edge (an event that came between its `WouldBlock` and its park, or
//! between its look at the cell and its system call) parks for ever, which loom reports as a
//! deadlock.

use corun::__loom::{Direction, ScheduledIo};
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

/// A socket: its bytes, and its readiness cell.
struct Socket {
    bytes: AtomicUsize,
    cell: ScheduledIo,
}

impl Socket {
    fn new() -> Arc<Socket> {
        Arc::new(Socket {
            bytes: AtomicUsize::new(0),
            cell: ScheduledIo::new(),
        })
    }

    /// The non-blocking system call: takes a byte, or reports that it would block.
    fn try_read(&self) -> bool {
        self.bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
    }

    /// The loop of `Source::do_io` for one byte: look at the cell, attempt if it may succeed,
    /// clear it after `WouldBlock`, wait while it says not ready.
    fn read(&self) {
        loop {
            let seen = self.cell.readiness(Direction::Read);
            if seen.is_ready() {
                if self.try_read() {
                    return;
                }
                self.cell.clear(seen);
            }
            self.cell.wait(Direction::Read);
        }
    }

    /// The kernel receives a byte, and the netpoller reports the edge.
    fn arrive(&self) {
        self.bytes.fetch_add(1, Ordering::AcqRel);
        self.cell.set_ready(true, false);
    }
}

/// One reader, one byte: the edge reaches the reader whenever it comes.
#[test]
fn one_edge_reaches_a_reader() {
    loom::model(|| {
        let s = Socket::new();
        let poller = {
            let s = s.clone();
            thread::spawn(move || s.arrive())
        };
        s.read();
        poller.join().unwrap();
        assert_eq!(s.bytes.load(Ordering::Relaxed), 0);
    });
}

/// One reader, two bytes in two edges: the second edge may arrive while the reader clears
/// after the first byte; clearing must then fail (the tick moved), or the second edge is lost.
#[test]
fn an_edge_during_the_clear_is_kept() {
    loom::model(|| {
        let s = Socket::new();
        let poller = {
            let s = s.clone();
            thread::spawn(move || {
                s.arrive();
                s.arrive();
            })
        };
        s.read();
        s.read();
        poller.join().unwrap();
        assert_eq!(s.bytes.load(Ordering::Relaxed), 0);
    });
}

/// Two readers, two bytes, two edges: each edge wakes every reader queued for it, and the one
/// that finds no byte queues again; both get a byte.
#[test]
fn two_readers_share_two_edges() {
    loom::model(|| {
        let s = Socket::new();
        let other = {
            let s = s.clone();
            thread::spawn(move || s.read())
        };
        let poller = {
            let s = s.clone();
            thread::spawn(move || {
                s.arrive();
                s.arrive();
            })
        };
        s.read();
        other.join().unwrap();
        poller.join().unwrap();
        assert_eq!(s.bytes.load(Ordering::Relaxed), 0);
    });
}

/// A stream socket whose last data comes with the end-of-file: the reader asks for more than
/// there is, so its short read clears READY without a `WouldBlock` (`clear_drained`), but the
/// event also said "closed", which must keep the direction ready: no edge will announce the
/// end-of-file again, and the next read has to see it (`Ok(0)`) rather than wait for ever.
#[test]
fn a_short_read_does_not_hide_the_end_of_file() {
    struct Stream {
        /// (bytes waiting, the peer has closed)
        kernel: loom::sync::Mutex<(usize, bool)>,
        cell: ScheduledIo,
    }
    impl Stream {
        /// `recv` of up to 2 bytes: Some(bytes read, 0 at end-of-file), None for WouldBlock.
        fn try_read(&self) -> Option<usize> {
            let mut kernel = self.kernel.lock().unwrap();
            match *kernel {
                (0, false) => None,
                (n, _) => {
                    let took = n.min(2);
                    kernel.0 -= took;
                    Some(took)
                }
            }
        }
        /// `Source::do_io_stream` for a 2-byte buffer; returns the bytes read.
        fn read(&self) -> usize {
            loop {
                let seen = self.cell.readiness(Direction::Read);
                if seen.is_ready() {
                    match self.try_read() {
                        Some(n) => {
                            if n > 0 && n < 2 {
                                self.cell.clear_drained(seen);
                            }
                            return n;
                        }
                        None => self.cell.clear(seen),
                    }
                }
                self.cell.wait(Direction::Read);
            }
        }
    }
    loom::model(|| {
        let s = Arc::new(Stream {
            kernel: loom::sync::Mutex::new((0, false)),
            cell: ScheduledIo::new(),
        });
        let peer = {
            let s = s.clone();
            thread::spawn(move || {
                // One byte and the FIN arrive together: one edge, readable and closed.
                *s.kernel.lock().unwrap() = (1, true);
                s.cell.set_events(true, false, true, false);
            })
        };
        assert_eq!(s.read(), 1);
        assert_eq!(s.read(), 0, "the end-of-file is seen");
        peer.join().unwrap();
    });
}
