//! A readers-writer lock on the shared wait protocol, fair to writers.
//!
//! State and waiters sit under one short lock. A reader gets in only when no writer holds the
//! lock *and none is waiting*: a stream of readers cannot starve a writer. When a writer
//! releases, the readers that queued behind it all get in together (then the next writer), so
//! readers are not starved by a stream of writers either. Waiters are granted the lock by the
//! releaser (`GRANTED`): they never race for it after waking.

use super::wait_queue::{uncancellable, wake_each, WaitNode, Waiters, GRANTED};
use parking_lot::Mutex;
use std::cell::UnsafeCell;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::time::Instant;

/// A readers-writer lock for coroutines and threads (no poisoning).
///
/// ```
/// let lock = corun::sync::RwLock::new(1);
/// {
///     let a = lock.read();
///     let b = lock.read();
///     assert_eq!(*a + *b, 2);
/// }
/// *lock.write() += 1;
/// assert_eq!(*lock.read(), 2);
/// ```
pub struct RwLock<T: ?Sized> {
    state: Mutex<State>,
    data: UnsafeCell<T>,
}

struct State {
    readers: usize,
    writer: bool,
    waiting_readers: Waiters,
    waiting_writers: Waiters,
}

// SAFETY: as for std's `RwLock`: writers get `&mut T` on whatever thread they run (`T: Send`),
// readers share `&T` across threads (`T: Sync`).
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}

impl<T> RwLock<T> {
    /// An unlocked lock holding `value`.
    pub fn new(value: T) -> RwLock<T> {
        RwLock {
            state: Mutex::new(State {
                readers: 0,
                writer: false,
                waiting_readers: Waiters::new(),
                waiting_writers: Waiters::new(),
            }),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the lock, returning the value.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Shared access, waiting while a writer holds or waits for the lock.
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        // A shutdown during the wait is raised only once the guard exists: see
        // `wait_queue::uncancellable`.
        uncancellable(|| self.read_inner())
    }

    fn read_inner(&self) -> RwLockReadGuard<'_, T> {
        let node = {
            let mut state = self.state.lock();
            if !state.writer && state.waiting_writers.is_empty() {
                state.readers += 1;
                return RwLockReadGuard { lock: self };
            }
            let node = WaitNode::current(Instant::now());
            state.waiting_readers.push_back(node.clone());
            node
        };
        node.wait(); // granted: the releaser counted us in
        RwLockReadGuard { lock: self }
    }

    /// Exclusive access, waiting for readers and writers to leave.
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        // As in `read`.
        uncancellable(|| self.write_inner())
    }

    fn write_inner(&self) -> RwLockWriteGuard<'_, T> {
        let node = {
            let mut state = self.state.lock();
            if !state.writer && state.readers == 0 {
                state.writer = true;
                return RwLockWriteGuard { lock: self };
            }
            let node = WaitNode::current(Instant::now());
            state.waiting_writers.push_back(node.clone());
            node
        };
        node.wait(); // granted: the releaser made us the writer
        RwLockWriteGuard { lock: self }
    }

    /// Shared access if available now.
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        let mut state = self.state.lock();
        (!state.writer && state.waiting_writers.is_empty()).then(|| {
            state.readers += 1;
            RwLockReadGuard { lock: self }
        })
    }

    /// Exclusive access if available now.
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        let mut state = self.state.lock();
        (!state.writer && state.readers == 0).then(|| {
            state.writer = true;
            RwLockWriteGuard { lock: self }
        })
    }

    /// Mutable access without locking: the borrow proves nobody holds the lock.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    fn read_unlock(&self) {
        let granted = {
            let mut state = self.state.lock();
            state.readers -= 1;
            if state.readers > 0 {
                return;
            }
            match state.waiting_writers.pop_front() {
                Some(writer) => {
                    state.writer = true;
                    writer
                }
                None => return,
            }
        };
        granted.wake(GRANTED);
    }

    fn write_unlock(&self) {
        let granted: Vec<_> = {
            let mut state = self.state.lock();
            state.writer = false;
            if !state.waiting_readers.is_empty() {
                // The readers that queued behind the writer all get in.
                let readers: Vec<_> = state.waiting_readers.drain(..).collect();
                state.readers += readers.len();
                readers
            } else if let Some(writer) = state.waiting_writers.pop_front() {
                state.writer = true;
                vec![writer]
            } else {
                Vec::new()
            }
        };
        wake_each(granted, GRANTED);
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        RwLock::new(T::default())
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.try_read() {
            Some(guard) => f.debug_struct("RwLock").field("data", &&*guard).finish(),
            None => f
                .debug_struct("RwLock")
                .field("data", &format_args!("<locked>"))
                .finish(),
        }
    }
}

/// Shared access to an [`RwLock`]; released when dropped.
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
}

/// Exclusive access to an [`RwLock`]; released when dropped.
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
}

// SAFETY: releasing has no thread affinity; a read guard gives `&T` wherever it goes.
unsafe impl<T: ?Sized + Sync> Send for RwLockReadGuard<'_, T> {}
// SAFETY: a shared read guard gives `&T`.
unsafe impl<T: ?Sized + Sync> Sync for RwLockReadGuard<'_, T> {}
// SAFETY: releasing has no thread affinity; a write guard gives `&mut T` wherever it goes.
unsafe impl<T: ?Sized + Send + Sync> Send for RwLockWriteGuard<'_, T> {}
// SAFETY: a shared write guard gives `&T`.
unsafe impl<T: ?Sized + Sync> Sync for RwLockWriteGuard<'_, T> {}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: readers hold the lock shared: no writer exists while this guard lives.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the writer holds the lock exclusively.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the writer holds the lock exclusively, and `&mut self` is the only access.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.read_unlock();
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.write_unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
