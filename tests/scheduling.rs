//! Scheduling properties: migration between worker threads, fairness among yielding coroutines,
//! and the monitor's rescue of work queued behind coroutines that never yield.

mod common;

use common::{join_within, runtime, wait_until, within, LONG, SHORT};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

/// Spawns `coroutines` coroutines that each yield `yields` times, and returns, per coroutine, the
/// set of OS threads it ran on.
fn threads_seen_by_yielders(
    rt: &corun::Runtime,
    coroutines: usize,
    yields: usize,
) -> Vec<HashSet<ThreadId>> {
    let handles: Vec<_> = (0..coroutines)
        .map(|_| {
            rt.spawn(move || {
                let mut seen = HashSet::new();
                seen.insert(thread::current().id());
                for _ in 0..yields {
                    corun::yield_now();
                    seen.insert(thread::current().id());
                }
                seen
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| join_within(h, LONG).unwrap())
        .collect()
}

#[test]
fn coroutines_run_on_more_than_one_os_thread() {
    within(LONG, || {
        let rt = runtime(2);
        let per_coroutine = threads_seen_by_yielders(&rt, 2_000, 20);
        let all: HashSet<ThreadId> = per_coroutine.into_iter().flatten().collect();
        assert!(
            all.len() >= 2,
            "2,000 yielding coroutines on 2 workers all ran on one thread"
        );
        assert!(
            !all.contains(&thread::current().id()),
            "a coroutine ran on the spawning thread"
        );
    });
}

#[test]
fn a_coroutine_resumes_on_another_os_thread_after_yielding() {
    within(LONG, || {
        let rt = runtime(2);
        // Migration needs an idle worker to steal, or a full local queue to spill over, at the
        // right moment; it is near certain within the first round, and the rounds make it so.
        let mut migrated = 0;
        for _round in 0..20 {
            migrated = threads_seen_by_yielders(&rt, 2_000, 20)
                .iter()
                .filter(|seen| seen.len() > 1)
                .count();
            if migrated > 0 {
                break;
            }
        }
        assert!(migrated > 0, "no coroutine ever changed thread");
        let metrics = rt.metrics();
        let migrated_in: u64 = metrics.workers.iter().map(|w| w.migrated_in).sum();
        assert!(migrated_in > 0, "metrics count no migration: {metrics:?}");
        let resumed: u64 = metrics.workers.iter().map(|w| w.resumed).sum();
        assert!(resumed >= 2_000 * 21, "metrics missed resumes: {metrics:?}");
    });
}

#[test]
fn yield_loops_do_not_starve_each_other_on_one_worker() {
    within(LONG, || {
        const LOOPERS: usize = 20;
        const TARGET: u64 = 200;
        // Bound on every loop, so a starved watcher cannot hang the test.
        const CAP: u64 = 2_000_000;
        let rt = runtime(1);
        let counters: Arc<Vec<AtomicU64>> =
            Arc::new((0..LOOPERS).map(|_| AtomicU64::new(0)).collect());
        let stop = Arc::new(AtomicBool::new(false));
        let loopers: Vec<_> = (0..LOOPERS)
            .map(|i| {
                let (counters, stop) = (counters.clone(), stop.clone());
                rt.spawn(move || {
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) && n < CAP {
                        counters[i].fetch_add(1, Ordering::Relaxed);
                        n += 1;
                        corun::yield_now();
                    }
                })
            })
            .collect();
        // The watcher is one more yielder on the same worker: it only gets to look if it is not
        // starved either.
        let (c, s) = (counters.clone(), stop.clone());
        let watcher = rt.spawn(move || {
            let mut looks = 0;
            let ok = loop {
                if c.iter().all(|n| n.load(Ordering::Relaxed) >= TARGET) {
                    break true;
                }
                looks += 1;
                if looks >= CAP {
                    break false;
                }
                corun::yield_now();
            };
            s.store(true, Ordering::Relaxed);
            ok
        });
        let all_progressed = join_within(watcher, LONG).unwrap();
        stop.store(true, Ordering::Relaxed);
        for looper in loopers {
            join_within(looper, LONG).unwrap();
        }
        let counts: Vec<u64> = counters.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        assert!(all_progressed, "some yield loop starved: {counts:?}");
    });
}

#[test]
fn a_ping_pong_pair_does_not_starve_the_rest_of_the_queue() {
    within(LONG, || {
        // Woken coroutines go to the run-next slot; a pair that keeps waking each other must
        // still let the local queue run. On one worker, the main coroutine yields behind them and
        // has to come back to stop them.
        const CAP: u64 = 500_000;
        let rt = runtime(1);
        let rounds = rt.block_on(|| {
            let stop = Arc::new(AtomicBool::new(false));
            let peers: [Arc<OnceLock<corun::Coroutine>>; 2] = Default::default();
            let turn = Arc::new(AtomicU64::new(0));
            let player = |me: u64| {
                let (stop, turn) = (stop.clone(), turn.clone());
                let peer = peers[1 - me as usize].clone();
                corun::spawn(move || {
                    while peer.get().is_none() {
                        corun::park();
                    }
                    let peer = peer.get().unwrap();
                    let mut round = 0;
                    while round < CAP {
                        let my_turn = 2 * round + me;
                        while turn.load(Ordering::Acquire) != my_turn {
                            if stop.load(Ordering::Acquire) {
                                peer.unpark();
                                return round;
                            }
                            corun::park();
                        }
                        turn.store(my_turn + 1, Ordering::Release);
                        peer.unpark();
                        round += 1;
                    }
                    round
                })
            };
            let ping = player(0);
            let pong = player(1);
            peers[0].set(ping.coroutine().clone()).unwrap();
            peers[1].set(pong.coroutine().clone()).unwrap();
            ping.coroutine().unpark();
            pong.coroutine().unpark();
            corun::yield_now(); // behind the pair, on the only worker
            stop.store(true, Ordering::Release);
            ping.coroutine().unpark();
            pong.coroutine().unpark();
            (ping.join().unwrap(), pong.join().unwrap())
        });
        assert!(
            rounds.0 < CAP && rounds.1 < CAP,
            "the yielding coroutine only ran after the pair finished: {rounds:?}"
        );
    });
}

/// Spins on `stop` without ever yielding: holds its worker thread.
fn hog(stop: Arc<AtomicBool>, started: Arc<AtomicUsize>) -> impl FnOnce() + Send + 'static {
    move || {
        started.fetch_add(1, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(60); // never spin forever
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            std::hint::spin_loop();
        }
    }
}

/// Starts `hogs` hogs on `rt`, waits until they all spin, then runs `queue_small`, which must
/// arrange for a coroutine to set `ran`. Returns whether `ran` was set within a generous bound
/// while the hogs were still spinning; stops the hogs either way.
fn runs_behind_hogs(
    rt: &corun::Runtime,
    hogs: usize,
    ran: &AtomicBool,
    queue_small: impl FnOnce(),
) -> bool {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..hogs)
        .map(|_| rt.spawn(hog(stop.clone(), started.clone())))
        .collect();
    let all_started = poll(SHORT, || started.load(Ordering::SeqCst) == hogs);
    let ran_in_time = all_started && {
        queue_small();
        poll(Duration::from_secs(10), || ran.load(Ordering::SeqCst))
    };
    // Stop the hogs before any assertion: dropping the runtime waits for them.
    stop.store(true, Ordering::SeqCst);
    for handle in handles {
        join_within(handle, LONG).unwrap();
    }
    assert!(all_started, "the hogs did not all start");
    wait_until(
        SHORT,
        "the small coroutine runs once the hogs stopped",
        || ran.load(Ordering::SeqCst),
    );
    ran_in_time
}

/// Polls `condition` for up to `limit`; reports whether it came true.
fn poll(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !condition() {
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(1));
    }
    true
}

#[test]
fn a_coroutine_queued_behind_cpu_hogs_on_every_worker_runs_within_seconds() {
    within(LONG, || {
        let rt = runtime(2);
        let ran = Arc::new(AtomicBool::new(false));
        let r = ran.clone();
        let in_time = runs_behind_hogs(&rt, 2, &ran, || {
            rt.spawn(move || r.store(true, Ordering::SeqCst));
        });
        assert!(in_time, "a coroutine waited behind two hogs for 10 s");
    });
}

#[test]
fn a_coroutine_queued_behind_a_cpu_hog_on_a_one_worker_runtime_runs_within_seconds() {
    within(LONG, || {
        let rt = runtime(1);
        let ran = Arc::new(AtomicBool::new(false));
        let r = ran.clone();
        let in_time = runs_behind_hogs(&rt, 1, &ran, || {
            rt.spawn(move || r.store(true, Ordering::SeqCst));
        });
        assert!(in_time, "a coroutine waited behind a hog for 10 s");
    });
}

#[test]
fn work_rescued_from_a_stuck_worker_runs_on_a_spare_thread() {
    within(LONG, || {
        let rt = runtime(1);
        let ran = Arc::new(AtomicBool::new(false));
        let thread_name = Arc::new(OnceLock::new());
        let (r, t) = (ran.clone(), thread_name.clone());
        let in_time = runs_behind_hogs(&rt, 1, &ran, || {
            rt.spawn(move || {
                t.set(thread::current().name().map(str::to_owned)).unwrap();
                r.store(true, Ordering::SeqCst);
            });
        });
        assert!(in_time, "a coroutine waited behind a hog for 10 s");
        let name = thread_name.get().unwrap().clone().unwrap_or_default();
        assert!(
            name.contains("spare"),
            "rescued work ran on thread {name:?}"
        );
    });
}

#[test]
fn a_coroutine_spawned_by_a_cpu_hog_onto_its_own_worker_runs_within_seconds() {
    within(LONG, || {
        // Spawned from inside the hog, the small coroutine sits in the stuck worker's run-next
        // slot, not in the global queue.
        let rt = runtime(1);
        let stop = Arc::new(AtomicBool::new(false));
        let ran = Arc::new(AtomicBool::new(false));
        let (s, r) = (stop.clone(), ran.clone());
        let hog = rt.spawn(move || {
            let _small = corun::spawn(move || r.store(true, Ordering::SeqCst));
            let deadline = Instant::now() + Duration::from_secs(60);
            while !s.load(Ordering::Relaxed) && Instant::now() < deadline {
                std::hint::spin_loop();
            }
        });
        let in_time = poll(Duration::from_secs(10), || ran.load(Ordering::SeqCst));
        stop.store(true, Ordering::SeqCst);
        join_within(hog, LONG).unwrap();
        assert!(
            in_time,
            "a coroutine waited behind the hog that spawned it for 10 s"
        );
    });
}

#[test]
fn a_coroutine_woken_while_every_worker_is_stuck_runs_within_seconds() {
    within(LONG, || {
        // Woken from a plain thread while both workers spin, the sleeper goes to the global
        // queue, which only a spare thread can serve.
        let rt = runtime(2);
        let go = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicBool::new(false));
        let ran = Arc::new(AtomicBool::new(false));
        let (g, s, r) = (go.clone(), started.clone(), ran.clone());
        let sleeper = rt.spawn(move || {
            s.store(true, Ordering::SeqCst);
            while !g.load(Ordering::SeqCst) {
                corun::park();
            }
            r.store(true, Ordering::SeqCst);
        });
        wait_until(SHORT, "the sleeper starts", || {
            started.load(Ordering::SeqCst)
        });
        let in_time = runs_behind_hogs(&rt, 2, &ran, || {
            go.store(true, Ordering::SeqCst);
            sleeper.coroutine().unpark();
        });
        assert!(in_time, "a woken coroutine waited behind two hogs for 10 s");
        join_within(sleeper, LONG).unwrap();
    });
}

#[test]
fn spawning_onto_an_idle_runtime_always_wakes_a_worker() {
    within(LONG, || {
        // Each spawn arrives while the workers are going to sleep or asleep; a lost wake-up
        // would leave the coroutine in the global queue forever (the monitor only rescues
        // processors that are busy).
        let rt = runtime(2);
        for i in 0..20_000u32 {
            // `within` bounds the whole loop; a plain join keeps each round fast.
            assert_eq!(rt.spawn(move || i).join().unwrap(), i);
        }
    });
}

#[test]
fn unparking_from_a_plain_thread_always_wakes_a_worker() {
    within(LONG, || {
        const ROUNDS: u64 = 20_000;
        let rt = runtime(2);
        let count = Arc::new(AtomicU64::new(0));
        let c = count.clone();
        let handle = rt.spawn(move || {
            // Wait for each increment from the test thread, parking in between.
            for round in 1..=ROUNDS {
                while c.load(Ordering::Acquire) < round {
                    corun::park();
                }
            }
        });
        let coroutine = handle.coroutine().clone();
        for _ in 0..ROUNDS {
            count.fetch_add(1, Ordering::Release);
            coroutine.unpark();
            if count.load(Ordering::Relaxed).is_multiple_of(64) {
                thread::yield_now(); // vary the interleaving a little
            }
        }
        join_within(handle, LONG).unwrap();
    });
}

#[test]
fn spare_threads_are_bounded_by_max_threads_and_retire_when_idle() {
    within(LONG, || {
        let rt = corun::runtime::Builder::new()
            .workers(1)
            .max_threads(3)
            .build()
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicUsize::new(0));
        // Three hogs on one worker: the monitor gives the second and third their own spare
        // threads, one at a time, as each one gets stuck.
        let hogs: Vec<_> = (0..3)
            .map(|_| rt.spawn(hog(stop.clone(), started.clone())))
            .collect();
        let all_spinning = poll(SHORT, || started.load(Ordering::SeqCst) == 3);
        let spares_while_stuck = rt.metrics().spare_threads;
        // A fourth would need a fourth thread: over the limit.
        let fourth_ran = Arc::new(AtomicBool::new(false));
        let f = fourth_ran.clone();
        let fourth = rt.spawn(move || f.store(true, Ordering::SeqCst));
        thread::sleep(Duration::from_millis(100));
        let spares_with_fourth = rt.metrics().spare_threads;
        stop.store(true, Ordering::SeqCst);
        for hog in hogs {
            join_within(hog, LONG).unwrap();
        }
        join_within(fourth, LONG).unwrap();
        assert!(all_spinning, "three hogs did not get three threads");
        assert_eq!(spares_while_stuck, 2);
        assert!(
            spares_with_fourth <= 2,
            "{spares_with_fourth} spares with max_threads(3)"
        );
        wait_until(SHORT, "idle spare threads retire", || {
            rt.metrics().spare_threads == 0
        });
        assert!(fourth_ran.load(Ordering::SeqCst));
    });
}

#[test]
fn without_spare_threads_queued_work_runs_once_the_hog_finishes() {
    within(LONG, || {
        let rt = corun::runtime::Builder::new()
            .workers(1)
            .max_threads(1)
            .build()
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicUsize::new(0));
        let hog = rt.spawn(hog(stop.clone(), started.clone()));
        wait_until(SHORT, "the hog spins", || {
            started.load(Ordering::SeqCst) == 1
        });
        let queued = rt.spawn(|| 5);
        thread::sleep(Duration::from_millis(50));
        stop.store(true, Ordering::SeqCst);
        join_within(hog, LONG).unwrap();
        assert_eq!(join_within(queued, SHORT).unwrap(), 5);
        assert_eq!(rt.metrics().spare_threads, 0);
    });
}
