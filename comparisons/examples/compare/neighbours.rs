//! What a task making short calls in a loop costs the other tasks of its runtime: a 1 ms ticker
//! (how late each tick wakes) and a loopback echo server (the round trip a client on its own
//! thread sees), on a current-thread and a multi-thread tokio runtime, with no load, with the
//! load on async-wrap (statistics on, so with the adaptive wait; the wait off; statistics off)
//! and on tokio's `spawn_blocking`. Loads are interleaved round by round, in a new shuffled order
//! each round (a fixed seed), and each round's first 50 ms are a warm-up that is not recorded;
//! percentiles are over all rounds.

use std::hint::black_box;
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Who makes the looping calls.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Load {
    None,
    AsyncWrap,
    AsyncWrapNoWait,
    AsyncWrapNoStats,
    SpawnBlocking,
}

const LOADS: [(Load, &str); 5] = [
    (Load::None, "no load"),
    (Load::AsyncWrap, "async-wrap (statistics on: adaptive wait)"),
    (Load::AsyncWrapNoWait, "async-wrap, adaptive wait off"),
    (Load::AsyncWrapNoStats, "async-wrap, statistics off"),
    (Load::SpawnBlocking, "tokio spawn_blocking"),
];

/// What one load's rounds measured.
#[derive(Default)]
struct Seen {
    lateness: Vec<Duration>,
    echo: Vec<Duration>,
    /// Each round's p99 echo round trip: their median is robust to one noisy round.
    round_echo_p99: Vec<Duration>,
    calls: u64,
    /// Adaptive waits made during the rounds (every call site's `waits`).
    waits: u64,
    elapsed: Duration,
}

/// Adaptive waits made so far, over every call site.
fn waits_so_far() -> u64 {
    async_wrap::call_sites().iter().map(|site| site.waits).sum()
}

/// Runs the neighbour rows on both runtime flavours and prints their tables.
pub(crate) fn neighbour_rows(scale: usize) {
    let rounds = (12 / scale).max(2);
    let round = Duration::from_millis(300);
    for (flavour, multi) in [
        ("current-thread", false),
        ("multi-thread (2 workers)", true),
    ] {
        let runtime = if multi {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
        } else {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        }
        .unwrap();
        let mut seen: Vec<Seen> = LOADS.iter().map(|_| Seen::default()).collect();
        let mut order: Vec<usize> = (0..LOADS.len()).collect();
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..rounds {
            // A new order each round: with a rotation, one load always followed the idle
            // "no load" one, and the load after it saw up to 1.7× the echo p99 of the others.
            shuffle(&mut order, &mut state);
            for &index in &order {
                one_round(&runtime, LOADS[index].0, round, &mut seen[index]);
            }
        }
        print_rows(flavour, rounds, round, &mut seen);
    }
    async_wrap::set_call_statistics(true);
    async_wrap::set_adaptive_wait(true);
}

/// Shuffles `order` in place (Fisher–Yates over a xorshift generator seeded by `seed`).
fn shuffle(order: &mut [usize], seed: &mut u64) {
    for last in (1..order.len()).rev() {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        // The remainder is below `last + 1`, a slice length: it fits a usize.
        #[allow(clippy::cast_possible_truncation)]
        let pick = (*seed % (last as u64 + 1)) as usize;
        order.swap(last, pick);
    }
}

/// How long each round runs before its samples count: the load, the ticker and the echo
/// client reach their steady state.
const WARM_UP: Duration = Duration::from_millis(50);

/// One round of `load` beside the ticker and the echo server: `WARM_UP`, then `length` recorded.
fn one_round(runtime: &tokio::runtime::Runtime, load: Load, length: Duration, seen: &mut Seen) {
    async_wrap::set_call_statistics(load != Load::AsyncWrapNoStats);
    async_wrap::set_adaptive_wait(load != Load::AsyncWrapNoWait);
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("a loopback port");
    let address = listener.local_addr().unwrap();
    let recording_from = Instant::now() + WARM_UP;
    let client = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut stream = std::net::TcpStream::connect(address).expect("the echo server");
            stream.set_nodelay(true).unwrap();
            let mut round_trips = Vec::new();
            let mut buffer = [0_u8; 16];
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                stream.write_all(&[7; 16]).unwrap();
                stream.read_exact(&mut buffer).unwrap();
                if start >= recording_from {
                    round_trips.push(start.elapsed());
                }
                thread::sleep(Duration::from_micros(200));
            }
            round_trips
        })
    };
    let (lateness, started, calls_before, waits_before) = runtime.block_on(async {
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            socket.set_nodelay(true).unwrap();
            let mut buffer = [0_u8; 16];
            while socket.read_exact(&mut buffer).await.is_ok() {
                if socket.write_all(&buffer).await.is_err() {
                    break;
                }
            }
        });
        let ticker = tokio::spawn({
            let stop = stop.clone();
            async move {
                let mut lateness = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let due = tokio::time::Instant::now() + Duration::from_millis(1);
                    tokio::time::sleep_until(due).await;
                    if due.into_std() >= recording_from {
                        lateness.push(tokio::time::Instant::now() - due);
                    }
                }
                lateness
            }
        });
        let looping = tokio::spawn({
            let (stop, calls) = (stop.clone(), calls.clone());
            async move {
                while !stop.load(Ordering::Relaxed) {
                    match load {
                        Load::None => {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                            continue;
                        }
                        Load::AsyncWrap | Load::AsyncWrapNoWait | Load::AsyncWrapNoStats => {
                            async_wrap::spawn(|| black_box(())).await;
                        }
                        Load::SpawnBlocking => {
                            tokio::task::spawn_blocking(|| black_box(())).await.unwrap();
                        }
                    }
                    calls.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        tokio::time::sleep_until(recording_from.into()).await;
        let (started, calls_before, waits_before) = (
            Instant::now(),
            calls.load(Ordering::Relaxed),
            waits_so_far(),
        );
        tokio::time::sleep(length).await;
        stop.store(true, Ordering::Relaxed);
        looping.await.unwrap();
        let lateness = ticker.await.unwrap();
        // The client stops after its next round trip: the server ends with its connection.
        let _ = server.await;
        (lateness, started, calls_before, waits_before)
    });
    seen.elapsed += started.elapsed();
    seen.calls += calls.load(Ordering::Relaxed) - calls_before;
    seen.waits += waits_so_far().saturating_sub(waits_before);
    seen.lateness.extend(lateness);
    let mut echo = client.join().unwrap();
    echo.sort_unstable();
    seen.round_echo_p99.push(quantile(&echo, 0.99));
    seen.echo.extend(echo);
}

/// The `q` quantile of sorted samples.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    // Truncation is the intent: the sample at or below the quantile's rank.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let at = ((sorted.len() - 1) as f64 * q) as usize;
    sorted[at]
}

fn print_rows(flavour: &str, rounds: usize, round: Duration, seen: &mut [Seen]) {
    println!(
        "\n### Neighbours of a task making short calls in a loop: {flavour} runtime, {rounds} \
         rounds of {} ms per load\n",
        round.as_millis()
    );
    println!(
        "| load | ticker lateness median / p99 / max | echo round trip median / p99 | \
         p99 vs statistics off (ticker, echo) | echo p99, median of rounds (vs statistics off) | \
         looping calls per second | adaptive waits |"
    );
    println!("|---|---|---|---|---|---|---|");
    for seen in seen.iter_mut() {
        seen.lateness.sort_unstable();
        seen.echo.sort_unstable();
        seen.round_echo_p99.sort_unstable();
    }
    let off = LOADS
        .iter()
        .position(|(load, _)| *load == Load::AsyncWrapNoStats)
        .expect("the statistics-off load");
    let (off_tick, off_echo, off_rounds) = (
        quantile(&seen[off].lateness, 0.99),
        quantile(&seen[off].echo, 0.99),
        quantile(&seen[off].round_echo_p99, 0.5),
    );
    for ((load, name), seen) in LOADS.iter().zip(seen.iter()) {
        let tick = quantile(&seen.lateness, 0.99);
        let echo = quantile(&seen.echo, 0.99);
        let rounds = quantile(&seen.round_echo_p99, 0.5);
        let rate = if *load == Load::None {
            "—".to_owned()
        } else {
            format!("{:.0}", seen.calls as f64 / seen.elapsed.as_secs_f64())
        };
        println!(
            "| {name} | {} / {} / {} | {} / {} | {:.2}×, {:.2}× | {} ({:.2}×) | {rate} | {} |",
            super::micros(quantile(&seen.lateness, 0.5)),
            super::micros(tick),
            super::micros(seen.lateness.last().copied().unwrap_or_default()),
            super::micros(quantile(&seen.echo, 0.5)),
            super::micros(echo),
            tick.as_secs_f64() / off_tick.as_secs_f64().max(1e-9),
            echo.as_secs_f64() / off_echo.as_secs_f64().max(1e-9),
            super::micros(rounds),
            rounds.as_secs_f64() / off_rounds.as_secs_f64().max(1e-9),
            seen.waits,
        );
    }
}
