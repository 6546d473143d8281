//! The OpenAI error JSON shape: `{"error":{"message","type","param","code"}}`.
//!
//! Every error the gateway or the edge worker returns is rendered here, so clients (and the
//! official SDKs, which map status + body to typed exceptions) see one format.

use serde::Serialize;

/// One OpenAI-style error.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ErrorBody {
    /// Human-readable explanation. Must never contain secrets.
    pub message: String,
    /// OpenAI's error class, e.g. `invalid_request_error`, `authentication_error`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The request parameter at fault, if any.
    pub param: Option<String>,
    /// A stable machine-readable code, e.g. `model_not_found`.
    pub code: Option<&'static str>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: &'a ErrorBody,
}

impl ErrorBody {
    /// An error with a message, type and code.
    pub fn new(kind: &'static str, code: Option<&'static str>, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            kind,
            param: None,
            code,
        }
    }

    /// Sets the parameter at fault.
    pub fn with_param(mut self, param: Option<&str>) -> Self {
        self.param = param.map(str::to_owned);
        self
    }

    /// The JSON document `{"error":{...}}`.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing a struct of strings cannot fail; fall back to a fixed body regardless.
        serde_json::to_vec(&Envelope { error: self }).unwrap_or_else(|_| {
            br#"{"error":{"message":"internal error","type":"server_error","param":null,"code":null}}"#
                .to_vec()
        })
    }

    /// The same error as one SSE event (`data: {...}\n\n`), for failures after a stream began.
    pub fn to_sse_event(&self) -> Vec<u8> {
        let mut out = b"data: ".to_vec();
        out.extend_from_slice(&self.to_json());
        out.extend_from_slice(b"\n\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_openai_shape_with_nulls() {
        let e = ErrorBody::new(
            "invalid_request_error",
            Some("model_not_found"),
            "no such model",
        );
        let v: serde_json::Value = serde_json::from_slice(&e.to_json()).unwrap();
        assert_eq!(v["error"]["message"], "no such model");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["code"], "model_not_found");
        assert!(v["error"]["param"].is_null());
    }

    #[test]
    fn sse_event_is_one_data_frame() {
        let e = ErrorBody::new("server_error", None, "upstream dropped");
        let ev = e.to_sse_event();
        assert!(ev.starts_with(b"data: {\"error\""));
        assert!(ev.ends_with(b"\n\n"));
    }
}
