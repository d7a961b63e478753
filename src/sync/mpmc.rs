//! Multi-producer, multi-consumer channels: as [`mpsc`](super::mpsc), but the receiver is
//! `Clone`, and each value goes to exactly one of the receivers.
//!
//! ```
//! use corun::sync::mpmc;
//! let (tx, rx) = mpmc::channel();
//! let workers: Vec<_> = (0..4)
//!     .map(|_| {
//!         let rx = rx.clone();
//!         corun::spawn(move || rx.iter().count())
//!     })
//!     .collect();
//! drop(rx);
//! for i in 0..100 {
//!     tx.send(i).unwrap();
//! }
//! drop(tx);
//! let total: usize = workers.into_iter().map(|h| h.join().unwrap()).sum();
//! assert_eq!(total, 100);
//! ```

use super::channel::Chan;
pub use super::mpsc::{
    RecvError, RecvTimeoutError, SendError, Sender, SyncSender, TryRecvError, TrySendError,
};
use std::fmt;
use std::sync::Arc;

/// An unbounded channel with a cloneable receiver.
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let chan = Chan::new(None);
    (Sender { chan: chan.clone() }, Receiver { chan })
}

/// A bounded channel (0: rendezvous) with a cloneable receiver.
pub fn sync_channel<T>(bound: usize) -> (SyncSender<T>, Receiver<T>) {
    let chan = Chan::new(Some(bound));
    (SyncSender { chan: chan.clone() }, Receiver { chan })
}

/// The receiving half of an mpmc channel; clone it for more consumers.
pub struct Receiver<T> {
    pub(super) chan: Arc<Chan<T>>,
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.chan.add_receiver();
        Receiver {
            chan: self.chan.clone(),
        }
    }
}

super::mpsc::receiver_methods!(Receiver);
