// refused: the expansion of
//
// # [async_wrap (exector = IO , sync = query_blocking)]
// #[doc = r" Looks `id` up."]
// pub fn query<T: Send + 'static>(
//     &self,
//     (a, b): (u32, u32),
//     name: &str,
//     tag: T,
// ) -> impl Iterator<Item = u8> {
//     name.bytes()
// }
//
// is:

#[doc = r" Looks `id` up."]
pub fn query_blocking<T: Send + 'static>(
    &self,
    (a, b): (u32, u32),
    name: &str,
    tag: T,
) -> impl Iterator<Item = u8> {
    name.bytes()
}
#[doc = r" Looks `id` up."]
#[allow(clippy::type_complexity, refining_impl_trait)]
pub fn query<T: Send + 'static>(
    &self,
    _: (u32, u32),
    _: &str,
    _: T,
) -> ::async_wrap::__private::BlockingFuture<::std::boxed::Box<dyn Iterator<Item = u8>>> {
    ::core::unreachable!("`#[async_wrap]` refused this function at compile time")
}
::core::compile_error! { "unknown option `exector`: did you mean `executor`? The options are `executor`, `sync`, `crate`, `clone_self`, `to_owned`, `stream`, `batch`, `state`, `process`" }
::core::compile_error! { "`&self` cannot be moved to the pool thread, where the body runs after this call has returned; take `self` by value, `self: Arc<Self>` or `self: &Arc<Self>`, or add `clone_self` to the attribute to run the body on a clone of `self`" }
::core::compile_error! { "borrowed argument: `&str` cannot be moved to the pool thread, where the body runs after this call has returned; take an owned `String`, or share it with `Arc` instead, or add `to_owned` to the attribute to copy it at each call" }
::core::compile_error! { "`impl Iterator<Item = u8>` is lazy: its items would be made on the caller's async thread, after the call has returned from the pool; add `stream` to the attribute to pull them on the pool as a `BlockingStream`, or return a collected type such as `Vec<T>`" }
