//! `BlockingFuture::start`: a call started before its first poll runs while the caller does
//! other work, and a start that finds no room or a refusal loses nothing: the first poll
//! submits the job as without `start`.

use std::sync::mpsc;
use std::time::Duration;

use crate::support::within;
use async_wrap::{BlockingPool, QueueFull, async_wrap, spawn_on};
use futures::executor::block_on;

static POOL: BlockingPool = BlockingPool::with_max_threads(2).thread_name("eager");

#[async_wrap(executor = POOL)]
fn tell(ran: mpsc::Sender<u32>, n: u32) -> u32 {
    ran.send(n).unwrap();
    n * 2
}

#[test]
fn a_started_call_runs_before_its_first_poll() {
    within(Duration::from_secs(30), || {
        let (ran, seen) = mpsc::channel();
        let call = tell(ran, 21).start();
        // Lazy, this would never come: nothing polls `call` until it is awaited below.
        assert_eq!(seen.recv_timeout(Duration::from_secs(10)), Ok(21));
        assert_eq!(block_on(call), 42);
    });
}

#[test]
fn a_call_not_started_waits_for_its_first_poll() {
    within(Duration::from_secs(30), || {
        let (ran, seen) = mpsc::channel();
        let call = tell(ran, 1);
        assert!(
            seen.recv_timeout(Duration::from_millis(200)).is_err(),
            "the control: a call that is not started does not run before its first poll"
        );
        assert_eq!(block_on(call), 2);
    });
}

#[test]
fn starting_twice_or_after_a_poll_submits_once() {
    within(Duration::from_secs(30), || {
        let (ran, seen) = mpsc::channel();
        let call = tell(ran, 5).start().start();
        assert_eq!(block_on(call), 10);
        assert_eq!(
            seen.try_iter().collect::<Vec<_>>(),
            [5],
            "the body ran once"
        );
    });
}

/// Starts a call that holds `pool`'s one thread until the returned gate is opened, and waits
/// until it runs; the call's future comes back too, to be awaited after the gate.
fn hold_the_only_thread(
    pool: &'static BlockingPool,
) -> (mpsc::Sender<()>, async_wrap::BlockingFuture<()>) {
    let (gate, opened) = mpsc::channel::<()>();
    let (busy, is_busy) = mpsc::channel();
    let holder = spawn_on(pool, move || {
        busy.send(()).unwrap();
        opened.recv().unwrap();
    })
    .start();
    is_busy.recv_timeout(Duration::from_secs(10)).unwrap();
    (gate, holder)
}

static FULL: BlockingPool = BlockingPool::with_max_threads(1)
    .queue_capacity(1, QueueFull::Wait)
    .thread_name("eager-full");

#[test]
fn a_start_with_no_room_leaves_the_job_to_the_first_poll() {
    within(Duration::from_secs(30), || {
        // The one thread, held; then the one queue place, taken.
        let (gate, holder) = hold_the_only_thread(&FULL);
        let queued = spawn_on(&FULL, || 1).start();
        // No room for this one: it is not submitted, and not lost.
        let (ran, seen) = mpsc::channel();
        let waiting = spawn_on(&FULL, move || {
            ran.send(()).unwrap();
            3
        })
        .start();
        gate.send(()).unwrap();
        block_on(holder);
        assert_eq!(block_on(queued), 1);
        assert!(
            seen.try_recv().is_err(),
            "a job that found no room at its start ran before its first poll"
        );
        assert_eq!(block_on(waiting), 3);
        assert_eq!(FULL.metrics().rejected, 0);
    });
}

static CLOSED: BlockingPool = BlockingPool::with_max_threads(1).thread_name("eager-closed");

#[test]
fn a_start_on_a_shut_down_pool_reports_the_refusal_at_the_first_poll() {
    within(Duration::from_secs(30), || {
        CLOSED.shutdown();
        let call = spawn_on(&CLOSED, || 1).start();
        let err = block_on(call.checked()).expect_err("refused");
        assert!(err.is_shut_down(), "{err}");
    });
}

#[test]
fn a_started_call_dropped_before_it_began_never_runs() {
    within(Duration::from_secs(30), || {
        static ONE: BlockingPool = BlockingPool::with_max_threads(1).thread_name("eager-drop");
        let (gate, holder) = hold_the_only_thread(&ONE);
        let (ran, seen) = mpsc::channel();
        drop(
            spawn_on(&ONE, move || {
                ran.send(()).unwrap();
            })
            .start(),
        );
        gate.send(()).unwrap();
        block_on(holder);
        // The queued job is skipped once its turn comes: a later call on the one thread runs
        // after it.
        block_on(spawn_on(&ONE, || ()));
        assert!(seen.try_recv().is_err(), "a cancelled job ran");
        assert_eq!(ONE.metrics().cancelled, 1);
    });
}
