//! The channel core under `mpsc`, `mpmc` and `oneshot`.
//!
//! One `Chan<T>`: a queue of values, a capacity (`None` unbounded, `Some(0)` a rendezvous), the
//! counts of senders and receivers, and the waiters on both sides, all under one short lock
//! (never held across a park). The wait protocol is the shared one: decide under the lock,
//! enqueue a node, park; the other side dequeues and wakes after unlocking, and the woken party
//! re-checks everything under the lock. A timed-out waiter removes its node and re-checks once,
//! so a wake that raced its deadline is not lost.
//!
//! * A send on a full bounded channel waits for room; on a rendezvous it pushes its value and
//!   then waits until a receiver has taken it (values are taken in order, so "taken" is
//!   `popped >= my sequence number`), taking it back if every receiver goes away first.
//! * The last sender to go wakes every waiting receiver (they see `Disconnected` once the queue
//!   is empty); the last receiver to go wakes every waiting sender. Nobody is left parked.

use super::wait_queue::{remove, uncancellable, wake_each, WaitNode, Waiters, WOKEN};
use crate::loom::{Mutex, MutexGuard};
use std::collections::VecDeque;
use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

pub(crate) struct Chan<T> {
    state: Mutex<State<T>>,
    /// `cap == Some(0)`, readable without the lock (the capacity never changes).
    rendezvous: bool,
}

struct State<T> {
    items: VecDeque<(u64, T)>,
    cap: Option<usize>,
    pushed: u64,
    popped: u64,
    senders: usize,
    receivers: usize,
    recv_waiters: Waiters,
    send_waiters: Waiters,
}

/// Why a send with a deadline failed (internal: the public error types are std's shapes).
pub(crate) enum SendFailure<T> {
    Disconnected(T),
    Timeout(T),
}

impl<T> Chan<T> {
    pub(crate) fn new(cap: Option<usize>) -> Arc<Chan<T>> {
        Arc::new(Chan {
            rendezvous: cap == Some(0),
            state: Mutex::new(State {
                items: VecDeque::new(),
                cap,
                pushed: 0,
                popped: 0,
                senders: 1,
                receivers: 1,
                recv_waiters: Waiters::new(),
                send_waiters: Waiters::new(),
            }),
        })
    }

    /// Sends, waiting (until `deadline`, if any) for room or, on a rendezvous, for a taker.
    ///
    /// Once it has to wait, uncancellable as a whole (a shutdown unwinds the caller only once
    /// the send is decided): a wake-up it consumed is then used, not lost for the other waiters.
    /// A send that needs no waiting (the common case) cannot be cancelled and skips all that.
    pub(crate) fn send(&self, value: T, deadline: Option<Instant>) -> Result<(), SendFailure<T>> {
        // Off a rendezvous (where every send waits for its taker), the non-waiting attempt is
        // exactly `try_send`.
        let value = if self.rendezvous {
            value
        } else {
            match self.try_send(value) {
                Ok(()) => return Ok(()),
                Err(super::mpsc::TrySendError::Disconnected(v)) => {
                    return Err(SendFailure::Disconnected(v))
                }
                Err(super::mpsc::TrySendError::Full(v)) => v,
            }
        };
        uncancellable(|| self.send_inner(value, deadline))
    }

    fn send_inner(&self, value: T, deadline: Option<Instant>) -> Result<(), SendFailure<T>> {
        let mut value = Some(value);
        loop {
            let mut st = self.state.lock();
            if st.receivers == 0 {
                return Err(SendFailure::Disconnected(value.take().expect("unsent")));
            }
            let room = match st.cap {
                Some(c) if c > 0 => st.items.len() < c,
                _ => true,
            };
            if room {
                let (seq, receiver) = Self::push(&mut st, value.take().expect("unsent"));
                if st.cap == Some(0) {
                    return self.await_taker(st, seq, receiver, deadline);
                }
                drop(st);
                if let Some(r) = receiver {
                    r.wake(WOKEN);
                }
                return Ok(());
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(SendFailure::Timeout(value.take().expect("unsent")));
            }
            let node = WaitNode::current(Instant::now());
            st.send_waiters.push_back(node.clone());
            drop(st);
            self.wait(&node, deadline, |st| &mut st.send_waiters);
        }
    }

    /// Rendezvous: our value (number `seq`) is queued; wait until a receiver took it.
    fn await_taker<'a>(
        &'a self,
        mut st: MutexGuard<'a, State<T>>,
        seq: u64,
        mut receiver: Option<Arc<WaitNode>>,
        deadline: Option<Instant>,
    ) -> Result<(), SendFailure<T>> {
        loop {
            if st.popped >= seq {
                drop(st);
                if let Some(r) = receiver.take() {
                    r.wake(WOKEN);
                }
                return Ok(());
            }
            let gone = st.receivers == 0;
            if gone || deadline.is_some_and(|d| Instant::now() >= d) {
                let at = st
                    .items
                    .iter()
                    .position(|(s, _)| *s == seq)
                    .expect("ours is queued");
                let (_, value) = st.items.remove(at).expect("found");
                drop(st);
                if let Some(r) = receiver.take() {
                    r.wake(WOKEN);
                }
                return Err(if gone {
                    SendFailure::Disconnected(value)
                } else {
                    SendFailure::Timeout(value)
                });
            }
            let node = WaitNode::current(Instant::now());
            st.send_waiters.push_back(node.clone());
            drop(st);
            if let Some(r) = receiver.take() {
                r.wake(WOKEN);
            }
            self.wait(&node, deadline, |st| &mut st.send_waiters);
            st = self.state.lock();
        }
    }

    /// Sends only if that needs no waiting.
    pub(crate) fn try_send(&self, value: T) -> Result<(), super::mpsc::TrySendError<T>> {
        let mut st = self.state.lock();
        if st.receivers == 0 {
            return Err(super::mpsc::TrySendError::Disconnected(value));
        }
        let room = match st.cap {
            Some(0) => !st.recv_waiters.is_empty(), // a receiver is there to take it
            Some(c) => st.items.len() < c,
            None => true,
        };
        if !room {
            return Err(super::mpsc::TrySendError::Full(value));
        }
        let (_, receiver) = Self::push(&mut st, value);
        drop(st);
        if let Some(r) = receiver {
            r.wake(WOKEN);
        }
        Ok(())
    }

    /// Queues `value` under the lock: returns its sequence number and the receiver to wake
    /// (after unlocking).
    fn push(st: &mut State<T>, value: T) -> (u64, Option<Arc<WaitNode>>) {
        st.pushed += 1;
        let seq = st.pushed;
        st.items.push_back((seq, value));
        (seq, st.recv_waiters.pop_front())
    }

    /// Receives, waiting (until `deadline`, if any) for a value. Like `send`: uncancellable as a
    /// whole once it has to wait, free of that when a value is there.
    pub(crate) fn recv(
        &self,
        deadline: Option<Instant>,
    ) -> Result<T, super::mpsc::RecvTimeoutError> {
        match self.try_recv() {
            Ok(value) => Ok(value),
            Err(super::mpsc::TryRecvError::Disconnected) => {
                Err(super::mpsc::RecvTimeoutError::Disconnected)
            }
            Err(super::mpsc::TryRecvError::Empty) => uncancellable(|| self.recv_inner(deadline)),
        }
    }

    fn recv_inner(&self, deadline: Option<Instant>) -> Result<T, super::mpsc::RecvTimeoutError> {
        loop {
            let mut st = self.state.lock();
            if let Some((value, senders)) = Self::take(&mut st) {
                drop(st);
                wake_each(senders, WOKEN);
                return Ok(value);
            }
            if st.senders == 0 {
                return Err(super::mpsc::RecvTimeoutError::Disconnected);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(super::mpsc::RecvTimeoutError::Timeout);
            }
            let node = WaitNode::current(Instant::now());
            st.recv_waiters.push_back(node.clone());
            let senders = Self::rendezvous_senders(&mut st);
            drop(st);
            wake_each(senders, WOKEN);
            self.wait(&node, deadline, |st| &mut st.recv_waiters);
        }
    }

    /// On a rendezvous, a receiver arriving is what a waiting `select!` send (which only sends
    /// to a receiver already there) waits for: wake the send side to look again.
    fn rendezvous_senders(st: &mut State<T>) -> Vec<Arc<WaitNode>> {
        if st.cap == Some(0) && !st.send_waiters.is_empty() {
            st.send_waiters.drain(..).collect()
        } else {
            Vec::new()
        }
    }

    /// Receives only if a value is there.
    pub(crate) fn try_recv(&self) -> Result<T, super::mpsc::TryRecvError> {
        let mut st = self.state.lock();
        match Self::take(&mut st) {
            Some((value, senders)) => {
                drop(st);
                wake_each(senders, WOKEN);
                Ok(value)
            }
            None if st.senders == 0 => Err(super::mpsc::TryRecvError::Disconnected),
            None => Err(super::mpsc::TryRecvError::Empty),
        }
    }

    /// Pops a value, and dequeues the senders it lets go on (the caller wakes them after
    /// unlocking).
    fn take(st: &mut State<T>) -> Option<(T, Vec<Arc<WaitNode>>)> {
        let (seq, value) = st.items.pop_front()?;
        // Values leave in order, so everything numbered up to `seq` has been taken (a timed-out
        // rendezvous sender may have removed its own from the middle: counting would drift).
        st.popped = seq;
        // A rendezvous sender waits for its own value to be taken: wake them all to check. A
        // bounded channel has room for one more sender.
        let senders: Vec<_> = if st.cap == Some(0) {
            st.send_waiters.drain(..).collect()
        } else {
            st.send_waiters.pop_front().into_iter().collect()
        };
        Some((value, senders))
    }

    /// Parks on `node` until woken or `deadline`; on a timeout, takes the node out of its list
    /// (found by `list`) so that nobody wakes it in vain. The caller then re-checks.
    fn wait(
        &self,
        node: &Arc<WaitNode>,
        deadline: Option<Instant>,
        list: impl FnOnce(&mut State<T>) -> &mut Waiters,
    ) {
        match deadline {
            None => {
                node.wait();
            }
            Some(deadline) => {
                if node.wait_until(deadline).is_none() {
                    let mut st = self.state.lock();
                    remove(list(&mut st), node);
                }
            }
        }
    }

    /// `select!`: queues `node` as a waiter on one side of this channel.
    pub(crate) fn watch(&self, node: &Arc<WaitNode>, send_side: bool) {
        let mut st = self.state.lock();
        if send_side {
            st.send_waiters.push_back(node.clone());
        } else {
            st.recv_waiters.push_back(node.clone());
            let senders = Self::rendezvous_senders(&mut st);
            drop(st);
            wake_each(senders, WOKEN);
        }
    }

    /// `select!`: takes `node` back. If a waker had already dequeued it, that wake was meant for
    /// a waiter of this channel, and the selector may take something else: pass it on.
    pub(crate) fn unwatch(&self, node: &Arc<WaitNode>, send_side: bool) {
        let next = {
            let mut st = self.state.lock();
            let list = if send_side {
                &mut st.send_waiters
            } else {
                &mut st.recv_waiters
            };
            if remove(list, node) {
                return;
            }
            list.pop_front()
        };
        if let Some(next) = next {
            next.wake(WOKEN);
        }
    }

    pub(crate) fn add_sender(&self) {
        self.state.lock().senders += 1;
    }

    pub(crate) fn add_receiver(&self) {
        self.state.lock().receivers += 1;
    }

    pub(crate) fn drop_sender(&self) {
        let receivers = {
            let mut st = self.state.lock();
            st.senders -= 1;
            if st.senders > 0 {
                return;
            }
            std::mem::take(&mut st.recv_waiters)
        };
        wake_each(receivers, WOKEN);
    }

    pub(crate) fn drop_receiver(&self) {
        let (senders, values) = {
            let mut st = self.state.lock();
            st.receivers -= 1;
            if st.receivers > 0 {
                return;
            }
            // As in std, values nobody can receive any more are dropped now (a reply channel
            // inside one of them then disconnects). On a rendezvous the queued values belong to
            // parked senders, which take them back.
            let values = if st.cap == Some(0) {
                VecDeque::new()
            } else {
                std::mem::take(&mut st.items)
            };
            (std::mem::take(&mut st.send_waiters), values)
        };
        drop(values);
        wake_each(senders, WOKEN);
    }
}

/// A send failed because every receiver is gone; the value is handed back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub struct SendError<T>(pub T);

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendError").finish_non_exhaustive()
    }
}
impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sending on a closed channel")
    }
}
impl<T> Error for SendError<T> {}
