//! Coroutine stacks: carved from large slabs, each with a guard page below it, pooled.
//!
//! See DESIGN.md, "Stacks". The problem: the classic guard page is an `mprotect`ed page, and
//! protecting a page inside a mapping splits it, so every guarded stack costs two kernel memory
//! mappings (VMAs). Linux allows 65,530 per process by default (`vm.max_map_count`), so
//! one-mapping-per-stack designs die near 32k live coroutines, and the split is costly besides.
//! We therefore:
//!
//! * reserve slabs of [`SLAB_BYTES`] with one `mmap` each (`MAP_NORESERVE`: nothing is committed
//!   until touched), and cut them into slots `[gap][stack]`, where the gap is one page below the
//!   stack's lowest usable address;
//! * turn the gap into a guard *marker* (`MADV_GUARD_INSTALL`, Linux 6.13): any access faults,
//!   the mapping is not split, so no mapping budget limits them (only `CORUN_GUARD_PAGES`, if
//!   set). An overflow there faults and the SIGSEGV handler (`coroutine::overflow`) reports it.
//!   A marker keeps its page table alive, so a trim that returns a free stack's pages to the
//!   kernel takes its marker away too, and the stack gets it back when handed out again;
//! * on older kernels (which answer `EINVAL`; so does a locked mapping), or for a page the kernel
//!   could not mark, turn the gap into a `PROT_NONE` page while the process-wide mapping budget
//!   lasts (a quarter of `vm.max_map_count`, read once);
//! * past that budget, leave the gap readable and writable but never used: a *soft guard*. It is
//!   never written by correct code, so it stays the shared zero page (no resident memory), and
//!   the worker checks a sample of it after every switch-out and all of it when the stack is
//!   released. A change means the coroutine ran past its limit: the runtime reports a stack
//!   overflow and aborts. This detection is after the fact and best-effort; the trade-off is
//!   argued in DESIGN.md.
//!
//! Freed stacks go back to a per-size free list (workers keep a small cache of their own in
//! front of it); stacks beyond the cache are returned to the kernel with `MADV_DONTNEED`, so a
//! burst of a million coroutines does not leave a million dirty stacks resident. Slabs are never
//! unmapped: addresses stay valid for the life of the process, which keeps every late access
//! (a signal handler reading a guard range, say) in bounds.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Default usable stack size of a coroutine.
pub const DEFAULT_STACK_SIZE: usize = 64 * 1024;
/// Smallest usable stack size; smaller requests are rounded up to it (as std does for threads).
pub const MIN_STACK_SIZE: usize = 16 * 1024;
/// Largest usable stack size a coroutine may ask for.
pub const MAX_STACK_SIZE: usize = 1 << 30;
/// Bytes reserved per slab mapping.
const SLAB_BYTES: usize = 32 << 20;
/// Words of a soft guard checked after every switch-out (spread over the gap page).
const SOFT_GUARD_SAMPLES: usize = 8;

/// The system page size.
pub fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions; _SC_PAGESIZE is always supported on Linux.
        let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if n > 0 {
            n as usize
        } else {
            4096
        }
    })
}

/// `vm.max_map_count`, read once.
fn max_map_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/vm/max_map_count")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(65530)
    })
}

/// `CORUN_GUARD_PAGES`, read once: a cap on guard pages of either kind (0 makes every stack
/// soft-guarded, which is how the tests reach that path).
fn guard_override() -> Option<usize> {
    static OVERRIDE: OnceLock<Option<usize>> = OnceLock::new();
    *OVERRIDE.get_or_init(|| {
        std::env::var("CORUN_GUARD_PAGES")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
    })
}

/// How many `mprotect` guard pages the process may create: a quarter of `vm.max_map_count` (each
/// costs up to two mappings, and the rest of the program needs mappings too), or
/// `CORUN_GUARD_PAGES`, which may raise it to at most 3/8 of the mappings (up to 3/4 of them),
/// leaving room for the slabs and the rest of the program.
fn mapping_budget() -> usize {
    match guard_override() {
        Some(n) => n.min(max_map_count() * 3 / 8),
        None => max_map_count() / 4,
    }
}

/// Guard pages created so far, process-wide, of either kind (slots live for the process, and so
/// do their guards).
static GUARDS_USED: AtomicUsize = AtomicUsize::new(0);
/// Of those, the ones made with `mprotect` (each costing mappings).
static MAPPED_GUARDS: AtomicUsize = AtomicUsize::new(0);

/// Takes one unit of a budget counted by `used`, or says it is spent.
fn take_budget(used: &AtomicUsize, budget: usize) -> bool {
    if used.fetch_add(1, Ordering::Relaxed) >= budget {
        used.fetch_sub(1, Ordering::Relaxed);
        return false;
    }
    true
}

/// Rounds a requested usable size to what the allocator hands out, or explains why it cannot.
pub fn round_size(requested: usize) -> io::Result<usize> {
    if requested > MAX_STACK_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "coroutine stack size {requested} exceeds the maximum of {MAX_STACK_SIZE} bytes"
            ),
        ));
    }
    let page = page_size();
    let size = requested.max(MIN_STACK_SIZE);
    Ok(size.div_ceil(page) * page)
}

/// Samples the soft guard page at `gap` (the gap of an unguarded stack): `false` if any sampled
/// word is no longer zero.
#[inline]
pub(crate) fn soft_guard_sample_intact(gap: usize) -> bool {
    let page = page_size();
    let step = page / SOFT_GUARD_SAMPLES;
    // Sample the top word of each chunk, from the top of the gap down: overflows of small frames
    // land at the top first.
    (0..SOFT_GUARD_SAMPLES).all(|i| {
        let addr = gap + page - (i * step) - std::mem::size_of::<usize>();
        // SAFETY: `addr` is inside a gap page, which stays mapped readable (a soft guard is never
        // protected) for the life of the process; volatile so the check is not elided.
        unsafe { std::ptr::read_volatile(addr as *const usize) == 0 }
    })
}

/// One coroutine stack: `[gap page][usable stack]`, owned exclusively.
#[derive(Debug)]
pub struct Stack {
    /// Address of the gap page (the lowest address of the slot).
    gap: usize,
    /// Top of the usable range (what corosensei asks for on every resume).
    base: usize,
    /// How the gap is guarded.
    guard: Guard,
    /// The pool of its size, where it returns when dropped.
    pool: &'static SizePool,
}

/// How a stack's gap page is guarded. The order is the order free stacks are handed out in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Guard {
    /// A guard marker (`MADV_GUARD_INSTALL`).
    Marker = 0,
    /// A `PROT_NONE` page, a mapping of its own.
    Mapped = 1,
    /// Nothing: a soft guard, checked by sampling.
    Soft = 2,
}

impl Guard {
    const ALL: [Guard; 3] = [Guard::Marker, Guard::Mapped, Guard::Soft];
}

// SAFETY: a `Stack` is a unique handle to a range of memory nobody else uses; moving the handle
// between threads moves that exclusive ownership with it.
unsafe impl Send for Stack {}

impl Stack {
    /// Takes a stack of `size` usable bytes (already rounded by [`round_size`]) from the pool.
    pub fn new(size: usize) -> io::Result<Stack> {
        SizePool::get(size).pop()
    }

    /// Usable bytes.
    pub fn size(&self) -> usize {
        self.pool.size
    }

    /// The address range of the gap page below the stack.
    pub fn guard_range(&self) -> (usize, usize) {
        (self.gap, self.gap + page_size())
    }

    /// Whether an overflow faults (real guard page) rather than being detected by sampling.
    pub fn is_guarded(&self) -> bool {
        self.guard != Guard::Soft
    }

    /// Full check when the stack is released: is the whole soft guard still zero?
    pub fn soft_guard_fully_intact(&self) -> bool {
        self.is_guarded() || soft_guard_fully_intact_at(self.gap)
    }
}

/// Whether the whole soft guard page at `gap` still reads zero.
pub(crate) fn soft_guard_fully_intact_at(gap: usize) -> bool {
    let words = page_size() / std::mem::size_of::<u64>();
    // SAFETY: the gap page is mapped readable for the life of the process (see above), and
    // page-aligned, so aligned for u64.
    let gap = unsafe { std::slice::from_raw_parts(gap as *const u64, words) };
    // An OR-fold rather than `all`: no early exit, so it vectorises.
    gap.iter().fold(0, |acc, &w| acc | w) == 0
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.pool.push(self.gap, self.guard);
    }
}

// SAFETY: `base()` and `limit()` describe memory this `Stack` exclusively owns and that stays
// mapped read/write for the life of the process: `limit` is the bottom of the gap page, `base`
// the top of the usable range, both page-aligned (so aligned to STACK_ALIGNMENT), with at least
// MIN_STACK_SIZE (16 KiB) usable bytes. corosensei asks for a guard page below the stack. Guarded
// stacks have one (a marker or a `PROT_NONE` page; a free stack may lose its marker to a trim, but
// gets it back before it is handed out). Soft-guarded stacks (kernels without markers, past the
// mapping budget, or `CORUN_GUARD_PAGES`) have a gap page instead, checked
// after every switch-out and on release: an overflow into it aborts the process. An overflow that
// skips the whole gap with a single frame larger than a page is not caught there; see DESIGN.md,
// "Stacks", for why we accept that rather than refuse to run a million coroutines.
unsafe impl corosensei::stack::Stack for Stack {
    fn base(&self) -> corosensei::stack::StackPointer {
        corosensei::stack::StackPointer::new(self.base).expect("non-null stack")
    }

    fn limit(&self) -> corosensei::stack::StackPointer {
        corosensei::stack::StackPointer::new(self.gap).expect("non-null stack")
    }
}

/// Free stacks allowed to keep their resident pages (ready for reuse without page faults), per
/// size; the monitor returns the coldest of the rest to the kernel ([`trim`]).
const DIRTY_LIMIT: usize = 1024;

/// Free stacks of all sizes that may hold resident pages beyond [`DIRTY_LIMIT`]: a cheap test
/// for [`trim`] to skip its work.
static EXCESS_DIRTY: AtomicUsize = AtomicUsize::new(0);

/// How often the monitor calls [`trim`].
pub(crate) const TRIM_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Every size pool, for [`trim`].
static ALL_POOLS: Mutex<Vec<&'static SizePool>> = Mutex::new(Vec::new());

/// The free stacks of one size, process-wide.
#[derive(Debug)]
pub struct SizePool {
    size: usize,
    free: Mutex<FreeList>,
}

/// Free stacks, in one list per kind of guard so that guarded ones are handed out first: a
/// program that stays within the mapping budget in steady state (kernels without guard markers)
/// then only ever runs on guarded stacks, even after a burst forced some soft-guarded ones into
/// existence.
#[derive(Debug, Default)]
struct FreeList {
    /// Indexed by [`Guard`].
    buckets: [Bucket; 3],
    /// Unused tail of the current slab: next slot address and slots left.
    next_slot: usize,
    slots_left: usize,
}

/// Gap addresses of free stacks. Entries below `clean` have had their pages returned to the
/// kernel (and, for guard markers, their marker too: see [`SizePool::discard`]); entries above
/// may be dirty, the most recently freed (warmest) last. The list is a
/// stack (pushes and pops at the end), so entries below `low_water` (the shortest it has been
/// since the last trim) have not been touched since then: those are the cold ones.
#[derive(Debug, Default)]
struct Bucket {
    gaps: Vec<usize>,
    clean: usize,
    low_water: usize,
}

impl Bucket {
    /// The warmest free stack, and whether it was clean.
    fn pop(&mut self) -> Option<(usize, bool)> {
        let gap = self.gaps.pop()?;
        let was_clean = self.gaps.len() < self.clean;
        self.clean = self.clean.min(self.gaps.len());
        self.low_water = self.low_water.min(self.gaps.len());
        Some((gap, was_clean))
    }

    /// Dirty entries untouched since the last trim.
    fn cold_dirty(&self) -> usize {
        self.low_water
            .min(self.gaps.len())
            .saturating_sub(self.clean)
    }

    fn dirty(&self) -> usize {
        self.gaps.len() - self.clean
    }
}

impl FreeList {
    fn bucket(&mut self, guard: Guard) -> &mut Bucket {
        &mut self.buckets[guard as usize]
    }

    /// The next free stack to hand out (see [`Guard`] for the order), its kind, and whether it
    /// was clean.
    fn pop(&mut self) -> Option<(usize, Guard, bool)> {
        Guard::ALL.into_iter().find_map(|guard| {
            self.bucket(guard)
                .pop()
                .map(|(gap, clean)| (gap, guard, clean))
        })
    }

    fn dirty(&self) -> usize {
        self.buckets.iter().map(Bucket::dirty).sum()
    }

    fn push(&mut self, gap: usize, guard: Guard) {
        self.bucket(guard).gaps.push(gap);
    }
}

impl SizePool {
    /// The pool of stacks with `size` usable bytes (already rounded by [`round_size`]).
    pub fn get(size: usize) -> &'static SizePool {
        static POOLS: OnceLock<Mutex<HashMap<usize, &'static SizePool>>> = OnceLock::new();
        let pools = POOLS.get_or_init(|| Mutex::new(HashMap::new()));
        let mut pools = pools.lock();
        pools.entry(size).or_insert_with(|| {
            // Pools live for the process, like the slabs they carve (see the module docs).
            let pool: &'static SizePool = Box::leak(Box::new(SizePool {
                size,
                free: Mutex::new(FreeList::default()),
            }));
            ALL_POOLS.lock().push(pool);
            pool
        })
    }

    fn slot_bytes(&self) -> usize {
        self.size + page_size()
    }

    /// A stack from this pool: a free guarded one, else a free soft-guarded one, else a new slot
    /// (see [`try_guard`]).
    pub fn pop(&'static self) -> io::Result<Stack> {
        let mut free = self.free.lock();
        if let Some((gap, guard, clean)) = free.pop() {
            drop(free);
            return Ok(self.reissue(gap, guard, clean));
        }
        if free.slots_left == 0 {
            let slots = (SLAB_BYTES / self.slot_bytes()).max(1);
            let bytes = slots * self.slot_bytes();
            // SAFETY: an anonymous private mapping at an address of the kernel's choosing
            // touches no existing memory. MAP_NORESERVE: pages are committed only when touched.
            let addr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    bytes,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            if addr == libc::MAP_FAILED {
                let err = io::Error::last_os_error();
                return Err(io::Error::new(
                    io::ErrorKind::OutOfMemory,
                    format!("cannot reserve {bytes} bytes for coroutine stacks: {err}"),
                ));
            }
            // No transparent huge pages: a stack touches a page or two at the top of each slot,
            // and a huge page would commit 2 MiB for some thirty of them (markers and
            // `mprotect` guards prevent huge pages anyway; soft-guarded slabs would get them
            // on kernels set to `always`).
            // SAFETY: advice about our own new mapping; it changes no contents.
            unsafe { libc::madvise(addr, bytes, libc::MADV_NOHUGEPAGE) };
            free.next_slot = addr as usize;
            free.slots_left = slots;
            record_slab(addr as usize, bytes, self.slot_bytes(), self.size);
        }
        let gap = free.next_slot;
        free.next_slot += self.slot_bytes();
        free.slots_left -= 1;
        drop(free);
        Ok(self.stack_at(gap, try_guard(gap)))
    }

    /// A free stack taken out of the list, handed out again. A clean one whose guard was a
    /// marker lost it to the trim (see [`SizePool::discard`]): it gets it back first.
    fn reissue(&'static self, gap: usize, guard: Guard, clean: bool) -> Stack {
        let guard = match guard {
            Guard::Marker if clean => reinstall_marker(gap),
            other => other,
        };
        self.stack_at(gap, guard)
    }

    fn stack_at(&'static self, gap: usize, guard: Guard) -> Stack {
        Stack {
            gap,
            base: gap + self.slot_bytes(),
            guard,
            pool: self,
        }
    }

    /// Moves up to `n` (at most [`STACK_CACHE_REFILL`]) free stacks into `into` under one lock (a
    /// cache refilling itself).
    fn pop_batch(&'static self, into: &mut Vec<Stack>, n: usize) {
        let mut taken = [(0, Guard::Soft, false); STACK_CACHE_REFILL];
        let n = n.min(taken.len());
        let mut count = 0;
        {
            let mut free = self.free.lock();
            while count < n {
                let Some(entry) = free.pop() else { break };
                taken[count] = entry;
                count += 1;
            }
        }
        // Outside the lock: a reissue may be a system call.
        into.extend(
            taken[..count]
                .iter()
                .map(|&(gap, guard, clean)| self.reissue(gap, guard, clean)),
        );
    }

    /// Takes back many freed stacks under one lock (a cache spilling over).
    fn push_batch(&self, stacks: impl Iterator<Item = Stack>) {
        let mut free = self.free.lock();
        for stack in stacks {
            let stack = std::mem::ManuallyDrop::new(stack);
            free.push(stack.gap, stack.guard);
        }
        if free.dirty() > DIRTY_LIMIT {
            EXCESS_DIRTY.store(1, Ordering::Relaxed);
        }
    }

    /// Takes a freed stack back. Never returns memory to the kernel here: that is a TLB
    /// shoot-down on every other core, so [`trim`] does it later, in batches, off the hot path.
    fn push(&self, gap: usize, guard: Guard) {
        let mut free = self.free.lock();
        free.push(gap, guard);
        if free.dirty() > DIRTY_LIMIT {
            EXCESS_DIRTY.store(1, Ordering::Relaxed);
        }
    }

    /// Returns to the kernel the pages of dirty stacks beyond [`DIRTY_LIMIT`] that have not been
    /// reused since the last trim. Stacks that are churning (freed and taken again between two
    /// trims) stay dirty: dropping their pages would only make the next spawn fault them back.
    /// Returns whether dirty stacks remain beyond the limit (to be looked at next time).
    fn trim(&self) -> bool {
        // Soft-guarded stacks first, as before markers: they are handed out last.
        for guard in Guard::ALL.into_iter().rev() {
            let batch = {
                let mut free = self.free.lock();
                let excess = free.dirty().saturating_sub(DIRTY_LIMIT);
                let bucket = free.bucket(guard);
                let take = excess.min(bucket.cold_dirty());
                let start = bucket.clean;
                let batch = bucket.gaps.drain(start..start + take).collect::<Vec<_>>();
                bucket.low_water = bucket.gaps.len();
                if batch.is_empty() {
                    continue;
                }
                batch
            };
            self.discard(&batch, guard);
            let mut free = self.free.lock();
            let bucket = free.bucket(guard);
            // Meanwhile pops may have eaten into the list; the batch goes back just above what is
            // still known clean.
            let at = bucket.clean.min(bucket.gaps.len());
            bucket.gaps.splice(at..at, batch.iter().copied());
            bucket.clean = at + batch.len();
            bucket.low_water = bucket.gaps.len();
        }
        self.free.lock().dirty() > DIRTY_LIMIT
    }

    /// `MADV_DONTNEED` on the stacks at `gaps`, merging adjacent slots into one call (one
    /// shoot-down) per run.
    ///
    /// Stacks guarded by markers lose their markers first (one `MADV_GUARD_REMOVE` per run), and
    /// get them back when handed out again ([`SizePool::reissue`]). A marker lives in a page
    /// table, and a page table that holds one is never empty, so the kernel could not free the
    /// page tables of a burst's stacks: about 130 MiB per million stacks, kept for the life of
    /// the process (measured: `VmPTE` after a million-coroutine burst, 133 MB with markers kept
    /// against 4.5 MB with `mprotect` guards).
    fn discard(&self, gaps: &[usize], guard: Guard) {
        let mut sorted = gaps.to_vec();
        sorted.sort_unstable();
        let slot = self.slot_bytes();
        let mut i = 0;
        while i < sorted.len() {
            let mut j = i;
            while j + 1 < sorted.len() && sorted[j + 1] == sorted[j] + slot {
                j += 1;
            }
            // The whole run, gaps included: `PROT_NONE` gaps have nothing to drop, soft ones are
            // untouched (zero either way), and markers are gone by then.
            let start = sorted[i];
            let len = sorted[j] + slot - start;
            #[cfg(target_os = "linux")]
            if guard == Guard::Marker {
                // SAFETY: the range covers free stacks of this pool (taken out of the free list,
                // so nobody uses them) and their gaps, all inside one of our slabs; the advice
                // only removes guard markers.
                let rc =
                    unsafe { libc::madvise(start as *mut libc::c_void, len, MADV_GUARD_REMOVE) };
                debug_assert_eq!(rc, 0, "removing the markers of free stacks failed");
            }
            // SAFETY: as above. MADV_DONTNEED on private anonymous memory only drops pages.
            let rc = unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED) };
            debug_assert_eq!(rc, 0, "madvise over free stacks failed");
            i = j + 1;
        }
    }
}

/// Returns free stacks that stayed cold for a whole trim interval, beyond the dirty limit, to
/// the kernel. Called by the runtimes' monitor threads every [`TRIM_INTERVAL`] (the interval is
/// also the age that makes a free stack cold); cheap when there is nothing to do.
pub(crate) fn trim() {
    if EXCESS_DIRTY.load(Ordering::Relaxed) == 0 {
        return;
    }
    // Every runtime's monitor calls this; one trim at a time is plenty (and keeps each pool's
    // low-water mark meaningful).
    static TRIMMING: Mutex<()> = Mutex::new(());
    let Some(_trimming) = TRIMMING.try_lock() else {
        return;
    };
    let pools: Vec<&'static SizePool> = ALL_POOLS.lock().clone();
    let mut still_excess = false;
    for pool in pools {
        still_excess |= pool.trim();
    }
    if !still_excess {
        EXCESS_DIRTY.store(0, Ordering::Relaxed);
    }
}

/// Slabs recorded for the SIGSEGV handler ([`stack_overflowed_at`]): 4,096 of them cover 128 GiB of
/// stacks (about two million of the default size); slabs past that are not recorded, and an
/// overflow into one of their gaps is reported only when it is the running coroutine's.
const SLAB_RECORDS: usize = 4096;

/// One slab, for the handler: where it starts and ends, the bytes of each slot, and the usable
/// bytes of each stack. Written once, before [`SLABS_RECORDED`] publishes it.
struct SlabRecord {
    start: AtomicUsize,
    end: AtomicUsize,
    slot: AtomicUsize,
    size: AtomicUsize,
}

static SLABS: [SlabRecord; SLAB_RECORDS] = [const {
    SlabRecord {
        start: AtomicUsize::new(0),
        end: AtomicUsize::new(0),
        slot: AtomicUsize::new(0),
        size: AtomicUsize::new(0),
    }
}; SLAB_RECORDS];
/// How many of [`SLABS`] are written (release: a record is complete before it is counted).
static SLABS_RECORDED: AtomicUsize = AtomicUsize::new(0);
/// Serialises the writers (one per new slab, so rare); the handler only reads.
static RECORDING: Mutex<()> = Mutex::new(());

fn record_slab(start: usize, len: usize, slot: usize, size: usize) {
    let _recording = RECORDING.lock();
    let n = SLABS_RECORDED.load(Ordering::Relaxed);
    let Some(record) = SLABS.get(n) else { return };
    record.start.store(start, Ordering::Relaxed);
    record.end.store(start + len, Ordering::Relaxed);
    record.slot.store(slot, Ordering::Relaxed);
    record.size.store(size, Ordering::Relaxed);
    SLABS_RECORDED.store(n + 1, Ordering::Release);
}

/// For the SIGSEGV handler: if `addr` lies in the gap page of one of our stacks, that gap's
/// address and the stack's usable size. Nothing but an overflow touches a gap, so a fault there
/// is one, whichever stack it belongs to: a generator's included, which no worker publishes.
/// Async-signal-safe: atomic loads over a static array.
pub(crate) fn stack_overflowed_at(addr: usize) -> Option<(usize, usize)> {
    let n = SLABS_RECORDED.load(Ordering::Acquire);
    SLABS[..n.min(SLAB_RECORDS)].iter().find_map(|record| {
        let (start, end) = (
            record.start.load(Ordering::Relaxed),
            record.end.load(Ordering::Relaxed),
        );
        if addr < start || addr >= end {
            return None;
        }
        let slot = record.slot.load(Ordering::Relaxed);
        let gap = addr - (addr - start) % slot;
        (addr < gap + page_size()).then(|| (gap, record.size.load(Ordering::Relaxed)))
    })
}

/// `MADV_GUARD_INSTALL` (Linux 6.13, `include/uapi/asm-generic/mman-common.h`; the libc crate
/// does not name it yet): a *lightweight guard region*, a marker in the page tables that makes
/// any access fault, without splitting the mapping.
#[cfg(target_os = "linux")]
const MADV_GUARD_INSTALL: libc::c_int = 102;
/// `MADV_GUARD_REMOVE`: takes the markers of a range away, leaving its pages alone.
#[cfg(target_os = "linux")]
const MADV_GUARD_REMOVE: libc::c_int = 103;

/// Whether the kernel refused `MADV_GUARD_INSTALL` once (older than 6.13), or
/// `CORUN_GUARD_MARKERS=0` asked not to use it (read once; how the tests reach the old path):
/// guard pages are then made with `mprotect`, under the mapping budget.
fn guard_markers_refused() -> &'static std::sync::atomic::AtomicBool {
    static REFUSED: OnceLock<std::sync::atomic::AtomicBool> = OnceLock::new();
    REFUSED.get_or_init(|| {
        let off = std::env::var("CORUN_GUARD_MARKERS").is_ok_and(|v| v.trim() == "0");
        std::sync::atomic::AtomicBool::new(off)
    })
}

/// Turns the gap page at `gap` into a guard page: a guard marker where the kernel has them (no
/// new mapping, so only `CORUN_GUARD_PAGES` limits them), else a `PROT_NONE` page while the
/// mapping budget lasts, else nothing (a soft guard).
fn try_guard(gap: usize) -> Guard {
    if !take_budget(&GUARDS_USED, guard_override().unwrap_or(usize::MAX)) {
        return Guard::Soft;
    }
    if install_marker(gap) {
        return Guard::Marker;
    }
    let guard = protect(gap);
    if guard == Guard::Soft {
        GUARDS_USED.fetch_sub(1, Ordering::Relaxed);
    }
    guard
}

/// Puts back the marker a trim took from the free stack at `gap` (its guard page was counted
/// when the slot was carved). Should the kernel refuse now, the `mprotect` way, or a soft guard.
fn reinstall_marker(gap: usize) -> Guard {
    if install_marker(gap) {
        return Guard::Marker;
    }
    let guard = protect(gap);
    if guard == Guard::Soft {
        GUARDS_USED.fetch_sub(1, Ordering::Relaxed); // no guard page any more
    }
    guard
}

/// Installs a guard marker on the page at `gap`, unless markers are refused; returns whether it
/// did.
fn install_marker(gap: usize) -> bool {
    #[cfg(target_os = "linux")]
    if !guard_markers_refused().load(Ordering::Relaxed) {
        // SAFETY: `gap` is the first page of a slot we carved from our own slab (a private,
        // writable, anonymous mapping) and own exclusively; nothing lives there. The advice only
        // marks that page's table entry.
        let rc =
            unsafe { libc::madvise(gap as *mut libc::c_void, page_size(), MADV_GUARD_INSTALL) };
        if rc == 0 {
            return true;
        }
        // EINVAL: advice unknown to this kernel (or a mapping it will not mark, such as a locked
        // one after `mlockall(MCL_FUTURE)`): not asked again. Anything else (ENOMEM for a page
        // table): the old way for this page only.
        if io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
            guard_markers_refused().store(true, Ordering::Relaxed);
        }
    }
    false
}

/// Makes the page at `gap` `PROT_NONE` if the mapping budget allows: [`Guard::Mapped`], else
/// [`Guard::Soft`].
fn protect(gap: usize) -> Guard {
    if !take_budget(&MAPPED_GUARDS, mapping_budget()) {
        return Guard::Soft;
    }
    // SAFETY: `gap` is the first page of a slot we carved from our own slab and own exclusively;
    // nothing lives there.
    let rc = unsafe { libc::mprotect(gap as *mut libc::c_void, page_size(), libc::PROT_NONE) };
    if rc != 0 {
        // Out of mappings after all (the rest of the program used more than we assumed): a soft
        // guard rather than a failed spawn.
        MAPPED_GUARDS.fetch_sub(1, Ordering::Relaxed);
        return Guard::Soft;
    }
    Guard::Mapped
}

/// A cache of free stacks of one size in front of the shared pool: one per worker, and one per
/// plain thread that spawns. Stacks move between a cache and the pool in batches, so a thread
/// that only spawns and workers that only finish coroutines do not meet on the pool's lock for
/// every stack.
#[derive(Debug)]
pub struct StackCache {
    pool: &'static SizePool,
    stacks: Vec<Stack>,
}

/// Stacks a cache holds at most; when full, half goes back to the pool.
const STACK_CACHE_CAPACITY: usize = 256;
/// Stacks an empty cache takes from the pool at once.
const STACK_CACHE_REFILL: usize = 32;

impl StackCache {
    /// An empty cache in front of `pool`.
    pub fn new(pool: &'static SizePool) -> Self {
        StackCache {
            pool,
            stacks: Vec::with_capacity(STACK_CACHE_CAPACITY),
        }
    }

    /// Whether this cache holds stacks of `size` bytes.
    pub fn holds(&self, size: usize) -> bool {
        self.pool.size == size
    }

    /// A stack of `size` bytes: from the cache when it is the cached size, else from the pool.
    pub fn take(&mut self, size: usize) -> io::Result<Stack> {
        if size != self.pool.size {
            return Stack::new(size);
        }
        if self.stacks.is_empty() {
            self.pool.pop_batch(&mut self.stacks, STACK_CACHE_REFILL);
        }
        match self.stacks.pop() {
            Some(stack) => Ok(stack),
            None => self.pool.pop(),
        }
    }

    /// Keeps a released stack for reuse; when full, gives half back to the pool first.
    pub fn put(&mut self, stack: Stack) {
        if !std::ptr::eq(stack.pool, self.pool) {
            return; // `stack` drops here and goes back to its own pool.
        }
        if self.stacks.len() >= STACK_CACHE_CAPACITY {
            // The coldest half (the bottom of the cache) goes.
            self.pool
                .push_batch(self.stacks.drain(..STACK_CACHE_CAPACITY / 2));
        }
        self.stacks.push(stack);
    }
}

thread_local! {
    /// The stack cache of a plain thread that spawns coroutines (never used on a coroutine's
    /// stack: see `take_on_plain_thread`).
    static PLAIN_THREAD_CACHE: std::cell::RefCell<Option<StackCache>> = const { std::cell::RefCell::new(None) };
}

/// A stack from `pool` for a spawn made by a plain thread, through that thread's cache. Must not
/// be called on a coroutine's stack (a coroutine may migrate; the runtime keeps no thread-local
/// state across switches): callers check that first.
pub(crate) fn take_on_plain_thread(pool: &'static SizePool) -> io::Result<Stack> {
    PLAIN_THREAD_CACHE
        .try_with(|cache| {
            let mut cache = cache.borrow_mut();
            match &mut *cache {
                Some(c) if c.holds(pool.size) => c.take(pool.size),
                Some(_) => pool.pop(),
                None => cache.insert(StackCache::new(pool)).take(pool.size),
            }
        })
        // A spawn from a thread-local destructor, after this cache is gone: use the pool.
        .unwrap_or_else(|_| pool.pop())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// A pool of its own (an odd size nobody else uses), so tests do not share free lists.
    fn private_pool(pages: usize) -> &'static SizePool {
        SizePool::get(MIN_STACK_SIZE + pages * page_size())
    }

    fn count_free(pool: &SizePool) -> (usize, usize) {
        let free = pool.free.lock();
        (
            free.buckets.iter().map(|b| b.gaps.len()).sum(),
            free.dirty(),
        )
    }

    /// Whether reading the byte at `addr` faults, asked of the kernel (a `write(2)` from it to a
    /// pipe fails with `EFAULT`) rather than by touching it.
    fn faults(addr: usize) -> bool {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: the kernel checks `addr` itself; the descriptors are ours and closed after.
        let n = unsafe { libc::write(fds[1], addr as *const libc::c_void, 1) };
        let err = std::io::Error::last_os_error().raw_os_error();
        // SAFETY: closing the pipe we opened.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        match n {
            1 => false,
            _ => {
                assert_eq!(err, Some(libc::EFAULT), "write from {addr:#x}");
                true
            }
        }
    }

    #[test]
    fn a_new_stack_has_a_guard_page_a_marker_where_the_kernel_has_them() {
        let pool = private_pool(3);
        let stack = pool.pop().unwrap();
        assert!(stack.is_guarded());
        assert!(faults(stack.gap), "the gap of a guarded stack can be read");
        assert!(!faults(stack.gap + page_size()), "the usable stack faults");
        if !guard_markers_refused().load(Ordering::Relaxed) {
            assert_eq!(stack.guard, Guard::Marker);
        }
    }

    #[test]
    fn a_trimmed_stack_loses_its_marker_while_free_and_gets_it_back() {
        let pool = private_pool(4);
        let stacks: Vec<Stack> = (0..DIRTY_LIMIT + 100)
            .map(|_| pool.pop().unwrap())
            .collect();
        if stacks[0].guard != Guard::Marker {
            return; // a kernel without markers: nothing to take away
        }
        drop(stacks);
        pool.trim();
        pool.trim(); // the cold excess is discarded now, markers first
        let clean: Vec<usize> = {
            let mut free = pool.free.lock();
            let bucket = free.bucket(Guard::Marker);
            assert!(bucket.clean >= 100, "only {} trimmed", bucket.clean);
            bucket.gaps[..bucket.clean].to_vec()
        };
        assert!(
            clean.iter().all(|&gap| !faults(gap)),
            "a trimmed free stack kept its marker (and its page table)"
        );
        // Half one at a time, half through a cache (which refills itself in batches).
        let mut cache = StackCache::new(pool);
        let all: Vec<Stack> = (0..DIRTY_LIMIT + 100)
            .map(|i| match i % 2 {
                0 => pool.pop().unwrap(),
                _ => cache.take(pool.size).unwrap(),
            })
            .collect();
        for stack in &all {
            assert!(faults(stack.gap), "a reissued stack has no guard");
            assert_eq!(stack.guard, Guard::Marker);
        }
    }

    #[test]
    fn trimming_returns_cold_excess_and_loses_no_stack() {
        let pool = private_pool(1);
        let stacks: Vec<Stack> = (0..DIRTY_LIMIT + 500)
            .map(|_| pool.pop().unwrap())
            .collect();
        let gaps: HashSet<usize> = stacks.iter().map(|s| s.gap).collect();
        drop(stacks);
        assert_eq!(count_free(pool).1, DIRTY_LIMIT + 500);
        pool.trim(); // marks the current stacks as seen
        pool.trim(); // nothing was reused since: the excess is cold and goes
        let (free, dirty) = count_free(pool);
        assert_eq!(free, DIRTY_LIMIT + 500);
        assert!(dirty <= DIRTY_LIMIT, "{dirty} dirty after trimming");
        let again: Vec<(usize, Guard)> = (0..DIRTY_LIMIT + 500)
            .map(|_| {
                let s = std::mem::ManuallyDrop::new(pool.pop().unwrap());
                (s.gap, s.guard) // kept out of the pool while counting
            })
            .collect();
        let again_gaps: HashSet<usize> = again.iter().map(|&(gap, _)| gap).collect();
        assert_eq!(again_gaps.len(), again.len(), "a stack came back twice");
        assert_eq!(again_gaps, gaps, "every stack comes back exactly once");
        for (gap, guard) in again {
            pool.push(gap, guard);
        }
    }

    #[test]
    fn concurrent_trims_and_reuse_keep_the_free_lists_consistent() {
        let pool = private_pool(2);
        let total = DIRTY_LIMIT + 2000;
        drop((0..total).map(|_| pool.pop().unwrap()).collect::<Vec<_>>());
        {
            // Two free lists in play, as after a burst past the mapping budget: move half of
            // the slots to the soft list (they are real slots of this pool, so trimming them is
            // valid; in a test process the budget is never used up). Their markers stay, but
            // these stacks are only taken and given back, never run or checked.
            let mut free = pool.free.lock();
            let guarded = free
                .buckets
                .iter()
                .position(|b| !b.gaps.is_empty())
                .unwrap();
            let half = free.buckets[guarded].gaps.split_off(total / 2);
            free.buckets[guarded].clean = 0;
            free.bucket(Guard::Soft).gaps.extend(half);
        }
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    for _ in 0..200 {
                        pool.trim();
                    }
                });
            }
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..200 {
                        let held: Vec<Stack> = (0..50).map(|_| pool.pop().unwrap()).collect();
                        drop(held);
                    }
                });
            }
        });
        let gaps: HashSet<usize> = {
            let free = pool.free.lock();
            free.buckets
                .iter()
                .flat_map(|b| b.gaps.iter())
                .copied()
                .collect()
        };
        assert_eq!(gaps.len(), total, "no stack lost or duplicated");
        assert_eq!(count_free(pool).0, total);
    }
}
