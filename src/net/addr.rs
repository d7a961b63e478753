//! Socket addresses, resolved off the workers.
//!
//! std's `ToSocketAddrs` resolves host names with a blocking `getaddrinfo`, which would stall a
//! worker. corun's trait is implemented for the same types as std's, so the same calls compile,
//! but an address that needs the resolver is resolved on the [blocking pool](crate::blocking);
//! literal addresses (the common case, and every `send_to` of a UDP server) are parsed in place.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

mod sealed {
    use std::net::SocketAddr;

    /// Resolution, kept out of the public API (the trait is sealed).
    pub trait Resolve {
        fn resolve(&self) -> std::io::Result<Addrs>;
    }

    /// The addresses an argument stands for, in order.
    pub enum Addrs {
        One(std::option::IntoIter<SocketAddr>),
        Many(std::vec::IntoIter<SocketAddr>),
    }

    impl Iterator for Addrs {
        type Item = SocketAddr;
        fn next(&mut self) -> Option<SocketAddr> {
            match self {
                Addrs::One(one) => one.next(),
                Addrs::Many(many) => many.next(),
            }
        }
    }
}
use sealed::{Addrs, Resolve};

/// Something that names one or more socket addresses: `"127.0.0.1:80"`, `"example.com:80"`,
/// `("example.com", 80)`, a [`SocketAddr`], a slice of them... exactly the types std's
/// [`ToSocketAddrs`](std::net::ToSocketAddrs) is implemented for. Host names are resolved on
/// the blocking pool, so a coroutine that connects by name never blocks its worker.
pub trait ToSocketAddrs: Resolve {}

impl<T: Resolve + ?Sized> ToSocketAddrs for T {}

/// Lets code generic over std's [`ToSocketAddrs`](std::net::ToSocketAddrs) call corun's
/// sockets: the wrapped value is resolved by std's own implementation, on the blocking pool
/// (every time: std's trait may name host names). corun's trait is sealed to the types std
/// implements its trait for, so a generic `A: std::net::ToSocketAddrs` needs this adapter.
///
/// ```
/// fn connect<A: std::net::ToSocketAddrs + Sync>(addr: A) -> std::io::Result<corun::net::TcpStream> {
///     corun::net::TcpStream::connect(corun::net::StdToSocketAddrs(addr))
/// }
/// let listener = corun::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let stream = connect(listener.local_addr().unwrap()).unwrap();
/// assert_eq!(stream.peer_addr().unwrap(), listener.local_addr().unwrap());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct StdToSocketAddrs<A>(pub A);

impl<A: std::net::ToSocketAddrs + Sync> Resolve for StdToSocketAddrs<A> {
    fn resolve(&self) -> io::Result<Addrs> {
        resolve_blocking(&self.0)
    }
}

fn one(addr: SocketAddr) -> io::Result<Addrs> {
    Ok(Addrs::One(Some(addr).into_iter()))
}

/// Runs std's resolver on the blocking pool (which runs it in place on a plain thread).
fn resolve_blocking<A: std::net::ToSocketAddrs + Sync + ?Sized>(addr: &A) -> io::Result<Addrs> {
    crate::blocking(|| {
        addr.to_socket_addrs()
            .map(|addrs| Addrs::Many(addrs.collect::<Vec<_>>().into_iter()))
    })
}

impl Resolve for SocketAddr {
    fn resolve(&self) -> io::Result<Addrs> {
        one(*self)
    }
}

impl Resolve for SocketAddrV4 {
    fn resolve(&self) -> io::Result<Addrs> {
        one((*self).into())
    }
}

impl Resolve for SocketAddrV6 {
    fn resolve(&self) -> io::Result<Addrs> {
        one((*self).into())
    }
}

impl Resolve for (IpAddr, u16) {
    fn resolve(&self) -> io::Result<Addrs> {
        one((*self).into())
    }
}

impl Resolve for (Ipv4Addr, u16) {
    fn resolve(&self) -> io::Result<Addrs> {
        one((*self).into())
    }
}

impl Resolve for (Ipv6Addr, u16) {
    fn resolve(&self) -> io::Result<Addrs> {
        one((*self).into())
    }
}

impl Resolve for (&str, u16) {
    fn resolve(&self) -> io::Result<Addrs> {
        match self.0.parse::<IpAddr>() {
            Ok(ip) => one((ip, self.1).into()),
            Err(_) => resolve_blocking(self),
        }
    }
}

impl Resolve for (String, u16) {
    fn resolve(&self) -> io::Result<Addrs> {
        (self.0.as_str(), self.1).resolve()
    }
}

impl Resolve for str {
    fn resolve(&self) -> io::Result<Addrs> {
        match self.parse::<SocketAddr>() {
            Ok(addr) => one(addr),
            Err(_) => resolve_blocking(self),
        }
    }
}

impl Resolve for String {
    fn resolve(&self) -> io::Result<Addrs> {
        self.as_str().resolve()
    }
}

impl Resolve for [SocketAddr] {
    fn resolve(&self) -> io::Result<Addrs> {
        Ok(Addrs::Many(Vec::from(self).into_iter()))
    }
}

impl<T: Resolve + ?Sized> Resolve for &T {
    fn resolve(&self) -> io::Result<Addrs> {
        (**self).resolve()
    }
}

/// Calls `f` with each address `addr` stands for until one succeeds; returns the last error
/// otherwise (std's rule for `connect` and `bind`).
pub(crate) fn each_addr<A: ToSocketAddrs, T>(
    addr: A,
    mut f: impl FnMut(SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for addr in addr.resolve()? {
        match f(addr) {
            Ok(value) => return Ok(value),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    }))
}

/// The first address `addr` stands for (std's rule for UDP `send_to`).
pub(crate) fn first_addr<A: ToSocketAddrs>(addr: A) -> io::Result<SocketAddr> {
    addr.resolve()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no addresses to send data to"))
}
