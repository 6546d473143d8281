//! Typed configuration: the YAML file's shape, how it is loaded, and how it is checked.
//!
//! Loading is three steps, each with its own error: read the file, interpolate
//! `${ENV_VAR}`s, parse (unknown fields rejected), then [`Config::validate`], which reports
//! every problem at once with its path (`models[2].deployments[0].provider: …`).

mod cache;
mod identity;
mod load;
mod policy;
mod rfc3339;
mod telemetry;
mod types;
mod url;
mod validate;

pub use cache::{CacheConfig, CacheMode, CacheStoreKind};
pub use identity::*;
pub use load::{interpolate_env, load_file, parse_str, parse_str_at};
pub use policy::PolicyConfig;
pub use rfc3339::parse_rfc3339;
pub use telemetry::{OtlpProtocol, TelemetryConfig, TracesConfig};
pub use types::*;
pub use url::BaseUrl;
pub use validate::{Problem, check_key_fields};
