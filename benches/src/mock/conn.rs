//! Accepting and serving connections: TCP_NODELAY on every socket, HTTP/1.1 or h2c chosen
//! per connection by hyper-util's auto builder, and a per-connection [`ConnControl`] that lets
//! a request kill its own connection (the reset and drop-mid-stream faults).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use super::routes::{self, MockState};

/// Lets a request end the connection it arrived on.
#[derive(Debug, Default)]
pub struct ConnControl {
    reset: AtomicBool,
    kill: Notify,
}

// === impl ConnControl ===

impl ConnControl {
    /// Closes the connection with a RST (SO_LINGER 0) as soon as possible.
    pub fn reset(&self) {
        self.reset.store(true, Ordering::Relaxed);
        self.kill.notify_one();
    }

    /// Closes the connection (FIN) as soon as possible, dropping whatever is unsent.
    pub fn close(&self) {
        self.kill.notify_one();
    }
}

/// The accepted socket, which sets SO_LINGER 0 on drop when a reset was requested.
struct ConnIo {
    stream: TcpStream,
    ctl: Arc<ConnControl>,
}

impl Drop for ConnIo {
    fn drop(&mut self) {
        if self.ctl.reset.load(Ordering::Relaxed) {
            let _ = self.stream.set_zero_linger();
        }
    }
}

impl AsyncRead for ConnIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// The hyper connection builder the mock uses for every connection.
fn builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http2()
        .max_concurrent_streams(Some(4096))
        .initial_stream_window_size(Some(4 << 20))
        .initial_connection_window_size(Some(16 << 20))
        .max_frame_size(Some(64 << 10));
    builder
}

/// Accepts connections forever, serving each on its own task.
pub async fn accept_loop(listener: TcpListener, state: Arc<MockState>) {
    let builder = Arc::new(builder());
    loop {
        let (stream, _peer): (TcpStream, SocketAddr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                eprintln!("mock-llm: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_connection(
            stream,
            Arc::clone(&builder),
            Arc::clone(&state),
        ));
    }
}

async fn serve_connection(
    stream: TcpStream,
    builder: Arc<auto::Builder<TokioExecutor>>,
    state: Arc<MockState>,
) {
    let ctl = Arc::new(ConnControl::default());
    let io = TokioIo::new(ConnIo {
        stream,
        ctl: Arc::clone(&ctl),
    });
    let service_ctl = Arc::clone(&ctl);
    let service =
        service_fn(move |req| routes::handle(req, Arc::clone(&state), Arc::clone(&service_ctl)));
    let conn = builder.serve_connection(io, service);
    tokio::select! {
        // Connection errors (client went away, a faulted body) are expected here.
        _ = conn => {}
        () = ctl.kill.notified() => {}
    }
}
