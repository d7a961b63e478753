//! A hierarchical timing wheel: O(1) insert and cancel, O(levels) to find the next expiration,
//! and an advance whose cost is the entries it moves or fires, not the ticks it covers.
//!
//! # Structure
//!
//! Time is a `u64` count of ticks, written in 6-bit *digits*: digit `L` of a tick is bits
//! `6L..6L+6`. There is one level per digit, [`LEVELS`] = 11 of them, so the wheel covers the
//! whole `u64` range and has no overflow list: any `when`, up to `u64::MAX`, has a place. Each
//! level has 64 slots, each slot an intrusive doubly-linked list of entries (indices into one
//! [`Slab`], so no pointers and no `unsafe`), and a 64-bit occupancy bitmap.
//!
//! An entry that is not yet due (`when > elapsed`) lives at the level of the highest bit in which
//! `when` and `elapsed` differ, `L = msb(when ^ elapsed) / 6`, in slot `digit_L(when)`. So it
//! shares every digit above `L` with `elapsed`, and its digit `L` is greater than `elapsed`'s.
//! Entries already due when inserted (`when <= elapsed`) go to a separate *due* list instead.
//!
//! # Invariants and what follows from them
//!
//! 1. *Placement*: every entry in level `L`, slot `s`, satisfies the rule above for the current
//!    `elapsed`. The slot then stands for the block of `64^L` ticks starting at
//!    `start(L, s) = (elapsed with digits 0..=L cleared) + s * 64^L`, and `elapsed < start <=
//!    when`: a slot never holds anything due before its start.
//! 2. *Level order*: level `L`'s slots cover ticks beyond `elapsed`'s current `64^L` block but
//!    within its `64^(L+1)` block; level `L-1`'s slots lie inside that current `64^L` block. So
//!    every tick a lower level covers precedes every tick a higher level covers, and the next
//!    event is the lowest set bit of the lowest non-empty level: a few `trailing_zeros`.
//! 3. *Due list*: it holds only entries with `when <= elapsed`; it is empty whenever
//!    [`Wheel::advance`] returns (unless `fire` panicked, which leaves the wheel consistent).
//!
//! # Advancing, and why never early
//!
//! [`Wheel::advance`] repeatedly takes the earliest occupied slot (invariant 2). If its start is
//! beyond `now`, it stops: every pending entry is then due at or after some slot start `> now`.
//! Otherwise it sets `elapsed` to that start, which keeps invariant 1 for every other entry (the
//! new `elapsed` lies between the old one and their slot's start, so it shares their upper
//! digits and its digit at their level is still smaller), and empties the slot:
//!
//! - a level-0 slot's entries have `when == start` exactly: they fire;
//! - an upper slot's entries share every digit from `L` up with the new `elapsed`, so each is
//!   re-placed at a lower level (*cascading*), or on the due list if `when == start`.
//!
//! An entry fires only from the due list or a level-0 slot, and in both cases `when <= elapsed`
//! with `elapsed` no later than `now` (or than an `elapsed` already reached): never early. An
//! entry cascades at most once per level, and empty slots and levels are skipped by the bitmaps,
//! so a jump of hours costs the entries it touches, not the ticks.
//!
//! The wheel's clock never goes back: `advance(now)` with `now < elapsed` is `advance(elapsed)`,
//! which fires what was inserted already due.
//!
//! # Cancellation
//!
//! [`Wheel::remove`] unlinks in O(1): each entry records its list, and a list emptied by the
//! removal clears its bitmap bit. A [`TimerKey`] carries the entry's slab index and a stamp
//! unique to that insertion (a 64-bit counter, never reused), so a stale key, whose entry fired
//! or was removed and whose index now holds a newer entry, removes nothing.

use slab::Slab;

/// Bits per digit: each level has `2^BITS` slots.
const BITS: u32 = 6;
/// Slots per level.
const SLOTS: usize = 1 << BITS;
/// Levels: enough 6-bit digits for all 64 bits of a tick (the top level uses 16 of its slots).
const LEVELS: usize = 64_usize.div_ceil(BITS as usize);
/// The due list's index in [`Wheel::heads`], after the `LEVELS * SLOTS` slot lists.
const DUE: u16 = (LEVELS * SLOTS) as u16;
/// No entry: the end of a list, or an empty list.
const NIL: u32 = u32::MAX;

/// Names one insertion, for [`Wheel::remove`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimerKey {
    /// The entry's index in the slab (reused once the entry is gone).
    index: u32,
    /// The insertion's stamp, unique over the wheel's life: tells a stale key from a live one.
    stamp: u64,
}

/// A pending timer.
struct Entry<T> {
    /// The tick at which it is due.
    when: u64,
    /// The stamp of the insertion that made it (see [`TimerKey`]).
    stamp: u64,
    /// The list it is in: `level * SLOTS + slot`, or [`DUE`].
    list: u16,
    /// The previous entry in the list ([`NIL`] at the head).
    prev: u32,
    /// The next entry in the list ([`NIL`] at the tail).
    next: u32,
    /// What [`Wheel::advance`] hands to `fire`.
    value: T,
}

/// A hierarchical timing wheel of values of type `T`, with 1-tick resolution over all of `u64`.
/// See the [module documentation](self) for the structure and its invariants.
pub(crate) struct Wheel<T> {
    /// Every pending entry; lists link them by index.
    entries: Slab<Entry<T>>,
    /// The heads of the lists: `LEVELS * SLOTS` slots (level-major), then the due list.
    heads: [u32; LEVELS * SLOTS + 1],
    /// Per level, bit `s` is set iff slot `s` is non-empty.
    occupied: [u64; LEVELS],
    /// The tick the wheel has advanced to: every entry due at or before it has fired or is on
    /// the due list. Never decreases.
    elapsed: u64,
    /// The stamp the next insertion gets.
    next_stamp: u64,
}

impl<T> Wheel<T> {
    /// An empty wheel at tick 0.
    pub(crate) fn new() -> Self {
        Wheel {
            entries: Slab::new(),
            heads: [NIL; LEVELS * SLOTS + 1],
            occupied: [0; LEVELS],
            elapsed: 0,
            next_stamp: 0,
        }
    }

    /// The tick the wheel has advanced to.
    #[allow(dead_code)] // part of the wheel's API; only tests read it so far
    pub(crate) fn elapsed(&self) -> u64 {
        self.elapsed
    }

    /// Pending entries (inserted, neither fired nor removed).
    #[allow(dead_code)] // part of the wheel's API; only tests (`time::pending`) read it so far
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry is pending.
    #[allow(dead_code)] // part of the wheel's API; only tests read it so far
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds `value`, due at tick `when`; if `when <= elapsed` it fires on the next advance.
    /// O(1).
    pub(crate) fn insert(&mut self, when: u64, value: T) -> TimerKey {
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        let index = self.entries.insert(Entry {
            when,
            stamp,
            list: DUE,
            prev: NIL,
            next: NIL,
            value,
        });
        let index = match u32::try_from(index) {
            Ok(index) if index != NIL => index,
            _ => {
                self.entries.remove(index);
                panic!("timing wheel: more than {NIL} pending timers");
            }
        };
        self.place(index);
        TimerKey { index, stamp }
    }

    /// Removes the entry `key` names and returns its value, or `None` if it has fired or been
    /// removed already. O(1).
    pub(crate) fn remove(&mut self, key: TimerKey) -> Option<T> {
        let index = key.index as usize;
        match self.entries.get(index) {
            Some(entry) if entry.stamp == key.stamp => {}
            _ => return None,
        }
        self.unlink(key.index);
        Some(self.entries.remove(index).value)
    }

    /// The tick at which [`advance`](Self::advance) must next be called to make progress:
    /// `elapsed` if something is due already, otherwise the start of the earliest occupied slot
    /// (at level 0 an entry's exact `when`, higher up the tick to cascade it), which is never
    /// after the earliest pending `when`. `None` if the wheel is empty.
    pub(crate) fn next_expiration(&self) -> Option<u64> {
        if self.heads[usize::from(DUE)] != NIL {
            return Some(self.elapsed);
        }
        self.next_slot().map(|(_, _, start)| start)
    }

    /// Advances the clock to `now` (if it is ahead) and passes every entry due by then to `fire`:
    /// level-0 ticks in order, entries within a tick in no particular order, entries inserted
    /// already due first. Never an entry with `when` beyond the clock.
    ///
    /// If `fire` panics, the entry it was given is gone and the rest stay consistent: another
    /// advance fires them.
    pub(crate) fn advance(&mut self, now: u64, mut fire: impl FnMut(T)) {
        loop {
            while let Some(index) = self.head(usize::from(DUE)) {
                fire(self.take(index));
            }
            let Some((level, slot, start)) = self.next_slot() else {
                break;
            };
            if start > now {
                break;
            }
            // Invariant 1 makes `start > elapsed`; `==` after a `fire` that panicked mid-slot.
            debug_assert!(start >= self.elapsed);
            self.elapsed = start;
            let list = level * SLOTS + slot;
            if level == 0 {
                // Every entry here is due exactly at `start`.
                while let Some(index) = self.head(list) {
                    fire(self.take(index));
                }
            } else {
                // Cascade: each entry moves to a lower level, or to the due list.
                while let Some(index) = self.head(list) {
                    self.unlink(index);
                    self.place(index);
                    let to = usize::from(self.entries[index as usize].list);
                    debug_assert!(to < level * SLOTS || to == usize::from(DUE));
                }
            }
        }
        self.elapsed = self.elapsed.max(now);
    }

    /// The earliest occupied slot, as `(level, slot, start tick)` (invariant 2).
    fn next_slot(&self) -> Option<(usize, usize, u64)> {
        let level = self.occupied.iter().position(|&bits| bits != 0)?;
        let slot = self.occupied[level].trailing_zeros() as usize;
        let shift = BITS * level as u32;
        // `elapsed` with digits 0..=level cleared (all of it at the top level).
        let above = self
            .elapsed
            .checked_shr(shift + BITS)
            .map_or(0, |high| high << (shift + BITS));
        let start = above | ((slot as u64) << shift);
        debug_assert!(slot as u64 >= (self.elapsed >> shift) & (SLOTS as u64 - 1));
        debug_assert!(self.heads[level * SLOTS + slot] != NIL);
        Some((level, slot, start))
    }

    /// The first entry of list `list`.
    fn head(&self, list: usize) -> Option<u32> {
        let index = self.heads[list];
        (index != NIL).then_some(index)
    }

    /// Unlinks entry `index` and removes it from the slab, returning its value.
    fn take(&mut self, index: u32) -> T {
        self.unlink(index);
        self.entries.remove(index as usize).value
    }

    /// Links the (unlinked) entry `index` into the list its `when` calls for, given `elapsed`.
    fn place(&mut self, index: u32) {
        let when = self.entries[index as usize].when;
        let list = if when <= self.elapsed {
            DUE
        } else {
            let differ = when ^ self.elapsed; // non-zero
            let level = differ.ilog2() / BITS;
            let slot = (when >> (BITS * level)) as usize & (SLOTS - 1);
            self.occupied[level as usize] |= 1 << slot;
            (level as usize * SLOTS + slot) as u16
        };
        let head = self.heads[usize::from(list)];
        if head != NIL {
            self.entries[head as usize].prev = index;
        }
        let entry = &mut self.entries[index as usize];
        entry.list = list;
        entry.prev = NIL;
        entry.next = head;
        self.heads[usize::from(list)] = index;
    }

    /// Unlinks entry `index` from its list, clearing the slot's bit if the list empties.
    fn unlink(&mut self, index: u32) {
        let Entry {
            list, prev, next, ..
        } = self.entries[index as usize];
        debug_assert!(next == NIL || self.entries[next as usize].prev == index);
        debug_assert!(if prev == NIL {
            self.heads[usize::from(list)] == index
        } else {
            self.entries[prev as usize].next == index
        });
        if next != NIL {
            self.entries[next as usize].prev = prev;
        }
        if prev == NIL {
            self.heads[usize::from(list)] = next;
            if next == NIL && list != DUE {
                let (level, slot) = (usize::from(list) / SLOTS, usize::from(list) % SLOTS);
                self.occupied[level] &= !(1 << slot);
            }
        } else {
            self.entries[prev as usize].next = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap};

    /// xorshift64*: a small deterministic PRNG.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        /// Uniform enough in `0..n` (`n > 0`).
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        /// A delta of random magnitude: uniform in `0..2^bits` for a random `bits` in 0..=64,
        /// so every level (and the far future) gets its share.
        fn delta(&mut self) -> u64 {
            let bits = self.below(65) as u32;
            self.next().checked_shr(64 - bits).unwrap_or(0)
        }
    }

    fn advance(wheel: &mut Wheel<u64>, now: u64) -> Vec<u64> {
        let mut fired = Vec::new();
        wheel.advance(now, |v| fired.push(v));
        fired
    }

    /// The wheel against a `BTreeMap` model, over random inserts (all levels, the past, the far
    /// future), removes (live and stale keys) and advances (single ticks, to the next
    /// expiration, big jumps), starting from `start`.
    fn differential(seed: u64, start: u64, steps: usize) {
        let mut rng = Rng(seed);
        let mut wheel = Wheel::new();
        assert!(advance(&mut wheel, start).is_empty());
        // The model: (when, id) of every pending entry, and each id's key and when.
        let mut model: BTreeMap<(u64, u64), ()> = BTreeMap::new();
        let mut live: HashMap<u64, (TimerKey, u64)> = HashMap::new();
        let mut live_ids: Vec<u64> = Vec::new();
        let mut stale: Vec<TimerKey> = Vec::new();
        let mut next_id = 0u64;
        for _ in 0..steps {
            let elapsed = wheel.elapsed();
            match rng.below(100) {
                0..=44 => {
                    let when = match rng.below(20) {
                        0 => elapsed.saturating_sub(rng.delta()), // at or below elapsed
                        1 => u64::MAX - rng.below(3),
                        2 => elapsed.saturating_add(rng.below(3)),
                        _ => elapsed.saturating_add(rng.delta()),
                    };
                    let id = next_id;
                    next_id += 1;
                    let key = wheel.insert(when, id);
                    model.insert((when, id), ());
                    live.insert(id, (key, when));
                    live_ids.push(id);
                }
                45..=64 => {
                    if !live_ids.is_empty() {
                        let id = live_ids.swap_remove(rng.below(live_ids.len() as u64) as usize);
                        let (key, when) = live.remove(&id).unwrap();
                        assert_eq!(wheel.remove(key), Some(id));
                        model.remove(&(when, id)).unwrap();
                        stale.push(key);
                    }
                }
                65..=69 => {
                    if !stale.is_empty() {
                        let key = stale[rng.below(stale.len() as u64) as usize];
                        assert_eq!(wheel.remove(key), None, "stale key removed something");
                    }
                }
                _ => {
                    let now = match rng.below(6) {
                        0 => elapsed.saturating_add(1),
                        1 => wheel.next_expiration().unwrap_or(elapsed),
                        2 => elapsed.saturating_sub(rng.below(10)), // behind: fires only due
                        3 => elapsed.saturating_add(rng.delta()),
                        _ => {
                            let span = 1 << (6 * rng.below(5));
                            elapsed.saturating_add(rng.below(span))
                        }
                    };
                    let horizon = now.max(elapsed);
                    let mut fired = advance(&mut wheel, now);
                    fired.sort_unstable();
                    let mut due: Vec<u64> = model
                        .range(..=(horizon, u64::MAX))
                        .map(|(&(_, id), _)| id)
                        .collect();
                    due.sort_unstable();
                    assert_eq!(fired, due, "advance {elapsed} -> {now}");
                    for id in fired {
                        let (key, when) = live.remove(&id).unwrap();
                        assert!(when <= horizon);
                        model.remove(&(when, id)).unwrap();
                        stale.push(key);
                    }
                    live_ids.retain(|id| live.contains_key(id));
                    assert_eq!(wheel.elapsed(), horizon);
                    // Whatever is left is due later, and the next expiration says so.
                    if let Some(next) = wheel.next_expiration() {
                        assert!(next > horizon, "next {next} at {horizon} after an advance");
                    }
                }
            }
            assert_eq!(wheel.len(), model.len());
            assert_eq!(wheel.is_empty(), model.is_empty());
            match (wheel.next_expiration(), model.keys().next()) {
                (None, None) => {}
                (Some(next), Some(&(first, _))) => assert!(
                    next <= first.max(wheel.elapsed()),
                    "next expiration {next} after the earliest when {first}"
                ),
                (next, first) => panic!("next expiration {next:?}, earliest {first:?}"),
            }
            if stale.len() > 10_000 {
                stale.drain(..5_000);
            }
        }
        // Drain by following next_expiration: each step fires or cascades, within a bound.
        let mut hops = 0;
        while let Some(next) = wheel.next_expiration() {
            let before = wheel.len();
            let first = model.keys().next().unwrap().0;
            let fired = advance(&mut wheel, next);
            for id in &fired {
                let (_, when) = live.remove(id).unwrap();
                assert!(when <= next);
                model.remove(&(when, *id)).unwrap();
            }
            hops = if wheel.len() < before { 0 } else { hops + 1 };
            assert!(
                hops <= LEVELS,
                "no progress towards {first} after {hops} hops"
            );
        }
        assert!(model.is_empty());
    }

    #[test]
    fn matches_a_btreemap_model() {
        for seed in 1..=8u64 {
            differential(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15), 0, 20_000);
        }
    }

    #[test]
    fn matches_a_btreemap_model_near_the_end_of_time() {
        differential(7, u64::MAX - (1 << 40), 20_000);
        differential(11, u64::MAX - 1000, 5_000);
        differential(13, 0xdead_beef_0000, 20_000); // digits not aligned to anything
    }

    #[test]
    fn never_early_at_level_boundaries() {
        for start in [0, 1, 63, 64, 4095, 12345, 1 << 36, u64::MAX - (1 << 20)] {
            let mut whens = Vec::new();
            for level in 0..LEVELS as u32 {
                let span = 1u64.checked_shl(BITS * level).unwrap_or(0);
                for d in [span.wrapping_sub(1), span, span + 1, 3 * span + 7] {
                    if let Some(when) = start.checked_add(d.max(1)) {
                        whens.push(when);
                    }
                }
            }
            whens.sort_unstable();
            whens.dedup();
            let mut wheel = Wheel::new();
            advance(&mut wheel, start);
            for &when in &whens {
                wheel.insert(when, when);
            }
            for &when in &whens {
                // Just before: nothing (this one included) fires.
                assert!(
                    advance(&mut wheel, when - 1).is_empty(),
                    "{when} fired early"
                );
                assert_eq!(
                    advance(&mut wheel, when),
                    vec![when],
                    "{when} not fired on time"
                );
            }
            assert!(wheel.is_empty());
        }
    }

    #[test]
    fn due_inserts_fire_on_the_next_advance() {
        let mut wheel = Wheel::new();
        assert!(advance(&mut wheel, 1000).is_empty());
        wheel.insert(1000, 1);
        wheel.insert(5, 2);
        wheel.insert(0, 3);
        wheel.insert(1001, 4);
        assert_eq!(wheel.next_expiration(), Some(1000));
        let mut fired = advance(&mut wheel, 1000);
        fired.sort_unstable();
        assert_eq!(fired, [1, 2, 3]);
        assert_eq!(wheel.next_expiration(), Some(1001));
        // The clock never goes back: an advance behind it fires what was inserted due.
        wheel.insert(900, 5);
        assert_eq!(advance(&mut wheel, 500), [5]);
        assert_eq!(wheel.elapsed(), 1000);
        assert_eq!(advance(&mut wheel, 1001), [4]);
        assert_eq!(wheel.next_expiration(), None);
    }

    #[test]
    fn stale_keys_remove_nothing() {
        let mut wheel = Wheel::new();
        let a = wheel.insert(10, 1);
        assert_eq!(wheel.remove(a), Some(1));
        let b = wheel.insert(10, 2); // reuses a's slot in the slab
        assert_eq!(a.index, b.index);
        assert_eq!(wheel.remove(a), None);
        assert_eq!(wheel.len(), 1);
        assert_eq!(advance(&mut wheel, 10), [2]);
        let c = wheel.insert(20, 3);
        assert_eq!(wheel.remove(b), None); // fired
        assert_eq!(wheel.remove(c), Some(3));
        assert_eq!(wheel.remove(c), None);
        assert!(wheel.is_empty());
    }

    #[test]
    fn the_far_future_and_far_jumps() {
        let mut wheel = Wheel::new();
        wheel.insert(u64::MAX, 1);
        wheel.insert(u64::MAX - 1, 2);
        wheel.insert(1 << 50, 3);
        wheel.insert(3_600_000, 4); // an hour of milliseconds
                                    // Tick by tick this would not finish; by bitmaps it is a few dozen steps.
        assert_eq!(advance(&mut wheel, (1 << 50) - 1), [4]);
        assert_eq!(advance(&mut wheel, 1 << 50), [3]);
        assert!(advance(&mut wheel, u64::MAX - 2).is_empty());
        assert_eq!(wheel.next_expiration(), Some(u64::MAX - 1));
        assert_eq!(advance(&mut wheel, u64::MAX - 1), [2]);
        assert_eq!(advance(&mut wheel, u64::MAX), [1]);
        wheel.insert(u64::MAX, 5);
        assert_eq!(wheel.next_expiration(), Some(u64::MAX));
        assert_eq!(advance(&mut wheel, u64::MAX), [5]);
        assert!(wheel.is_empty());
    }

    #[test]
    fn a_million_inserts_then_removes() {
        const N: u64 = 1_000_000;
        let mut rng = Rng(42);
        let mut wheel = Wheel::new();
        advance(&mut wheel, 12_345);
        let mut keys: Vec<(TimerKey, u64)> = (0..N)
            .map(|i| (wheel.insert(12_345 + rng.delta(), i), i))
            .collect();
        assert_eq!(wheel.len(), N as usize);
        for i in (1..keys.len()).rev() {
            keys.swap(i, rng.below(i as u64 + 1) as usize);
        }
        for &(key, i) in &keys {
            assert_eq!(wheel.remove(key), Some(i));
        }
        assert!(wheel.is_empty());
        assert_eq!(wheel.occupied, [0; LEVELS]);
        assert!(wheel.heads.iter().all(|&head| head == NIL));
        assert_eq!(wheel.next_expiration(), None);
        assert!(keys.iter().all(|&(key, _)| wheel.remove(key).is_none()));
    }

    #[test]
    fn a_panicking_fire_leaves_the_rest_to_fire_later() {
        let mut wheel = Wheel::new();
        for i in 0..10 {
            wheel.insert(100 + i % 2, i);
        }
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wheel.advance(101, |_| panic!("fire"))
        }));
        assert!(result.is_err());
        assert_eq!(wheel.len(), 9);
        assert!(wheel.next_expiration().unwrap() <= 101);
        let mut fired = advance(&mut wheel, 101);
        fired.sort_unstable();
        assert_eq!(fired.len(), 9);
        assert!(wheel.is_empty());
    }
}
