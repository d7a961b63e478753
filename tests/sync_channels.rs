//! `corun::sync::{mpsc, mpmc, oneshot}` and the timed waits (`recv_timeout`, `Condvar::wait_for`).

mod common;

use common::{runtime, within, SHORT};
use corun::sync::{mpmc, mpsc, oneshot, Condvar, Mutex};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn mpsc_keeps_each_senders_order_with_a_plain_thread_among_the_senders() {
    within(SHORT, || {
        const PER_SENDER: usize = 2_000;
        let rt = runtime(2);
        let (tx, rx) = mpsc::channel();
        let mut senders = Vec::new();
        for id in 0..4 {
            let tx = tx.clone();
            senders.push(rt.spawn(move || {
                for seq in 0..PER_SENDER {
                    tx.send((id, seq)).unwrap();
                    if seq % 100 == 0 {
                        corun::yield_now();
                    }
                }
            }));
        }
        let thread_tx = tx.clone();
        let thread = std::thread::spawn(move || {
            for seq in 0..PER_SENDER {
                thread_tx.send((99, seq)).unwrap();
            }
        });
        drop(tx);
        let receiver = rt.spawn(move || {
            let mut next = std::collections::HashMap::new();
            let mut count = 0;
            for (id, seq) in rx.iter() {
                let expected = next.entry(id).or_insert(0);
                assert_eq!(seq, *expected, "sender {id} out of order");
                *expected += 1;
                count += 1;
            }
            count
        });
        senders.into_iter().for_each(|h| h.join().unwrap());
        thread.join().unwrap();
        assert_eq!(receiver.join().unwrap(), 5 * PER_SENDER);
    });
}

#[test]
fn mpmc_delivers_each_message_to_exactly_one_receiver() {
    within(SHORT, || {
        const MESSAGES: usize = 10_000;
        let rt = runtime(2);
        let (tx, rx) = mpmc::sync_channel(16);
        let receivers: Vec<_> = (0..4)
            .map(|_| {
                let rx = rx.clone();
                rt.spawn(move || rx.iter().collect::<Vec<usize>>())
            })
            .collect();
        drop(rx);
        let senders: Vec<_> = (0..4)
            .map(|s| {
                let tx = tx.clone();
                rt.spawn(move || {
                    for i in 0..MESSAGES / 4 {
                        tx.send(s * MESSAGES + i).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        senders.into_iter().for_each(|h| h.join().unwrap());
        let mut seen = HashSet::new();
        for h in receivers {
            for m in h.join().unwrap() {
                assert!(seen.insert(m), "message {m} delivered twice");
            }
        }
        assert_eq!(seen.len(), MESSAGES, "messages lost");
    });
}

#[test]
fn a_rendezvous_send_waits_for_a_receiver() {
    within(SHORT, || {
        let rt = runtime(2);
        let (tx, rx) = mpsc::sync_channel(0);
        let sender = rt.spawn(move || tx.send(7).unwrap());
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            !sender.is_finished(),
            "the send returned with nobody receiving"
        );
        assert_eq!(rx.recv(), Ok(7));
        sender.join().unwrap();
    });
}

#[test]
fn a_bounded_channel_makes_a_fast_producer_wait_and_keeps_order() {
    within(SHORT, || {
        let rt = runtime(1);
        let (tx, rx) = mpsc::sync_channel(2);
        let producer = rt.spawn(move || {
            for i in 0..500 {
                tx.send(i).unwrap();
            }
        });
        let got: Vec<i32> = rt.block_on(move || rx.iter().collect());
        producer.join().unwrap();
        assert_eq!(got, (0..500).collect::<Vec<_>>());
    });
}

#[test]
fn disconnection_is_reported_and_nobody_is_left_parked() {
    within(SHORT, || {
        let rt = runtime(2);
        // Receiver parked when the last sender goes: woken with an error.
        let (tx, rx) = mpsc::channel::<u8>();
        let receiver = rt.spawn(move || rx.recv());
        std::thread::sleep(Duration::from_millis(20));
        drop(tx);
        assert_eq!(receiver.join().unwrap(), Err(mpsc::RecvError));

        // Queued values are still delivered after the senders are gone, then the error.
        let (tx, rx) = mpsc::channel();
        tx.send(1).unwrap();
        drop(tx);
        assert_eq!(rx.try_recv(), Ok(1));
        assert_eq!(rx.try_recv(), Err(mpsc::TryRecvError::Disconnected));

        // Sender parked on a full channel when the receiver goes: woken, value handed back.
        let (tx, rx) = mpsc::sync_channel(1);
        tx.send(1).unwrap();
        let sender = rt.spawn(move || tx.send(2));
        std::thread::sleep(Duration::from_millis(20));
        drop(rx);
        assert_eq!(sender.join().unwrap(), Err(mpsc::SendError(2)));

        // Rendezvous sender parked when the receiver goes: gets its value back.
        let (tx, rx) = mpsc::sync_channel(0);
        let sender = rt.spawn(move || tx.send(3));
        std::thread::sleep(Duration::from_millis(20));
        drop(rx);
        assert_eq!(sender.join().unwrap(), Err(mpsc::SendError(3)));

        let (tx, rx) = mpsc::sync_channel::<u8>(0);
        assert_eq!(
            tx.try_send(1),
            Err(mpsc::TrySendError::Full(1)),
            "no receiver waiting"
        );
        drop(rx);
        assert_eq!(tx.try_send(1), Err(mpsc::TrySendError::Disconnected(1)));
    });
}

#[test]
fn recv_timeout_never_returns_early_and_does_not_hang() {
    within(SHORT, || {
        let rt = runtime(2);
        let timeout = Duration::from_millis(50);
        let (tx, rx) = mpsc::channel::<u8>();
        // In a coroutine.
        let waited = rt.block_on(|| {
            let start = Instant::now();
            assert_eq!(
                rx.recv_timeout(timeout),
                Err(mpsc::RecvTimeoutError::Timeout)
            );
            start.elapsed()
        });
        assert!(waited >= timeout, "returned after {waited:?}");
        // On a plain thread.
        let start = Instant::now();
        assert_eq!(
            rx.recv_timeout(timeout),
            Err(mpsc::RecvTimeoutError::Timeout)
        );
        assert!(start.elapsed() >= timeout);
        // A value that arrives in time is received.
        let tx2 = tx.clone();
        rt.spawn(move || {
            corun::yield_now();
            tx2.send(5).unwrap();
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(5));
        // Many coroutines timing out at once all come back.
        let handles: Vec<_> = (0..100)
            .map(|_| {
                let (t, r) = mpsc::channel::<u8>();
                rt.spawn(move || {
                    let _sender_alive = t; // so the channel stays connected: a real timeout
                    let start = Instant::now();
                    let result = r.recv_timeout(Duration::from_millis(20));
                    (result, start.elapsed())
                })
            })
            .collect();
        for h in handles {
            let (result, elapsed) = h.join().unwrap();
            assert_eq!(result, Err(mpsc::RecvTimeoutError::Timeout));
            assert!(elapsed >= Duration::from_millis(20));
        }
        drop(tx);
    });
}

#[test]
fn condvar_wait_for_times_out_or_is_notified() {
    within(SHORT, || {
        let rt = runtime(2);
        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        let p = pair.clone();
        let (timed_out, waited) = rt.block_on(move || {
            let mut g = p.0.lock();
            let start = Instant::now();
            let r = p.1.wait_for(&mut g, Duration::from_millis(30));
            (r.timed_out(), start.elapsed())
        });
        assert!(timed_out);
        assert!(waited >= Duration::from_millis(30));

        let p = pair.clone();
        let waiter = rt.spawn(move || {
            let mut g = p.0.lock();
            while !*g {
                if p.1.wait_for(&mut g, Duration::from_secs(20)).timed_out() {
                    return false;
                }
            }
            true
        });
        std::thread::sleep(Duration::from_millis(20));
        *pair.0.lock() = true;
        pair.1.notify_all();
        assert!(waiter.join().unwrap(), "notified, not timed out");
    });
}

#[test]
fn oneshot_delivers_its_value_or_reports_the_sender_gone() {
    within(SHORT, || {
        let rt = runtime(2);
        let (tx, rx) = oneshot::channel();
        rt.spawn(move || tx.send(String::from("once")).unwrap());
        assert_eq!(rx.recv().as_deref(), Ok("once"));

        let (tx, rx) = oneshot::channel::<u8>();
        let receiver = rt.spawn(move || rx.recv());
        std::thread::sleep(Duration::from_millis(20)); // most likely parked by now
        drop(tx);
        assert_eq!(receiver.join().unwrap(), Err(oneshot::RecvError));

        let (tx, rx) = oneshot::channel::<u8>();
        drop(rx);
        assert_eq!(tx.send(1), Err(oneshot::SendError(1)));
    });
}

#[test]
fn channel_ends_are_send_and_errors_are_errors() {
    fn send<T: Send>() {}
    fn error<E: std::error::Error + Send + Sync + 'static>() {}
    send::<mpsc::Sender<String>>();
    send::<mpsc::SyncSender<String>>();
    send::<mpsc::Receiver<String>>();
    send::<mpmc::Receiver<String>>();
    send::<oneshot::Sender<String>>();
    send::<oneshot::Receiver<String>>();
    error::<mpsc::SendError<u8>>();
    error::<mpsc::RecvError>();
    error::<mpsc::TryRecvError>();
    error::<mpsc::RecvTimeoutError>();
    error::<mpsc::TrySendError<u8>>();
    fn clone<T: Clone>() {}
    clone::<mpsc::Sender<u8>>();
    clone::<mpsc::SyncSender<u8>>();
    clone::<mpmc::Receiver<u8>>();
}

#[test]
fn values_nobody_can_receive_are_dropped_with_the_last_receiver() {
    within(SHORT, || {
        // The request/reply pattern: when the server's receiver goes, the queued request (and
        // the reply sender inside it) is dropped, so the client's wait for a reply ends.
        let (requests, server) = mpsc::channel::<oneshot::Sender<u32>>();
        let (reply_tx, reply_rx) = oneshot::channel();
        requests.send(reply_tx).unwrap();
        drop(server);
        assert_eq!(reply_rx.recv(), Err(oneshot::RecvError));
    });
}
