// recursive_patterns: the expansion of
//
// #[async_wrap()]
// fn walk((depth, width): (u32, u32), mut acc: Vec<u32>, _: String) -> Vec<u32> {
//     acc.push(width);
//     if depth == 0 {
//         acc
//     } else {
//         walk((depth - 1, width * 2), acc, String::new())
//     }
// }
//
// is:

#[allow(clippy::type_complexity, refining_impl_trait)]
#[track_caller]
fn walk(
    __async_wrap_arg0: (u32, u32),
    acc: Vec<u32>,
    __async_wrap_arg2: String,
) -> ::async_wrap::__private::BlockingFuture<Vec<u32>> {
    static __ASYNC_WRAP_SITE: ::async_wrap::__private::CallSite =
        ::async_wrap::__private::call_site(
            ::core::concat!(::core::module_path!(), "::", ::core::stringify!(walk)),
            "the default pool",
            ::core::file!(),
            ::core::line!(),
        );
    let __async_wrap_executor = ::async_wrap::__private::default_executor();
    let __async_wrap_job = move || -> Vec<u32> {
        fn walk((depth, width): (u32, u32), mut acc: Vec<u32>, _: String) -> Vec<u32> {
            acc.push(width);
            if depth == 0 {
                acc
            } else {
                walk((depth - 1, width * 2), acc, String::new())
            }
        }
        walk(__async_wrap_arg0, acc, __async_wrap_arg2)
    };
    let _: &dyn ::core::marker::Send = &__async_wrap_job;
    let _: for<'__async_wrap_output> fn(
        &'__async_wrap_output Vec<u32>,
    ) -> &'__async_wrap_output dyn ::core::marker::Send = |__async_wrap_output| __async_wrap_output;
    ::async_wrap::__private::call(__async_wrap_executor, &__ASYNC_WRAP_SITE, __async_wrap_job)
}
