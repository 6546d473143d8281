//! HTTP/1.1 upstream connections the gateway reads and writes itself.
//!
//! A plain `http://` upstream is a bare [`TcpStream`](tokio::net::TcpStream), opened here:
//! reads and writes go straight to tokio's socket, without the layers of Pingora's stream
//! (see [`crate::http1::transport`]). Pingora still opens TLS connections (and every
//! HTTP/2 session, see `upstream.rs`); an HTTP/1.1 stream over TLS is kept as Pingora's.
//!
//! The socket is set up as Pingora's connector sets up the peers the gateway builds
//! (`snapshot::make_peer`): `TCP_NODELAY`, no keepalive, the peer's connect timeout, and
//! connect errors worded the same way. A peer with any option this path does not apply
//! (proxy, custom L4, keepalive, receive buffer, DSCP, TCP Fast Open, bind address, socket
//! hook, tracer) is left to Pingora.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::task::Context;
use std::time::Duration;

use pingora_core::protocols::tls::ALPN;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorType};
use tokio::io::AsyncReadExt;
use tokio::net::TcpSocket;

use super::AttemptError;
use super::timer::within;

/// An HTTP/1.1 connection to an upstream.
pub(crate) type H1Conn = crate::http1::transport::Transport;

/// The address to open a plain TCP connection to, when the gateway connects to `peer`
/// itself: plain HTTP/1.1 with no option only Pingora's connector would apply.
pub(crate) fn plain_addr(peer: &HttpPeer) -> Option<SocketAddr> {
    let o = &peer.options;
    let own = !peer.is_tls()
        && o.alpn == ALPN::H1
        && peer.proxy.is_none()
        && o.custom_l4.is_none()
        && o.tcp_keepalive.is_none()
        && o.tcp_recv_buf.is_none()
        && o.dscp.is_none()
        && !o.tcp_fast_open
        && o.bind_to.is_none()
        && o.upstream_tcp_sock_tweak_hook.is_none()
        && o.tracer.is_none();
    if own {
        peer._address.as_inet().copied()
    } else {
        None
    }
}

/// Opens a plain TCP connection to `addr` (`peer`'s address), within the peer's connect
/// timeout and `budget` (what is left of the attempt). The peer's timeout running out is a
/// network error, as with Pingora's connector; the budget running out first is a timeout.
pub(crate) async fn connect(
    peer: &HttpPeer,
    addr: SocketAddr,
    budget: Duration,
) -> Result<H1Conn, AttemptError> {
    let limit = peer.options.connection_timeout.filter(|t| *t < budget);
    let open = async {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(|e| {
            let e = Error::because(ErrorType::SocketError, "failed to create socket", e);
            Error::because(
                ErrorType::InternalError,
                format!("Fail to connect to {peer}"),
                e,
            )
        })?;
        let stream = socket
            .connect(addr)
            .await
            .map_err(|e| connect_error(e, peer, addr))?;
        stream
            .set_nodelay(true)
            .map_err(|e| Error::because(ErrorType::ConnectError, "failed to set_nodelay", e))?;
        Ok::<_, Box<Error>>(stream)
    };
    match within(limit.unwrap_or(budget), Box::pin(open)).await {
        Ok(Ok(stream)) => Ok(H1Conn::Plain(stream)),
        Ok(Err(e)) => Err(AttemptError::Network(format!("connect: {e}"))),
        Err(_) => Err(match limit {
            Some(t) => AttemptError::Network(format!(
                "connect:  ConnectTimedout context: timeout {t:?} connecting to server {peer} \
                 cause: Timeout Elapsed"
            )),
            None => AttemptError::Timeout("connect: request deadline".into()),
        }),
    }
}

/// A failed `connect(2)`, classified and worded as Pingora's connector does it.
fn connect_error(e: io::Error, peer: &HttpPeer, addr: SocketAddr) -> Box<Error> {
    let etype = match e.kind() {
        io::ErrorKind::ConnectionRefused => ErrorType::ConnectRefused,
        io::ErrorKind::TimedOut => ErrorType::ConnectTimedout,
        io::ErrorKind::AddrNotAvailable => ErrorType::BindError,
        io::ErrorKind::PermissionDenied | io::ErrorKind::AddrInUse => ErrorType::InternalError,
        _ => match e.raw_os_error() {
            Some(libc::ENETUNREACH | libc::EHOSTUNREACH) => ErrorType::ConnectNoRoute,
            _ => ErrorType::ConnectError,
        },
    };
    let bind = etype == ErrorType::BindError;
    let e = Error::because(etype, format!("Fail to connect to {addr}"), e);
    let context = format!("Fail to connect to {peer}");
    if bind {
        Error::because(ErrorType::InternalError, context, e)
    } else {
        e.more_context(context)
    }
}

/// Whether an idle connection has nothing to say: a read that is not ready. A ready read
/// means EOF, an error or bytes nobody asked for, and the connection is not reusable.
/// Usually no syscall: the socket's readiness is cached until the reactor reports an event.
pub(crate) fn quiet(conn: &mut H1Conn) -> bool {
    let mut byte = [0u8; 1];
    match conn {
        // Reads only when the reactor saw the socket readable; registers no waker.
        H1Conn::Plain(s) => {
            matches!(s.try_read(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
        }
        // Outside the task's coop budget, whose exhaustion would make a closed one look quiet.
        H1Conn::Pingora(s) => {
            let read = std::pin::pin!(tokio::task::unconstrained(s.read(&mut byte)));
            read.poll(&mut Context::from_waker(std::task::Waker::noop()))
                .is_pending()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(addr: SocketAddr, tls: bool, h2: bool) -> HttpPeer {
        let mut p = HttpPeer::new(addr, tls, "up.example".into());
        p.options.connection_timeout = Some(Duration::from_secs(2));
        p.options
            .set_http_version(if h2 { 2 } else { 1 }, if h2 && !tls { 2 } else { 1 });
        p
    }

    #[test]
    fn only_plain_http1_peers_are_connected_directly() {
        let addr: SocketAddr = "127.0.0.1:8000".parse().unwrap();
        assert_eq!(plain_addr(&peer(addr, false, false)), Some(addr));
        assert_eq!(plain_addr(&peer(addr, true, false)), None, "TLS");
        assert_eq!(plain_addr(&peer(addr, false, true)), None, "h2c");
        let mut keepalive = peer(addr, false, false);
        keepalive.options.tcp_recv_buf = Some(1 << 20);
        assert_eq!(
            plain_addr(&keepalive),
            None,
            "an option only Pingora applies"
        );
    }

    #[tokio::test]
    async fn connects_with_nodelay_and_words_a_refusal_as_pingora_does() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let p = peer(addr, false, false);
        let Ok(H1Conn::Plain(s)) = connect(&p, addr, Duration::from_secs(2)).await else {
            panic!("not connected");
        };
        assert!(s.nodelay().unwrap());
        drop(listener);
        let Err(AttemptError::Network(m)) = connect(&p, addr, Duration::from_secs(2)).await else {
            panic!("connected to a closed port");
        };
        assert_eq!(
            m,
            format!(
                "connect:  ConnectRefused context: Fail to connect to addr: {addr}, scheme: HTTP, \
                 sni: up.example cause:  context: Fail to connect to {addr} cause: Connection \
                 refused (os error 111)"
            )
        );
    }

    #[tokio::test]
    async fn a_connect_that_hangs_is_a_network_error_or_the_deadline() {
        // Accept queue of one, never accepted: later handshakes get no answer.
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(0).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut held = Vec::new();
        let mut p = peer(addr, false, false);
        p.options.connection_timeout = Some(Duration::from_millis(50));
        let mut hung = None;
        for _ in 0..8 {
            match connect(&p, addr, Duration::from_secs(2)).await {
                Ok(c) => held.push(c),
                Err(e) => {
                    hung = Some(e);
                    break;
                }
            }
        }
        let Some(AttemptError::Network(m)) = hung else {
            panic!("no connect timed out");
        };
        assert!(
            m.starts_with("connect:  ConnectTimedout context: timeout 50ms"),
            "{m}"
        );
        let r = connect(&p, addr, Duration::from_millis(20)).await;
        assert!(matches!(r, Err(AttemptError::Timeout(m)) if m == "connect: request deadline"));
    }
}
