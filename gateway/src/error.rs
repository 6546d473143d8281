//! The gateway's one error type, and the one place errors become HTTP responses.

use datamind_llm::error_body::ErrorBody;

/// Everything that can stop a request (or a config) short.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The configuration is unusable; one line per problem.
    #[error("invalid configuration:\n  {}", .0.join("\n  "))]
    Config(Vec<String>),
    /// No such route.
    #[error("unknown route {method} {path}")]
    NotFound {
        /// Request method.
        method: String,
        /// Request path.
        path: String,
    },
    /// Known route, wrong method.
    #[error("method {method} not allowed on {path}; use {allowed}")]
    MethodNotAllowed {
        /// Request method.
        method: String,
        /// Request path.
        path: String,
        /// The method the route takes.
        allowed: &'static str,
    },
    /// The body is not what the route expects.
    #[error("{message}")]
    BadRequest {
        /// What is wrong.
        message: String,
        /// The parameter at fault.
        param: Option<&'static str>,
    },
    /// Missing or wrong credential.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// Authenticated, but not allowed (e.g. the admin API is disabled).
    #[error("{0}")]
    Forbidden(&'static str),
    /// No resource with that id (admin API).
    #[error("{0}")]
    ResourceNotFound(String),
    /// A store or other internal dependency failed (no secrets in the message).
    #[error("internal error: {0}")]
    Internal(String),
    /// The caller may not use this model.
    #[error("the API key is not allowed to use model `{0}`")]
    ModelNotAllowed(String),
    /// No model group of that name.
    #[error("the model `{0}` does not exist")]
    ModelNotFound(String),
    /// Body over `server.max_body_bytes`.
    #[error("request body exceeds the limit of {limit} bytes")]
    BodyTooLarge {
        /// The limit.
        limit: usize,
    },
    /// Every candidate deployment is cooling down or at capacity.
    #[error("no deployment of `{model}` is available right now; retry after {retry_after}s")]
    NoCapacity {
        /// Client-facing model.
        model: String,
        /// Seconds until the first cooldown ends.
        retry_after: u64,
    },
    /// Every attempt failed without an HTTP answer (connect error, reset, timeout).
    #[error("upstream failed after {attempts} attempt(s): {reason}")]
    UpstreamFailed {
        /// Attempts made.
        attempts: u32,
        /// The last failure, without secrets.
        reason: String,
        /// Whether the last failure was a timeout.
        timeout: bool,
    },
    /// The gateway is draining for shutdown.
    #[error("the gateway is shutting down")]
    ShuttingDown,
    /// A rate limit refused the request.
    #[error("{}", rate_limit_message(.scope, .dimension, *.limit, *.too_large, *.retry_after_s))]
    RateLimited {
        /// `key`, `tenant`, `key_model` or `tenant_model`.
        scope: &'static str,
        /// `requests`, `tokens` or `concurrent`.
        dimension: &'static str,
        /// The limit in force.
        limit: u64,
        /// The request alone needs more tokens than the limit allows.
        too_large: bool,
        /// Seconds until it would fit.
        retry_after_s: u64,
        /// `x-ratelimit-*` headers.
        headers: Vec<(&'static str, String)>,
    },
    /// A hard budget would be exceeded.
    #[error(
        "the {scope}'s {} budget of {hard_usd} USD would be exceeded (spent {spent_usd:.6} USD); the request was not sent",
        if *.period == "day" { "daily" } else { "monthly" }
    )]
    BudgetExceeded {
        /// `key` or `tenant`.
        scope: &'static str,
        /// `day` or `month`.
        period: &'static str,
        /// The hard limit.
        hard_usd: f64,
        /// Spent so far this period.
        spent_usd: f64,
    },
    /// The shared Redis is down or too slow (the reason never carries its URL or password).
    #[error("the shared state store (Redis) is unavailable: {0}")]
    RedisUnavailable(String),
    /// A placement rule refused the request.
    #[error("{message} (placement rule `{rule}`)")]
    PolicyDenied {
        /// The rule.
        rule: String,
        /// Its status.
        status: u16,
        /// Its message.
        message: String,
    },
    /// No deployment satisfies the placement rule (none cooling down either).
    #[error(
        "no deployment of `{model}` satisfies placement rule `{rule}` ({excluded} excluded by it)"
    )]
    NoPlacement {
        /// Client-facing model.
        model: String,
        /// The rule.
        rule: String,
        /// Deployments it excluded.
        excluded: usize,
    },
}

impl GatewayError {
    /// HTTP status for the client.
    pub fn status(&self) -> u16 {
        match self {
            Self::Config(_) => 500,
            Self::NotFound { .. } | Self::ModelNotFound(_) => 404,
            Self::MethodNotAllowed { .. } => 405,
            Self::BadRequest { .. } => 400,
            Self::Unauthorized(_) => 401,
            Self::Forbidden(_) => 403,
            Self::ResourceNotFound(_) => 404,
            Self::Internal(_) => 503,
            Self::ModelNotAllowed(_) => 403,
            Self::BodyTooLarge { .. } => 413,
            Self::NoCapacity { .. }
            | Self::ShuttingDown
            | Self::RedisUnavailable(_)
            | Self::NoPlacement { .. } => 503,
            Self::PolicyDenied { status, .. } => *status,
            Self::RateLimited { .. } | Self::BudgetExceeded { .. } => 429,
            Self::UpstreamFailed { timeout: true, .. } => 504,
            Self::UpstreamFailed { .. } => 502,
        }
    }

    /// The OpenAI-shaped error body.
    pub fn body(&self) -> ErrorBody {
        let (kind, code, param): (&'static str, Option<&'static str>, Option<&str>) = match self {
            Self::Config(_) => ("server_error", None, None),
            Self::NotFound { .. } => ("invalid_request_error", Some("unknown_url"), None),
            Self::MethodNotAllowed { .. } => {
                ("invalid_request_error", Some("method_not_allowed"), None)
            }
            Self::BadRequest { param, .. } => ("invalid_request_error", None, *param),
            Self::Unauthorized(_) => ("authentication_error", Some("invalid_api_key"), None),
            Self::Forbidden(_) => ("permission_error", Some("forbidden"), None),
            Self::ResourceNotFound(_) => ("invalid_request_error", Some("not_found"), None),
            Self::Internal(_) => ("server_error", Some("internal_error"), None),
            Self::ModelNotAllowed(_) => {
                ("permission_error", Some("model_not_allowed"), Some("model"))
            }
            Self::ModelNotFound(_) => (
                "invalid_request_error",
                Some("model_not_found"),
                Some("model"),
            ),
            Self::BodyTooLarge { .. } => ("invalid_request_error", Some("request_too_large"), None),
            Self::NoCapacity { .. } => ("server_error", Some("no_capacity"), None),
            Self::UpstreamFailed { timeout: true, .. } => {
                ("server_error", Some("upstream_timeout"), None)
            }
            Self::UpstreamFailed { .. } => ("server_error", Some("upstream_error"), None),
            Self::ShuttingDown => ("server_error", Some("shutting_down"), None),
            Self::RedisUnavailable(_) => ("server_error", Some("state_store_unavailable"), None),
            Self::PolicyDenied { status, .. } if *status < 500 => {
                ("permission_error", Some("policy_denied"), None)
            }
            Self::PolicyDenied { .. } => ("server_error", Some("policy_denied"), None),
            Self::NoPlacement { .. } => ("server_error", Some("no_eligible_deployment"), None),
            Self::RateLimited { dimension, .. } => (*dimension, Some("rate_limit_exceeded"), None),
            Self::BudgetExceeded { .. } => ("insufficient_quota", Some("insufficient_quota"), None),
        };
        ErrorBody::new(kind, code, self.to_string()).with_param(param)
    }

    /// Extra headers the response should carry.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::MethodNotAllowed { allowed, .. } => vec![("allow", (*allowed).to_owned())],
            Self::NoCapacity { retry_after, .. } => vec![("retry-after", retry_after.to_string())],
            Self::Unauthorized(_) => vec![("www-authenticate", "Bearer".to_owned())],
            Self::RateLimited {
                retry_after_s,
                headers,
                ..
            } => {
                let mut h = headers.clone();
                h.push(("retry-after", retry_after_s.to_string()));
                h
            }
            Self::PolicyDenied { rule, .. } | Self::NoPlacement { rule, .. } => {
                vec![(crate::conductor::ROUTE_HEADER, format!("rule={rule}"))]
            }
            _ => Vec::new(),
        }
    }
}

fn rate_limit_message(
    scope: &str,
    dimension: &str,
    limit: u64,
    too_large: bool,
    retry_after_s: u64,
) -> String {
    let whose = match scope {
        "key" => "this API key",
        "tenant" => "this tenant",
        "key_model" => "this API key on this model",
        _ => "this tenant on this model",
    };
    match dimension {
        "concurrent" => format!(
            "rate limit reached: at most {limit} concurrent requests for {whose}; retry after {retry_after_s}s"
        ),
        "tokens" if too_large => format!(
            "request too large: it may use more tokens than the limit of {limit} tokens per minute for {whose} (lower max_tokens or the prompt)"
        ),
        _ => format!(
            "rate limit reached: {limit} {dimension} per minute for {whose}; retry after {retry_after_s}s"
        ),
    }
}

impl From<datamind_llm::LlmError> for GatewayError {
    fn from(e: datamind_llm::LlmError) -> Self {
        let param = e.param();
        Self::BadRequest {
            message: e.to_string(),
            param,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_to_status_and_openai_codes() {
        let e = GatewayError::ModelNotFound("x".into());
        assert_eq!(e.status(), 404);
        assert_eq!(e.body().code, Some("model_not_found"));
        assert_eq!(GatewayError::ModelNotAllowed("x".into()).status(), 403);
        assert_eq!(GatewayError::BodyTooLarge { limit: 1 }.status(), 413);
        let t = GatewayError::UpstreamFailed {
            attempts: 2,
            reason: "timeout".into(),
            timeout: true,
        };
        assert_eq!(t.status(), 504);
        assert_eq!(
            GatewayError::Unauthorized("no key").body().kind,
            "authentication_error"
        );
    }
}
