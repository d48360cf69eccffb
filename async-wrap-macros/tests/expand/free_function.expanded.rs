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
#[track_caller]
pub fn slow_double(n: u64) -> ::async_wrap::__private::BlockingFuture<u64> {
    let __async_wrap_executor = ::async_wrap::__private::Denotes::denote(&IO);
    ::async_wrap::__private::call(
        __async_wrap_executor,
        ::core::stringify!(IO),
        ::core::concat!(
            ::core::module_path!(),
            "::",
            ::core::stringify!(slow_double)
        ),
        move || -> u64 {
            let n = n;
            { n * 2 }
        },
    )
}
