// to_owned_tokio: the expansion of
//
// # [async_wrap (to_owned , executor = tokio)]
// pub unsafe fn parse(text: &str, path: &std::path::Path) -> usize {
//     text.len() + path.as_os_str().len()
// }
//
// is:

#[allow(clippy::type_complexity, refining_impl_trait)]
#[allow(unused_unsafe)]
#[track_caller]
pub unsafe fn parse(
    text: &str,
    path: &std::path::Path,
) -> ::async_wrap::__private::BlockingFuture<usize> {
    static __ASYNC_WRAP_SITE: ::async_wrap::__private::CallSite =
        ::async_wrap::__private::call_site(
            ::core::concat!(::core::module_path!(), "::", ::core::stringify!(parse)),
            ::core::stringify!(tokio),
            ::core::file!(),
            ::core::line!(),
        );
    let __async_wrap_executor =
        ::async_wrap::__private::adapters::tokio::<::async_wrap::__private::adapters::Enabled>();
    let __async_wrap_owned0 = ::async_wrap::__private::ToOwned::to_owned(text);
    let __async_wrap_owned1 = ::async_wrap::__private::ToOwned::to_owned(path);
    let __async_wrap_job = move || -> usize {
        unsafe {
            let text: &str = ::async_wrap::__private::Borrow::borrow(&__async_wrap_owned0);
            let path: &std::path::Path =
                ::async_wrap::__private::Borrow::borrow(&__async_wrap_owned1);
            { text.len() + path.as_os_str().len() }
        }
    };
    let _: &dyn ::core::marker::Send = &__async_wrap_job;
    let _: for<'__async_wrap_output> fn(
        &'__async_wrap_output usize,
    ) -> &'__async_wrap_output dyn ::core::marker::Send = |__async_wrap_output| __async_wrap_output;
    ::async_wrap::__private::call(__async_wrap_executor, &__ASYNC_WRAP_SITE, __async_wrap_job)
}
