//! Where a plain-text connection is served when every worker thread has its own runtime
//! (`server.work_stealing: false`).
//!
//! Pingora runs the accept loop on one of those runtimes and spawns each connection on
//! another chosen at random. Two costs follow: the client socket stays registered with the
//! accepting runtime's epoll, so every readiness event of a connection served elsewhere
//! crosses threads (a remote wake-up and an `eventfd` write each time); and random placement
//! leaves one thread with more connections than the other. Here a connection is moved to the
//! runtime serving the fewest, and its socket is registered anew there: the descriptor is
//! duplicated with `pidfd_getfd` on our own process (the one safe way to own a second
//! descriptor of a socket we only see as a number), Pingora's stream is dropped (which
//! deregisters the first descriptor from the accepting epoll and closes it), and the
//! target runtime wraps the duplicate. Nothing has been read from the socket yet, so no
//! byte is lost. TLS connections stay where they are (their session lives in the stream).
//! Where the kernel or a seccomp profile refuses `pidfd_getfd` (containers without
//! `CAP_SYS_PTRACE` often do), an unset `server.work_stealing` picks the work-stealing
//! runtime instead ([`available`], `crate::server::work_stealing`); with an explicit `false`
//! connections are served where Pingora put them.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use pingora_core::protocols::Stream;
use tokio::runtime::Handle;

/// The runtimes seen so far and how many connections each serves.
#[derive(Debug, Default)]
pub(crate) struct Placement {
    runtimes: Mutex<Vec<Runtime>>,
    /// CPUs to pin runtimes' threads to, one each in the order they are seen (empty: not
    /// pinned; see `crate::server::pinned_cpus`).
    cpus: Vec<usize>,
}

#[derive(Debug)]
struct Runtime {
    id: tokio::runtime::Id,
    handle: Handle,
    live: Arc<AtomicUsize>,
}

/// Counts a connection on its runtime until dropped.
#[derive(Debug)]
pub(crate) struct Live(Arc<AtomicUsize>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Where to serve a connection, chosen by [`Placement::choose`].
#[derive(Debug)]
pub(crate) struct Target {
    /// The runtime to serve on.
    pub handle: Handle,
    /// Its connection count, held for the connection's life.
    pub live: Live,
}

impl Placement {
    /// Placement over the runtimes as they show up, pinning their threads to `cpus`.
    pub fn new(cpus: Vec<usize>) -> Self {
        Self {
            runtimes: Mutex::default(),
            cpus,
        }
    }

    /// Registers the calling runtime (once) and picks the runtime with the fewest
    /// connections, preferring the calling one on ties. The count is taken at once.
    pub fn choose(&self) -> Target {
        let here = Handle::current();
        let me = here.id();
        let mut runtimes = self.runtimes.lock().unwrap_or_else(|e| e.into_inner());
        let mine = match runtimes.iter().position(|r| r.id == me) {
            Some(i) => i,
            None => {
                // Seen for the first time, on its own thread (a current-thread runtime runs
                // on the one thread that drives it): pin that thread now.
                if !self.cpus.is_empty() {
                    pin_current_thread(self.cpus[runtimes.len() % self.cpus.len()]);
                }
                runtimes.push(Runtime {
                    id: me,
                    handle: here,
                    live: Arc::default(),
                });
                runtimes.len() - 1
            }
        };
        // The calling runtime unless another serves strictly fewer.
        let mut best = &runtimes[mine];
        for r in runtimes.iter() {
            if r.live.load(Ordering::Relaxed) < best.live.load(Ordering::Relaxed) {
                best = r;
            }
        }
        best.live.fetch_add(1, Ordering::Relaxed);
        Target {
            handle: best.handle.clone(),
            live: Live(best.live.clone()),
        }
    }
}

/// Pins the calling thread to `cpu`; a refusal is logged and the thread left as it was.
fn pin_current_thread(cpu: usize) {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    match rustix::thread::sched_setaffinity(None, &set) {
        Ok(()) => tracing::info!(cpu, "API worker thread pinned"),
        Err(e) => tracing::warn!(cpu, error = %e, "could not pin an API worker thread"),
    }
}

/// Our own process as a pidfd, or `None` where pidfds are unavailable.
fn own_pidfd() -> Option<&'static OwnedFd> {
    static PIDFD: OnceLock<Option<OwnedFd>> = OnceLock::new();
    PIDFD
        .get_or_init(|| {
            let pid = rustix::process::getpid();
            rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
                .inspect_err(|e| {
                    tracing::info!(error = %e, "pidfd_open refused: connections stay on the thread that accepted them");
                })
                .ok()
        })
        .as_ref()
}

/// Whether this process may duplicate its own descriptors with `pidfd_getfd` (probed once,
/// on the pidfd itself): what the per-thread runtimes need to place connections.
pub(crate) fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        use std::os::fd::AsRawFd;
        own_pidfd().is_some_and(|pidfd| {
            rustix::process::pidfd_getfd(
                pidfd,
                pidfd.as_raw_fd(),
                rustix::process::PidfdGetfdFlags::empty(),
            )
            .inspect_err(|e| tracing::info!(error = %e, "pidfd_getfd refused: connections cannot be moved between runtimes"))
            .is_ok()
        })
    })
}

/// Whether moving sockets has failed once (then it is not tried again).
static REFUSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A second descriptor of a plain-text connection's socket, ready to register with another
/// runtime; `Err` gives the stream back untouched (TLS, or duplication refused).
pub(crate) fn detach(stream: Stream) -> Result<std::net::TcpStream, Stream> {
    if stream.get_ssl_digest().is_some() || REFUSED.load(Ordering::Relaxed) {
        return Err(stream);
    }
    let Some(pidfd) = own_pidfd() else {
        return Err(stream);
    };
    // `id()` is the socket's descriptor number for plain TCP; `stream` owns it (and is
    // alive) for the whole call, as `pidfd_getfd` requires of a number from our process.
    let dup = rustix::process::pidfd_getfd(
        pidfd,
        stream.id(),
        rustix::process::PidfdGetfdFlags::empty(),
    );
    match dup {
        Ok(fd) => {
            let tcp = std::net::TcpStream::from(fd);
            // Dropping Pingora's stream deregisters the first descriptor from the accepting
            // runtime's epoll and closes it; the socket lives on in `tcp`.
            drop(stream);
            Ok(tcp)
        }
        Err(e) => {
            if !REFUSED.swap(true, Ordering::Relaxed) {
                tracing::info!(error = %e, "pidfd_getfd refused: connections stay on the thread that accepted them");
            }
            Err(stream)
        }
    }
}

/// Registers a detached socket with the calling runtime. The connection is served on the
/// tokio socket itself (see `io`).
pub(crate) fn attach(tcp: std::net::TcpStream) -> std::io::Result<tokio::net::TcpStream> {
    tcp.set_nonblocking(true)?;
    tokio::net::TcpStream::from_std(tcp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora_core::protocols::l4::stream::Stream as L4Stream;

    #[test]
    fn connections_go_to_the_runtime_with_the_fewest() {
        let placement = Arc::new(Placement::default());
        // Two single-thread runtimes, each registering itself by choosing once.
        let runtimes: Vec<_> = (0..2)
            .map(|_| {
                tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap()
            })
            .collect();
        let first = runtimes[0].block_on(async { placement.choose() });
        // The second runtime sees the first holding one connection: it takes the next.
        let second = runtimes[1].block_on(async { placement.choose() });
        // Asked again from the first runtime: one each, so the tie goes to the asker.
        let third = runtimes[0].block_on(async { placement.choose() });
        // Now the first holds two: the next goes to the second, wherever it is asked.
        let fourth = runtimes[0].block_on(async { placement.choose() });
        let id = |t: &Target| t.handle.id();
        assert_eq!(id(&third), id(&first));
        assert_eq!(id(&fourth), id(&second));
        assert_ne!(id(&first), id(&second));
        // A closed connection frees its place.
        drop(first);
        drop(third);
        let fifth = runtimes[1].block_on(async { placement.choose() });
        assert_eq!(fifth.handle.id(), runtimes[0].handle().id());
    }

    #[test]
    fn a_runtime_s_thread_is_pinned_when_first_seen() {
        let allowed = rustix::thread::sched_getaffinity(None).unwrap();
        let cpus: Vec<usize> = (0..rustix::thread::CpuSet::MAX_CPU)
            .filter(|&c| allowed.is_set(c))
            .collect();
        // The last allowed CPU, so the pin is visible on a machine with more than one.
        let cpu = *cpus.last().unwrap();
        let placement = Placement::new(vec![cpu]);
        let pinned = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            rt.block_on(async {
                let _ = placement.choose();
            });
            rustix::thread::sched_getaffinity(None).unwrap()
        })
        .join()
        .unwrap();
        assert!(pinned.is_set(cpu));
        assert_eq!(pinned.count(), 1, "only the chosen CPU");
        // Threads that were not seen are left alone.
        assert_eq!(
            rustix::thread::sched_getaffinity(None).unwrap().count() as usize,
            cpus.len()
        );
    }

    #[test]
    fn a_moved_socket_keeps_its_connection_and_pending_bytes() {
        use std::io::{Read, Write};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let accepting = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let serving = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        // Sent before the move: it waits in the socket, not in the stream being dropped.
        client.write_all(b"ping").unwrap();
        let (accepted, _) = listener.accept().unwrap();
        accepted.set_nonblocking(true).unwrap();
        let stream: Stream = accepting.block_on(async {
            Box::new(L4Stream::from(
                tokio::net::TcpStream::from_std(accepted).unwrap(),
            ))
        });
        let first_fd = stream.id();
        let tcp = match detach(stream) {
            Ok(tcp) => tcp,
            // A kernel or sandbox without pidfd_getfd: the stream comes back to be served
            // in place, which is the documented fallback.
            Err(_) if REFUSED.load(Ordering::Relaxed) || own_pidfd().is_none() => return,
            Err(_) => panic!("a plain TCP stream was not detached"),
        };
        drop(accepting);
        serving.block_on(async {
            let mut moved = attach(tcp).unwrap();
            assert_ne!(
                std::os::fd::AsRawFd::as_raw_fd(&moved),
                first_fd,
                "a second descriptor of the same socket"
            );
            let mut got = [0u8; 4];
            moved.read_exact(&mut got).await.unwrap();
            assert_eq!(&got, b"ping");
            moved.write_all(b"pong").await.unwrap();
            moved.flush().await.unwrap();
        });
        let mut back = [0u8; 4];
        client.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"pong");
    }
}
