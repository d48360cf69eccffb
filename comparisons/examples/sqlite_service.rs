//! A database on a dedicated pool: a loopback line-protocol service whose handlers query `SQLite`,
//! driven by a bounded client in the same program, with three ways of keeping the blocking
//! queries off the runtime's threads, side by side in one run:
//!
//! - async-wrap: a `StatefulPool` of 2 threads, each with its own connection;
//! - `tokio::task::spawn_blocking` + a `Semaphore(2)`, a connection per thread (`thread_local!`);
//! - `blocking::unblock` + a `Semaphore(2)`, a connection per thread (`thread_local!`).
//!
//! Every request is `GET <id>` on one connection of the client, answered with the row's name.
//! The client keeps 32 connections busy and stops after `--requests` requests per system and
//! round; three rounds interleave the systems, and the table gives each one's median round.
//! Loopback only; it stops by itself.
//!
//! ```text
//! cargo run --release --example sqlite_service                  # 3,000 requests per system
//! cargo run --release --example sqlite_service -- --requests 300
//! ```

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_wrap::{BlockingPool, StatefulPool};
use rusqlite::{Connection, OpenFlags};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// Rows in the table.
const ROWS: u32 = 10_000;
/// Client connections, each with one request in flight.
const CLIENTS: usize = 32;
/// Rounds of the three systems.
const ROUNDS: usize = 3;

/// The database file, made once per run.
static PATH: OnceLock<PathBuf> = OnceLock::new();

/// Connections each system opened.
static OPENED: [AtomicUsize; 3] = [
    AtomicUsize::new(0),
    AtomicUsize::new(0),
    AtomicUsize::new(0),
];

fn open(system: usize) -> Connection {
    OPENED[system].fetch_add(1, Ordering::SeqCst);
    let path = PATH.get().expect("the database is made first");
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("the database opens")
}

/// One point query: the blocking work each request does.
fn query(conn: &Connection, id: u32) -> String {
    conn.prepare_cached("SELECT name FROM items WHERE id = ?1")
        .and_then(|mut statement| statement.query_row([id], |row| row.get(0)))
        .unwrap_or_else(|_| "missing".to_owned())
}

/// async-wrap: two threads, each with the connection it opened at its first query.
static DB: StatefulPool<Connection> =
    StatefulPool::new(BlockingPool::with_max_threads(2).thread_name("db"), || {
        open(0)
    });

thread_local! {
    /// The connection of a tokio blocking thread (system 1) or a `blocking` thread (system 2).
    static CONN: RefCell<Option<Connection>> = const { RefCell::new(None) };
}

fn query_on_this_thread(system: usize, id: u32) -> String {
    CONN.with(|conn| {
        let mut conn = conn.borrow_mut();
        query(conn.get_or_insert_with(|| open(system)), id)
    })
}

/// How a handler runs a query off the runtime's threads.
#[derive(Clone, Copy)]
enum System {
    AsyncWrap,
    SpawnBlocking,
    Unblock,
}

impl System {
    const ALL: [System; 3] = [System::AsyncWrap, System::SpawnBlocking, System::Unblock];

    fn name(self) -> &'static str {
        match self {
            System::AsyncWrap => "async-wrap StatefulPool (2 threads)",
            System::SpawnBlocking => "spawn_blocking + Semaphore(2)",
            System::Unblock => "blocking::unblock + Semaphore(2)",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The name its blocking threads have (`comm`, at most 15 bytes), and how many threads of
    /// that name are not its own (tokio's runtime workers share their name with its blocking
    /// threads).
    fn threads(self) -> (&'static str, usize) {
        match self {
            System::AsyncWrap => ("db-", 0),
            System::SpawnBlocking => ("tokio-rt-worker", 2),
            System::Unblock => ("blocking-", 0),
        }
    }

    async fn query(self, limit: &Semaphore, id: u32) -> String {
        match self {
            System::AsyncWrap => DB
                .call(move |conn: &mut Connection| query(conn, id))
                .await
                .expect("the connection opens"),
            System::SpawnBlocking => {
                let _permit = limit.acquire().await.expect("open");
                tokio::task::spawn_blocking(move || query_on_this_thread(1, id))
                    .await
                    .expect("the query does not panic")
            }
            System::Unblock => {
                let _permit = limit.acquire().await.expect("open");
                blocking::unblock(move || query_on_this_thread(2, id)).await
            }
        }
    }
}

/// Serves `GET <id>` lines on `listener` with `system`, until the client closes.
async fn serve(listener: TcpListener, system: System) {
    let limit = Arc::new(Semaphore::new(2));
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            return;
        };
        let limit = limit.clone();
        tokio::spawn(async move {
            let (read, mut write) = socket.into_split();
            let mut lines = BufReader::new(read).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let id = line
                    .strip_prefix("GET ")
                    .and_then(|id| id.parse().ok())
                    .unwrap_or(0);
                let mut answer = system.query(&limit, id).await;
                answer.push('\n');
                if write.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// What one system's run measured.
struct Run {
    requests: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    opened: usize,
    peak_threads: usize,
}

/// Sends `requests` requests from `CLIENTS` connections, one in flight on each.
async fn drive(address: std::net::SocketAddr, requests: usize) -> Vec<Duration> {
    let per_client = requests.div_ceil(CLIENTS);
    let clients = (0..CLIENTS).map(|client| {
        tokio::spawn(async move {
            let socket = TcpStream::connect(address)
                .await
                .expect("loopback connects");
            let (read, mut write) = socket.into_split();
            let mut lines = BufReader::new(read).lines();
            let mut latencies = Vec::with_capacity(per_client);
            for n in 0..per_client {
                let id = u32::try_from(client * per_client + n).unwrap_or(0) % ROWS + 1;
                let start = Instant::now();
                write
                    .write_all(format!("GET {id}\n").as_bytes())
                    .await
                    .expect("the service reads");
                let answer = lines.next_line().await.expect("the service answers");
                assert_eq!(answer.as_deref(), Some(format!("item {id}").as_str()));
                latencies.push(start.elapsed());
            }
            latencies
        })
    });
    let mut all = Vec::with_capacity(requests);
    for client in clients.collect::<Vec<_>>() {
        all.extend(client.await.expect("a client failed its checks"));
    }
    all
}

/// The process's threads whose name starts with `prefix` (Linux; 0 elsewhere).
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |tasks| {
        tasks
            .filter_map(Result::ok)
            .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
            .filter(|name| name.starts_with(prefix))
            .count()
    })
}

fn run(runtime: &tokio::runtime::Runtime, system: System, requests: usize) -> Run {
    let peak = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (prefix, not_its_own) = system.threads();
    let sampler = std::thread::spawn({
        let (peak, done) = (peak.clone(), done.clone());
        move || {
            while !done.load(Ordering::SeqCst) {
                let threads = threads_named(prefix).saturating_sub(not_its_own);
                peak.fetch_max(threads, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    });
    let (latencies, elapsed) = runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("loopback binds");
        let address = listener.local_addr().expect("bound");
        let server = tokio::spawn(serve(listener, system));
        let start = Instant::now();
        let latencies = drive(address, requests).await;
        let elapsed = start.elapsed();
        server.abort();
        (latencies, elapsed)
    });
    done.store(true, Ordering::SeqCst);
    sampler.join().expect("the sampler");
    Run {
        requests: latencies.len(),
        elapsed,
        latencies,
        opened: OPENED[system.index()].load(Ordering::SeqCst),
        peak_threads: peak.load(Ordering::SeqCst),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(at).copied().unwrap_or_default()
}

fn make_database() -> PathBuf {
    let path = std::env::temp_dir().join(format!("async-wrap-sqlite-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut conn = Connection::open(&path).expect("the database is created");
    conn.execute_batch("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);")
        .expect("the table is created");
    let insert = conn.transaction().expect("a transaction");
    for id in 1..=ROWS {
        insert
            .execute(
                "INSERT INTO items VALUES (?1, ?2)",
                (id, format!("item {id}")),
            )
            .expect("a row is inserted");
    }
    insert.commit().expect("the rows are written");
    path
}

fn main() {
    let requests = std::env::args()
        .skip_while(|arg| arg != "--requests")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(3_000_usize);
    let path = PATH.get_or_init(make_database);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    // Three rounds, each running every system in turn (interleaved, so that the machine's
    // noise hits all alike); the table reports each system's median round by requests/s.
    let mut rounds: Vec<Vec<Run>> = System::ALL.iter().map(|_| Vec::new()).collect();
    for _ in 0..ROUNDS {
        for system in System::ALL {
            rounds[system.index()].push(run(&runtime, system, requests));
        }
    }
    println!(
        "## A database on a dedicated pool: {} point queries per system and round, {CLIENTS} client connections, median of {ROUNDS} interleaved rounds, {} cores\n",
        requests.div_ceil(CLIENTS) * CLIENTS,
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    println!(
        "| | requests/s | p50 | p99 | connections opened (all rounds) | peak threads of the system |"
    );
    println!("|---|---|---|---|---|---|");
    for (system, mut runs) in System::ALL.into_iter().zip(rounds) {
        let peak_threads = runs.iter().map(|run| run.peak_threads).max().unwrap_or(0);
        runs.sort_by_key(|run| run.elapsed);
        let mut run = runs.swap_remove(runs.len() / 2);
        run.latencies.sort_unstable();
        #[allow(clippy::cast_precision_loss)]
        let rate = run.requests as f64 / run.elapsed.as_secs_f64();
        println!(
            "| {} | {rate:.0} | {:.0} µs | {:.0} µs | {} | {} |",
            system.name(),
            percentile(&run.latencies, 0.5).as_secs_f64() * 1e6,
            percentile(&run.latencies, 0.99).as_secs_f64() * 1e6,
            run.opened,
            peak_threads,
        );
        assert_eq!(run.requests, requests.div_ceil(CLIENTS) * CLIENTS);
    }
    assert!(
        OPENED[0].load(Ordering::SeqCst) <= 2,
        "a 2-thread pool opened more than 2 connections"
    );
    drop(runtime);
    let _ = std::fs::remove_file(path);
}
