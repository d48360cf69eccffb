// stream: the expansion of
//
// # [async_wrap (stream , batch = 256 , executor = DISK)]
// #[doc = r" The lines of a file."]
// pub fn lines(path: std::path::PathBuf) -> impl Iterator<Item = String> + Send + 'static {
//     use std::io::BufRead;
//     std::io::BufReader::new(std::fs::File::open(path).unwrap())
//         .lines()
//         .map(Result::unwrap)
// }
//
// is:

#[doc = r" The lines of a file."]
#[allow(clippy::type_complexity, refining_impl_trait)]
#[track_caller]
pub fn lines(path: std::path::PathBuf) -> ::async_wrap::__private::BlockingStream<String> {
    static __ASYNC_WRAP_SITE: ::async_wrap::__private::CallSite =
        ::async_wrap::__private::call_site(
            ::core::concat!(::core::module_path!(), "::", ::core::stringify!(lines)),
            ::core::stringify!(DISK),
            ::core::file!(),
            ::core::line!(),
        );
    let __async_wrap_executor = ::async_wrap::__private::IntoExecutor::into_executor({
        #[allow(unused_imports)]
        use ::async_wrap::__private::{GivenAny as _, GivenProcessPool as _};
        (&::async_wrap::__private::Given::new(&DISK)).take()
    });
    let __async_wrap_job = move || -> _ {
        let path = path;
        {
            use std::io::BufRead;
            std::io::BufReader::new(std::fs::File::open(path).unwrap())
                .lines()
                .map(Result::unwrap)
        }
    };
    let _: &dyn ::core::marker::Send = &__async_wrap_job;
    ::async_wrap::__private::stream(
        __async_wrap_executor,
        &__ASYNC_WRAP_SITE,
        256,
        __async_wrap_job,
    )
}
