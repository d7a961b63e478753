//! `park` / `Coroutine::unpark`: token semantics like `std::thread::park`.

mod common;

use common::{join_within, runtime, wait_until, within, LONG, SHORT};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

#[test]
fn unpark_before_park_is_not_lost() {
    within(SHORT, || {
        let rt = runtime(2);
        let unparked = Arc::new(AtomicBool::new(false));
        let u = unparked.clone();
        let handle = rt.spawn(move || {
            // Only park once the token has certainly been supplied.
            while !u.load(Ordering::SeqCst) {
                corun::yield_now();
            }
            corun::park(); // must consume the token and return
            "returned"
        });
        handle.coroutine().unpark();
        unparked.store(true, Ordering::SeqCst);
        assert_eq!(join_within(handle, SHORT).unwrap(), "returned");
    });
}

#[test]
fn a_coroutine_that_unparks_itself_does_not_block_in_park() {
    within(SHORT, || {
        let rt = runtime(1);
        let value = rt.block_on(|| {
            corun::current().unpark();
            corun::park();
            1
        });
        assert_eq!(value, 1);
    });
}

#[test]
fn unpark_wakes_a_parked_coroutine() {
    within(SHORT, || {
        let rt = runtime(2);
        let go = Arc::new(AtomicBool::new(false));
        let about_to_park = Arc::new(AtomicBool::new(false));
        let (g, a) = (go.clone(), about_to_park.clone());
        let handle = rt.spawn(move || {
            a.store(true, Ordering::SeqCst);
            // Parks at least once, whatever the timing; `go` is only checked after a park.
            loop {
                corun::park();
                if g.load(Ordering::SeqCst) {
                    break;
                }
            }
        });
        wait_until(SHORT, "the coroutine reaches park", || {
            about_to_park.load(Ordering::SeqCst)
        });
        std::thread::sleep(std::time::Duration::from_millis(20)); // most likely parked by now
        go.store(true, Ordering::SeqCst);
        handle.coroutine().unpark();
        join_within(handle, SHORT).unwrap();
    });
}

#[test]
fn unpark_from_another_coroutine_wakes_a_parked_coroutine() {
    within(SHORT, || {
        let rt = runtime(2);
        let value = rt.block_on(|| {
            let flag = Arc::new(AtomicBool::new(false));
            let f = flag.clone();
            let sleeper = corun::spawn(move || {
                while !f.load(Ordering::SeqCst) {
                    corun::park();
                }
                7
            });
            let me = sleeper.coroutine().clone();
            let waker = corun::spawn(move || {
                corun::yield_now();
                flag.store(true, Ordering::SeqCst);
                me.unpark();
            });
            waker.join().unwrap();
            sleeper.join().unwrap()
        });
        assert_eq!(value, 7);
    });
}

#[test]
fn park_unpark_ping_pong_for_fifty_thousand_rounds() {
    within(LONG, || {
        const ROUNDS: u64 = 50_000;
        let rt = runtime(2);
        // `turn` counts moves: even means it is ping's turn, odd pong's.
        let turn = Arc::new(AtomicU64::new(0));
        let peers: [Arc<OnceLock<corun::Coroutine>>; 2] = Default::default();

        let player = |me: u64| {
            let turn = turn.clone();
            let peer = peers[1 - me as usize].clone();
            move || {
                // The test thread publishes both handles, then unparks both players.
                while peer.get().is_none() {
                    corun::park();
                }
                let peer = peer.get().unwrap();
                let mut moves = 0u64;
                for round in 0..ROUNDS {
                    let my_turn = 2 * round + me;
                    while turn.load(Ordering::Acquire) != my_turn {
                        corun::park();
                    }
                    turn.store(my_turn + 1, Ordering::Release);
                    moves += 1;
                    peer.unpark();
                }
                moves
            }
        };
        let ping = rt.spawn(player(0));
        let pong = rt.spawn(player(1));
        peers[0].set(ping.coroutine().clone()).unwrap();
        peers[1].set(pong.coroutine().clone()).unwrap();
        // Both may have parked waiting for their peers to be published: start the game.
        ping.coroutine().unpark();
        pong.coroutine().unpark();

        let ping_moves = join_within(ping, LONG).unwrap();
        let pong_moves = join_within(pong, LONG).unwrap();
        assert_eq!((ping_moves, pong_moves), (ROUNDS, ROUNDS));
        assert_eq!(turn.load(Ordering::SeqCst), 2 * ROUNDS);
    });
}

#[test]
fn many_unparkers_and_parkers_never_lose_a_wakeup() {
    within(LONG, || {
        // Each waiter waits for `ROUNDS` increments of its own counter, each increment followed by
        // an unpark from a different coroutine; a lost wake-up would leave a waiter parked.
        const WAITERS: usize = 50;
        const ROUNDS: u64 = 1_000;
        let rt = runtime(2);
        let counters: Arc<Vec<AtomicU64>> =
            Arc::new((0..WAITERS).map(|_| AtomicU64::new(0)).collect());
        let waiters: Vec<_> = (0..WAITERS)
            .map(|i| {
                let counters = counters.clone();
                rt.spawn(move || {
                    while counters[i].load(Ordering::Acquire) < ROUNDS {
                        corun::park();
                    }
                })
            })
            .collect();
        let handles: Vec<corun::Coroutine> =
            waiters.iter().map(|h| h.coroutine().clone()).collect();
        let handles = Arc::new(handles);
        let wakers: Vec<_> = (0..WAITERS)
            .map(|i| {
                let counters = counters.clone();
                let handles = handles.clone();
                rt.spawn(move || {
                    for round in 0..ROUNDS {
                        counters[i].fetch_add(1, Ordering::Release);
                        handles[i].unpark();
                        if round % 7 == 0 {
                            corun::yield_now();
                        }
                    }
                })
            })
            .collect();
        for waker in wakers {
            join_within(waker, LONG).unwrap();
        }
        for waiter in waiters {
            join_within(waiter, LONG).unwrap();
        }
    });
}

#[test]
fn park_on_a_plain_thread_is_woken_by_thread_unpark() {
    within(SHORT, || {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        let thread = std::thread::spawn(move || {
            while !f.load(Ordering::SeqCst) {
                corun::park();
            }
        });
        std::thread::sleep(std::time::Duration::from_millis(10));
        flag.store(true, Ordering::SeqCst);
        thread.thread().unpark();
        thread.join().unwrap();
    });
}

#[test]
fn park_on_a_plain_thread_keeps_the_token_like_std() {
    within(SHORT, || {
        std::thread::current().unpark();
        corun::park(); // consumes the token, returns at once
    });
}

#[test]
fn yield_now_on_a_plain_thread_returns() {
    corun::yield_now();
}
