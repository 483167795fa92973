//! Opening listening sockets the way Mosquitto does: one socket per address family, IPv6
//! sockets IPv6-only so that both families can share a port; `bind_interface` binds the
//! interface's own address; `listener 0 /path` is a Unix domain socket.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use socket2::{Domain, Protocol, Socket, Type};

/// Which addresses one configured listener binds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenSpec {
    pub port: u16,
    /// `None` = every interface, both families.
    pub host: Option<String>,
    pub ipv4: bool,
    pub ipv6: bool,
    /// Bind the address(es) of this network interface (`bind_interface`).
    pub bind_interface: Option<String>,
    /// A Unix domain socket instead of TCP (`listener 0 /path`).
    pub unix_path: Option<PathBuf>,
}

impl ListenSpec {
    /// A TCP listener on `port` of `host` (every interface when `None`), both families.
    pub fn tcp(port: u16, host: Option<String>) -> ListenSpec {
        ListenSpec {
            port,
            host,
            ipv4: true,
            ipv6: true,
            bind_interface: None,
            unix_path: None,
        }
    }

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

/// A bound listening socket.
#[derive(Debug)]
pub enum BoundSocket {
    Tcp(std::net::TcpListener),
    Unix(UnixListener, PathBuf),
}

impl BoundSocket {
    /// The TCP address bound (port 0 resolved); `None` for a Unix socket.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            BoundSocket::Tcp(l) => l.local_addr().ok(),
            BoundSocket::Unix(..) => None,
        }
    }
}

/// Binds every address of a listener. An address family the machine (or the interface of
/// `bind_interface`) lacks is skipped when another one worked (as with `::1` on a host
/// without IPv6).
pub fn bind_listener(spec: &ListenSpec) -> io::Result<Vec<BoundSocket>> {
    if let Some(path) = &spec.unix_path {
        return bind_unix(path).map(|l| vec![BoundSocket::Unix(l, path.clone())]);
    }
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
        if let Some(interface) = &spec.bind_interface {
            match interface_address(interface, addr, spec.host.is_some())? {
                Some(ip) => addr.set_ip(ip),
                None => {
                    log::warn!(
                        "Warning: Interface {interface} does not support {} configuration.",
                        if addr.is_ipv4() { "IPv4" } else { "IPv6" }
                    );
                    continue;
                }
            }
        }
        match bind_one(addr) {
            Ok(listener) => {
                port = listener.local_addr()?.port();
                bound.push(BoundSocket::Tcp(listener));
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

/// `listener 0 /path`: a stale socket file is removed first, as Mosquitto does.
fn bind_unix(path: &Path) -> io::Result<UnixListener> {
    let _ = std::fs::remove_file(path);
    log::info!("Opening unix listen socket on path {}.", path.display());
    let listener = UnixListener::bind(path).inspect_err(|err| {
        log::error!("Error binding unix socket: {err}");
    })?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// The address of `interface` in the family of `addr` (Mosquitto 2.0's `bind_interface`:
/// the socket binds the interface's address). `Ok(None)` = the interface has no address of
/// that family; an error when it does not exist, or (with a bind address) when the
/// interface's address is not the configured one.
fn interface_address(
    interface: &str,
    addr: SocketAddr,
    host_given: bool,
) -> io::Result<Option<IpAddr>> {
    let mut exists = false;
    for (name, ip) in interface_addresses()? {
        if !name.eq_ignore_ascii_case(interface) {
            continue;
        }
        exists = true;
        if ip.is_ipv4() != addr.is_ipv4() {
            continue;
        }
        if host_given && ip != addr.ip() {
            log::error!(
                "Error: Interface address for {interface} does not match specified listener address ({}).",
                addr.ip()
            );
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("interface {interface} does not have address {}", addr.ip()),
            ));
        }
        return Ok(Some(ip));
    }
    if exists {
        Ok(None)
    } else {
        log::error!("Error: Interface {interface} does not exist.");
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("interface {interface} does not exist"),
        ))
    }
}

/// Every (interface name, address) of the machine, from getifaddrs(3).
fn interface_addresses() -> io::Result<Vec<(String, IpAddr)>> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list we free below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut cur = list;
    while !cur.is_null() {
        // SAFETY: cur points into the list getifaddrs returned, not yet freed; ifa_name is
        // a NUL-terminated string and ifa_addr, when set, a sockaddr of its family.
        unsafe {
            let ifa = &*cur;
            if !ifa.ifa_addr.is_null() {
                let name = std::ffi::CStr::from_ptr(ifa.ifa_name)
                    .to_string_lossy()
                    .into_owned();
                match i32::from((*ifa.ifa_addr).sa_family) {
                    libc::AF_INET => {
                        let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                        let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                        out.push((name, IpAddr::V4(ip)));
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                        out.push((name, IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr))));
                    }
                    _ => {}
                }
            }
            cur = ifa.ifa_next;
        }
    }
    // SAFETY: list came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_interface_binds_its_address() {
        let mut spec = ListenSpec::tcp(0, None);
        spec.ipv6 = false;
        spec.bind_interface = Some("lo".to_string());
        let bound = bind_listener(&spec).expect("bind lo");
        let addr = bound[0].local_addr().unwrap();
        assert_eq!(addr.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    }

    #[test]
    fn missing_interface_is_an_error() {
        let mut spec = ListenSpec::tcp(0, None);
        spec.bind_interface = Some("midge-no-such-if0".to_string());
        assert!(bind_listener(&spec).is_err());
    }

    #[test]
    fn unix_socket_replaces_a_stale_file() {
        let path = std::env::temp_dir().join(format!("midge-listen-{}.sock", std::process::id()));
        std::fs::write(&path, b"stale").unwrap();
        let spec = ListenSpec {
            unix_path: Some(path.clone()),
            ..ListenSpec::tcp(0, None)
        };
        let bound = bind_listener(&spec).expect("bind unix");
        assert!(matches!(bound[0], BoundSocket::Unix(..)));
        std::os::unix::net::UnixStream::connect(&path).expect("connect");
        let _ = std::fs::remove_file(&path);
    }
}
