//! Hashes every file under a directory with blocking file I/O on a bounded pool, from a tokio
//! program, with a live progress line and the total throughput.
//!
//! ```text
//! cargo run --release --example hash_files            # the project's own sources
//! cargo run --release --example hash_files -- /usr/lib
//! ```

use std::collections::hash_map::DefaultHasher;
use std::hash::Hasher;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_wrap::{BlockingPool, async_wrap};

/// At most four files read at once: the disk, not the CPU, is the limit.
static DISK: BlockingPool = BlockingPool::with_max_threads(4).thread_name("disk");

/// Reads a file in 64 KiB chunks and returns its size and a 64-bit hash of its bytes.
#[async_wrap(executor = DISK)]
fn hash_file(path: PathBuf, progress: Arc<AtomicU64>) -> std::io::Result<(u64, u64)> {
    let mut file = std::fs::File::open(&path)?;
    let mut hasher = DefaultHasher::new();
    let mut buffer = vec![0; 64 * 1024];
    let mut size = 0;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            return Ok((size, hasher.finish()));
        }
        hasher.write(&buffer[..read]);
        size += read as u64;
        progress.fetch_add(read as u64, Ordering::Relaxed);
    }
}

/// Every regular file under `root`, found with blocking directory reads.
#[async_wrap(executor = DISK)]
fn list_files(root: PathBuf) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(kind)
                    if kind.is_dir()
                        && entry.file_name() != "target"
                        && entry.file_name() != ".git" =>
                {
                    walk(&entry.path(), out);
                }
                Ok(kind) if kind.is_file() => out.push(entry.path()),
                _ => {}
            }
        }
    }
    let mut files = Vec::new();
    walk(&root, &mut files);
    files
}

#[tokio::main]
async fn main() {
    let root = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    let files = list_files(root.clone()).await;
    println!("hashing {} files under {}", files.len(), root.display());

    let progress = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let ticker = tokio::spawn({
        let progress = progress.clone();
        async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let done = progress.load(Ordering::Relaxed);
                print!(
                    "\r  {:>8.1} MiB read, {} threads busy   ",
                    mib(done),
                    DISK.metrics().running
                );
                let _ = std::io::stdout().flush();
            }
        }
    });
    let calls = files
        .iter()
        .map(|path| hash_file(path.clone(), progress.clone()));
    let results = futures::future::join_all(calls).await;
    ticker.abort();

    let elapsed = start.elapsed();
    let (mut bytes, mut combined, mut failed) = (0, 0_u64, 0);
    for result in results {
        match result {
            Ok((size, hash)) => {
                bytes += size;
                combined ^= hash;
            }
            Err(_) => failed += 1,
        }
    }
    println!(
        "\r{} files, {:.1} MiB in {:.2} s: {:.1} MiB/s on at most {} threads; combined hash {combined:016x}; {failed} unreadable",
        files.len() - failed,
        mib(bytes),
        elapsed.as_secs_f64(),
        mib(bytes) / elapsed.as_secs_f64().max(1e-9),
        DISK.metrics().threads_started.min(4),
    );
}

#[allow(clippy::cast_precision_loss)] // a size in MiB, for display
fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
