//! The byte stream under an HTTP/1.x connection the gateway reads and writes itself, on
//! either side: a client connection ([`crate::server`]) or an upstream one
//! ([`crate::engine`]).
//!
//! Where the gateway owns a plain-text socket (an upstream it connected to; a client
//! connection placed on its runtime) it is a bare tokio [`TcpStream`]: reads and writes go
//! straight to `recv`/`send`. Pingora's [`Stream`], which TLS connections (and clients
//! served where Pingora accepted them) come as, adds to every call a dynamic dispatch, a
//! copy of each write through its 1,460-byte buffer, and clock reads that time pending
//! reads and writes for statistics the gateway never reads (nor does it read the socket
//! digest: the access log and metrics time requests themselves).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use pingora_core::protocols::Stream;
use pingora_core::protocols::l4::stream::Stream as L4Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A connection's transport.
#[derive(Debug)]
pub(crate) enum Transport {
    /// A plain TCP socket registered with the serving runtime.
    Plain(TcpStream),
    /// Pingora's stream (TLS, or a client connection served where it was accepted).
    Pingora(Stream),
}

impl Transport {
    /// The transport as Pingora's stream, with `read` put back in front of what the socket
    /// still holds: a client connection sniffed as h2c, handed to Pingora's HTTP/2 server.
    /// A plain socket gets the socket digest Pingora's accept would give it. `None` when a
    /// Pingora stream is not its plain TCP kind (only those are sniffed).
    pub fn into_pingora(self, read: &[u8]) -> Option<Stream> {
        let mut l4 = match self {
            Self::Plain(tcp) => {
                use pingora_core::protocols::{GetSocketDigest, SocketDigest};
                use std::os::fd::AsRawFd;
                let digest = SocketDigest::from_raw_fd(tcp.as_raw_fd());
                let mut l4 = Box::new(L4Stream::from(tcp));
                l4.set_socket_digest(digest);
                l4
            }
            Self::Pingora(stream) => stream.into_any().downcast::<L4Stream>().ok()?,
        };
        l4.rewind(read);
        Some(l4)
    }

    /// A plain connection's local port, to tell connections apart in tests.
    #[cfg(test)]
    pub(crate) fn local_port(&self) -> Option<u16> {
        match self {
            Self::Plain(s) => s.local_addr().ok().map(|a| a.port()),
            Self::Pingora(_) => None,
        }
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Pingora(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Pingora(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Pingora(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Pingora(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_plain_socket_handed_to_pingora_keeps_what_was_read_and_names_its_peer() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        client.write_all(b"PRI * and the rest").await.unwrap();
        let mut t = Transport::Plain(accepted);
        let mut first = [0u8; 4];
        t.read_exact(&mut first).await.unwrap();
        let mut stream = t.into_pingora(&first).unwrap();
        let peer = stream
            .get_socket_digest()
            .and_then(|d| d.peer_addr().cloned());
        assert_eq!(
            peer.and_then(|p| p.as_inet().copied()),
            Some(client.local_addr().unwrap())
        );
        let mut all = [0u8; 18];
        stream.read_exact(&mut all).await.unwrap();
        assert_eq!(&all, b"PRI * and the rest");
    }
}
