// trait: the expansion of
//
// #[async_wrap()]
// pub trait Catalog: Send + Sync {
//     fn title(&self, id: u32) -> Option<String>;
//     #[async_wrap(stream)]
//     fn ids(&self) -> impl Iterator<Item = u32> + Send + 'static;
//     #[async_wrap(skip)]
//     fn name(&self) -> &'static str;
// }
//
// is:

pub trait Catalog: Send + Sync {
    fn title(&self, id: u32) -> ::async_wrap::__private::BlockingFuture<Option<String>>;
    fn ids(&self) -> ::async_wrap::__private::BlockingStream<u32>;
    fn name(&self) -> &'static str;
}
