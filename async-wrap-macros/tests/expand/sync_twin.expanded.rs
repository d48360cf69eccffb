// sync_twin: the expansion of
//
// # [async_wrap (sync = checksum_blocking)]
// pub fn checksum<T: AsRef<[u8]> + Send + 'static>(data: T) -> u32 {
//     data.as_ref().iter().map(|&b| u32::from(b)).sum()
// }
//
// is:

pub fn checksum_blocking<T: AsRef<[u8]> + Send + 'static>(data: T) -> u32 {
    data.as_ref().iter().map(|&b| u32::from(b)).sum()
}
#[allow(clippy::type_complexity, refining_impl_trait)]
#[allow(deprecated, clippy::used_underscore_binding)]
#[track_caller]
pub fn checksum<T: AsRef<[u8]> + Send + 'static>(
    data: T,
) -> ::async_wrap::__private::BlockingFuture<u32> {
    static __ASYNC_WRAP_SITE: ::async_wrap::__private::CallSite =
        ::async_wrap::__private::call_site(
            ::core::concat!(::core::module_path!(), "::", ::core::stringify!(checksum)),
            "the default pool",
            ::core::file!(),
            ::core::line!(),
        );
    let __async_wrap_executor = ::async_wrap::__private::default_executor();
    let __async_wrap_job = move || -> u32 { checksum_blocking::<T>(data) };
    let _: &dyn ::core::marker::Send = &__async_wrap_job;
    let _: for<'__async_wrap_output> fn(
        &'__async_wrap_output u32,
    ) -> &'__async_wrap_output dyn ::core::marker::Send = |__async_wrap_output| __async_wrap_output;
    ::async_wrap::__private::call(__async_wrap_executor, &__ASYNC_WRAP_SITE, __async_wrap_job)
}
