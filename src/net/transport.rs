//! The byte streams a client can come through: TCP or a Unix domain socket
//! (`listener 0 /path`). Both are mio sources; the worker treats them alike.

use std::io::{self, Read, Write};
use std::net::Shutdown;

use mio::event::Source;
use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Interest, Registry, Token};

/// One client connection.
#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown(how),
            Stream::Unix(s) => s.shutdown(how),
        }
    }

    /// TCP_NODELAY on TCP streams; nothing to do on Unix sockets.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_nodelay(nodelay),
            Stream::Unix(_) => Ok(()),
        }
    }

    /// The CPU the kernel last processed this connection's incoming packets on
    /// (`SO_INCOMING_CPU`): the client thread's CPU over loopback, the receiving queue's
    /// with a network card. Linux only; unknown elsewhere and for Unix sockets.
    pub fn incoming_cpu(&self) -> Option<u16> {
        #[cfg(target_os = "linux")]
        if let Stream::Tcp(s) = self {
            return socket2::SockRef::from(s)
                .cpu_affinity()
                .ok()
                .and_then(|cpu| u16::try_from(cpu).ok());
        }
        None
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::Unix(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Unix(s) => s.flush(),
        }
    }
}

impl Source for Stream {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.register(registry, token, interests),
            Stream::Unix(s) => s.register(registry, token, interests),
        }
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.reregister(registry, token, interests),
            Stream::Unix(s) => s.reregister(registry, token, interests),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(registry),
            Stream::Unix(s) => s.deregister(registry),
        }
    }
}

/// A listening socket of either kind.
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    /// With the socket's path, which names its clients in the log (as in Mosquitto).
    Unix(UnixListener, String),
}

impl Listener {
    /// Accepts one connection: the stream and the peer's name for the log
    /// (`address:port`, or `path:0` for a Unix socket, as Mosquitto writes it).
    pub fn accept(&self) -> io::Result<(Stream, String)> {
        match self {
            Listener::Tcp(l) => {
                let (stream, peer) = l.accept()?;
                Ok((Stream::Tcp(stream), peer_string(peer)))
            }
            Listener::Unix(l, path) => {
                let (stream, _) = l.accept()?;
                Ok((Stream::Unix(stream), format!("{path}:0")))
            }
        }
    }

    /// A mio listener sharing `socket` (each worker registers its own clone).
    pub fn from_std(socket: &super::listen::BoundSocket) -> io::Result<Listener> {
        Ok(match socket {
            super::listen::BoundSocket::Tcp(l) => {
                Listener::Tcp(TcpListener::from_std(l.try_clone()?))
            }
            super::listen::BoundSocket::Unix(l, path) => Listener::Unix(
                UnixListener::from_std(l.try_clone()?),
                path.display().to_string(),
            ),
        })
    }
}

impl Source for Listener {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.register(registry, token, interests),
            Listener::Unix(l, _) => l.register(registry, token, interests),
        }
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.reregister(registry, token, interests),
            Listener::Unix(l, _) => l.reregister(registry, token, interests),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.deregister(registry),
            Listener::Unix(l, _) => l.deregister(registry),
        }
    }
}

/// `a.b.c.d:port` (IPv4-mapped IPv6 addresses shown as IPv4) or `v6addr:port`.
pub fn peer_string(peer: std::net::SocketAddr) -> String {
    match peer {
        std::net::SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
        std::net::SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
            Some(v4) => format!("{v4}:{}", a.port()),
            None => format!("{}:{}", a.ip(), a.port()),
        },
    }
}
