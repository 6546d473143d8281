//! `datamind-bench`: a small HTTP load generator for comparing gateways on one machine.
//!
//! Flow: [`options::LoadOptions`] (CLI) → [`options::Plan`] (validated: loopback only, always
//! bounded) → [`run::run`] drives workers over [`client::Connection`]s (hyper handshakes,
//! TCP_NODELAY, HTTP/1.1 keep-alive or h2c) → [`recorder::Recorder`] (HDR histograms, errors
//! by kind) and [`process`] (target RSS/CPU from /proc) → [`report::Report`] (text or JSON).

pub mod client;
pub mod options;
pub mod process;
pub mod recorder;
pub mod report;
pub mod run;

pub use options::{LoadOptions, Plan};
pub use report::Report;
pub use run::run;
