//! Time: [`sleep`], [`park_timeout`], and the timer every timed wait registers.
//!
//! Timers are process-wide, like the netpoller that fires them: one hierarchical timing
//! [`wheel`] (O(1) insert and cancel, 1 ms ticks) behind a short lock. A coroutine that waits
//! with a deadline inserts its [`Waiter`] for the tick at or after the deadline, parks, and
//! removes the entry when the wait ends, however it ends; so a timer whose wait finished first
//! (an I/O that completed, a value that arrived) costs its removal and nothing else: no wake-up.
//!
//! The netpoller thread calls [`process`] before every `poll`: it fires what is due and sleeps
//! in `epoll_wait` until the next expiration. The wheel remembers that tick (`wake_at`); an
//! insert that is due earlier wakes the poller so it can sleep less. Inserts due later (the
//! common case: many sleepers, one horizon) cost no system call.
//!
//! **Never early.** A deadline becomes the first tick at or after it (ticks are whole
//! milliseconds since [`origin`]), and a tick fires only once the clock has reached it. A woken
//! waiter still compares the clock with its deadline, so an early wake-up of any kind (a
//! spurious unpark) only makes it park again.
//!
//! From a plain thread, `sleep` and `park_timeout` are `std::thread`'s; the wheel is only for
//! coroutines (a thread can block in the kernel's own timed wait).

pub(crate) mod wheel;

use crate::coroutine::current_task;
use crate::join::Waiter;
use parking_lot::Mutex;
use std::marker::PhantomData;
use std::sync::atomic::Ordering;
use std::sync::LazyLock;
use std::time::{Duration, Instant};
use wheel::{TimerKey, Wheel};

/// The instant tick 0 stands for.
pub(crate) fn origin() -> Instant {
    static ORIGIN: LazyLock<Instant> = LazyLock::new(Instant::now);
    *ORIGIN
}

/// The first tick at or after `deadline` (rounded up: never early).
fn tick_at_or_after(deadline: Instant) -> u64 {
    let since = deadline.saturating_duration_since(origin());
    let ms = since.as_millis() + u128::from(!since.subsec_nanos().is_multiple_of(1_000_000));
    u64::try_from(ms).unwrap_or(u64::MAX)
}

/// The tick the clock has reached (rounded down).
fn tick_now() -> u64 {
    u64::try_from(origin().elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// When `tick` begins.
fn instant_of(tick: u64) -> Option<Instant> {
    origin().checked_add(Duration::from_millis(tick))
}

/// A wheel entry: who to wake, and the timer's number among its coroutine's timers (0 for a
/// thread), so that the coroutine can tell that its timer fired without taking the lock.
struct Entry {
    waiter: Waiter,
    number: u64,
}

struct Timers {
    wheel: Wheel<Entry>,
    /// The tick by which the netpoller will process timers again without being told
    /// (`u64::MAX`: it sleeps until an event).
    wake_at: u64,
}

fn timers() -> &'static Mutex<Timers> {
    static TIMERS: LazyLock<Mutex<Timers>> = LazyLock::new(|| {
        Mutex::new(Timers {
            wheel: Wheel::new(),
            wake_at: u64::MAX,
        })
    });
    &TIMERS
}

/// A pending timer, removed from the wheel when dropped (if it has not fired).
pub(crate) struct Timer {
    key: TimerKey,
    /// Its number among its coroutine's timers (see `Task::timer_fired`); 0 on a thread.
    number: u64,
    /// Dropped on the coroutine (or thread) that armed it, which `number` refers to.
    _not_send: PhantomData<*const ()>,
}

impl Timer {
    /// Arranges for the calling coroutine to be unparked at `deadline` (or just after). The
    /// wake is an unpark, so it may also end a later, unrelated park: the waiter re-checks its
    /// condition, as with every park.
    pub(crate) fn for_current(deadline: Instant) -> Timer {
        let number = current_task().map_or(0, |task| {
            let number = task.timers_armed.get() + 1;
            task.timers_armed.set(number);
            number
        });
        Timer::new(deadline, Waiter::current(), number)
    }

    fn new(deadline: Instant, waiter: Waiter, number: u64) -> Timer {
        let when = tick_at_or_after(deadline);
        let mut timers = timers().lock();
        let key = timers.wheel.insert(when, Entry { waiter, number });
        let tell_poller = when < timers.wake_at;
        if tell_poller {
            timers.wake_at = when;
        }
        drop(timers);
        if tell_poller {
            crate::io::driver::driver().unpark();
        }
        Timer {
            key,
            number,
            _not_send: PhantomData,
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        if self.number != 0
            && current_task()
                .is_some_and(|task| task.timer_fired.load(Ordering::Acquire) == self.number)
        {
            return; // fired: the poller took it out of the wheel already
        }
        let entry = timers().lock().wheel.remove(self.key);
        drop(entry); // outside the lock
    }
}

/// The netpoller's part: fires the timers that are due and returns how long it may block
/// (`None`: until an event). `fired` is a reused buffer, empty on return.
pub(crate) fn process(fired: &mut Vec<Waiter>) -> Option<Duration> {
    let now = tick_now();
    let next = {
        let mut timers = timers().lock();
        timers.wheel.advance(now, |Entry { waiter, number }| {
            if let Waiter::Coroutine(coroutine) = &waiter {
                // Out of the wheel (under the lock) before the mark: a drop that sees the
                // mark has nothing to remove; one that does not takes the lock and finds
                // nothing.
                coroutine.task.timer_fired.store(number, Ordering::Release);
            }
            fired.push(waiter);
        });
        let next = timers.wheel.next_expiration();
        timers.wake_at = next.unwrap_or(u64::MAX);
        next
    };
    for waiter in fired.drain(..) {
        waiter.wake();
    }
    // The wheel may name a tick that has begun already (an entry due now, or an upper level's
    // slot to cascade): then poll without blocking and come back.
    next.map(|tick| {
        instant_of(tick).map_or(Duration::MAX, |at| {
            at.saturating_duration_since(Instant::now())
        })
    })
}

/// Timers pending (for tests).
#[cfg(test)]
pub(crate) fn pending() -> usize {
    timers().lock().wheel.len()
}

/// Parks the caller until unparked or `deadline` passes. A coroutine must hold a [`Timer`] for
/// the deadline (it is what unparks it then); a thread parks with the kernel's timeout. May
/// return early (the caller re-checks), never late.
pub(crate) fn park_until(deadline: Instant) {
    let now = Instant::now();
    if now >= deadline {
        return;
    }
    if current_task().is_some() {
        crate::park();
    } else {
        std::thread::park_timeout(deadline - now);
    }
}

/// Puts the current coroutine to sleep for at least `dur`; its worker runs other coroutines
/// meanwhile. Like `std::thread::sleep` (which it is, on a plain thread): it never returns
/// early, and it is not ended by [`Coroutine::unpark`](crate::Coroutine::unpark).
///
/// Timers have a resolution of one millisecond: the coroutine is woken in the first tick after
/// the deadline and then waits for a worker, so it may sleep a little longer than asked.
///
/// ```
/// use std::time::{Duration, Instant};
/// let start = Instant::now();
/// let sleepers: Vec<_> = (0..100)
///     .map(|_| corun::spawn(|| corun::sleep(Duration::from_millis(20))))
///     .collect();
/// sleepers.into_iter().for_each(|h| h.join().unwrap());
/// assert!(start.elapsed() >= Duration::from_millis(20)); // 100 sleeps, all at once
/// ```
pub fn sleep(dur: Duration) {
    if current_task().is_none() {
        std::thread::sleep(dur);
        return;
    }
    let Some(deadline) = Instant::now().checked_add(dur) else {
        // Beyond the clock's range: forever, as far as anyone can tell.
        loop {
            crate::park();
        }
    };
    if dur.is_zero() {
        return;
    }
    let _timer = Timer::for_current(deadline);
    while Instant::now() < deadline {
        crate::park();
    }
}

/// Blocks the current coroutine until its park token is made available or `dur` has passed,
/// like `std::thread::park_timeout` (which it is, on a plain thread). See [`park`](crate::park):
/// it may also return spuriously, so call it in a loop that checks a condition and the clock.
pub fn park_timeout(dur: Duration) {
    if current_task().is_none() {
        std::thread::park_timeout(dur);
        return;
    }
    match Instant::now().checked_add(dur) {
        Some(deadline) if !dur.is_zero() => {
            let _timer = Timer::for_current(deadline);
            crate::park();
        }
        Some(_) => {} // a zero timeout: std returns at once too
        None => crate::park(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_round_deadlines_up_and_the_clock_down() {
        let o = origin();
        assert_eq!(tick_at_or_after(o), 0);
        assert_eq!(tick_at_or_after(o + Duration::from_nanos(1)), 1);
        assert_eq!(tick_at_or_after(o + Duration::from_millis(5)), 5);
        assert_eq!(tick_at_or_after(o + Duration::from_micros(5001)), 6);
        assert!(
            instant_of(tick_at_or_after(o + Duration::from_micros(7300))).unwrap()
                >= o + Duration::from_micros(7300)
        );
        assert!(instant_of(tick_now()).unwrap() <= Instant::now());
    }

    /// Serialises the tests that count pending timers.
    static COUNTING: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

    #[test]
    fn a_million_pending_timers_insert_and_cancel() {
        let _counting = COUNTING.lock();
        let far = Instant::now() + Duration::from_secs(3600);
        let waiter = Waiter::Thread(std::thread::current());
        let timers: Vec<Timer> = (0..1_000_000u64)
            .map(|i| Timer::new(far + Duration::from_millis(i % 100_000), waiter.clone(), 0))
            .collect();
        assert!(pending() >= 1_000_000);
        drop(timers); // each removed: none of them will ever wake this thread
    }

    #[test]
    fn timers_of_waits_that_end_early_are_removed() {
        let _counting = COUNTING.lock();
        let rt = crate::runtime::Builder::new().workers(1).build().unwrap();
        let before = pending();
        rt.block_on(|| {
            let (tx, rx) = crate::sync::mpsc::channel();
            for i in 0..1000 {
                let tx = tx.clone();
                crate::spawn(move || tx.send(i).unwrap());
                // Waits an hour at most, but the value comes at once.
                rx.recv_timeout(Duration::from_secs(3600)).unwrap();
            }
        });
        // Other tests' timers may come and go meanwhile, but not an hour's worth of ours.
        assert!(pending() <= before + 100, "{} timers left", pending());
    }
}
