//! The readiness cell of a registered descriptor: the one word the netpoller and the
//! coroutines doing I/O race on.
//!
//! A descriptor is registered with the netpoller once, edge-triggered, for reading and writing.
//! Edges are not remembered by the kernel, so this cell remembers them: the poller sets a
//! direction's READY bit when an event arrives, an I/O attempt that fails with `WouldBlock`
//! clears it, and a coroutine that finds it clear parks until the poller sets it again.
//!
//! The state word holds, besides the two READY bits, two WAITING bits (somebody is queued for
//! that direction) and an event counter (the *tick*) in the upper bits. Two rules make it free
//! of lost wake-ups:
//!
//! * **Clearing needs the tick.** An attempt reads the word ([`ScheduledIo::readiness`]) before
//!   its system call; after `WouldBlock` it clears READY only if the tick is unchanged
//!   ([`ScheduledIo::clear`]). An edge that arrived during the call bumped the tick, so its
//!   READY survives and the attempt is repeated instead of waiting for an edge that already
//!   came.
//! * **Waiting sets a bit in the same word.** A waiter, under the waiter lock, sets its
//!   direction's WAITING bit with one read-modify-write and looks at what was there: if READY
//!   was set, it does not wait. The poller sets READY and takes the WAITING bits with one
//!   read-modify-write: if it took one, it locks and wakes that direction's waiters. Both
//!   updates are on one word, so one of them sees the other; there is no store-buffering
//!   window (the reason Go's `netpollblock` keeps its states in one word too).
//!
//! Two more bits, READ_CLOSED and WRITE_CLOSED, record that the last event said the peer shut
//! down or hung up. They matter for the third way to learn that a direction is not ready: a
//! read (or write) on a stream socket that moved fewer bytes than asked emptied the queue, so
//! [`ScheduledIo::clear_drained`] clears READY without the attempt that would say
//! `WouldBlock`, unless the direction is closed: then the data came with the end-of-file, whose
//! edge has passed, and the next read must return `Ok(0)` rather than wait. A clear after
//! `WouldBlock` clears the CLOSED bit too, so a stale one (from a late event for a descriptor
//! that used the cell before) costs one attempt, like any spurious readiness.
//!
//! The poller wakes *every* waiter of a direction: they retry, and those that lose the race for
//! the data queue again. The common case is one reader and one writer per socket.
//!
//! Modelled in `loom-tests/tests/io_readiness.rs`.

use crate::loom::{AtomicUsize, Mutex, Ordering};
use crate::sync::wait_queue::{self, WaitNode, Waiters, WOKEN};
use std::sync::Arc;

/// The read direction is ready (or closed, or in error: an attempt will not block).
const READ_READY: usize = 1 << 0;
/// The write direction is ready (or closed, or in error).
const WRITE_READY: usize = 1 << 1;
/// A waiter is queued for reading.
const READ_WAITING: usize = 1 << 2;
/// A waiter is queued for writing.
const WRITE_WAITING: usize = 1 << 3;
/// The last read event said the peer closed its side (`EPOLLRDHUP`, `EPOLLHUP`): reads will
/// not block, however short the last one was. Set only together with READ_READY.
const READ_CLOSED: usize = 1 << 4;
/// The last write event said the connection hung up (`EPOLLHUP`).
const WRITE_CLOSED: usize = 1 << 5;
/// One event, in the tick counter that fills the rest of the word (wrapping is harmless: a
/// clear would have to race exactly 2^58 events to be fooled).
const TICK: usize = 1 << 6;

/// One direction of a descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Reading (and accepting).
    Read,
    /// Writing (and connecting).
    Write,
}

impl Direction {
    fn ready_bit(self) -> usize {
        match self {
            Direction::Read => READ_READY,
            Direction::Write => WRITE_READY,
        }
    }

    fn closed_bit(self) -> usize {
        match self {
            Direction::Read => READ_CLOSED,
            Direction::Write => WRITE_CLOSED,
        }
    }

    fn waiting_bit(self) -> usize {
        match self {
            Direction::Read => READ_WAITING,
            Direction::Write => WRITE_WAITING,
        }
    }
}

/// What [`ScheduledIo::readiness`] saw: whether the direction was ready, and at which tick.
#[derive(Debug, Clone, Copy)]
pub struct ReadyEvent {
    direction: Direction,
    tick: usize,
    ready: bool,
}

impl ReadyEvent {
    /// Whether an attempt may succeed (it was not known to block).
    pub fn is_ready(&self) -> bool {
        self.ready
    }
}

/// The readiness of one registered descriptor and the coroutines waiting on it.
pub struct ScheduledIo {
    state: AtomicUsize,
    /// Waiters by direction: `[read, write]`. Locked only to queue, dequeue or wake.
    waiters: Mutex<[Waiters; 2]>,
}

impl Default for ScheduledIo {
    fn default() -> Self {
        ScheduledIo::new()
    }
}

impl ScheduledIo {
    /// A cell for a descriptor just registered: nothing is known to be ready. (Registering
    /// reports the current readiness as an event, so nothing is lost by starting at zero.)
    pub fn new() -> ScheduledIo {
        ScheduledIo {
            state: AtomicUsize::new(0),
            waiters: Mutex::new([Waiters::new(), Waiters::new()]),
        }
    }

    /// Reads the readiness of `direction`, to be passed to [`ScheduledIo::clear`] if the attempt
    /// that follows would block.
    #[inline]
    pub fn readiness(&self, direction: Direction) -> ReadyEvent {
        let state = self.state.load(Ordering::Acquire);
        ReadyEvent {
            direction,
            tick: state & !(TICK - 1),
            ready: state & direction.ready_bit() != 0,
        }
    }

    /// Records that an attempt made after `seen` would block: clears the direction's READY bit,
    /// unless an event arrived since `seen` (then the attempt must be repeated, and the bit
    /// stays).
    pub fn clear(&self, seen: ReadyEvent) {
        let bits = seen.direction.ready_bit() | seen.direction.closed_bit();
        let _ = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |state| {
                (state & !(TICK - 1) == seen.tick).then_some(state & !bits)
            });
    }

    /// Records that a transfer made after `seen` was shorter than asked, on a stream socket:
    /// the receive queue was emptied (or the send buffer filled), so the direction is not ready
    /// any more, unless an event arrived since `seen` or the last event said the peer closed
    /// (then the next read returns end-of-file at once, with no event to announce it).
    pub fn clear_drained(&self, seen: ReadyEvent) {
        let (ready, closed) = (seen.direction.ready_bit(), seen.direction.closed_bit());
        let _ = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |state| {
                (state & !(TICK - 1) == seen.tick && state & closed == 0).then_some(state & !ready)
            });
    }

    /// The poller's side: an event made the given directions ready. Wakes their waiters.
    /// (The netpoller uses [`ScheduledIo::set_events`]; this is its short form for models.)
    #[cfg(loom)]
    pub fn set_ready(&self, read: bool, write: bool) {
        self.set_events(read, write, false, false);
    }

    /// [`ScheduledIo::set_ready`], also recording whether the event said the peer closed its
    /// side (`read_closed`) or the connection hung up (`write_closed`); a closed direction is
    /// ready too.
    pub fn set_events(&self, read: bool, write: bool, read_closed: bool, write_closed: bool) {
        let (mut ready, mut waiting) = (0, 0);
        if read || read_closed {
            ready |= READ_READY;
            waiting |= READ_WAITING;
        }
        if write || write_closed {
            ready |= WRITE_READY;
            waiting |= WRITE_WAITING;
        }
        if read_closed {
            ready |= READ_CLOSED;
        }
        if write_closed {
            ready |= WRITE_CLOSED;
        }
        if ready == 0 {
            return;
        }
        // READY in, the matching WAITING bits out, tick up: one read-modify-write.
        let prev = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |state| {
                Some(((state | ready) & !waiting).wrapping_add(TICK))
            })
            .unwrap_or_else(|state| state);
        let taken = prev & waiting;
        if taken != 0 {
            // The usual case is one waiter per direction: take it alone, so the queue keeps
            // its buffer (taking the whole queue would cost an allocation at the next wait).
            let (mut one, mut many) = ([None, None], [Waiters::new(), Waiters::new()]);
            {
                let mut waiters = self.waiters.lock();
                for (i, bit) in [READ_WAITING, WRITE_WAITING].into_iter().enumerate() {
                    if taken & bit == 0 {
                        continue;
                    }
                    if waiters[i].len() == 1 {
                        one[i] = waiters[i].pop_front();
                    } else {
                        many[i] = std::mem::take(&mut waiters[i]);
                    }
                }
            }
            let [one_read, one_write] = one;
            let [many_read, many_write] = many;
            wait_queue::wake_each(
                one_read
                    .into_iter()
                    .chain(one_write)
                    .chain(many_read)
                    .chain(many_write),
                WOKEN,
            );
        }
    }

    /// Queues `node` to be woken when `direction` becomes ready. Returns false, without
    /// queueing, if it is ready already (an edge raced in since the caller's
    /// [`ScheduledIo::clear`]): the caller retries its attempt instead of parking.
    ///
    /// After `true`, the caller parks until the node is decided
    /// ([`WaitNode::is_waiting`] turns false) and, if it gives up first (a timeout, a
    /// cancellation), withdraws it with [`ScheduledIo::withdraw`].
    pub(crate) fn enqueue(&self, direction: Direction, node: &Arc<WaitNode>) -> bool {
        let mut waiters = self.waiters.lock();
        // Under the lock, so the poller (which takes the WAITING bit before it locks) finds
        // the node once it sees the bit.
        let prev = self
            .state
            .fetch_or(direction.waiting_bit(), Ordering::AcqRel);
        if prev & direction.ready_bit() != 0 {
            // The WAITING bit stays set with nobody queued: the next event takes it and finds
            // no one, which costs that event one lock.
            return false;
        }
        waiters[direction as usize].push_back(node.clone());
        true
    }

    /// Under loom, the waiting side in one piece: parks the calling thread until `direction`
    /// is ready or its waiters were woken. (The runtime's version, `io::park_on`, adds the
    /// deadline and the withdrawal on cancellation around the same two steps.)
    #[cfg(loom)]
    pub fn wait(&self, direction: Direction) {
        let node = WaitNode::current(std::time::Instant::now());
        if self.enqueue(direction, &node) {
            while node.is_waiting() {
                crate::loom::park();
            }
        }
    }

    /// Makes the cell as new, for reuse by another descriptor. Nobody waits on it (its owner is
    /// done with it); a late event for the old descriptor may still set bits, which the next
    /// owner sees as a spurious readiness (see `driver.rs`).
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn reset(&self) {
        debug_assert!(self.waiters.lock().iter().all(|w| w.is_empty()));
        self.state.store(0, Ordering::Release);
    }

    /// Removes a node that stopped waiting before it was woken. Returns whether it was still
    /// queued (false: the poller took it, and its wake is on the way or done).
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn withdraw(&self, direction: Direction, node: &Arc<WaitNode>) -> bool {
        wait_queue::remove(&mut self.waiters.lock()[direction as usize], node)
    }
}
