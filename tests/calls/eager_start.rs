//! `BlockingFuture::start`: a call started before its first poll runs while the caller does
//! other work; a start that finds no room loses nothing (the first poll submits the job as
//! without `start`), and a refusal at the start is counted once and reported by the first poll.

use std::sync::mpsc;
use std::time::Duration;

use std::sync::Arc;

use crate::support::{
    assert_balanced, hold_the_only_thread, one_thread_pool, statistics_shared, stats_of, within,
};
use async_wrap::{BlockingPool, QueueFull, RejectReason, async_wrap, spawn_on};
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

#[test]
fn a_start_with_no_room_leaves_the_job_to_the_first_poll() {
    within(Duration::from_secs(30), || {
        let full = one_thread_pool(1, QueueFull::Wait);
        // The one thread, held; then the one queue place, taken.
        let (gate, holder) = hold_the_only_thread(&full);
        let queued = spawn_on(full.clone(), || 1).start();
        // No room for this one: it is not submitted, and not lost.
        let (ran, seen) = mpsc::channel();
        let waiting = spawn_on(full.clone(), move || {
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
        assert_eq!(full.metrics().rejected, 0);
    });
}

#[async_wrap(executor = pool)]
fn refused_at_start(pool: Arc<BlockingPool>) -> u32 {
    drop(pool);
    7
}

#[test]
fn a_start_refused_by_a_full_queue_is_counted_once_and_reported_at_the_first_poll() {
    within(Duration::from_secs(30), || {
        let _statistics = statistics_shared();
        let full = one_thread_pool(0, QueueFull::Reject);
        let (gate, holder) = hold_the_only_thread(&full);
        let before = stats_of(site!("refused_at_start")).map_or(0, |s| s.refused);
        let refused = refused_at_start(full.clone()).start();
        assert_eq!(full.metrics().rejected, 1, "the refusal at the start");
        // Room now: a refused job is not submitted again by the first poll.
        gate.send(()).unwrap();
        block_on(holder);
        let err = block_on(refused.checked()).expect_err("refused at its start");
        assert!(
            matches!(err.reject_reason(), Some(RejectReason::QueueFull)),
            "{err}"
        );
        assert_eq!(full.metrics().rejected, 1, "the refusal counted once");
        let stats = stats_of(site!("refused_at_start")).expect("a counted call");
        assert_eq!(stats.refused - before, 1, "{stats:?}");
        assert_balanced(&stats);
        // Refused and dropped unpolled: refused once, not cancelled.
        let (gate, holder) = hold_the_only_thread(&full);
        drop(refused_at_start(full.clone()).start());
        gate.send(()).unwrap();
        block_on(holder);
        assert_eq!(full.metrics().rejected, 2);
        assert_eq!(full.metrics().cancelled, 0);
        let stats = stats_of(site!("refused_at_start")).expect("a counted call");
        assert_eq!(stats.refused - before, 2, "{stats:?}");
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
        let one = one_thread_pool(16, QueueFull::Wait);
        let (gate, holder) = hold_the_only_thread(&one);
        let (ran, seen) = mpsc::channel();
        drop(
            spawn_on(one.clone(), move || {
                ran.send(()).unwrap();
            })
            .start(),
        );
        gate.send(()).unwrap();
        block_on(holder);
        // The queued job is skipped once its turn comes: a later call on the one thread runs
        // after it.
        block_on(spawn_on(one.clone(), || ()));
        assert!(seen.try_recv().is_err(), "a cancelled job ran");
        assert_eq!(one.metrics().cancelled, 1);
    });
}
