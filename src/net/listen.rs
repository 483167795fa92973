//! Opening listening sockets the way Mosquitto does: one socket per address family, IPv6
//! sockets IPv6-only so that both families can share a port.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

use socket2::{Domain, Protocol, Socket, Type};

/// Which addresses one configured listener binds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenSpec {
    pub port: u16,
    /// `None` = every interface, both families.
    pub host: Option<String>,
    pub ipv4: bool,
    pub ipv6: bool,
}

impl ListenSpec {
    fn addresses(&self) -> io::Result<Vec<SocketAddr>> {
        let candidates: Vec<SocketAddr> = match &self.host {
            None => vec![
                SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), self.port),
                SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), self.port),
            ],
            Some(host) => (host.as_str(), self.port).to_socket_addrs()?.collect(),
        };
        let mut addrs: Vec<SocketAddr> = candidates
            .into_iter()
            .filter(|a| (a.is_ipv4() && self.ipv4) || (a.is_ipv6() && self.ipv6))
            .collect();
        addrs.dedup();
        Ok(addrs)
    }
}

/// Binds every address of a listener. An address family the machine lacks is skipped when
/// the other one worked (as with `::1` on a host without IPv6).
pub fn bind_listener(spec: &ListenSpec) -> io::Result<Vec<std::net::TcpListener>> {
    let mut bound = Vec::new();
    let mut last_error = None;
    let mut port = spec.port;
    for mut addr in spec.addresses()? {
        // With port 0 the first socket picks a port; the others follow it.
        if spec.port == 0 && port != 0 {
            addr.set_port(port);
        }
        let family = if addr.is_ipv4() { "ipv4" } else { "ipv6" };
        log::info!("Opening {family} listen socket on port {}.", addr.port());
        match bind_one(addr) {
            Ok(listener) => {
                port = listener.local_addr()?.port();
                bound.push(listener);
            }
            Err(err) => {
                log::error!("Error: Unable to bind {addr}: {err}");
                last_error = Some(err);
            }
        }
    }
    match (bound.is_empty(), last_error) {
        (true, Some(err)) => Err(err),
        (true, None) => Err(io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            "no address to listen on",
        )),
        _ => Ok(bound),
    }
}

fn bind_one(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}
