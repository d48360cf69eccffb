//! Counts the lines of a large generated file four ways, interleaved round by round: async-wrap's
//! `#[async_wrap(stream)]`, async-wrap's `Unblock` under an async line reader,
//! `blocking::Unblock` over a `BufReader::lines` iterator, and `tokio::fs` with `BufReader::lines`.
//!
//! ```text
//! cargo run --release --example lines                      # 2,000,000 lines, 120 MB
//! cargo run --release --example lines -- --lines 100000
//! ```

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_wrap::{BlockingPool, Unblock, async_wrap};
use futures::{AsyncBufReadExt, StreamExt};

static DISK: BlockingPool = BlockingPool::with_max_threads(2).thread_name("disk");

/// The file's lines, read with blocking I/O on DISK, as a stream; the file is opened on DISK
/// too, and an error opening it is returned before any line.
#[async_wrap(stream, batch = 1024, executor = DISK)]
fn file_lines(path: PathBuf) -> std::io::Result<impl Iterator<Item = String> + Send + 'static> {
    let file = std::fs::File::open(path)?;
    Ok(std::io::BufReader::new(file).lines().map_while(Result::ok))
}

async fn count_stream(path: PathBuf) -> usize {
    let lines = file_lines(path).await.expect("the generated file");
    lines.count().await
}

async fn count_unblock(path: PathBuf) -> usize {
    let file = Unblock::with_executor(
        &DISK,
        std::fs::File::open(path).expect("the generated file"),
    );
    futures::io::BufReader::new(file).lines().count().await
}

async fn count_blocking_crate(path: PathBuf) -> usize {
    let lines =
        std::io::BufReader::new(std::fs::File::open(path).expect("the generated file")).lines();
    blocking::Unblock::new(lines).count().await
}

async fn count_tokio(path: PathBuf) -> usize {
    use tokio::io::AsyncBufReadExt as _;
    let file = tokio::fs::File::open(path)
        .await
        .expect("the generated file");
    let mut lines = tokio::io::BufReader::new(file).lines();
    let mut count = 0;
    while lines.next_line().await.expect("readable").is_some() {
        count += 1;
    }
    count
}

#[allow(clippy::cast_precision_loss)] // rates for display
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let lines: usize = args
        .iter()
        .position(|a| a == "--lines")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(2_000_000);
    let path = std::env::temp_dir().join(format!("async-wrap-lines-{}", std::process::id()));
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        for i in 0..lines {
            writeln!(
                out,
                "line {i:>9}: the quick brown fox jumps over the lazy dog"
            )
            .unwrap();
        }
    }
    let bytes = std::fs::metadata(&path).unwrap().len() as f64;
    println!(
        "{lines} lines, {:.1} MB, counted 3 times each, interleaved",
        bytes / 1e6
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let names = [
        "async-wrap #[async_wrap(stream)]",
        "async-wrap Unblock + lines()",
        "blocking::Unblock",
        "tokio::fs + lines()",
    ];
    let mut times = vec![Vec::new(); names.len()];
    for _round in 0..3 {
        for (index, times) in times.iter_mut().enumerate() {
            let path = path.clone();
            let start = Instant::now();
            let counted = runtime.block_on(async move {
                match index {
                    0 => count_stream(path).await,
                    1 => count_unblock(path).await,
                    2 => count_blocking_crate(path).await,
                    _ => count_tokio(path).await,
                }
            });
            assert_eq!(counted, lines, "{} miscounted", names[index]);
            times.push(start.elapsed());
        }
    }
    println!("\n| | median time | lines/s | MB/s |\n|---|---|---|---|");
    for (name, mut times) in names.iter().zip(times) {
        times.sort();
        let median: Duration = times[times.len() / 2];
        println!(
            "| {name} | {:.1} ms | {:.2} M | {:.0} |",
            median.as_secs_f64() * 1e3,
            lines as f64 / median.as_secs_f64() / 1e6,
            bytes / median.as_secs_f64() / 1e6
        );
    }
    std::fs::remove_file(path).unwrap();
}
