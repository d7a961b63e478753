//! A channel for exactly one value.
//!
//! ```
//! let (tx, rx) = corun::sync::oneshot::channel();
//! corun::spawn(move || tx.send(42).unwrap());
//! assert_eq!(rx.recv(), Ok(42));
//! ```

use super::channel::{Chan, SendFailure};
pub use super::mpsc::{RecvError, RecvTimeoutError, SendError, TryRecvError};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A channel for one value.
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let chan = Chan::new(Some(1));
    (Sender { chan: chan.clone() }, Receiver { chan })
}

/// Sends the one value (consumed by `send`).
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Sender<T> {
    /// Sends the value; fails (handing it back) if the receiver is gone.
    pub fn send(self, value: T) -> Result<(), SendError<T>> {
        // Capacity 1 and one send: never waits.
        self.chan.send(value, None).map_err(|e| match e {
            SendFailure::Disconnected(v) | SendFailure::Timeout(v) => SendError(v),
        })
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.chan.drop_sender();
    }
}

/// Receives the one value.
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Receiver<T> {
    /// Waits for the value; fails if the sender went away without sending.
    pub fn recv(self) -> Result<T, RecvError> {
        self.chan.recv(None).map_err(|_| RecvError)
    }

    /// Takes the value if it has been sent.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.chan.try_recv()
    }

    /// Waits for the value at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        let deadline = std::time::Instant::now().checked_add(timeout);
        self.chan.recv(deadline)
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.chan.drop_receiver();
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}
