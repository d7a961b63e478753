#![cfg(loom)]
//! Models of the channels of `corun::sync` (`src/sync/channel.rs` under `mpsc`, `mpmc` and
//! `oneshot`), from loom threads standing in for coroutines.
//!
//! One lock holds the queue, the counts of both ends and the waiters of both sides; a waiter
//! decides and enqueues under it, parks, and re-checks after every wake. What the models check:
//! a value sent is received exactly once and in order; a receiver parked on an empty channel is
//! woken by the send, or by the last sender going away (then `recv` fails); a sender parked on a
//! full (or rendezvous) channel is woken when room is made (or its value taken), or when the
//! last receiver goes away (then it gets its value back). Nobody is left parked: loom reports a
//! thread parked forever as a deadlock. Values are dropped exactly once (a [`Tracked`] value
//! counts its drops). Timed waits are not modelled.

use corun::sync::{mpmc, mpsc, oneshot};
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

/// A value that counts its drops, to check that a value is neither lost inside a channel nor
/// dropped twice.
#[derive(Debug)]
struct Tracked {
    id: usize,
    drops: Arc<AtomicUsize>,
}

impl Tracked {
    fn new(id: usize, drops: &Arc<AtomicUsize>) -> Self {
        Tracked {
            id,
            drops: drops.clone(),
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

/// (a) An unbounded channel: the receiver's `recv` races a sender that sends one value and then
/// drops. The receiver may park before the send, between the send and the drop, or not at all;
/// it gets the value, and then `recv` fails (the sender is gone).
#[test]
fn mpsc_recv_races_send_then_drop() {
    loom::model(|| {
        let (tx, rx) = mpsc::channel();
        let sender = thread::spawn(move || {
            tx.send(1).unwrap();
            drop(tx);
        });
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(rx.recv(), Err(mpsc::RecvError));
        sender.join().unwrap();
    });
}

/// (b) The sender drops without sending while the receiver is (possibly) parked in `recv`: the
/// last sender going away wakes it, and `recv` fails.
#[test]
fn mpsc_sender_dropped_without_sending() {
    loom::model(|| {
        let (tx, rx) = mpsc::channel::<usize>();
        let sender = thread::spawn(move || drop(tx));
        assert_eq!(rx.recv(), Err(mpsc::RecvError));
        sender.join().unwrap();
    });
}

/// Two senders (a clone) each send one value and drop; the receiver takes both, in either order,
/// then sees the channel closed only once both are gone.
#[test]
fn mpsc_two_senders() {
    loom::model(|| {
        let (tx, rx) = mpsc::channel();
        let senders: Vec<_> = [tx.clone(), tx]
            .into_iter()
            .enumerate()
            .map(|(i, tx)| thread::spawn(move || tx.send(i).unwrap()))
            .collect();
        let mut got: Vec<usize> = rx.iter().collect();
        got.sort_unstable();
        assert_eq!(got, [0, 1]);
        for sender in senders {
            sender.join().unwrap();
        }
    });
}

/// (c) A bounded channel of one: the sender sends two values, so the second send waits for the
/// receiver to make room; the receiver takes both, in order, and then sees the channel closed.
#[test]
fn bounded_one_second_send_waits_for_room() {
    loom::model(|| {
        let (tx, rx) = mpsc::sync_channel(1);
        let sender = thread::spawn(move || {
            tx.send(1).unwrap();
            tx.send(2).unwrap();
        });
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(rx.recv(), Ok(2));
        assert_eq!(rx.recv(), Err(mpsc::RecvError));
        sender.join().unwrap();
    });
}

/// A bounded channel of one, full, with the sender (possibly) parked on a second send when the
/// receiver goes away without receiving: the last receiver wakes it, and it gets its value back.
/// The value left in the channel is dropped with the last receiver (as in std), once.
#[test]
fn bounded_full_receiver_dropped() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::sync_channel(1);
        tx.send(Tracked::new(1, &drops)).unwrap();
        let receiver = thread::spawn(move || drop(rx));
        let err = tx.send(Tracked::new(2, &drops)).unwrap_err();
        assert_eq!(err.0.id, 2);
        drop(err);
        receiver.join().unwrap();
        // As in std, the value nobody can receive went with the last receiver.
        assert_eq!(drops.load(Ordering::Relaxed), 2);
        drop(tx);
        assert_eq!(drops.load(Ordering::Relaxed), 2);
    });
}

/// A bounded channel of one with two senders: a receive makes room for one value and wakes one
/// waiting sender; whoever is woken and finds the room taken queues again. All values arrive,
/// and nobody is left waiting for room.
#[test]
fn bounded_one_two_senders() {
    loom::model(|| {
        let (tx, rx) = mpsc::sync_channel(1);
        let senders: Vec<_> = [tx.clone(), tx]
            .into_iter()
            .enumerate()
            .map(|(i, tx)| thread::spawn(move || tx.send(i).unwrap()))
            .collect();
        let mut got: Vec<usize> = rx.iter().collect();
        got.sort_unstable();
        assert_eq!(got, [0, 1]);
        for sender in senders {
            sender.join().unwrap();
        }
    });
}

/// (d) A rendezvous (`sync_channel(0)`): the send returns only once the receiver has taken the
/// value (it waits for its taker), both finish, and the value arrives.
#[test]
fn rendezvous_send_meets_recv() {
    loom::model(|| {
        let (tx, rx) = mpsc::sync_channel(0);
        let sender = thread::spawn(move || tx.send(5).unwrap());
        assert_eq!(rx.recv(), Ok(5));
        sender.join().unwrap();
        assert_eq!(rx.try_recv(), Err(mpsc::TryRecvError::Disconnected));
    });
}

/// (d') A rendezvous whose receiver goes away instead, before the send or while the sender waits
/// for a taker: the send fails and hands the value back (it is taken out of the channel, not
/// left in it). The value is dropped exactly once.
#[test]
fn rendezvous_receiver_dropped() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::sync_channel(0);
        let receiver = thread::spawn(move || drop(rx));
        let err = tx.send(Tracked::new(9, &drops)).unwrap_err();
        assert_eq!(err.0.id, 9);
        assert_eq!(drops.load(Ordering::Relaxed), 0);
        drop(err);
        receiver.join().unwrap();
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    });
}

/// A rendezvous where the receiver takes the value only if it is there (`try_recv`) and then
/// goes away: the send succeeds exactly when the receiver got the value, and otherwise hands it
/// back. Either way it is dropped exactly once.
#[test]
fn rendezvous_send_ok_iff_taken() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::sync_channel(0);
        let receiver = thread::spawn(move || {
            let got = rx.try_recv().ok();
            drop(rx);
            got
        });
        let sent = tx.send(Tracked::new(4, &drops));
        let got = receiver.join().unwrap();
        match (sent, got) {
            (Ok(()), Some(value)) => assert_eq!(value.id, 4),
            (Err(mpsc::SendError(value)), None) => assert_eq!(value.id, 4),
            (sent, got) => panic!("send {sent:?} but received {got:?}"),
        }
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    });
}

/// A rendezvous with two senders: the second value is queued behind the first, and each sender
/// waits for its own value to be taken (a receive wakes every waiting sender to check). Both
/// sends return once their values are received, and the channel then reports closed.
#[test]
fn rendezvous_two_senders() {
    loom::model(|| {
        let (tx, rx) = mpsc::sync_channel(0);
        let senders: Vec<_> = [tx.clone(), tx]
            .into_iter()
            .enumerate()
            .map(|(i, tx)| thread::spawn(move || tx.send(i).unwrap()))
            .collect();
        let mut got = vec![rx.recv().unwrap(), rx.recv().unwrap()];
        assert_eq!(rx.recv(), Err(mpsc::RecvError));
        got.sort_unstable();
        assert_eq!(got, [0, 1]);
        for sender in senders {
            sender.join().unwrap();
        }
    });
}

/// `try_send` on a rendezvous succeeds only if a receiver is waiting, and then that receiver
/// gets the value; otherwise it reports `Full` with the value back. The receiver's `recv`
/// returns the value exactly when `try_send` succeeded, and fails once the sender is gone.
#[test]
fn rendezvous_try_send_races_recv() {
    loom::model(|| {
        let (tx, rx) = mpsc::sync_channel(0);
        let sender = thread::spawn(move || match tx.try_send(8) {
            Ok(()) => true,
            Err(mpsc::TrySendError::Full(8)) => false,
            Err(e) => panic!("unexpected {e:?}"),
        });
        let got = rx.recv().ok();
        let sent = sender.join().unwrap();
        assert_eq!(got, sent.then_some(8));
    });
}

/// An mpmc channel with two receivers and one value: exactly one receiver gets it, and the
/// sender going away wakes the other (possibly parked) one, whose `recv` then fails.
#[test]
fn mpmc_one_value_two_receivers() {
    loom::model(|| {
        let (tx, rx) = mpmc::channel();
        let receivers: Vec<_> = [rx.clone(), rx]
            .into_iter()
            .map(|rx| thread::spawn(move || rx.iter().collect::<Vec<usize>>()))
            .collect();
        tx.send(7).unwrap();
        drop(tx);
        let got: Vec<usize> = receivers
            .into_iter()
            .flat_map(|r| r.join().unwrap())
            .collect();
        assert_eq!(got, [7]);
    });
}

/// (e) oneshot: the send races the receiver going away. The send succeeds (and the value is
/// dropped with the channel) or fails with the value handed back; either way it is dropped
/// exactly once.
#[test]
fn oneshot_send_races_receiver_drop() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = oneshot::channel();
        let receiver = thread::spawn(move || drop(rx));
        if let Err(oneshot::SendError(value)) = tx.send(Tracked::new(3, &drops)) {
            assert_eq!(value.id, 3);
        }
        receiver.join().unwrap();
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    });
}

/// oneshot: the receiver (possibly parked) gets the value sent.
#[test]
fn oneshot_send_races_recv() {
    loom::model(|| {
        let (tx, rx) = oneshot::channel();
        let sender = thread::spawn(move || tx.send(3).unwrap());
        assert_eq!(rx.recv(), Ok(3));
        sender.join().unwrap();
    });
}

/// oneshot: the sender goes away without sending while the receiver (possibly) waits: `recv`
/// fails.
#[test]
fn oneshot_sender_dropped() {
    loom::model(|| {
        let (tx, rx) = oneshot::channel::<usize>();
        let sender = thread::spawn(move || drop(tx));
        assert_eq!(rx.recv(), Err(oneshot::RecvError));
        sender.join().unwrap();
    });
}
