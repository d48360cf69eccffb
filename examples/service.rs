//! A small line-protocol server on loopback whose handler calls a blocking function: the event
//! loop keeps answering `ping` in microseconds while slow requests occupy the pool.
//!
//! ```text
//! cargo run --example service
//! ```
//!
//! The server takes `ping` (answered on the event loop) and `slow N` (a blocking lookup of
//! N milliseconds, on a pool of four threads). The program starts the server on a free port,
//! then a client sends eight slow requests and, while they run, pings every few milliseconds.

use std::time::{Duration, Instant};

use async_wrap::{BlockingPool, async_wrap};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

static BACKEND: BlockingPool = BlockingPool::with_max_threads(4).thread_name("backend");

/// A blocking backend call, as a synchronous driver would make it.
#[async_wrap(executor = BACKEND)]
fn slow_lookup(millis: u64) -> String {
    std::thread::sleep(Duration::from_millis(millis));
    format!(
        "looked up in {millis} ms on {}",
        std::thread::current().name().unwrap_or("?")
    )
}

async fn serve(listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let reply = match line.split_once(' ') {
                    None if line == "ping" => "pong".to_owned(),
                    Some(("slow", millis)) => match millis.parse() {
                        Ok(millis) => slow_lookup(millis).await,
                        Err(_) => "error: slow takes a number of milliseconds".to_owned(),
                    },
                    _ => format!("error: unknown command {line:?}"),
                };
                if write
                    .write_all(format!("{reply}\n").as_bytes())
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
    }
}

async fn request(address: std::net::SocketAddr, line: &str) -> (String, Duration) {
    let start = Instant::now();
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(format!("{line}\n").as_bytes())
        .await
        .unwrap();
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).await.unwrap();
    (reply.trim().to_owned(), start.elapsed())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // One event-loop thread: if a handler blocked it, pings would wait for the slow requests.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(serve(listener));
    println!("serving on {address}; 8 requests of `slow 200` in flight, pinging meanwhile");

    let slow = tokio::spawn(async move {
        let start = Instant::now();
        let replies = futures::future::join_all((0..8).map(|_| request(address, "slow 200"))).await;
        (replies, start.elapsed())
    });
    let mut pings = Vec::new();
    while !slow.is_finished() {
        let (reply, took) = request(address, "ping").await;
        assert_eq!(reply, "pong");
        pings.push(took);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (replies, slow_took) = slow.await.unwrap();
    println!("  first reply: {}", replies[0].0);
    println!(
        "  8 slow requests on 4 pool threads took {} ms (two rounds of 200 ms)",
        slow_took.as_millis()
    );
    pings.sort();
    println!(
        "  {} pings meanwhile: median {} µs, slowest {} µs: the event loop kept answering",
        pings.len(),
        pings[pings.len() / 2].as_micros(),
        pings.last().unwrap().as_micros()
    );
}
