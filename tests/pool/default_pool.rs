//! The default pool: it reads `ASYNC_WRAP_MAX_THREADS` once, on first use, can be replaced once
//! before it, and refuses every form of shutdown.

use crate::support::test_name;
use async_wrap::{BlockingPool, default_pool, install_default};
use futures::executor::block_on;
use std::panic::AssertUnwindSafe;
use std::process::Command;
use std::time::Duration;

/// Runs the ignored test `name` of this binary in a child with `env` set; returns its success.
fn run_child(name: &str, env: &[(&str, &str)]) -> bool {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            &test_name(module_path!(), name),
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("1 passed") || !output.status.success(),
        "child ran no test: {stdout}"
    );
    if !output.status.success() {
        eprintln!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    }
    output.status.success()
}

#[test]
#[ignore = "run as a child process by max_threads_comes_from_the_environment"]
fn child_reports_max_threads() {
    let expected: usize = std::env::var("EXPECTED_MAX_THREADS")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(default_pool().settings().max_threads, expected);
}

#[test]
fn max_threads_comes_from_the_environment() {
    let case = |value: Option<&str>, expected: &str| {
        let mut env = vec![("EXPECTED_MAX_THREADS", expected)];
        env.extend(value.map(|v| ("ASYNC_WRAP_MAX_THREADS", v)));
        assert!(
            run_child("child_reports_max_threads", &env),
            "{value:?} -> {expected}"
        );
    };
    case(Some("3"), "3");
    case(Some("10000"), "10000");
    case(Some("0"), "512");
    case(Some("10001"), "512");
    case(Some("lots"), "512");
    // Without the variable (the parent's environment has none set by this test).
    if std::env::var_os("ASYNC_WRAP_MAX_THREADS").is_none() {
        case(None, "512");
    }
}

#[test]
#[ignore = "run as a child process by install_default_works_once_and_only_before_first_use"]
fn child_installs_before_first_use() {
    install_default(BlockingPool::with_max_threads(3).thread_name("custom"))
        .expect("first install");
    let err = install_default(BlockingPool::with_max_threads(5)).expect_err("second install");
    assert!(err.to_string().contains("already set"), "{err}");
    assert_eq!(
        err.into_pool().settings().max_threads,
        5,
        "the refused pool is handed back"
    );
    assert_eq!(default_pool().settings().max_threads, 3);
    let name = block_on(async_wrap::spawn(|| {
        std::thread::current().name().map(str::to_owned)
    }));
    assert_eq!(name.as_deref(), Some("custom-1"));
}

#[test]
#[ignore = "run as a child process by install_default_works_once_and_only_before_first_use"]
fn child_installs_after_first_use() {
    assert_eq!(block_on(async_wrap::spawn(|| 1)), 1);
    assert!(install_default(BlockingPool::with_max_threads(3)).is_err());
    assert_eq!(default_pool().settings().max_threads, 512);
}

#[test]
fn install_default_works_once_and_only_before_first_use() {
    assert!(run_child("child_installs_before_first_use", &[]));
    assert!(run_child(
        "child_installs_after_first_use",
        &[("ASYNC_WRAP_MAX_THREADS", "512")]
    ));
}

#[test]
fn the_default_pool_refuses_every_form_of_shutdown_and_keeps_working() {
    let pool = default_pool();
    let refused = |shutdown: &dyn Fn()| std::panic::catch_unwind(AssertUnwindSafe(shutdown));
    let refusals = [
        refused(&|| pool.shutdown()),
        refused(&|| drop(pool.shutdown_timeout(Duration::ZERO))),
        refused(&|| drop(pool.shutdown_async())),
        refused(&|| drop(pool.shutdown_timeout_async(Duration::ZERO))),
    ];
    for refusal in refusals {
        let payload = refusal.expect_err("the default pool refused");
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap();
        assert!(
            message.starts_with("async_wrap: the default pool cannot be shut down")
                && message.contains("a pool of its own"),
            "{message}"
        );
    }
    assert!(!pool.is_shut_down());
    assert_eq!(block_on(async_wrap::spawn(|| 3)), 3);
}
