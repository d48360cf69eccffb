// try_stream_arc_self: the expansion of
//
// # [async_wrap (stream , executor = self . shards [(key % 4) as usize])]
// pub fn lines(
//     self: &Arc<Self>,
//     key: u64,
// ) -> std::io::Result<impl Iterator<Item = String> + Send + 'static> {
//     use std::io::BufRead;
//     let file = std::fs::File::open(self.path(key))?;
//     Ok(std::io::BufReader::new(file).lines().map_while(Result::ok))
// }
//
// is:

#[allow(clippy::type_complexity, refining_impl_trait)]
#[track_caller]
pub fn lines(
    self: &Arc<Self>,
    key: u64,
) -> ::async_wrap::__private::BlockingFuture<
    std::io::Result<::async_wrap::__private::BlockingStream<String>>,
> {
    static __ASYNC_WRAP_SITE: ::async_wrap::__private::CallSite =
        ::async_wrap::__private::call_site(
            ::core::concat!(::core::module_path!(), "::", ::core::stringify!(lines)),
            ::core::stringify!(self.shards[(key % 4) as usize]),
            ::core::file!(),
            ::core::line!(),
        );
    let __async_wrap_executor = ::async_wrap::__private::IntoExecutor::into_executor({
        #[allow(unused_imports)]
        use ::async_wrap::__private::{GivenAny as _, GivenProcessPool as _};
        (&::async_wrap::__private::Given::new(&self.shards[(key % 4) as usize])).take()
    });
    let __async_wrap_self = ::core::clone::Clone::clone(self);
    let __async_wrap_job = move || -> std::io::Result<_> {
        let _ = &__async_wrap_self;
        #[allow(unused_variables)]
        let key = key;
        {
            use std::io::BufRead;
            let file = std::fs::File::open((&__async_wrap_self).path(key))?;
            Ok(std::io::BufReader::new(file).lines().map_while(Result::ok))
        }
    };
    let _: &dyn ::core::marker::Send = &__async_wrap_job;
    ::async_wrap::__private::try_stream(
        __async_wrap_executor,
        &__ASYNC_WRAP_SITE,
        ::async_wrap::__private::DEFAULT_BATCH,
        __async_wrap_job,
    )
}
