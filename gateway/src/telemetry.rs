//! What the gateway tells operators: Prometheus metrics and the JSON access log.

pub mod access_log;
pub mod metrics;

pub use access_log::{AccessLog, AccessRecord};
pub use metrics::Metrics;
