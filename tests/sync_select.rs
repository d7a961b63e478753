//! `corun::select!` over channel operations.

mod common;

use common::{runtime, within, SHORT};
use corun::sync::{mpmc, mpsc};
use std::time::{Duration, Instant};

#[test]
fn no_branch_is_starved_when_several_are_always_ready() {
    within(SHORT, || {
        let (tx1, rx1) = mpsc::channel();
        let (tx2, rx2) = mpsc::channel();
        for i in 0..1000 {
            tx1.send(i).unwrap();
            tx2.send(i).unwrap();
        }
        let (mut from1, mut from2) = (0, 0);
        for _ in 0..1000 {
            corun::select! {
                recv(rx1) -> m => { m.unwrap(); from1 += 1; },
                recv(rx2) -> m => { m.unwrap(); from2 += 1; },
            }
        }
        assert!(from1 >= 100 && from2 >= 100, "unfair: {from1} vs {from2}");
    });
}

#[test]
fn a_select_waits_until_a_branch_can_complete() {
    within(SHORT, || {
        let rt = runtime(2);
        let (_tx1, rx1) = mpsc::channel::<u8>();
        let (tx2, rx2) = mpsc::channel::<&str>();
        let selector = rt.spawn(move || {
            corun::select! {
                recv(rx1) -> m => format!("one {m:?}"),
                recv(rx2) -> m => format!("two {}", m.unwrap()),
            }
        });
        std::thread::sleep(Duration::from_millis(30));
        assert!(!selector.is_finished(), "nothing was ready");
        tx2.send("hello").unwrap();
        assert_eq!(selector.join().unwrap(), "two hello");
    });
}

#[test]
fn default_with_a_timeout_runs_when_nothing_completes_and_never_early() {
    within(SHORT, || {
        let rt = runtime(2);
        let (_tx, rx) = mpsc::channel::<u8>();
        let timeout = Duration::from_millis(40);
        let (which, waited) = rt.block_on(|| {
            let start = Instant::now();
            let which = corun::select! {
                recv(rx) -> _m => "recv",
                default(timeout) => "default",
            };
            (which, start.elapsed())
        });
        assert_eq!(which, "default");
        assert!(waited >= timeout, "gave up after {waited:?}");
        // And from a plain thread.
        let start = Instant::now();
        let which = corun::select! {
            recv(rx) -> _m => "recv",
            default(timeout) => "default",
        };
        assert_eq!(which, "default");
        assert!(start.elapsed() >= timeout);
    });
}

#[test]
fn default_without_a_timeout_does_not_wait() {
    let (tx, rx) = mpsc::channel::<u8>();
    let which = corun::select! {
        recv(rx) -> _m => "recv",
        default => "nothing ready",
    };
    assert_eq!(which, "nothing ready");
    tx.send(1).unwrap();
    let which = corun::select! {
        recv(rx) -> m => { assert_eq!(m, Ok(1)); "recv" },
        default => "nothing ready",
    };
    assert_eq!(which, "recv");
}

#[test]
fn a_send_branch_completes_when_there_is_room() {
    within(SHORT, || {
        let rt = runtime(2);
        let (tx, rx) = mpsc::sync_channel::<u32>(1);
        tx.send(0).unwrap(); // full
        let (_other_tx, other_rx) = mpsc::channel::<u32>();
        let selector = rt.spawn(move || {
            corun::select! {
                send(tx, 1) -> res => res.is_ok(),
                recv(other_rx) -> _m => false,
            }
        });
        std::thread::sleep(Duration::from_millis(20));
        assert!(!selector.is_finished(), "the channel was full");
        assert_eq!(rx.recv(), Ok(0));
        assert!(selector.join().unwrap(), "sent once there was room");
        assert_eq!(rx.recv(), Ok(1));
    });
}

#[test]
fn disconnection_completes_a_branch_with_an_error() {
    let (tx, rx) = mpsc::channel::<u8>();
    drop(tx);
    let got = corun::select! {
        recv(rx) -> m => m,
    };
    assert_eq!(got, Err(mpsc::RecvError));
    let (tx, rx) = mpsc::channel::<u8>();
    drop(rx);
    let sent = corun::select! {
        send(tx, 5) -> res => res,
    };
    assert_eq!(sent, Err(mpsc::SendError(5)));
}

#[test]
fn a_wake_the_selector_did_not_use_is_passed_on_to_the_next_waiter() {
    within(SHORT, || {
        // Channel A has two waiters, the selector first, then a plain receiver. A value on A
        // wakes the selector; a value on B arrives too, and the selector may take B's instead.
        // Then A's value is still there and the plain receiver must be woken for it: the
        // selector passes on the wake it did not use.
        for _ in 0..40 {
            let rt = runtime(2);
            let (tx_a, rx_a) = mpmc::channel::<u32>();
            let (tx_b, rx_b) = mpsc::channel::<u32>();
            let rx_a2 = rx_a.clone();
            let selector = rt.spawn(move || {
                corun::select! {
                    recv(rx_a2) -> m => ("a", m.unwrap()),
                    recv(rx_b) -> m => ("b", m.unwrap()),
                }
            });
            std::thread::sleep(Duration::from_millis(5)); // the selector queues on A first
            let plain = rt.spawn(move || rx_a.recv().unwrap());
            std::thread::sleep(Duration::from_millis(5));
            tx_a.send(1).unwrap();
            let _ = tx_b.send(2); // the selector may already be done (and its receiver gone)
            let (which, _) = selector.join().unwrap();
            if which == "a" {
                tx_a.send(3).unwrap(); // the plain receiver's own value
            }
            let got = common::join_within(plain, Duration::from_secs(10))
                .expect("the plain receiver was woken");
            assert_eq!(got, if which == "a" { 3 } else { 1 });
        }
    });
}

#[test]
fn a_select_send_on_a_rendezvous_meets_a_receiver_that_comes_later() {
    within(SHORT, || {
        let (tx, rx) = mpsc::sync_channel::<u32>(0);
        let (_tx2, rx2) = mpsc::channel::<u32>();
        let selector = std::thread::spawn(move || {
            corun::select! {
                send(tx, 1) -> r => r.is_ok(),
                recv(rx2) -> _m => false,
            }
        });
        std::thread::sleep(Duration::from_millis(50)); // the selector waits
        let receiver = std::thread::spawn(move || rx.recv());
        assert!(selector.join().unwrap(), "the selector sent");
        assert_eq!(receiver.join().unwrap(), Ok(1));
    });
}

#[test]
fn a_select_cancelled_at_shutdown_does_not_strand_a_plain_receiver() {
    within(SHORT, || {
        let (tx1, rx1) = mpmc::channel::<u32>();
        let (tx2, rx2) = mpmc::channel::<u32>();
        let rt = runtime(1);
        let r2 = rx2.clone();
        rt.spawn(move || {
            corun::select! {
                recv(rx1) -> _m => (),
                recv(r2) -> _m => (),
            }
        });
        std::thread::sleep(Duration::from_millis(50)); // the selector watches both
        let thread = std::thread::spawn(move || rx2.recv());
        std::thread::sleep(Duration::from_millis(50));
        let dropper = std::thread::spawn(move || drop(rt));
        std::thread::sleep(Duration::from_millis(10));
        tx1.send(1).unwrap(); // wakes the selector, which is being cancelled
        dropper.join().unwrap();
        tx2.send(2).unwrap(); // must reach the thread, not a node left behind
        assert_eq!(thread.join().unwrap(), Ok(2));
    });
}
