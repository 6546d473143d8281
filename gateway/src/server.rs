//! The listeners: the OpenAI-compatible API and the admin endpoints.

mod admin;
mod api;
mod body;
pub(crate) mod downstream;
mod h1;
mod respond;
pub(crate) mod response_head;

pub use admin::AdminApp;
pub use api::ApiApp;
pub(crate) use downstream::Downstream;
pub use h1::ApiListener;
pub(crate) use response_head::ResponseHead;
