//! HTTP/1.1 wire pieces shared by the gateway's server side ([`crate::server`]) and its
//! upstream client ([`crate::engine`]).

pub(crate) mod chunked;
pub(crate) mod decimal;
pub(crate) mod transport;
