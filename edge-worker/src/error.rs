//! The worker's one error type, and the one place errors become HTTP statuses and
//! OpenAI-shaped bodies.

use datamind_llm::LlmError;
use datamind_llm::error_body::ErrorBody;

/// Everything the worker can answer with instead of a completion.
///
/// Messages are safe to show to clients: internal details (binding errors, upstream
/// bodies, panics) are logged where they happen and replaced by [`EdgeError::Internal`] or
/// [`EdgeError::Upstream`] with a generic text.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EdgeError {
    /// No credential, or one that does not verify.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The body or a header is malformed.
    #[error("{message}")]
    BadRequest {
        /// What is wrong.
        message: String,
        /// The parameter at fault.
        param: Option<&'static str>,
    },
    /// The client asked for a model no route serves.
    #[error("the model `{0}` does not exist or you do not have access to it")]
    ModelNotFound(String),
    /// A resource (e.g. a session) does not exist for this tenant.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Unknown path or method.
    #[error("no route for {0}")]
    NoRoute(String),
    /// The body is larger than the configured limit.
    #[error("request body larger than {0} bytes")]
    TooLarge(usize),
    /// The chosen upstream failed (and no fallback was left).
    #[error("upstream {0} failed")]
    Upstream(&'static str),
    /// A configured target is not set up (missing origin or key).
    #[error("route target {0} is not configured")]
    NotConfigured(&'static str),
    /// A Conductor rule refuses the request.
    #[error("{message} (rule {rule})")]
    PolicyDenied {
        /// The rule's name.
        rule: String,
        /// Its status, 400–599.
        status: u16,
        /// Its message.
        message: String,
    },
    /// A Conductor rule left no destination for the request.
    #[error("no destination for this request is allowed by rule {0}")]
    NoPlacement(String),
    /// Anything else; details are in the log only.
    #[error("internal error")]
    Internal,
}

impl From<LlmError> for EdgeError {
    fn from(e: LlmError) -> Self {
        Self::BadRequest {
            param: e.param(),
            message: e.to_string(),
        }
    }
}

impl EdgeError {
    /// The HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            Self::Unauthorized(_) => 401,
            Self::BadRequest { .. } => 400,
            Self::ModelNotFound(_) | Self::NotFound(_) | Self::NoRoute(_) => 404,
            Self::TooLarge(_) => 413,
            Self::Upstream(_) => 502,
            Self::NotConfigured(_) | Self::NoPlacement(_) => 503,
            Self::PolicyDenied { status, .. } => *status,
            Self::Internal => 500,
        }
    }

    /// The OpenAI error body for this error.
    pub fn body(&self) -> ErrorBody {
        let (kind, code) = match self {
            Self::Unauthorized(_) => ("authentication_error", Some("invalid_api_key")),
            Self::BadRequest { .. } | Self::TooLarge(_) => ("invalid_request_error", None),
            Self::ModelNotFound(_) => ("invalid_request_error", Some("model_not_found")),
            Self::NotFound(_) | Self::NoRoute(_) => ("invalid_request_error", Some("not_found")),
            Self::Upstream(_) => ("api_error", Some("upstream_error")),
            Self::NotConfigured(_) => ("api_error", Some("not_configured")),
            Self::PolicyDenied { .. } => ("invalid_request_error", Some("policy_denied")),
            Self::NoPlacement(_) => ("api_error", Some("no_eligible_deployment")),
            Self::Internal => ("server_error", None),
        };
        let param = match self {
            Self::BadRequest { param, .. } => *param,
            Self::ModelNotFound(_) => Some("model"),
            _ => None,
        };
        ErrorBody::new(kind, code, self.to_string()).with_param(param)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_bodies_are_openai_shaped() {
        let e = EdgeError::ModelNotFound("x".into());
        assert_eq!(e.status(), 404);
        let v: serde_json::Value = serde_json::from_slice(&e.body().to_json()).unwrap();
        assert_eq!(v["error"]["code"], "model_not_found");
        assert_eq!(v["error"]["param"], "model");
        let e = EdgeError::Internal;
        assert_eq!(e.status(), 500);
        assert_eq!(e.body().message, "internal error");
        let e: EdgeError = LlmError::InvalidField {
            field: "model",
            reason: "is required".into(),
        }
        .into();
        assert_eq!(e.status(), 400);
        assert_eq!(e.body().param.as_deref(), Some("model"));
    }
}
