//! The close gate of a descriptor's entry (`fd_table.rs`): how `close` and the coroutines
//! waiting on the descriptor agree that nobody waits on it any more.
//!
//! Two parts of the entry's state word: a `CLOSING` bit, and a count of the coroutines inside
//! the waiting part of a hooked call (the upper bits, from [`USER`] up). A waiter [`enter`]s
//! before it first waits and [`leave`]s when its call returns; it checks [`closing`] before
//! each queueing on the readiness cell and after each wake, and leaves with `EBADF` once it is
//! set. The closer sets the bit with [`close`], which also says whether anyone is inside; if
//! so, it makes the readiness cell ready in both directions (waking the queued, and failing
//! any queueing that races it), and waits until [`occupied`] turns false. Then nobody touches
//! the cell or the descriptor number again, and it can deregister and close (Go's `fdMutex`).
//!
//! Why no waiter sleeps through the close: the closer's `fetch_or` comes before its wake; a
//! waiter queued before the wake is woken by it; one that queues after it finds the cell ready
//! (the queueing fails), goes round, reads the cell with Acquire (the tick that the wake
//! published, after the bit) and so sees `CLOSING` before it could queue again.
//!
//! Modelled in `loom-tests/tests/hook_close.rs`.

use crate::loom::{AtomicUsize, Ordering};

/// Set once a close has begun.
pub const CLOSING: usize = 1 << 5;
/// One coroutine inside the waiting part of a call.
pub const USER: usize = 1 << 8;

/// Counts the caller in, unless a close has begun (false: fail the call with `EBADF`).
///
/// A compare-and-swap, not an add then a check: a count taken and given back after the closer
/// looked would be seen by nobody, but the closer forgets the entry (a plain store) once the
/// count is zero, and the late give-back would then wrap the word.
pub fn enter(state: &AtomicUsize) -> bool {
    state
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
            (s & CLOSING == 0).then_some(s + USER)
        })
        .is_ok()
}

/// Counts the caller out.
pub fn leave(state: &AtomicUsize) {
    state.fetch_sub(USER, Ordering::AcqRel);
}

/// Whether a close has begun.
pub fn closing(state: &AtomicUsize) -> bool {
    state.load(Ordering::Acquire) & CLOSING != 0
}

/// Begins a close; returns whether anyone is inside (the closer must then wake them, and wait
/// until the gate is no longer [`occupied`]).
pub fn close(state: &AtomicUsize) -> bool {
    state.fetch_or(CLOSING, Ordering::SeqCst) >= USER
}

/// Whether anyone is still inside.
pub fn occupied(state: &AtomicUsize) -> bool {
    state.load(Ordering::Acquire) >= USER
}
