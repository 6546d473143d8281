//! Process logs: JSON lines on standard error through `tracing`, filtered by `RUST_LOG`
//! when set, else by `telemetry.log_level` (default `info,pingora_core=warn`). The filter
//! is reloadable: a config reload that changes `telemetry.log_level` swaps it in place.
//!
//! Request-scoped lines carry the request's `trace_id` where one exists; the access log
//! (one line per request, see [`super::access_log`]) carries `trace_id` and `span_id`.

use std::sync::OnceLock;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::reload;
use tracing_subscriber::util::SubscriberInitExt;

/// The filter used when neither `RUST_LOG` nor `telemetry.log_level` says otherwise.
pub const DEFAULT_FILTER: &str = "info,pingora_core=warn";

type Handle = reload::Handle<EnvFilter, tracing_subscriber::Registry>;

static FILTER: OnceLock<Handle> = OnceLock::new();

/// Whether `RUST_LOG` is set (it then wins over the config, also on reload).
fn rust_log() -> Option<String> {
    std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
}

fn filter(level: Option<&str>) -> EnvFilter {
    rust_log()
        .or_else(|| level.map(str::to_owned))
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_FILTER))
}

/// Installs the global subscriber (once per process; later calls do nothing).
pub fn init(level: Option<&str>) {
    let (layer, handle) = reload::Layer::new(filter(level));
    let fmt = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(false)
        .with_writer(std::io::stderr);
    if tracing_subscriber::registry()
        .with(layer)
        .with(fmt)
        .try_init()
        .is_ok()
    {
        let _ = FILTER.set(handle);
    }
}

/// Applies a new `telemetry.log_level` (ignored while `RUST_LOG` is set).
pub fn set_level(level: Option<&str>) {
    if rust_log().is_some() {
        return;
    }
    if let Some(h) = FILTER.get() {
        match h.reload(filter(level)) {
            Ok(()) => tracing::info!(level = level.unwrap_or(DEFAULT_FILTER), "log level changed"),
            Err(e) => tracing::warn!(error = %e, "could not change the log level"),
        }
    }
}
