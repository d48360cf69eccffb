//! The `metrics` feature with a Prometheus exporter: a `/metrics` page on loopback, published
//! at each scrape, while a small mixed workload runs (quick lookups, slower reads, a few
//! panics and refusals).
//!
//!   cargo run --features metrics --example prometheus                 # serves for 10 s
//!   cargo run --features metrics --example prometheus -- --seconds 60 --port 9464
//!   cargo run --features metrics --example prometheus -- --once       # one page, to stdout
//!
//! The page is `metrics-exporter-prometheus`'s rendering, without its HTTP listener, with the
//! call sites' histograms appended: a few lines of `std::net` serve it, so that each scrape
//! publishes first (`publish_call_site_counters`, `BlockingPool::publish_metrics`), renders the
//! exporter's page, then appends `render_call_site_histograms`, and so reads the counts as they
//! are then. The histograms are written from async-wrap's own buckets (`DURATION_BUCKETS`, a
//! Prometheus "const histogram"), at a cost per page that does not grow with the calls; they are
//! not also published through the facade (`publish_call_site_metrics`), which would put each
//! histogram family on the page twice.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_wrap::{BlockingPool, async_wrap};
use futures::FutureExt;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static IO: BlockingPool = BlockingPool::with_max_threads(4).thread_name("io");

/// A quick call: the adaptive wait's kind.
#[async_wrap(executor = IO)]
fn lookup(id: u64) -> u64 {
    id.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// A slower one, of about `micros` µs.
#[async_wrap(executor = IO)]
fn read_record(id: u64, micros: u64) -> u64 {
    std::thread::sleep(Duration::from_micros(micros));
    id
}

/// One in a few of these panics.
#[async_wrap(executor = IO)]
fn parse(input: u64) -> u64 {
    assert!(input % 7 != 0, "input {input} is not a record");
    input / 7
}

/// A pool shut down at the start: its calls are refused.
static RETIRED: BlockingPool = BlockingPool::with_max_threads(1).thread_name("retired");

#[async_wrap(executor = RETIRED)]
fn retired() {}

/// One round of the workload: 64 lookups, 8 reads, 8 parses (one or two panic), a refusal.
async fn round(n: u64) {
    let lookups = (0..64).map(|i| lookup(n * 64 + i));
    futures::future::join_all(lookups).await;
    let reads = (0..8).map(|i| read_record(i, 50 + (n * 37 + i * 211) % 2_000));
    futures::future::join_all(reads).await;
    for i in 0..8 {
        let _ = AssertUnwindSafe(parse(n * 8 + i)).catch_unwind().await;
    }
    let _ = retired().checked().await;
}

/// The exporter, installed as the global recorder: the counters and gauges go through it (the
/// histograms are rendered by async-wrap, see `page`, so it needs no buckets).
fn install() -> PrometheusHandle {
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .expect("no other recorder is installed");
    async_wrap::describe_metrics();
    handle
}

/// The page: what the call sites and the pools count now. The counters and gauges through the
/// exporter, the two histograms appended to its page.
fn page(handle: &PrometheusHandle) -> String {
    async_wrap::publish_call_site_counters();
    IO.publish_metrics();
    RETIRED.publish_metrics();
    let mut page = handle.render();
    async_wrap::render_call_site_histograms(&mut page);
    page
}

/// Answers one request: the page for `GET /metrics`, 404 for anything else.
fn answer(stream: TcpStream, handle: &PrometheusHandle) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    // The headers, up to the empty line.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let mut stream = reader.into_inner();
    let (status, body) = if request.starts_with("GET /metrics") {
        ("200 OK", page(handle))
    } else {
        ("404 Not Found", "try /metrics\n".to_owned())
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str, default: u64| -> u64 {
        args.iter()
            .position(|arg| arg == flag)
            .map_or(default, |at| {
                args.get(at + 1)
                    .and_then(|value| value.parse().ok())
                    .unwrap_or_else(|| panic!("{flag} takes a number"))
            })
    };
    let once = args.iter().any(|arg| arg == "--once");
    let seconds = value("--seconds", 10);
    let port = u16::try_from(value("--port", 0)).expect("--port takes a port number");

    let handle = install();
    RETIRED.shutdown();
    // The panics are the workload's: keep them off stderr.
    std::panic::set_hook(Box::new(|_| {}));

    if once {
        for n in 0..20 {
            futures::executor::block_on(round(n));
        }
        print!("{}", page(&handle));
        return;
    }

    let listener = TcpListener::bind(("127.0.0.1", port)).expect("a loopback port");
    listener
        .set_nonblocking(true)
        .expect("a non-blocking listener");
    println!(
        "serving http://{}/metrics for {seconds} s",
        listener.local_addr().expect("its address")
    );
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                futures::executor::block_on(round(n));
                n += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        while Instant::now() < deadline {
            match listener.accept() {
                Ok((stream, _)) => {
                    // Blocking for the one request: the listener alone is non-blocking.
                    if let Err(error) = stream
                        .set_nonblocking(false)
                        .and_then(|()| answer(stream, &handle))
                    {
                        eprintln!("a scrape failed: {error}");
                    }
                }
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(error) => panic!("accepting a scrape: {error}"),
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    println!("done");
}
