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

/// The CPUs the API's per-thread runtimes are pinned to, one each in turn (empty: not
/// pinned). `server.pin_threads` when set; unset, pinned only where the gateway has the
/// CPUs to itself by its own measure: per-thread runtimes and exactly `threads` CPUs in its
/// affinity set. `threads` left to its default is the count of CPUs the process may use
/// (affinity and cgroup quota), so a container limited by quota on a larger node (more
/// CPUs allowed than threads) is not pinned, and one given exclusive CPUs is.
pub fn pinned_cpus(server: &crate::config::ServerConfig, work_stealing: bool) -> Vec<usize> {
    if work_stealing || server.pin_threads == Some(false) {
        return Vec::new();
    }
    let allowed = match rustix::thread::sched_getaffinity(None) {
        Ok(set) => (0..rustix::thread::CpuSet::MAX_CPU)
            .filter(|&c| set.is_set(c))
            .collect(),
        Err(e) => {
            tracing::info!(error = %e, "no CPU affinity set: worker threads are not pinned");
            return Vec::new();
        }
    };
    choose_pinning(server.pin_threads, server.threads, allowed)
}

/// [`pinned_cpus`] given the CPUs allowed.
fn choose_pinning(pin: Option<bool>, threads: usize, allowed: Vec<usize>) -> Vec<usize> {
    match pin {
        Some(true) => allowed,
        Some(false) => Vec::new(),
        None if allowed.len() == threads => allowed,
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn threads_are_pinned_when_told_or_when_they_match_the_cpus_allowed() {
        use super::choose_pinning;
        assert_eq!(choose_pinning(None, 2, vec![0, 1]), vec![0, 1]);
        assert_eq!(choose_pinning(None, 4, vec![2, 3, 6, 7]), vec![2, 3, 6, 7]);
        // A quota of 2 CPUs on a larger node: not the gateway's own CPUs.
        assert!(choose_pinning(None, 2, (0..16).collect()).is_empty());
        assert!(choose_pinning(None, 4, vec![0, 1]).is_empty());
        assert!(choose_pinning(Some(false), 2, vec![0, 1]).is_empty());
        assert_eq!(
            choose_pinning(Some(true), 2, (0..4).collect()),
            vec![0, 1, 2, 3]
        );
    }

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
