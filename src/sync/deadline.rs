//! Timed waits until the timer wheel lands (the time and I/O issue): a deadline service.
//!
//! A coroutine waiting with a deadline registers it here for the length of the wait; one
//! service thread sleeps until the earliest deadline and unparks whoever registered it. The
//! registration is withdrawn when the wait ends (whether by the deadline or not), so waits that
//! finish early leave nothing behind. The waiter re-checks its own state and the clock after
//! every park, so an unpark that comes just after the wait ended is only a spurious wake-up of a
//! later park, which every wait loop tolerates. Plain threads do not need the service: they wait
//! with `std::thread::park_timeout`.
//!
//! Deliberately simple (an ordered map under a mutex, O(log n) per timed wait); the timer wheel
//! will replace it.

use crate::join::Waiter;
use parking_lot::{Condvar, Mutex};
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Instant;

/// Registered deadlines, by time then registration number; and the last number given out.
type Entries = (BTreeMap<(Instant, u64), Waiter>, u64);

struct Service {
    entries: Mutex<Entries>,
    changed: Condvar,
}

fn service() -> &'static Service {
    static SERVICE: OnceLock<&'static Service> = OnceLock::new();
    SERVICE.get_or_init(|| {
        let service: &'static Service = Box::leak(Box::new(Service {
            entries: Mutex::new((BTreeMap::new(), 0)),
            changed: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("corun-deadlines".into())
            .spawn(move || run(service))
            .expect("failed to start corun's deadline thread");
        service
    })
}

fn run(service: &'static Service) {
    let mut entries = service.entries.lock();
    loop {
        let now = Instant::now();
        while let Some(entry) = entries.0.first_entry() {
            if entry.key().0 > now {
                break;
            }
            entry.remove().wake();
        }
        match entries.0.first_key_value() {
            Some((&(at, _), _)) => {
                service.changed.wait_until(&mut entries, at);
            }
            None => service.changed.wait(&mut entries),
        }
    }
}

/// A registered deadline, withdrawn on drop.
pub(crate) struct Registration {
    key: Option<(Instant, u64)>,
}

/// Registers the calling coroutine to be unparked at `deadline` for as long as the returned
/// registration lives. On a plain thread it does nothing (threads park with a timeout).
pub(crate) fn register(deadline: Instant) -> Registration {
    if crate::coroutine::current_task().is_none() {
        return Registration { key: None };
    }
    let service = service();
    let mut entries = service.entries.lock();
    entries.1 += 1;
    let key = (deadline, entries.1);
    let earliest = entries
        .0
        .first_key_value()
        .is_none_or(|(first, _)| key < *first);
    entries.0.insert(key, Waiter::current());
    drop(entries);
    if earliest {
        service.changed.notify_one();
    }
    Registration { key: Some(key) }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            service().entries.lock().0.remove(&key);
        }
    }
}

/// Parks the caller until it is unparked or `deadline` passes (for a coroutine: while a
/// [`Registration`] for that deadline is alive). May return early; the caller re-checks.
pub(crate) fn park_until(deadline: Instant) {
    let now = Instant::now();
    if now >= deadline {
        return;
    }
    if crate::coroutine::current_task().is_some() {
        crate::park();
    } else {
        std::thread::park_timeout(deadline - now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timed_waits_that_end_early_leave_no_registration_behind() {
        let rt = crate::runtime::Builder::new().workers(1).build().unwrap();
        rt.block_on(|| {
            let (tx, rx) = crate::sync::mpsc::channel();
            for i in 0..1000 {
                let tx = tx.clone();
                crate::spawn(move || tx.send(i).unwrap());
                // Waits an hour at most, but the value comes at once.
                rx.recv_timeout(Duration::from_secs(3600)).unwrap();
            }
        });
        assert_eq!(service().entries.lock().0.len(), 0);
    }
}
