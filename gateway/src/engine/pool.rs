//! Idle HTTP/1.1 upstream connections, kept without a task per connection.
//!
//! Pingora's pool spawns a watcher task for every connection it takes back (on a random
//! runtime thread when work stealing is off) and wakes it through a channel when the
//! connection is reused: a spawn, a wake-up and a lock per request, plus a `getpeername`
//! on checkout. Here an idle connection (a plain TCP socket or a Pingora TLS stream, see
//! `connection.rs`) is just an entry in a list:
//! - `put` keeps it only when it is quiet (no early EOF, no unexpected bytes), as Pingora does;
//! - `take` hands out the most recently used one (warmest, least likely to have been closed
//!   by the upstream's idle timer), checking again without a syscall in the common case
//!   (the socket's cached readiness), and drops the ones past the idle timeout;
//! - `sweep` (every few seconds, from a background task) closes the ones gone stale, so a
//!   quiet gateway does not hold sockets the upstream has already closed.
//!
//! A connection the upstream closes between `take` and our write fails that attempt as a
//! network error on a reused connection, which the engine retries once on a fresh one.
//! HTTP/2 sessions stay in Pingora's pool (one connection carries many streams).
//!
//! The pool is sharded by thread: a thread puts connections back into its own shard and
//! takes from it first, so the two worker threads do not pass one lock's cache line back
//! and forth on every request. A thread whose shard has none for the peer takes from the
//! others before a new connection is opened.
//!
//! With one runtime per thread (`server.work_stealing: false`) a socket is registered with
//! the runtime that connected it, and a task on another thread using it would be woken
//! through that runtime: a cross-thread wake-up per read. There the pool keeps each
//! thread's connections apart ([`H1Pool::per_thread`]): no taking from other shards, and
//! keys salted per thread (threads beyond the shard count share shards).

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use crate::fnv::Prehashed;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::connection::{H1Conn, quiet};

/// Idle connections per peer beyond this are closed on `put` (oldest first).
const MAX_IDLE_PER_PEER: usize = 256;

/// Shards (threads are spread over them by first use).
const SHARDS: usize = 8;

/// Idle connections by Pingora's `reuse_hash` of the peer (already a hash).
type ByPeer = HashMap<u64, Vec<Idle>, BuildHasherDefault<Prehashed>>;

/// One shard, alone on its cache lines.
#[repr(align(128))]
#[derive(Default)]
struct Shard(Mutex<ByPeer>);

/// Idle HTTP/1.1 connections by peer (Pingora's `reuse_hash`).
pub struct H1Pool {
    shards: Box<[Shard]>,
    idle_timeout: Duration,
    /// Connections are handed out only on the thread that put them back.
    per_thread: bool,
}

thread_local! {
    /// This thread's shard and pool-key salt (per-thread pools): the salt distinct per
    /// thread, well mixed.
    static THREAD: (usize, u64) = {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ((n % SHARDS as u64) as usize, (n + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
    };
}

struct Idle {
    stream: H1Conn,
    since: Instant,
}

impl H1Pool {
    /// An empty pool whose connections live at most `idle_timeout` unused.
    pub fn new(idle_timeout: Duration) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            idle_timeout,
            per_thread: false,
        }
    }

    /// The same, with each thread's connections kept apart (one runtime per thread).
    pub fn per_thread(idle_timeout: Duration) -> Self {
        Self {
            per_thread: true,
            ..Self::new(idle_timeout)
        }
    }

    /// The calling thread's shard, and the key under which it keeps `key`'s connections.
    fn slot(&self, key: u64) -> (usize, u64) {
        let (shard, salt) = THREAD.with(|t| *t);
        (shard, if self.per_thread { key ^ salt } else { key })
    }

    /// A live idle connection to `key`'s peer, most recently used first (this thread's
    /// shard, then the others'); `now` is a recent clock reading (idle times are checked
    /// against it).
    pub(crate) fn take(&self, key: u64, now: Instant) -> Option<H1Conn> {
        let (own, key) = self.slot(key);
        if let Some(c) = self.take_from(own, key, now) {
            return Some(c);
        }
        if self.per_thread {
            return None;
        }
        (1..SHARDS).find_map(|i| self.take_from((own + i) % SHARDS, key, now))
    }

    fn take_from(&self, shard: usize, key: u64, now: Instant) -> Option<H1Conn> {
        loop {
            let idle = {
                let mut map = self.shards[shard].0.lock();
                map.get_mut(&key)?.pop()?
            };
            // Closed outside the lock: a close is a syscall.
            if now.saturating_duration_since(idle.since) < self.idle_timeout {
                let mut stream = idle.stream;
                if quiet(&mut stream) {
                    return Some(stream);
                }
            }
        }
    }

    /// Keeps `stream` for reuse (in this thread's shard) when it is quiet; closes it
    /// otherwise. `now` is a recent clock reading: the start of its idle time.
    pub(crate) fn put(&self, key: u64, mut stream: H1Conn, now: Instant) {
        if !quiet(&mut stream) {
            return;
        }
        let (shard, key) = self.slot(key);
        let evicted = {
            let mut map = self.shards[shard].0.lock();
            let list = map.entry(key).or_default();
            list.push(Idle { stream, since: now });
            (list.len() > MAX_IDLE_PER_PEER).then(|| list.remove(0))
        };
        drop(evicted);
    }

    /// Closes connections past the idle timeout or closed by their peer.
    pub fn sweep(&self) {
        let now = Instant::now();
        let mut stale = Vec::new();
        for shard in &self.shards {
            let mut map = shard.0.lock();
            for list in map.values_mut() {
                // In order: a list is oldest first, and `take` pops the most recent, so a
                // sweep must not move a fresh connection below older ones (`swap_remove`
                // did, so the older ones were handed out again and never aged out).
                stale.extend(list.extract_if(.., |idle| {
                    now.saturating_duration_since(idle.since) >= self.idle_timeout
                        || !quiet(&mut idle.stream)
                }));
            }
            map.retain(|_, list| !list.is_empty());
        }
        drop(stale);
    }

    /// Idle connections held.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.0.lock().values().map(Vec::len).sum::<usize>())
            .sum()
    }

    /// Whether no connection is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Sweeps a pool every few seconds (a Pingora background service).
pub struct PoolSweeper(pub std::sync::Arc<H1Pool>);

/// How often [`PoolSweeper`] sweeps.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

#[async_trait::async_trait]
impl pingora_core::services::background::BackgroundService for PoolSweeper {
    async fn start(&self, mut shutdown: pingora_core::server::ShutdownWatch) {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.0.sweep(),
                _ = shutdown.changed() => {
                    if *shutdown.borrow() {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora_core::protocols::l4::stream::Stream as L4Stream;
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    async fn tcp_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (client.unwrap(), server.unwrap().0)
    }

    /// A plain connection and its server end.
    async fn pair() -> (H1Conn, TcpStream) {
        let (client, server) = tcp_pair().await;
        (H1Conn::Plain(client), server)
    }

    /// A connection wrapped as Pingora's stream (the TLS kind) and its server end.
    async fn pingora_pair() -> (H1Conn, TcpStream) {
        let (client, server) = tcp_pair().await;
        let client: L4Stream = client.into();
        (H1Conn::Pingora(Box::new(client)), server)
    }

    #[tokio::test]
    async fn reuses_the_most_recent_quiet_connection() {
        let pool = H1Pool::new(Duration::from_secs(60));
        let (a, _sa) = pair().await;
        let (b, _sb) = pair().await;
        let b_port = b.local_port();
        pool.put(7, a, Instant::now());
        pool.put(7, b, Instant::now());
        assert_eq!(pool.len(), 2);
        assert_eq!(pool.take(7, Instant::now()).unwrap().local_port(), b_port);
        assert!(pool.take(8, Instant::now()).is_none());
        assert_eq!(pool.len(), 1);
    }

    #[tokio::test]
    async fn a_connection_closed_by_the_peer_is_not_handed_out() {
        for pingora in [false, true] {
            let pool = H1Pool::new(Duration::from_secs(60));
            let (a, sa) = if pingora {
                pingora_pair().await
            } else {
                pair().await
            };
            pool.put(1, a, Instant::now());
            drop(sa);
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert!(pool.take(1, Instant::now()).is_none());
            assert!(pool.is_empty());
        }
    }

    #[tokio::test]
    async fn unexpected_bytes_make_a_connection_unusable() {
        for pingora in [false, true] {
            let pool = H1Pool::new(Duration::from_secs(60));
            let (a, mut sa) = if pingora {
                pingora_pair().await
            } else {
                pair().await
            };
            let (b, _sb) = if pingora {
                pingora_pair().await
            } else {
                pair().await
            };
            pool.put(1, b, Instant::now());
            pool.put(1, a, Instant::now());
            sa.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert!(
                pool.take(1, Instant::now()).is_some(),
                "the quiet one is handed out"
            );
            assert!(pool.is_empty());
        }
    }

    #[tokio::test]
    async fn old_connections_expire_and_sweep_closes_them() {
        let pool = H1Pool::new(Duration::from_millis(30));
        let (a, _sa) = pair().await;
        let (b, sb) = pair().await;
        pool.put(1, a, Instant::now());
        pool.put(2, b, Instant::now());
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(pool.take(1, Instant::now()).is_none());
        drop(sb);
        pool.sweep();
        assert!(pool.is_empty());

        let fresh = H1Pool::new(Duration::from_secs(60));
        let (c, sc) = pair().await;
        let (d, _sd) = pair().await;
        fresh.put(1, c, Instant::now());
        fresh.put(1, d, Instant::now());
        drop(sc);
        tokio::time::sleep(Duration::from_millis(50)).await;
        fresh.sweep();
        assert_eq!(fresh.len(), 1, "the closed one is swept, the live one kept");
    }

    /// A sweep that closes one connection keeps the rest most recent first.
    #[tokio::test]
    async fn sweeping_keeps_the_most_recent_first() {
        let pool = H1Pool::new(Duration::from_secs(60));
        let (a, sa) = pair().await;
        let (b, _sb) = pair().await;
        let (c, _sc) = pair().await;
        let (b_port, c_port) = (b.local_port(), c.local_port());
        let t0 = Instant::now();
        pool.put(1, a, t0);
        pool.put(1, b, t0 + Duration::from_millis(1));
        pool.put(1, c, t0 + Duration::from_millis(2));
        drop(sa);
        tokio::time::sleep(Duration::from_millis(50)).await;
        pool.sweep();
        assert_eq!(pool.len(), 2);
        let now = Instant::now();
        assert_eq!(pool.take(1, now).map(|c| c.local_port()), Some(c_port));
        assert_eq!(pool.take(1, now).map(|c| c.local_port()), Some(b_port));
    }

    #[tokio::test]
    async fn the_pool_per_peer_is_bounded() {
        let pool = H1Pool::new(Duration::from_secs(60));
        let mut servers = Vec::new();
        for _ in 0..MAX_IDLE_PER_PEER + 3 {
            let (s, peer) = pair().await;
            servers.push(peer);
            pool.put(5, s, Instant::now());
        }
        assert_eq!(pool.len(), MAX_IDLE_PER_PEER);
    }

    #[tokio::test]
    async fn per_thread_pools_hand_connections_out_only_on_their_thread() {
        let pool = std::sync::Arc::new(H1Pool::per_thread(Duration::from_secs(60)));
        let (c, _server) = pair().await;
        pool.put(3, c, Instant::now());
        let other = std::sync::Arc::clone(&pool);
        let elsewhere = std::thread::spawn(move || other.take(3, Instant::now()).is_some());
        assert!(
            !elsewhere.join().unwrap(),
            "another thread got this thread's connection"
        );
        assert!(pool.take(3, Instant::now()).is_some());
    }

    #[tokio::test]
    async fn a_shared_pool_hands_another_threads_connections_out() {
        let pool = std::sync::Arc::new(H1Pool::new(Duration::from_secs(60)));
        let (c, _server) = pair().await;
        let port = c.local_port();
        pool.put(3, c, Instant::now());
        let other = std::sync::Arc::clone(&pool);
        // Another thread (its own shard, empty) finds it in this thread's shard.
        let elsewhere =
            std::thread::spawn(move || other.take(3, Instant::now()).map(|c| c.local_port()));
        assert_eq!(elsewhere.join().unwrap(), Some(port));
        assert!(pool.is_empty());
    }
}
