//! `select!`: wait on several channel operations at once; the machinery behind the macro.
//!
//! Each branch is an [`Op`] that can try its operation without waiting. [`run`] tries them all,
//! starting from a branch that rotates from one call to the next (so no branch is starved when
//! several are always ready). When none is ready it queues one wait node on every channel
//! involved, tries them all once more (a change between the first try and the queueing would not
//! wake it), and parks. Afterwards it takes the node back from every channel; a channel that had
//! already dequeued it (its wake was for that channel) passes the wake on to its next waiter,
//! since the selector may take from another branch. A `default(timeout)` branch bounds the wait.

use super::channel::Chan;
use super::mpsc::{RecvError, SendError, TrySendError};
use super::wait_queue::WaitNode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A wait node, opaque outside the crate.
pub struct Node(Arc<WaitNode>);

/// One branch of a `select!` (implementation detail of the macro).
pub trait Op {
    /// Tries the operation without waiting; `true` when it completed (successfully or not).
    fn try_now(&mut self) -> bool;
    /// Queues `node` on the channel.
    fn watch(&self, node: &Node);
    /// Takes `node` back from the channel (passing on a wake it consumed).
    fn unwatch(&self, node: &Node);
}

/// A channel end `select!` can receive from.
pub trait RecvSide<T> {
    #[doc(hidden)]
    fn __chan(&self) -> ChanRef<'_, T>;
}

/// A channel end `select!` can send to.
pub trait SendSide<T> {
    #[doc(hidden)]
    fn __chan(&self) -> ChanRef<'_, T>;
}

/// A borrowed channel, opaque outside the crate.
pub struct ChanRef<'a, T>(&'a Chan<T>);

impl<T> RecvSide<T> for super::mpsc::Receiver<T> {
    fn __chan(&self) -> ChanRef<'_, T> {
        ChanRef(&self.chan)
    }
}
impl<T> RecvSide<T> for super::mpmc::Receiver<T> {
    fn __chan(&self) -> ChanRef<'_, T> {
        ChanRef(&self.chan)
    }
}
impl<T> SendSide<T> for super::mpsc::Sender<T> {
    fn __chan(&self) -> ChanRef<'_, T> {
        ChanRef(&self.chan)
    }
}
impl<T> SendSide<T> for super::mpsc::SyncSender<T> {
    fn __chan(&self) -> ChanRef<'_, T> {
        ChanRef(&self.chan)
    }
}

/// A receive branch.
pub struct RecvOp<'a, T> {
    chan: &'a Chan<T>,
    result: Option<Result<T, RecvError>>,
}

/// A send branch.
pub struct SendOp<'a, T> {
    chan: &'a Chan<T>,
    value: Option<T>,
    result: Option<Result<(), SendError<T>>>,
}

/// The receive branch on `rx`.
pub fn recv<T>(rx: &impl RecvSide<T>) -> RecvOp<'_, T> {
    RecvOp {
        chan: rx.__chan().0,
        result: None,
    }
}

/// The send branch of `value` on `tx`.
pub fn send<T>(tx: &impl SendSide<T>, value: T) -> SendOp<'_, T> {
    SendOp {
        chan: tx.__chan().0,
        value: Some(value),
        result: None,
    }
}

impl<T> RecvOp<'_, T> {
    /// The outcome, once `run` chose this branch.
    pub fn take(&mut self) -> Result<T, RecvError> {
        self.result.take().expect("select! chose this branch")
    }
}

impl<T> SendOp<'_, T> {
    /// The outcome, once `run` chose this branch.
    pub fn take(&mut self) -> Result<(), SendError<T>> {
        self.result.take().expect("select! chose this branch")
    }
}

impl<T> Op for RecvOp<'_, T> {
    fn try_now(&mut self) -> bool {
        match self.chan.try_recv() {
            Ok(value) => self.result = Some(Ok(value)),
            Err(super::mpsc::TryRecvError::Disconnected) => self.result = Some(Err(RecvError)),
            Err(super::mpsc::TryRecvError::Empty) => return false,
        }
        true
    }
    fn watch(&self, node: &Node) {
        self.chan.watch(&node.0, false);
    }
    fn unwatch(&self, node: &Node) {
        self.chan.unwatch(&node.0, false);
    }
}

impl<T> Op for SendOp<'_, T> {
    fn try_now(&mut self) -> bool {
        let value = self.value.take().expect("not sent yet");
        match self.chan.try_send(value) {
            Ok(()) => self.result = Some(Ok(())),
            Err(TrySendError::Disconnected(value)) => self.result = Some(Err(SendError(value))),
            Err(TrySendError::Full(value)) => {
                self.value = Some(value);
                return false;
            }
        }
        true
    }
    fn watch(&self, node: &Node) {
        self.chan.watch(&node.0, true);
    }
    fn unwatch(&self, node: &Node) {
        self.chan.unwatch(&node.0, true);
    }
}

fn try_all(ops: &mut [&mut dyn Op], start: usize) -> Option<usize> {
    let n = ops.len();
    (0..n).map(|k| (start + k) % n).find(|&i| ops[i].try_now())
}

/// Runs a `select!`: returns the index of the branch that completed, or `None` when the
/// `timeout` (the `default` branch) ran out first. `timeout` `None` waits as long as needed.
pub fn run(ops: &mut [&mut dyn Op], timeout: Option<Duration>) -> Option<usize> {
    // Uncancellable as a whole, so the nodes are always taken back (`unwatch`) and a wake-up
    // consumed is passed on even when a shutdown is about to unwind the caller.
    super::wait_queue::uncancellable(|| run_inner(ops, timeout))
}

fn run_inner(ops: &mut [&mut dyn Op], timeout: Option<Duration>) -> Option<usize> {
    static ROTATION: AtomicUsize = AtomicUsize::new(0);
    let n = ops.len();
    assert!(n > 0 || timeout.is_some(), "select! needs a branch");
    // A timeout too large to represent waits forever, as `None` does.
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    loop {
        let start = ROTATION.fetch_add(1, Ordering::Relaxed) % n.max(1);
        if let Some(i) = try_all(ops, start) {
            return Some(i);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        let node = Node(WaitNode::current(Instant::now()));
        for op in ops.iter() {
            op.watch(&node);
        }
        let ready = try_all(ops, start);
        if ready.is_none() {
            match deadline {
                Some(d) => {
                    node.0.wait_until(d);
                }
                None => {
                    node.0.wait();
                }
            }
        }
        for op in ops.iter() {
            op.unwatch(&node);
        }
        if ready.is_some() {
            return ready;
        }
    }
}

/// Waits on several channel operations and runs the branch of the first that completes.
///
/// ```
/// use std::time::Duration;
/// let (tx1, rx1) = corun::sync::mpsc::channel::<u32>();
/// let (_tx2, rx2) = corun::sync::mpsc::channel::<&str>();
/// let (out_tx, out_rx) = corun::sync::mpsc::sync_channel::<u8>(1);
/// tx1.send(7).unwrap();
/// let got = corun::select! {
///     recv(rx1) -> msg => format!("rx1: {}", msg.unwrap()),
///     recv(rx2) -> msg => format!("rx2: {}", msg.unwrap()),
///     send(out_tx, 1) -> res => format!("sent: {res:?}"),
///     default(Duration::from_millis(10)) => "timed out".to_string(),
/// };
/// assert!(got == "rx1: 7" || got == "sent: Ok(())");
/// ```
///
/// Branches, separated by commas:
/// * `recv(rx) -> pattern => expr`: `rx` is an `mpsc` or `mpmc` receiver; the pattern binds
///   `Result<T, RecvError>` (`Err` once every sender is gone);
/// * `send(tx, value) -> pattern => expr`: `tx` is a `Sender` or `SyncSender`; the pattern binds
///   `Result<(), SendError<T>>`;
/// * at most one `default(timeout) => expr` (runs when nothing completed within `timeout`) or
///   `default => expr` (runs at once when nothing is ready).
///
/// Without a `default` it waits as long as needed. The operation that completes is the only one
/// performed. When several are ready, the one tried first rotates from call to call, so none is
/// starved.
#[macro_export]
macro_rules! select {
    ($($tokens:tt)*) => {
        $crate::__select_parse!(@parse [] [0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15] [] $($tokens)*)
    };
}

/// Implementation of [`select!`]: parses the branches, then expands them.
#[doc(hidden)]
#[macro_export]
macro_rules! __select_parse {
    (@parse [$($ops:tt)*] [$i:tt $($is:tt)*] [$($default:tt)*]
        recv($rx:expr) -> $p:pat => $body:expr $(, $($rest:tt)*)?) => {
        $crate::__select_parse!(@parse [$($ops)* ($i [$crate::sync::__select::recv(&$rx)] $p, $body)]
            [$($is)*] [$($default)*] $($($rest)*)?)
    };
    (@parse [$($ops:tt)*] [$i:tt $($is:tt)*] [$($default:tt)*]
        send($tx:expr, $value:expr) -> $p:pat => $body:expr $(, $($rest:tt)*)?) => {
        $crate::__select_parse!(@parse [$($ops)* ($i [$crate::sync::__select::send(&$tx, $value)] $p, $body)]
            [$($is)*] [$($default)*] $($($rest)*)?)
    };
    (@parse [$($ops:tt)*] [$($is:tt)*] []
        default($timeout:expr) => $body:expr $(, $($rest:tt)*)?) => {
        $crate::__select_parse!(@parse [$($ops)*] [$($is)*]
            [(::std::option::Option::Some($timeout)) $body] $($($rest)*)?)
    };
    (@parse [$($ops:tt)*] [$($is:tt)*] []
        default => $body:expr $(, $($rest:tt)*)?) => {
        $crate::__select_parse!(@parse [$($ops)*] [$($is)*]
            [(::std::option::Option::Some(::std::time::Duration::ZERO)) $body] $($($rest)*)?)
    };
    (@parse [$(($i:tt [$op:expr] $p:pat, $body:expr))*] [$($is:tt)*] []) => {{
        let mut __select_ops = ($($op,)*);
        let __select_which = $crate::sync::__select::run(
            &mut [$(&mut __select_ops.$i as &mut dyn $crate::sync::__select::Op),*],
            ::std::option::Option::None,
        );
        match __select_which {
            $(::std::option::Option::Some($i) => {
                let $p = __select_ops.$i.take();
                $body
            })*
            _ => ::std::unreachable!("select! without default always completes a branch"),
        }
    }};
    (@parse [$(($i:tt [$op:expr] $p:pat, $body:expr))*] [$($is:tt)*] [($timeout:expr) $default:expr]) => {{
        #[allow(unused_mut)]
        let mut __select_ops = ($($op,)*);
        let __select_which = $crate::sync::__select::run(
            &mut [$(&mut __select_ops.$i as &mut dyn $crate::sync::__select::Op),*],
            $timeout,
        );
        match __select_which {
            $(::std::option::Option::Some($i) => {
                let $p = __select_ops.$i.take();
                $body
            })*
            _ => $default,
        }
    }};
}
