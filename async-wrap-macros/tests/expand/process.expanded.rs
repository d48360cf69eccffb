// process: the expansion of
//
// # [async_wrap (executor = SANDBOX , process)]
// #[doc = r" Parses a document in a worker process."]
// pub fn parse((x, y): (u32, u32), text: String) -> Vec<u32> {
//     vec![x, y, text.len() as u32]
// }
//
// is:

#[doc = r" Parses a document in a worker process."]
#[allow(clippy::type_complexity, refining_impl_trait)]
#[track_caller]
pub fn parse(
    __async_wrap_arg0: (u32, u32),
    text: String,
) -> ::async_wrap::__private::process::ProcessFuture<Vec<u32>> {
    #[allow(clippy::needless_pass_by_value)]
    fn parse((x, y): (u32, u32), text: String) -> Vec<u32> {
        vec![x, y, text.len() as u32]
    }
    fn __async_wrap_codecs() -> (
        ::async_wrap::__private::process::Codec<(u32, u32)>,
        ::async_wrap::__private::process::Codec<String>,
        ::async_wrap::__private::process::Codec<Vec<u32>>,
    ) {
        (
            ::async_wrap::__private::process::portable::<(u32, u32)>(),
            ::async_wrap::__private::process::portable::<String>(),
            ::async_wrap::__private::process::portable::<Vec<u32>>(),
        )
    }
    fn __async_wrap_entry(
        __async_wrap_input: &[::core::primitive::u8],
    ) -> ::async_wrap::__private::process::Frame {
        let (__async_wrap_codec0, __async_wrap_codec1, __async_wrap_output_codec) =
            __async_wrap_codecs();
        ::async_wrap::__private::process::serve(
            __async_wrap_input,
            __async_wrap_output_codec,
            |__async_wrap_arguments| {
                let __async_wrap_arg0 = __async_wrap_arguments.take(__async_wrap_codec0)?;
                let __async_wrap_arg1 = __async_wrap_arguments.take(__async_wrap_codec1)?;
                __async_wrap_arguments.finish()?;
                ::core::result::Result::Ok(parse(__async_wrap_arg0, __async_wrap_arg1))
            },
        )
    }
    const __ASYNC_WRAP_KEY: &::core::primitive::str = ::core::concat!(
        ::core::module_path!(),
        "::",
        ::core::stringify!(parse),
        "@",
        ::core::file!(),
        ":",
        ::core::line!(),
        ":",
        ::core::column!(),
        "#",
        "cf28c2cbf2abe853"
    );
    ::async_wrap::__private::process::register! { __ASYNC_WRAP_KEY , __async_wrap_entry }
    static __ASYNC_WRAP_SITE: ::async_wrap::__private::CallSite =
        ::async_wrap::__private::call_site(
            ::core::concat!(::core::module_path!(), "::", ::core::stringify!(parse)),
            ::core::stringify!(SANDBOX),
            ::core::file!(),
            ::core::line!(),
        );
    ::async_wrap::__private::adapters::process::<::async_wrap::__private::adapters::Enabled>();
    let (__async_wrap_codec0, __async_wrap_codec1, __async_wrap_output_codec) =
        __async_wrap_codecs();
    let mut __async_wrap_request = ::async_wrap::__private::process::Request::new(__ASYNC_WRAP_KEY);
    __async_wrap_request.push(__async_wrap_codec0, &__async_wrap_arg0);
    __async_wrap_request.push(__async_wrap_codec1, &text);
    let __async_wrap_executor = ::async_wrap::__private::process::pool(&SANDBOX);
    ::async_wrap::__private::process::call(
        __async_wrap_executor,
        &__ASYNC_WRAP_SITE,
        __async_wrap_request,
        __async_wrap_output_codec,
    )
}
