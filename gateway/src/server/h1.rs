//! The API listener's HTTP/1.x server: the gateway's own codec on the hot path.
//!
//! Pingora accepts the connection and terminates TLS; HTTP/2 (ALPN `h2`, or the h2c
//! preface on plain text) goes to Pingora's HTTP/2 server and [`ApiApp`] as before. Every
//! other connection is served here: [`head`] parses request heads into offsets,
//! [`crate::http1::chunked`] decodes chunked bodies, [`write`] frames responses, and [`conn::Conn`] does
//! the I/O, so a request builds no header map and a whole answer leaves in one write.

mod conn;
mod head;
mod placement;
mod write;

use std::sync::Arc;

use async_trait::async_trait;
use pingora_core::apps::ServerApp;
use pingora_core::protocols::{ALPN, Stream};
use pingora_core::server::ShutdownWatch;

use crate::http1::transport::Transport;
pub(crate) use conn::Conn;
pub(crate) use placement::available as placement_available;

use super::api::ApiApp;
use super::downstream::Downstream;

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The API listener: HTTP/1.x served by [`Conn`], HTTP/2 handed to Pingora.
#[derive(Debug)]
pub struct ApiListener {
    api: Arc<ApiApp>,
    /// Set with one runtime per worker thread: plain-text connections are moved to the
    /// runtime serving the fewest (see `placement`).
    placement: Option<placement::Placement>,
}

impl ApiListener {
    /// The listener over the API application; `per_thread_runtimes` when Pingora runs one
    /// runtime per worker thread (`server.work_stealing: false`), their threads pinned to
    /// `cpus` in turn (empty: not pinned; `crate::server::pinned_cpus`).
    pub fn new(api: ApiApp, per_thread_runtimes: bool, cpus: Vec<usize>) -> Self {
        Self {
            api: Arc::new(api),
            placement: per_thread_runtimes.then(|| placement::Placement::new(cpus)),
        }
    }
}

#[async_trait]
impl ServerApp for ApiListener {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let Some(placement) = &self.placement else {
            return self.serve_here(stream, shutdown).await;
        };
        let tcp = match placement::detach(stream) {
            Ok(tcp) => tcp,
            Err(stream) => return self.serve_here(stream, shutdown).await,
        };
        let target = placement.choose();
        let this = Arc::clone(self);
        let shutdown = shutdown.clone();
        target.handle.spawn(async move {
            let _live = target.live;
            match placement::attach(tcp) {
                Ok(tcp) => {
                    // Pingora would loop over a stream handed back for reuse (HTTP/2
                    // never does here); the connection ends when this returns.
                    let _ = this.serve_plain(Transport::Plain(tcp), &shutdown).await;
                }
                Err(e) => tracing::warn!(error = %e, "could not register a moved connection"),
            }
        });
        None
    }
}

impl ApiListener {
    /// Serves a connection on the calling runtime.
    async fn serve_here(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        if stream.get_ssl_digest().is_some() {
            if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
                return ServerApp::process_new(&self.api, stream, shutdown).await;
            }
            serve(&self.api, Conn::new(Transport::Pingora(stream)), shutdown).await;
            return None;
        }
        self.serve_plain(Transport::Pingora(stream), shutdown).await
    }

    /// Serves a plain-text connection: HTTP/1.x here, h2c handed to Pingora.
    async fn serve_plain(
        self: &Arc<Self>,
        io: Transport,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        // h2c with prior knowledge starts with the preface. The first bytes are read (not
        // peeked for a fixed length, which would stall a request shorter than the preface)
        // and put back for Pingora's HTTP/2 server when they are the preface.
        let mut conn = Conn::new(io);
        match conn.sniff(H2_PREFACE).await {
            Some(false) => serve(&self.api, conn, shutdown).await,
            Some(true) => {
                let (io, read) = conn.into_parts();
                let stream = io.into_pingora(&read)?;
                return ServerApp::process_new(&self.api, stream, shutdown).await;
            }
            None => {}
        }
        None
    }
}

/// Serves requests on one HTTP/1.x connection until it closes or may not be reused.
async fn serve(api: &ApiApp, mut conn: Conn, shutdown: &ShutdownWatch) {
    // The connection keeps the config snapshot it last used and checks before each request
    // whether a reload replaced it (one shared read): requests do not count references on
    // the snapshot both worker threads share. An idle connection holds a replaced snapshot
    // until its next request or its close.
    let mut snapshots = arc_swap::Cache::new(api.snapshots());
    loop {
        match conn.next_request().await {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                conn.reject(&e).await;
                break;
            }
        }
        if *shutdown.borrow() || api.draining() {
            conn.close_after();
        }
        // Awaited in place, not boxed: this future is itself boxed once per connection
        // (`process_new`) and never moved, so the request's state is built where it runs —
        // no allocation and no copy of it per request, at the price of a connection's
        // future holding room for one request's state while idle.
        let snapshot = snapshots.load();
        let kept = api.handle(&mut Downstream::H1(&mut conn), snapshot).await;
        if !kept || !conn.finish().await {
            break;
        }
    }
    conn.close().await;
}
