use std::io;
use std::path::PathBuf;

use async_wrap::async_wrap;

// Without `stream`, the iterator would be pulled, and its blocking reads done, on the caller's
// async thread.
#[async_wrap]
fn lines(path: PathBuf) -> impl Iterator<Item = String> {
    use std::io::BufRead;
    io::BufReader::new(std::fs::File::open(path).unwrap())
        .lines()
        .map_while(Result::ok)
}

#[async_wrap]
fn open(path: PathBuf) -> io::Result<impl IntoIterator<Item = String>> {
    use std::io::BufRead;
    Ok(io::BufReader::new(std::fs::File::open(path)?)
        .lines()
        .map_while(Result::ok))
}

fn main() {
    // The call sites written for the refused signatures get no error.
    let _ = async {
        let n = lines("a".into()).await.count();
        let m = open("b".into()).await.map_or(0, |lines| lines.into_iter().count());
        n + m
    };
}
