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

/// Whether the worker threads share one work-stealing runtime: `server.work_stealing` when
/// set, else only where connections cannot be placed on per-thread runtimes (the gateway
/// may not duplicate its own sockets, see `h1/placement.rs`): per-thread runtimes without
/// placement would leave every socket on the accepting runtime's epoll.
pub fn work_stealing(server: &crate::config::ServerConfig) -> bool {
    server
        .work_stealing
        .unwrap_or_else(|| !h1::placement_available())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_runtime_is_the_config_s_choice_else_per_thread_where_connections_can_be_placed() {
        let mut cfg: crate::config::ServerConfig =
            serde_saphyr::from_str("listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\n").unwrap();
        assert_eq!(cfg.work_stealing, None);
        assert_eq!(
            super::work_stealing(&cfg),
            !super::h1::placement_available()
        );
        cfg.work_stealing = Some(true);
        assert!(super::work_stealing(&cfg));
        cfg.work_stealing = Some(false);
        assert!(!super::work_stealing(&cfg));
    }
}
