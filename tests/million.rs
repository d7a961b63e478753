//! A million coroutines parked at once, on two workers, without raising `vm.max_map_count`.

mod common;

use common::{resident_bytes, wait_until, within};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const COROUTINES: usize = 1_000_000;
/// Regression guard, not a measurement: a parked coroutine costs a few KiB (its touched stack
/// pages plus its records); 16 KiB each would mean stacks are being committed wholesale.
const MAX_RESIDENT_PER_COROUTINE: usize = 16 * 1024;
/// What may stay resident once all of them have finished, against ~4.2 GiB at the peak: the
/// pools' warm reserve (~20 MiB) plus what the allocator's per-thread arenas keep even after
/// `malloc_trim` (seen here: 34 to 241 MiB, depending on which threads allocated).
const MAX_RETAINED_AFTER_BURST: usize = 512 << 20;
/// The page tables that may stay after the burst, against ~130 MiB at the peak (a guard marker
/// left on every freed stack would keep them all).
const MAX_PAGE_TABLES_RETAINED: usize = 32 << 20;

/// The process's page tables (`VmPTE`), in bytes.
fn page_table_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmPTE:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .expect("status has VmPTE")
        * 1024
}

/// Whether this kernel frees page tables that `MADV_DONTNEED` leaves empty (Linux 6.14's
/// `CONFIG_PT_RECLAIM`; without it page tables stay whatever corun does): one page touched in
/// each of 128 page-table ranges of a scratch mapping, then dropped.
fn kernel_frees_empty_page_tables() -> bool {
    let len = 256 << 20;
    // SAFETY: a fresh private anonymous mapping, touched and unmapped only here.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    assert_ne!(addr, libc::MAP_FAILED);
    // SAFETY: advice about our own mapping: small pages, so each touch needs a page table even
    // where transparent huge pages are `always`.
    unsafe { libc::madvise(addr, len, libc::MADV_NOHUGEPAGE) };
    for offset in (0..len).step_by(2 << 20) {
        // SAFETY: inside the mapping, which is writable.
        unsafe { std::ptr::write_volatile(addr.cast::<u8>().add(offset), 1) };
    }
    let touched = page_table_bytes();
    // SAFETY: the mapping is ours; dropping its pages and unmapping it touch nothing else.
    let dropped = unsafe {
        libc::madvise(addr, len, libc::MADV_DONTNEED);
        let dropped = page_table_bytes();
        libc::munmap(addr, len);
        dropped
    };
    touched.saturating_sub(dropped) >= 256 << 10
}

#[test]
fn a_million_coroutines_park_at_once_and_all_finish_when_unparked() {
    within(Duration::from_secs(600), || {
        let rt = common::runtime(2);
        let go = Arc::new(AtomicBool::new(false));
        let parked = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicUsize::new(0));
        let rss_before = resident_bytes();
        let page_tables_before = page_table_bytes();
        let check_page_tables = kernel_frees_empty_page_tables();
        let start = Instant::now();

        let handles: Vec<corun::JoinHandle<()>> = (0..COROUTINES)
            .map(|i| {
                let (go, parked, finished) = (go.clone(), parked.clone(), finished.clone());
                corun::Builder::new()
                    .spawn_on(&rt, move || {
                        let mut counted = false;
                        while !go.load(Ordering::Acquire) {
                            if !counted {
                                // Counted once, right before the first park.
                                parked.fetch_add(1, Ordering::SeqCst);
                                counted = true;
                            }
                            corun::park();
                        }
                        finished.fetch_add(1, Ordering::SeqCst);
                    })
                    .unwrap_or_else(|e| panic!("spawn #{i} failed: {e}"))
            })
            .collect();
        let spawned = start.elapsed();
        wait_until(
            Duration::from_secs(300),
            "a million coroutines reach park",
            || parked.load(Ordering::SeqCst) == COROUTINES,
        );
        let all_parked = start.elapsed();
        let rss_parked = resident_bytes();
        let per_coroutine = rss_parked.saturating_sub(rss_before) / COROUTINES;
        let live = rt.metrics().live_coroutines;
        let mappings = std::fs::read_to_string("/proc/self/maps")
            .map(|m| m.lines().count())
            .unwrap_or(0);
        println!(
            "{COROUTINES} coroutines: spawned in {spawned:?}, all parked after {all_parked:?}; \
             RSS {} MiB -> {} MiB = {per_coroutine} bytes per parked coroutine; \
             {live} live per metrics; {mappings} memory mappings; page tables {} MiB",
            rss_before >> 20,
            rss_parked >> 20,
            page_table_bytes() >> 20
        );
        assert_eq!(live, COROUTINES, "metrics' live coroutine count");
        assert_eq!(finished.load(Ordering::SeqCst), 0);

        go.store(true, Ordering::Release);
        for handle in &handles {
            handle.coroutine().unpark();
        }
        for handle in handles {
            handle.join().expect("a coroutine panicked");
        }
        println!("all joined after {:?}", start.elapsed());
        assert_eq!(finished.load(Ordering::SeqCst), COROUTINES);
        // The freed stacks go back to the kernel, but for a bounded warm reserve (the pools'
        // dirty limit and the workers' caches: a few thousand stacks of a page or two), which
        // the monitor trims in the background.
        wait_until(
            Duration::from_secs(120),
            "resident memory returns to near its starting point after the burst",
            || {
                // glibc keeps the freed task records (~340 MB for a million) in its heap; give
                // those back first, so what is measured is what corun itself retains.
                // SAFETY: malloc_trim only releases free heap memory; it has no preconditions.
                unsafe { libc::malloc_trim(0) };
                resident_bytes() < rss_before + MAX_RETAINED_AFTER_BURST
            },
        );
        println!(
            "RSS after the burst: {} MiB, page tables {} MiB",
            resident_bytes() >> 20,
            page_table_bytes() >> 20
        );
        if check_page_tables {
            // Stacks are trimmed in batches, a second apart: give it the same time.
            wait_until(
                Duration::from_secs(120),
                "page tables return to near their starting point after the burst",
                || page_table_bytes() < page_tables_before + MAX_PAGE_TABLES_RETAINED,
            );
        } else {
            println!("this kernel keeps empty page tables: not checked");
        }
        std::thread::sleep(Duration::from_secs(1));
        // SAFETY: as above.
        unsafe { libc::malloc_trim(0) };
        println!("RSS a second later: {} MiB", resident_bytes() >> 20);
        assert!(
            per_coroutine < MAX_RESIDENT_PER_COROUTINE,
            "{per_coroutine} bytes resident per parked coroutine"
        );
        drop(rt);
    });
}
