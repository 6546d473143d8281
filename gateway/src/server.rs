//! The listeners: the OpenAI-compatible API and the admin endpoints.

mod admin;
mod api;
mod body;
mod respond;

pub use admin::AdminApp;
pub use api::ApiApp;
