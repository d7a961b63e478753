//! A first look at corun: a million coroutines across all cores.
//!
//! Run with `cargo run --release --example tour`. It spawns 1,000,000 coroutines that each yield
//! a few times (every yield is a chance to resume on another worker), shows how the work spread
//! over the workers and how many coroutines migrated, and measures what a spawn and a switch cost.

use std::time::Instant;

const COROUTINES: u64 = 1_000_000;
const YIELDS_EACH: u64 = 3;
const SWITCHES: u64 = 2_000_000;

fn main() -> std::io::Result<()> {
    let runtime = corun::Runtime::new()?;
    println!("corun tour: {} workers (one per CPU)\n", runtime.workers());

    // 1. A million coroutines, spawned from inside a coroutine so they land on its processor's
    //    queues first and the other workers have to steal them. The spawner yields now and then,
    //    as real code does, so its own worker runs coroutines too.
    let (spawn_ns, total_ns, sum) = runtime.block_on(|| {
        let start = Instant::now();
        let handles: Vec<_> = (0..COROUTINES)
            .map(|i| {
                if i % 256 == 255 {
                    corun::yield_now();
                }
                corun::spawn(move || {
                    for _ in 0..YIELDS_EACH {
                        corun::yield_now();
                    }
                    i
                })
            })
            .collect();
        let spawned = start.elapsed();
        let sum: u64 = handles
            .into_iter()
            .map(|h| h.join().expect("no panics"))
            .sum();
        (
            spawned.as_nanos() as f64 / COROUTINES as f64,
            start.elapsed().as_nanos() as f64 / COROUTINES as f64,
            sum,
        )
    });
    assert_eq!(sum, COROUTINES * (COROUTINES - 1) / 2);
    println!("spawned {COROUTINES} coroutines, each yielding {YIELDS_EACH} times, all joined (checksum ok)");
    println!("  spawn:              {spawn_ns:8.0} ns per coroutine");
    println!("  spawn+run+join:     {total_ns:8.0} ns per coroutine\n");

    let metrics = runtime.metrics();
    println!("  worker     resumes   migrated in   stolen");
    let mut migrated = 0;
    for (i, w) in metrics.workers.iter().enumerate() {
        let label = if i < runtime.workers() {
            format!("{i}")
        } else {
            format!("spare {}", i - runtime.workers())
        };
        println!(
            "  {label:>7} {:>10} {:>13} {:>8}",
            w.resumed, w.migrated_in, w.stolen
        );
        migrated += w.migrated_in;
    }
    println!("  {migrated} resumes continued a coroutine on a different worker than before");
    if metrics.workers.len() > runtime.workers() {
        println!(
            "  (the spawning coroutine ran for seconds without yielding, so the monitor handed its\n   \
             worker's queue to a spare thread: that is how queued coroutines keep running behind a hog)"
        );
    }
    println!();

    // 2. The cost of a switch: two coroutines yielding to each other on a single worker.
    let one = corun::runtime::Builder::new().workers(1).build()?;
    let switch_ns = one.block_on(|| {
        let other = corun::spawn(|| {
            for _ in 0..SWITCHES / 2 {
                corun::yield_now();
            }
        });
        let start = Instant::now();
        for _ in 0..SWITCHES / 2 {
            corun::yield_now();
        }
        let elapsed = start.elapsed();
        other.join().expect("no panics");
        elapsed.as_nanos() as f64 / SWITCHES as f64
    });
    println!("two coroutines yielding to each other on one worker:");
    println!("  switch:             {switch_ns:8.1} ns (coroutine -> scheduler -> coroutine)");
    Ok(())
}
