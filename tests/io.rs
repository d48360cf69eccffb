//! `Unblock`: blocking readers and writers as async ones, on a pool.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_wrap::{BlockingPool, Unblock};

mod support;
use futures::{AsyncReadExt, AsyncWriteExt};

static DISK: BlockingPool = BlockingPool::with_max_threads(2).thread_name("io-test");

fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("async-wrap-io-{}-{name}", std::process::id()))
}

/// 1 MiB of bytes that are not all alike.
fn sample() -> Vec<u8> {
    (0..1_048_576_u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

#[test]
fn a_file_reads_back_exactly_through_small_buffers() {
    let path = temp_path("read");
    let data = sample();
    std::fs::write(&path, &data).unwrap();
    // 4,099 does not divide the file: the last read is short. (Smaller buffers are covered
    // below: in this test binary a read round trip costs far more than in a program, a finding
    // still being investigated, so a 97-byte buffer over 64 KiB would take seconds.)
    for buffer in [4_099, 1 << 20] {
        let mut reader =
            Unblock::with_executor(&DISK, std::fs::File::open(&path).unwrap()).buffer_size(buffer);
        let mut out = Vec::new();
        futures::executor::block_on(reader.read_to_end(&mut out)).unwrap();
        assert!(
            out == data,
            "buffer {buffer}: {} bytes read of {}",
            out.len(),
            data.len()
        );
    }
    std::fs::remove_file(path).unwrap();

    let mut one_byte_at_a_time =
        Unblock::with_executor(&DISK, &b"tiny but exact"[..]).buffer_size(1);
    let mut out = Vec::new();
    futures::executor::block_on(one_byte_at_a_time.read_to_end(&mut out)).unwrap();
    assert_eq!(out, b"tiny but exact");
}

#[test]
fn everything_written_is_in_the_file_after_close() {
    let path = temp_path("write");
    let data = sample();
    futures::executor::block_on(async {
        let mut writer = Unblock::with_executor(&DISK, std::fs::File::create(&path).unwrap())
            .buffer_size(10_000);
        for chunk in data.chunks(777) {
            writer.write_all(chunk).await.unwrap();
        }
        writer.close().await.unwrap();
    });
    assert!(std::fs::read(&path).unwrap() == data);
    std::fs::remove_file(path).unwrap();
}

/// A reader that yields `good` bytes, then fails.
struct Failing {
    good: usize,
}

impl Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.good == 0 {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "the disk went away",
            ));
        }
        let n = buf.len().min(self.good);
        buf[..n].fill(1);
        self.good -= n;
        Ok(n)
    }
}

impl Write for Failing {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.good < buf.len() {
            return Err(io::Error::new(io::ErrorKind::StorageFull, "no space left"));
        }
        self.good -= buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn errors_reach_the_caller_as_io_errors() {
    let mut reader = Unblock::with_executor(&DISK, Failing { good: 10 }).buffer_size(4);
    let mut out = Vec::new();
    let err = futures::executor::block_on(reader.read_to_end(&mut out)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    assert_eq!(err.to_string(), "the disk went away");
    assert_eq!(out.len(), 10, "the bytes before the error were delivered");

    let mut writer = Unblock::with_executor(&DISK, Failing { good: 5 }).buffer_size(4);
    let err = futures::executor::block_on(async {
        writer.write_all(b"more than five bytes").await?;
        writer.flush().await
    })
    .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::StorageFull);
}

/// A reader whose every read blocks for 10 ms.
struct Slow {
    reads: usize,
}

impl Read for Slow {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.reads == 0 {
            return Ok(0);
        }
        self.reads -= 1;
        std::thread::sleep(Duration::from_millis(10));
        buf[0] = 9;
        Ok(1)
    }
}

#[test]
fn the_consumers_runtime_keeps_running_while_reads_block() {
    let (read, ticks) = support::with_ticker(async {
        let mut out = Vec::new();
        Unblock::with_executor(&DISK, Slow { reads: 10 })
            .read_to_end(&mut out)
            .await
            .unwrap();
        out
    });
    assert_eq!(read, [9; 10]);
    // Ten reads of 10 ms: about 100 ms, during which a blocked runtime would not tick.
    assert!(ticks >= 10, "the runtime ticked {ticks} times");
}

#[test]
fn dropping_a_writer_with_buffered_data_still_writes_it() {
    let path = temp_path("drop");
    futures::executor::block_on(async {
        let mut writer = Unblock::with_executor(&DISK, std::fs::File::create(&path).unwrap());
        writer.write_all(b"buffered, never flushed").await.unwrap();
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read(&path).unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the buffered data was lost");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(std::fs::read(&path).unwrap(), b"buffered, never flushed");
    std::fs::remove_file(path).unwrap();
}

#[cfg(feature = "tokio")]
#[test]
fn tokio_io_traits_work_too() {
    use tokio::io::{AsyncReadExt as TokioRead, AsyncWriteExt as TokioWrite};

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let out = runtime.block_on(async {
        let mut writer = Unblock::new(Vec::new());
        TokioWrite::write_all(&mut writer, b"through tokio's traits")
            .await
            .unwrap();
        TokioWrite::shutdown(&mut writer).await.unwrap();
        let mut reader = Unblock::new(&b"read by tokio"[..]);
        let mut out = String::new();
        TokioRead::read_to_string(&mut reader, &mut out)
            .await
            .unwrap();
        out
    });
    assert_eq!(out, "read by tokio");
}
