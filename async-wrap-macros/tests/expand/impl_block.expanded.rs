// impl_block: the expansion of
//
// # [async_wrap (executor = DB , sync = "{}_blocking")]
// impl Store {
//     pub fn get(self: Arc<Self>, key: u32) -> Option<String> {
//         self.rows.get(&key).cloned()
//     }
//     #[async_wrap(skip)]
//     pub fn open() -> Arc<Self> {
//         Arc::default()
//     }
//     # [async_wrap (executor = OTHER)]
//     fn count() -> usize {
//         0
//     }
// }
//
// is:

impl Store {
    pub fn get_blocking(self: Arc<Self>, key: u32) -> Option<String> {
        self.rows.get(&key).cloned()
    }
    #[allow(clippy::type_complexity, refining_impl_trait)]
    #[allow(deprecated, clippy::used_underscore_binding)]
    #[track_caller]
    pub fn get(
        self: Arc<Self>,
        key: u32,
    ) -> ::async_wrap::__private::BlockingFuture<Option<String>> {
        static __ASYNC_WRAP_SITE: ::async_wrap::__private::CallSite =
            ::async_wrap::__private::call_site(
                ::core::concat!(
                    ::core::module_path!(),
                    "::",
                    "Store",
                    "::",
                    ::core::stringify!(get)
                ),
                ::core::stringify!(DB),
                ::core::file!(),
                ::core::line!(),
            );
        let __async_wrap_executor = ::async_wrap::__private::IntoExecutor::into_executor({
            #[allow(unused_imports)]
            use ::async_wrap::__private::{GivenAny as _, GivenProcessPool as _};
            (&::async_wrap::__private::Given::new(&DB)).take()
        });
        let __async_wrap_job = move || -> Option<String> { Self::get_blocking(self, key) };
        let _: &dyn ::core::marker::Send = &__async_wrap_job;
        let _: for<'__async_wrap_output> fn(
            &'__async_wrap_output Option<String>,
        )
            -> &'__async_wrap_output dyn ::core::marker::Send =
            |__async_wrap_output| __async_wrap_output;
        ::async_wrap::__private::call(__async_wrap_executor, &__ASYNC_WRAP_SITE, __async_wrap_job)
    }
    pub fn open() -> Arc<Self> {
        Arc::default()
    }
    fn count_blocking() -> usize {
        0
    }
    #[allow(clippy::type_complexity, refining_impl_trait)]
    #[allow(deprecated, clippy::used_underscore_binding)]
    #[track_caller]
    fn count() -> ::async_wrap::__private::BlockingFuture<usize> {
        static __ASYNC_WRAP_SITE: ::async_wrap::__private::CallSite =
            ::async_wrap::__private::call_site(
                ::core::concat!(
                    ::core::module_path!(),
                    "::",
                    "Store",
                    "::",
                    ::core::stringify!(count)
                ),
                ::core::stringify!(OTHER),
                ::core::file!(),
                ::core::line!(),
            );
        let __async_wrap_executor = ::async_wrap::__private::IntoExecutor::into_executor({
            #[allow(unused_imports)]
            use ::async_wrap::__private::{GivenAny as _, GivenProcessPool as _};
            (&::async_wrap::__private::Given::new(&OTHER)).take()
        });
        let __async_wrap_job = move || -> usize { Self::count_blocking() };
        let _: &dyn ::core::marker::Send = &__async_wrap_job;
        let _: for<'__async_wrap_output> fn(
            &'__async_wrap_output usize,
        )
            -> &'__async_wrap_output dyn ::core::marker::Send =
            |__async_wrap_output| __async_wrap_output;
        ::async_wrap::__private::call(__async_wrap_executor, &__ASYNC_WRAP_SITE, __async_wrap_job)
    }
}
