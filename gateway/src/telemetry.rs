//! What the gateway tells operators: Prometheus metrics, the JSON access log, and
//! OpenTelemetry traces over OTLP (GenAI semantic conventions).

pub mod access_json;
pub mod access_log;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod otlp;
pub mod propagation;
pub mod trace;

pub use access_log::{AccessLog, AccessRecord};
pub use metrics::Metrics;
pub use otlp::Traces;
