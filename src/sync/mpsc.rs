//! Multi-producer, single-consumer channels, shaped like `std::sync::mpsc`, for coroutines and
//! threads: a receiver waiting for a value parks its coroutine (or blocks its thread).
//!
//! ```
//! use corun::sync::mpsc;
//! let (tx, rx) = mpsc::channel();
//! for i in 0..3 {
//!     let tx = tx.clone();
//!     corun::spawn(move || tx.send(i).unwrap());
//! }
//! drop(tx);
//! let mut got: Vec<i32> = rx.iter().collect();
//! got.sort();
//! assert_eq!(got, [0, 1, 2]);
//! ```

pub use super::channel::SendError;
use super::channel::{Chan, SendFailure};
use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// An unbounded channel: sends never wait.
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let chan = Chan::new(None);
    (Sender { chan: chan.clone() }, Receiver { chan })
}

/// A bounded channel of `bound` values: sends wait while it is full. `sync_channel(0)` is a
/// rendezvous: each send waits until a receiver has taken its value.
pub fn sync_channel<T>(bound: usize) -> (SyncSender<T>, Receiver<T>) {
    let chan = Chan::new(Some(bound));
    (SyncSender { chan: chan.clone() }, Receiver { chan })
}

/// The sending half of an unbounded channel. Clone it for more producers.
pub struct Sender<T> {
    pub(super) chan: Arc<Chan<T>>,
}

impl<T> Sender<T> {
    /// Sends a value; fails (handing it back) only if every receiver is gone.
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.chan.send(value, None).map_err(|e| match e {
            SendFailure::Disconnected(v) | SendFailure::Timeout(v) => SendError(v),
        })
    }
}

/// The sending half of a bounded channel. Clone it for more producers.
pub struct SyncSender<T> {
    pub(super) chan: Arc<Chan<T>>,
}

impl<T> SyncSender<T> {
    /// Sends a value, waiting for room (or, on a rendezvous, for a receiver to take it); fails
    /// only if every receiver is gone.
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.chan.send(value, None).map_err(|e| match e {
            SendFailure::Disconnected(v) | SendFailure::Timeout(v) => SendError(v),
        })
    }

    /// Sends only if that needs no waiting.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.chan.try_send(value)
    }
}

macro_rules! sender_common {
    ($ty:ident) => {
        impl<T> Clone for $ty<T> {
            fn clone(&self) -> Self {
                self.chan.add_sender();
                $ty {
                    chan: self.chan.clone(),
                }
            }
        }
        impl<T> Drop for $ty<T> {
            fn drop(&mut self) {
                self.chan.drop_sender();
            }
        }
        impl<T> fmt::Debug for $ty<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty)).finish_non_exhaustive()
            }
        }
    };
}
sender_common!(Sender);
sender_common!(SyncSender);

/// The receiving half of a channel (one consumer; see `mpmc` for several).
pub struct Receiver<T> {
    pub(super) chan: Arc<Chan<T>>,
}

/// The methods of both receiver types (`mpsc` and `mpmc`).
macro_rules! receiver_methods {
    ($ty:ident) => {
        impl<T> $ty<T> {
            /// Waits for a value; fails once every sender is gone and the channel is empty.
            pub fn recv(&self) -> Result<T, $crate::sync::mpsc::RecvError> {
                self.chan
                    .recv(None)
                    .map_err(|_| $crate::sync::mpsc::RecvError)
            }

            /// Takes a value if one is there.
            pub fn try_recv(&self) -> Result<T, $crate::sync::mpsc::TryRecvError> {
                self.chan.try_recv()
            }

            /// Waits for a value at most `timeout` (never returns a timeout early).
            pub fn recv_timeout(
                &self,
                timeout: std::time::Duration,
            ) -> Result<T, $crate::sync::mpsc::RecvTimeoutError> {
                match std::time::Instant::now().checked_add(timeout) {
                    Some(deadline) => self.chan.recv(Some(deadline)),
                    None => self
                        .chan
                        .recv(None)
                        .map_err(|_| $crate::sync::mpsc::RecvTimeoutError::Disconnected),
                }
            }

            /// Waits for a value until `deadline`.
            pub fn recv_deadline(
                &self,
                deadline: std::time::Instant,
            ) -> Result<T, $crate::sync::mpsc::RecvTimeoutError> {
                self.chan.recv(Some(deadline))
            }

            /// Iterates over values until every sender is gone.
            pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
                std::iter::from_fn(move || self.recv().ok())
            }

            /// Iterates over the values that are there now, without waiting.
            pub fn try_iter(&self) -> impl Iterator<Item = T> + '_ {
                std::iter::from_fn(move || self.try_recv().ok())
            }
        }

        impl<T> Drop for $ty<T> {
            fn drop(&mut self) {
                self.chan.drop_receiver();
            }
        }

        impl<T> fmt::Debug for $ty<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty)).finish_non_exhaustive()
            }
        }
    };
}
pub(super) use receiver_methods;
receiver_methods!(Receiver);

/// `recv` failed: every sender is gone and the channel is empty.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct RecvError;

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("receiving on an empty and closed channel")
    }
}
impl Error for RecvError {}

/// Why `try_recv` returned nothing.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum TryRecvError {
    /// No value right now; senders remain.
    Empty,
    /// Every sender is gone and the channel is empty.
    Disconnected,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryRecvError::Empty => "receiving on an empty channel",
            TryRecvError::Disconnected => "receiving on an empty and closed channel",
        })
    }
}
impl Error for TryRecvError {}

/// Why `recv_timeout` / `recv_deadline` returned nothing.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum RecvTimeoutError {
    /// The time ran out; senders remain.
    Timeout,
    /// Every sender is gone and the channel is empty.
    Disconnected,
}

impl fmt::Display for RecvTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecvTimeoutError::Timeout => "timed out waiting on a channel",
            RecvTimeoutError::Disconnected => "receiving on an empty and closed channel",
        })
    }
}
impl Error for RecvTimeoutError {}

/// Why `try_send` did not send; the value is handed back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum TrySendError<T> {
    /// The channel is full (or, for a rendezvous, no receiver is waiting).
    Full(T),
    /// Every receiver is gone.
    Disconnected(T),
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Disconnected(_) => f.write_str("Disconnected(..)"),
        }
    }
}
impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrySendError::Full(_) => "sending on a full channel",
            TrySendError::Disconnected(_) => "sending on a closed channel",
        })
    }
}
impl<T> Error for TrySendError<T> {}
