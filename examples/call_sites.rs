//! What async-wrap knows about each wrapped function: a small mixed workload (short parsing,
//! file reads, "database" queries on a two-thread pool, a function that sometimes panics, one
//! that is sometimes abandoned by a timeout, and a report that runs too long), then the table
//! of every call site, the pools' metrics and the slow calls reported.
//!
//! ```text
//! cargo run --example call_sites
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_wrap::{BlockingPool, SlowCall, async_wrap, call_sites};

/// Two threads for the "database"; a query queued more than 25 ms, or running more than
/// 50 ms, is reported (here to the list printed at the end; by default to `tracing` or
/// standard error).
static DB: std::sync::LazyLock<BlockingPool> = std::sync::LazyLock::new(|| {
    BlockingPool::builder()
        .max_threads(2)
        .thread_name("db")
        .slow_call(Duration::from_millis(50))
        .slow_queue_wait(Duration::from_millis(25))
        .on_slow_call(|slow: &SlowCall| SLOW.lock().unwrap().push(slow.to_string()))
        .build()
        .expect("valid settings")
});

static SLOW: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Short: parses a line.
#[async_wrap]
fn parse(line: String) -> usize {
    line.split(',').filter(|field| !field.is_empty()).count()
}

/// Reads a file of this crate.
#[async_wrap]
fn read(path: &'static str) -> std::io::Result<usize> {
    std::fs::read(path).map(|bytes| bytes.len())
}

/// A "query": 2 ms on the database pool.
#[async_wrap(executor = DB)]
fn query(id: u32) -> u32 {
    std::thread::sleep(Duration::from_millis(2));
    id * 2
}

/// A "report": 80 ms on the database pool, past its slow-call threshold.
#[async_wrap(executor = DB)]
fn report() -> &'static str {
    std::thread::sleep(Duration::from_millis(80));
    "done"
}

/// Panics on one input in ten.
#[async_wrap]
fn validate(n: u32) -> u32 {
    assert!(n % 10 != 7, "invalid input {n}");
    n
}

/// 20 ms, but its callers give up after 5 ms on some calls.
#[async_wrap]
fn lookup(n: u32) -> u32 {
    std::thread::sleep(Duration::from_millis(20));
    n
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // Panics in `validate` are expected: keep the output to the table.
    std::panic::set_hook(Box::new(|_| {}));

    for i in 0..2_000 {
        parse(format!("{i},a,b,,c")).await;
    }
    for _ in 0..50 {
        read("Cargo.toml").await.expect("Cargo.toml is readable");
    }
    // 40 queries at once on two threads: some wait in the queue.
    let queries = (0..40).map(query);
    let answers = futures::future::join_all(queries).await;
    assert_eq!(answers.iter().sum::<u32>(), (0..40).map(|i| i * 2).sum());
    assert_eq!(report().await, "done");
    let mut panicked = 0;
    for n in 0..30 {
        if tokio::spawn(validate(n)).await.is_err() {
            panicked += 1;
        }
    }
    assert_eq!(panicked, 3);
    // Half the lookups are abandoned by a timeout: queued ones never run (cancelled); the
    // running ones finish, their results dropped.
    let lookups = Arc::new(Mutex::new((0, 0)));
    let calls = (0..8).map(|n| {
        let lookups = lookups.clone();
        async move {
            let limit = Duration::from_millis(if n % 2 == 0 { 5 } else { 500 });
            let result = tokio::time::timeout(limit, lookup(n)).await;
            let mut lookups = lookups.lock().unwrap();
            if result.is_ok() {
                lookups.0 += 1;
            } else {
                lookups.1 += 1;
            }
        }
    });
    futures::future::join_all(calls).await;
    // Give the abandoned lookups that were running time to end and be counted.
    tokio::time::sleep(Duration::from_millis(100)).await;

    println!("## Call sites\n\n```text\n{}```", call_sites());
    let lookups = lookups.lock().unwrap();
    println!(
        "\nlookups: {} returned, {} abandoned by a 5 ms timeout",
        lookups.0, lookups.1
    );
    println!("\n## Pools\n");
    println!("default pool: {:?}", async_wrap::default_pool().metrics());
    println!("db pool:      {:?}", DB.metrics());
    println!("\n## Slow calls reported by the db pool\n");
    let slow = SLOW.lock().unwrap();
    let (queued, ran): (Vec<&String>, Vec<&String>) =
        slow.iter().partition(|line| line.contains("waited"));
    for line in &ran {
        println!("- {line}");
    }
    if let (Some(first), Some(last)) = (queued.first(), queued.last()) {
        println!("- {first}");
        println!("- ... {} queue waits in all, the last:", queued.len());
        println!("- {last}");
    }
    drop(slow);

    // What the table says, checked: the example fails if the statistics are wrong.
    let sites = call_sites();
    let row = |name: &str| {
        sites
            .get(&format!("call_sites::{name}"))
            .unwrap_or_else(|| panic!("no row for {name}"))
    };
    assert_eq!((row("parse").calls, row("parse").completed), (2_000, 2_000));
    assert_eq!(row("query").completed, 40);
    assert!(row("query").queue_wait.max() >= Duration::from_millis(2));
    assert_eq!(
        (row("validate").completed, row("validate").panicked),
        (27, 3)
    );
    let lookup = row("lookup");
    assert_eq!(lookup.calls, 8);
    assert_eq!(lookup.completed + lookup.cancelled, 8);
    assert_eq!(lookup.in_flight, 0);
    let slow = SLOW.lock().unwrap();
    assert!(
        slow.iter()
            .any(|line| line.contains("`call_sites::report`") && line.contains("has run for")),
        "the report was reported: {slow:?}"
    );
}
