//! The park/unpark protocol of one coroutine: "commit after switch".
//!
//! See DESIGN.md, "Parking a coroutine". A coroutine is always in exactly one of three places:
//!
//! * **owned**: running on a worker, or sitting in exactly one run queue. Whoever owns it is the
//!   only one allowed to touch its stack.
//! * **parked**: suspended, in no queue, owned by nobody. The first [`ParkState::unpark`] that
//!   sees this state takes ownership and must schedule it.
//! * the `NOTIFIED` bit is an independent token (like `std::thread::park`'s): an unpark that
//!   arrives while the coroutine is owned sets it, and the next park consumes it instead of
//!   sleeping.
//!
//! The coroutine never publishes itself as parked from its own stack. It checks for a token
//! ([`ParkState::try_take_token`]), then switches out; only after the switch, on the worker's
//! stack, does the worker call [`ParkState::commit_park`]. So an unpark that races with the park
//! either lands before the commit (the commit sees the token and the coroutine runs again) or
//! after it (the unparker schedules it) and never resumes a stack that is still executing.
//! Modelled in `loom-tests/tests/park.rs`.

use crate::loom::{AtomicUsize, Ordering};

/// The unpark token is present.
const NOTIFIED: usize = 0b01;
/// The coroutine is suspended and owned by nobody; an unpark must schedule it.
const PARKED: usize = 0b10;

/// What the caller of [`ParkState::unpark`] must do next.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Unparked {
    /// The coroutine was parked: the caller now owns it and must put it on a run queue.
    Schedule,
    /// The coroutine was running or queued: the token is set and nothing else is needed.
    TokenSet,
}

/// What the worker found when it tried to commit a park after the switch.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Commit {
    /// The coroutine is now parked; the worker no longer owns it.
    Parked,
    /// An unpark arrived between the coroutine's token check and the commit; the token was
    /// consumed and the worker still owns the coroutine, which must run again.
    Notified,
}

/// The atomic park state of one coroutine. Public only so `loom-tests/` can model it.
#[derive(Debug, Default)]
pub struct ParkState {
    bits: AtomicUsize,
}

impl ParkState {
    /// A fresh state: owned (the spawner is about to queue it), no token.
    pub fn new() -> Self {
        ParkState {
            bits: AtomicUsize::new(0),
        }
    }

    /// Called by the owner, on the coroutine, before switching out to park: consumes a pending
    /// token. Returns `true` when there was one, in which case the park returns at once.
    pub fn try_take_token(&self) -> bool {
        // Acquire pairs with the Release in `unpark`, so whatever the unparker wrote before
        // unparking is visible when park returns.
        self.bits.load(Ordering::Relaxed) & NOTIFIED != 0
            && self.bits.fetch_and(!NOTIFIED, Ordering::Acquire) & NOTIFIED != 0
    }

    /// Called by the worker after the coroutine has switched out to park.
    pub fn commit_park(&self) -> Commit {
        match self
            .bits
            .compare_exchange(0, PARKED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Commit::Parked,
            Err(current) => {
                debug_assert_eq!(current, NOTIFIED, "only the owner can set PARKED");
                // An RMW, not a plain store: an unparker may have re-set the token since the
                // failed CAS read it, and its writes must be visible when the coroutine resumes.
                self.bits.swap(0, Ordering::Acquire);
                Commit::Notified
            }
        }
    }

    /// Wakes the coroutine: sets the token, or takes ownership of a parked coroutine.
    pub fn unpark(&self) -> Unparked {
        let mut current = self.bits.load(Ordering::Acquire);
        loop {
            let (next, outcome) = if current & PARKED != 0 {
                (current & !PARKED, Unparked::Schedule)
            } else {
                // Even when the token is already set: the RMW (NOTIFIED -> NOTIFIED) is what
                // makes this unpark's earlier writes visible to the park that consumes it.
                (current | NOTIFIED, Unparked::TokenSet)
            };
            match self.bits.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return outcome,
                Err(actual) => current = actual,
            }
        }
    }

    // Used by the loom models' assertions.
    #[cfg_attr(not(loom), allow(dead_code))]
    /// Whether the coroutine is committed as parked (diagnostics and shutdown).
    pub fn is_parked(&self) -> bool {
        self.bits.load(Ordering::Acquire) & PARKED != 0
    }
}
