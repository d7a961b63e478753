//! TEMPORARY stand-in with the wheel's API (an ordered map); replaced by the timing wheel.
#![allow(dead_code)]
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimerKey {
    when: u64,
    id: u64,
}

pub(crate) struct Wheel<T> {
    map: BTreeMap<(u64, u64), T>,
    next_id: u64,
    elapsed: u64,
}

impl<T> Wheel<T> {
    pub(crate) fn new() -> Self {
        Wheel {
            map: BTreeMap::new(),
            next_id: 0,
            elapsed: 0,
        }
    }
    pub(crate) fn elapsed(&self) -> u64 {
        self.elapsed
    }
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    pub(crate) fn insert(&mut self, when: u64, value: T) -> TimerKey {
        self.next_id += 1;
        self.map.insert((when, self.next_id), value);
        TimerKey {
            when,
            id: self.next_id,
        }
    }
    pub(crate) fn remove(&mut self, key: TimerKey) -> Option<T> {
        self.map.remove(&(key.when, key.id))
    }
    pub(crate) fn next_expiration(&self) -> Option<u64> {
        self.map
            .first_key_value()
            .map(|(k, _)| k.0.max(self.elapsed))
    }
    pub(crate) fn advance(&mut self, now: u64, mut fire: impl FnMut(T)) {
        self.elapsed = self.elapsed.max(now);
        while let Some(e) = self.map.first_entry() {
            if e.key().0 > self.elapsed {
                break;
            }
            fire(e.remove());
        }
    }
}
