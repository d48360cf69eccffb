// free_function: the expansion of
//
// # [async_wrap (executor = IO)]
// #[doc = r" Doubles `n`."]
// #[inline]
// pub fn slow_double(n: u64) -> u64 {
//     n * 2
// }
//
// is:

#[doc = r" Doubles `n`."]
#[inline]
#[allow(clippy::type_complexity, refining_impl_trait)]
#[track_caller]
pub fn slow_double(n: u64) -> ::async_wrap::__private::BlockingFuture<u64> {
    static __ASYNC_WRAP_SITE: ::async_wrap::__private::CallSite =
        ::async_wrap::__private::call_site(
            ::core::concat!(
                ::core::module_path!(),
                "::",
                ::core::stringify!(slow_double)
            ),
            ::core::stringify!(IO),
            ::core::file!(),
            ::core::line!(),
        );
    let __async_wrap_executor = ::async_wrap::__private::IntoExecutor::into_executor({
        #[allow(unused_imports)]
        use ::async_wrap::__private::{GivenAny as _, GivenProcessPool as _};
        (&::async_wrap::__private::Given::new(&IO)).take()
    });
    let __async_wrap_job = move || -> u64 {
        let n = n;
        { n * 2 }
    };
    let _: &dyn ::core::marker::Send = &__async_wrap_job;
    let _: for<'__async_wrap_output> fn(
        &'__async_wrap_output u64,
    ) -> &'__async_wrap_output dyn ::core::marker::Send = |__async_wrap_output| __async_wrap_output;
    ::async_wrap::__private::call(__async_wrap_executor, &__ASYNC_WRAP_SITE, __async_wrap_job)
}
