// clone_self: the expansion of
//
// # [async_wrap (clone_self , executor = self . pool)]
// pub fn lookup(&self, key: String) -> Option<u32> {
//     self.map.get(&key).copied()
// }
//
// is:

#[allow(clippy::type_complexity, refining_impl_trait)]
#[track_caller]
pub fn lookup(&self, key: String) -> ::async_wrap::__private::BlockingFuture<Option<u32>> {
    static __ASYNC_WRAP_SITE: ::async_wrap::__private::CallSite =
        ::async_wrap::__private::call_site(
            ::core::concat!(::core::module_path!(), "::", ::core::stringify!(lookup)),
            ::core::stringify!(self.pool),
            ::core::file!(),
            ::core::line!(),
        );
    let __async_wrap_executor = {
        ::async_wrap::__private::shared_field(&self.pool);
        ::async_wrap::__private::IntoExecutor::into_executor(&self.pool)
    };
    let __async_wrap_self = <Self as ::core::clone::Clone>::clone(self);
    let __async_wrap_job = move || -> Option<u32> {
        let _ = &__async_wrap_self;
        let key = key;
        { (&__async_wrap_self).map.get(&key).copied() }
    };
    let _: &dyn ::core::marker::Send = &__async_wrap_job;
    let _: for<'__async_wrap_output> fn(
        &'__async_wrap_output Option<u32>,
    ) -> &'__async_wrap_output dyn ::core::marker::Send = |__async_wrap_output| __async_wrap_output;
    ::async_wrap::__private::call(__async_wrap_executor, &__ASYNC_WRAP_SITE, __async_wrap_job)
}
