//! UDP: [`UdpSocket`], mirroring `std::net::UdpSocket`.

use super::addr::{each_addr, first_addr, ToSocketAddrs};
use crate::io::readiness::Direction;
use crate::io::source::Source;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

/// A UDP socket: `std::net::UdpSocket`, except that sends and receives park the calling
/// coroutine, not its thread. On a plain thread it blocks the thread, as std's does.
///
/// After creating a `UdpSocket` by [`bind`](UdpSocket::bind)ing it to a socket address, data
/// can be [sent to](UdpSocket::send_to) and [received from](UdpSocket::recv_from) any other
/// socket address. Every method takes `&self`, so one coroutine can receive while another
/// sends (share the socket with an `Arc`, or use [`try_clone`](UdpSocket::try_clone)).
///
/// ```no_run
/// use corun::net::UdpSocket;
/// let socket = UdpSocket::bind("127.0.0.1:34254")?;
/// // Receives a single datagram message on the socket. If `buf` is too small to hold
/// // the message, it will be cut off.
/// let mut buf = [0; 10];
/// let (amt, src) = socket.recv_from(&mut buf)?;
/// // Redeclare `buf` as slice of the received data and send reverse data back to origin.
/// let buf = &mut buf[..amt];
/// buf.reverse();
/// socket.send_to(buf, &src)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UdpSocket {
    source: Source<std::net::UdpSocket>,
}

impl UdpSocket {
    /// Creates a UDP socket bound to `addr` (each address in turn, until one works; names are
    /// resolved on the blocking pool).
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        each_addr(addr, |addr| {
            let socket = std::net::UdpSocket::bind(addr)?;
            socket.set_nonblocking(true)?;
            Ok(UdpSocket::from_std_nonblocking(socket))
        })
    }

    fn from_std_nonblocking(socket: std::net::UdpSocket) -> UdpSocket {
        UdpSocket {
            source: Source::new(socket),
        }
    }

    /// Receives a single datagram, waiting until one arrives. Returns the number of bytes
    /// read and the address it came from. If `buf` is too small for the message, the rest is
    /// discarded.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.source.do_io(Direction::Read, |s| s.recv_from(buf))
    }

    /// Like [`recv_from`](UdpSocket::recv_from), but leaves the datagram in the queue: the next
    /// receive returns it again.
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.source.do_io(Direction::Read, |s| s.peek_from(buf))
    }

    /// Sends `buf` to `addr`, returning the number of bytes written. As in std, only the first
    /// address `addr` stands for is used.
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let addr = first_addr(addr)?;
        self.source
            .do_io(Direction::Write, |s| s.send_to(buf, addr))
    }

    /// The address of the peer this socket is [connected](UdpSocket::connect) to (`NotConnected`
    /// if none).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.source.get_ref().peer_addr()
    }

    /// The local address of the socket.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.source.get_ref().local_addr()
    }

    /// A new handle to the same socket (a duplicated descriptor). It starts with this handle's
    /// timeouts; unlike std's (which live in the socket), they are then its own.
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        let clone = UdpSocket::from_std_nonblocking(self.source.get_ref().try_clone()?);
        self.source.copy_settings_to(&clone.source);
        Ok(clone)
    }

    super::timeout_methods!();

    /// Sets `SO_BROADCAST`: whether the socket may send to a broadcast address.
    pub fn set_broadcast(&self, broadcast: bool) -> io::Result<()> {
        self.source.get_ref().set_broadcast(broadcast)
    }

    /// Whether `SO_BROADCAST` is set.
    pub fn broadcast(&self) -> io::Result<bool> {
        self.source.get_ref().broadcast()
    }

    /// Sets `IP_MULTICAST_LOOP`: whether multicast packets sent by this socket are looped back
    /// to local sockets (IPv4).
    pub fn set_multicast_loop_v4(&self, multicast_loop_v4: bool) -> io::Result<()> {
        self.source
            .get_ref()
            .set_multicast_loop_v4(multicast_loop_v4)
    }

    /// Whether `IP_MULTICAST_LOOP` is set.
    pub fn multicast_loop_v4(&self) -> io::Result<bool> {
        self.source.get_ref().multicast_loop_v4()
    }

    /// Sets `IP_MULTICAST_TTL`: the time-to-live of outgoing IPv4 multicast packets (1, the
    /// default, keeps them in the local network).
    pub fn set_multicast_ttl_v4(&self, multicast_ttl_v4: u32) -> io::Result<()> {
        self.source.get_ref().set_multicast_ttl_v4(multicast_ttl_v4)
    }

    /// The `IP_MULTICAST_TTL` of the socket.
    pub fn multicast_ttl_v4(&self) -> io::Result<u32> {
        self.source.get_ref().multicast_ttl_v4()
    }

    /// Sets `IPV6_MULTICAST_LOOP`: whether multicast packets sent by this socket are looped
    /// back to local sockets (IPv6).
    pub fn set_multicast_loop_v6(&self, multicast_loop_v6: bool) -> io::Result<()> {
        self.source
            .get_ref()
            .set_multicast_loop_v6(multicast_loop_v6)
    }

    /// Whether `IPV6_MULTICAST_LOOP` is set.
    pub fn multicast_loop_v6(&self) -> io::Result<bool> {
        self.source.get_ref().multicast_loop_v6()
    }

    /// Sets `IP_TTL`: the time-to-live of every packet sent from this socket.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.source.get_ref().set_ttl(ttl)
    }

    /// The `IP_TTL` of the socket.
    pub fn ttl(&self) -> io::Result<u32> {
        self.source.get_ref().ttl()
    }

    /// Joins the IPv4 multicast group `multiaddr` on the interface with address `interface`
    /// (`Ipv4Addr::UNSPECIFIED`: the system's choice) (`IP_ADD_MEMBERSHIP`).
    pub fn join_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.source
            .get_ref()
            .join_multicast_v4(multiaddr, interface)
    }

    /// Joins the IPv6 multicast group `multiaddr` on the interface with index `interface` (0:
    /// the system's choice) (`IPV6_ADD_MEMBERSHIP`).
    pub fn join_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.source
            .get_ref()
            .join_multicast_v6(multiaddr, interface)
    }

    /// Leaves an IPv4 multicast group (`IP_DROP_MEMBERSHIP`); see
    /// [`join_multicast_v4`](UdpSocket::join_multicast_v4).
    pub fn leave_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.source
            .get_ref()
            .leave_multicast_v4(multiaddr, interface)
    }

    /// Leaves an IPv6 multicast group (`IPV6_DROP_MEMBERSHIP`); see
    /// [`join_multicast_v6`](UdpSocket::join_multicast_v6).
    pub fn leave_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.source
            .get_ref()
            .leave_multicast_v6(multiaddr, interface)
    }

    /// Connects the socket to a remote address (each address in turn, until one works): `send`
    /// and `recv` then go to and come from that address only. It does not wait for anything
    /// (UDP has no handshake).
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        each_addr(addr, |addr| self.source.get_ref().connect(addr))
    }

    /// Sends `buf` to the [connected](UdpSocket::connect) peer, returning the number of bytes
    /// written.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.source.do_io(Direction::Write, |s| s.send(buf))
    }

    /// Receives a single datagram from the [connected](UdpSocket::connect) peer, waiting until
    /// one arrives. If `buf` is too small for the message, the rest is discarded.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.source.do_io(Direction::Read, |s| s.recv(buf))
    }

    /// Like [`recv`](UdpSocket::recv), but leaves the datagram in the queue.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.source.do_io(Direction::Read, |s| s.peek(buf))
    }
}

super::fd_conversions!(
    UdpSocket,
    std::net::UdpSocket,
    from_std_nonblocking,
    std::net::UdpSocket
);

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.source.get_ref(), f)
    }
}
