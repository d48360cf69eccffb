//! The adapters behind cargo features: `executor = tokio` and `executor = rayon`.

use async_wrap::async_wrap;
use futures::FutureExt;
use futures::executor::block_on;
use std::panic::AssertUnwindSafe;

#[cfg(feature = "tokio")]
mod tokio_adapter {
    use super::*;
    use async_wrap::TokioBlocking;

    #[async_wrap(executor = tokio)]
    fn thread_name() -> Option<String> {
        std::thread::current().name().map(str::to_owned)
    }

    #[test]
    fn runs_on_the_current_runtimes_blocking_pool() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .thread_name("blocking-of-this-runtime")
            .build()
            .unwrap();
        let name = runtime.block_on(thread_name());
        assert_eq!(name.as_deref(), Some("blocking-of-this-runtime"));
    }

    #[test]
    fn outside_a_runtime_the_poll_panics_and_says_why() {
        let err = block_on(AssertUnwindSafe(thread_name()).catch_unwind()).unwrap_err();
        let message = err.downcast_ref::<String>().unwrap();
        assert!(
            message.starts_with(&format!(
                "async_wrap: cannot run `{}::thread_name` on executor `tokio`",
                module_path!()
            )) && message.contains("there is no tokio runtime on this thread"),
            "{message}"
        );
    }

    #[test]
    fn a_given_handle_works_from_anywhere() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name("given")
            .worker_threads(1)
            .build()
            .unwrap();
        let executor = std::sync::Arc::new(TokioBlocking::with_handle(runtime.handle().clone()));
        let name = block_on(async_wrap::spawn_on(executor, || {
            std::thread::current().name().map(str::to_owned)
        }));
        assert_eq!(name.as_deref(), Some("given"));
    }
}

#[cfg(feature = "rayon")]
mod rayon_adapter {
    use super::*;
    use async_wrap::RayonPool;

    #[async_wrap(executor = rayon)]
    fn sum_squares(n: u64) -> (u64, bool) {
        (
            (1..=n).map(|i| i * i).sum(),
            rayon::current_thread_index().is_some(),
        )
    }

    #[test]
    fn runs_on_rayons_global_pool() {
        assert_eq!(block_on(sum_squares(10)), (385, true));
    }

    #[test]
    fn runs_on_a_given_pool_and_resumes_panics() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .thread_name(|i| format!("cpu-{i}"))
            .build()
            .unwrap();
        let executor = std::sync::Arc::new(RayonPool::new(pool));
        let name = block_on(async_wrap::spawn_on(executor.clone(), || {
            std::thread::current().name().map(str::to_owned)
        }));
        assert_eq!(name.as_deref(), Some("cpu-0"));
        let err = block_on(
            AssertUnwindSafe(async_wrap::spawn_on(executor, || -> u8 { panic!("boom") }))
                .catch_unwind(),
        )
        .unwrap_err();
        assert_eq!(err.downcast_ref::<&str>(), Some(&"boom"));
    }
}
