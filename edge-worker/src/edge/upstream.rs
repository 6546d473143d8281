//! OpenAI-compatible origins over `fetch`: the core gateway and a cloud API. Requests are
//! built by `datamind-llm`'s `OpenAiAdapter`, exactly as the core builds its own.

use datamind_llm::ParsedRequest;
use datamind_llm::providers::openai::OpenAiAdapter;
use datamind_llm::providers::{Adapter, Operation, Target};
use worker::js_sys::Uint8Array;
use worker::{Fetch, Headers, Method, Request, RequestInit, Response, console_error};

use crate::EdgeError;

/// One OpenAI-compatible origin.
pub struct Origin<'a> {
    /// `core` or `cloud`, for errors and logs.
    pub name: &'static str,
    /// Base URL including the API version path for cloud APIs (`https://api.x.com/v1`);
    /// the core gateway's origin gets `/v1` appended by the caller.
    pub base_url: &'a str,
    /// Bearer credential.
    pub api_key: Option<&'a str>,
    /// Extra headers (the signed tenant for the core).
    pub extra_headers: Vec<(String, String)>,
}

fn split_base(url: &str) -> (&str, &str, &str) {
    // (origin, host, path): "https://h:1/v1" -> ("https://h:1", "h:1", "/v1")
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let path_at = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |i| after_scheme + i);
    (
        &url[..path_at],
        &url[after_scheme..path_at],
        &url[path_at..],
    )
}

/// Sends `req` with `model` to `origin`; transport failures are [`EdgeError::Upstream`].
pub async fn send(
    origin: &Origin<'_>,
    req: &ParsedRequest,
    model: &str,
) -> Result<Response, EdgeError> {
    let fail = |what: &str, e: worker::Error| {
        console_error!("{} {what}: {e}", origin.name);
        EdgeError::Upstream(origin.name)
    };
    let (base, host, base_path) = split_base(origin.base_url);
    let target = Target {
        base_path,
        host,
        model,
        api_key: origin.api_key,
        api_key_bearer: None,
        extra_headers: &origin.extra_headers,
        ..Target::default()
    };
    let up = OpenAiAdapter.build_request(Operation::ChatCompletions, req, &target)?;
    let headers = Headers::new();
    for (k, v) in up.all_headers().filter(|(k, _)| *k != "host") {
        headers.set(k, v).map_err(|e| fail("header", e))?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(Uint8Array::from(up.body.as_slice()).into()));
    let request = Request::new_with_init(&format!("{base}{}", up.path), &init)
        .map_err(|e| fail("request", e))?;
    Fetch::Request(request)
        .send()
        .await
        .map_err(|e| fail("fetch", e))
}

#[cfg(test)]
mod tests {
    use super::split_base;

    #[test]
    fn splits_origin_and_path() {
        assert_eq!(split_base("https://h:1/v1"), ("https://h:1", "h:1", "/v1"));
        assert_eq!(
            split_base("http://127.0.0.1:9"),
            ("http://127.0.0.1:9", "127.0.0.1:9", "")
        );
    }
}
