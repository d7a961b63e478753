//! Unix domain sockets: [`UnixListener`], [`UnixStream`] and [`UnixDatagram`], mirroring
//! `std::os::unix::net`.
//!
//! Addresses are std's [`std::os::unix::net::SocketAddr`]. Three Linux behaviours need more than
//! the readiness loop, and get it here:
//! * A non-blocking `connect` to a listener whose backlog is full fails with `EAGAIN`, and no
//!   event says when there is room: [`UnixStream::connect`] tries again every millisecond (a
//!   blocking `connect` waits in the kernel for as long as it takes; so does this).
//! * A datagram sent to a receiver whose queue is full fails with `EAGAIN`, and epoll does not
//!   always report the sender writable once there is room (never for an unconnected sender):
//!   [`UnixDatagram`] sends are tried again on a writable event or every millisecond,
//!   whichever comes first.
//! * `accept` on a listener that was shut down fails with `EAGAIN`, not `EINVAL` as TCP's
//!   does: [`UnixListener::accept`] looks for the hang-up (`POLLRDHUP`) and reports `EINVAL`,
//!   so that [`UnixListener::incoming`] ends.

use crate::io::readiness::Direction;
use crate::io::source::Source;
use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{self, SocketAddr};
use std::path::Path;
use std::time::Duration;

/// How often an operation the kernel gives no event for is tried again (a `connect` to a full
/// backlog, a datagram to a full receiver).
const RETRY: Duration = Duration::from_millis(1);

/// An all-zero `sockaddr_un`, for the kernel to fill in.
fn empty_sockaddr() -> libc::sockaddr_un {
    libc::sockaddr_un {
        sun_family: 0,
        sun_path: [0; 108],
    }
}

/// `size_of::<sockaddr_un>()` as a `socklen_t` (110: it fits).
const SOCKADDR_LEN: libc::socklen_t = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;

/// The std address for what the kernel wrote into a `sockaddr_un` (`len` bytes of it).
///
/// Unnamed (an unbound or `socketpair` peer): no path bytes; abstract (Linux): a leading NUL
/// and the name, which may contain anything; pathname: the bytes up to the first NUL (the
/// kernel may or may not count a terminating NUL in `len`, or may give none if the path fills
/// `sun_path`). A pathname std cannot represent (108 bytes, filling `sun_path` without a
/// terminating NUL: std's constructor wants it shorter) becomes the unnamed address rather than
/// an error: an accepted connection must not be lost over how its peer is named.
fn to_socket_addr(addr: &libc::sockaddr_un, len: libc::socklen_t) -> SocketAddr {
    let offset = std::mem::offset_of!(libc::sockaddr_un, sun_path);
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    let path_len = len.saturating_sub(offset).min(addr.sun_path.len());
    let mut bytes = [0u8; 108];
    for (byte, &c) in bytes.iter_mut().zip(&addr.sun_path[..path_len]) {
        *byte = c as u8;
    }
    let bytes = &bytes[..path_len];
    // `from_pathname` of an empty path is the unnamed address (length: the offset alone).
    let unnamed = || SocketAddr::from_pathname("").expect("the empty path is valid");
    let named = match bytes.split_first() {
        None => return unnamed(),
        Some((0, name)) => SocketAddr::from_abstract_name(name),
        Some(_) => {
            let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            SocketAddr::from_pathname(OsStr::from_bytes(&bytes[..end]))
        }
    };
    named.unwrap_or_else(|_| unnamed())
}

/// `recvfrom(2)` with `flags`, returning the sender's address.
fn recv_from_flags(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    flags: libc::c_int,
) -> io::Result<(usize, SocketAddr)> {
    let mut addr = empty_sockaddr();
    let mut len = SOCKADDR_LEN;
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes; `addr` is a `sockaddr_un` valid
    // for writes of `len` bytes (its size), and `len` is valid for reads and writes; `fd` is
    // borrowed, so it is open for the call.
    let n = unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            flags,
            (&raw mut addr).cast(),
            &mut len,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((n as usize, to_socket_addr(&addr, len)))
}

/// `recv(2)` with `MSG_PEEK`: reads without removing the data from the queue.
fn peek(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes; `fd` is borrowed, so it is open
    // for the call.
    let n = unsafe {
        libc::recv(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_PEEK,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// Whether a listening socket was shut down for reading: `poll(2)` reports `POLLRDHUP` (and
/// `POLLHUP` after `SHUT_RDWR`) at once.
fn is_shut_down(fd: BorrowedFd<'_>) -> bool {
    let mut pollfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one valid, exclusively borrowed `pollfd`, a count of 1, and a zero timeout; `fd`
    // is borrowed, so it is open for the call.
    let n = unsafe { libc::poll(&mut pollfd, 1, 0) };
    n > 0 && pollfd.revents & (libc::POLLRDHUP | libc::POLLHUP) != 0
}

/// `accept4(2)` with `SOCK_NONBLOCK | SOCK_CLOEXEC`: the connection, non-blocking already, in
/// one system call, and the peer's address.
fn accept(listener: &net::UnixListener) -> io::Result<(net::UnixStream, SocketAddr)> {
    let mut addr = empty_sockaddr();
    let mut len = SOCKADDR_LEN;
    // SAFETY: `addr` is a `sockaddr_un` valid for writes of `len` bytes (its size), and `len`
    // is valid for reads and writes; the listener is borrowed, so its descriptor is open.
    let fd = unsafe {
        libc::accept4(
            listener.as_raw_fd(),
            (&raw mut addr).cast(),
            &mut len,
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by `accept4`, so it is an open socket owned by nobody
    // else; the stream takes ownership.
    let stream = unsafe { net::UnixStream::from_raw_fd(fd) };
    Ok((stream, to_socket_addr(&addr, len)))
}

/// A Unix socket server, listening for connections: `std::os::unix::net::UnixListener`, except
/// that [`accept`](UnixListener::accept) parks the calling coroutine, not its thread.
///
/// ```no_run
/// use corun::net::{UnixListener, UnixStream};
/// use std::io::Read;
/// let listener = UnixListener::bind("/path/to/the/socket")?;
/// // accept connections and process them, spawning a new coroutine for each one
/// for stream in listener.incoming() {
///     let mut stream: UnixStream = stream?;
///     corun::spawn(move || {
///         let mut request = String::new();
///         let _ = stream.read_to_string(&mut request);
///     });
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UnixListener {
    source: Source<net::UnixListener>,
}

impl UnixListener {
    /// Creates a listener bound to the path `path`, which must not exist yet (remove the
    /// socket file of an earlier run first).
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        UnixListener::bind_addr(&SocketAddr::from_pathname(path)?)
    }

    /// Creates a listener bound to `socket_addr` (a path, or on Linux an abstract name).
    pub fn bind_addr(socket_addr: &SocketAddr) -> io::Result<UnixListener> {
        mio::net::UnixListener::bind_addr(socket_addr)
            .map(|listener| UnixListener::from_std_nonblocking(listener.into()))
    }

    fn from_std_nonblocking(listener: net::UnixListener) -> UnixListener {
        UnixListener {
            source: Source::new(listener),
        }
    }

    /// Accepts a new connection, parking until one arrives. Returns the stream (ready for
    /// coroutines and threads alike) and the address of the peer (usually unnamed).
    ///
    /// A listener that was shut down (`shutdown(2)` on its descriptor) fails with `EINVAL`,
    /// as a TCP listener does (Linux itself would report `EAGAIN` for ever).
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        self.source
            .do_io(Direction::Read, |listener| match accept(listener) {
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock && is_shut_down(listener.as_fd()) =>
                {
                    Err(io::Error::from_raw_os_error(libc::EINVAL))
                }
                result => result,
            })
            .map(|(stream, addr)| (UnixStream::from_std_nonblocking(stream), addr))
    }

    /// An iterator over incoming connections: [`accept`](UnixListener::accept) in a loop,
    /// without the addresses. Unlike std's, it ends when the listener is shut down, so a server
    /// loop can be stopped from another coroutine.
    pub fn incoming(&self) -> UnixIncoming<'_> {
        UnixIncoming { listener: self }
    }

    /// A new handle to the same socket (a duplicated descriptor).
    pub fn try_clone(&self) -> io::Result<UnixListener> {
        let clone = UnixListener::from_std_nonblocking(self.source.get_ref().try_clone()?);
        self.source.copy_settings_to(&clone.source);
        Ok(clone)
    }

    /// The local address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.source.get_ref().local_addr()
    }

    /// Makes `accept` return `WouldBlock` instead of waiting (the descriptor is non-blocking
    /// in any case; this sets how this handle behaves).
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.source.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Takes the pending error of the socket (`SO_ERROR`).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.source.get_ref().take_error()
    }
}

/// The iterator of [`UnixListener::incoming`] (std's `std::os::unix::net::Incoming`).
#[derive(Debug)]
pub struct UnixIncoming<'a> {
    listener: &'a UnixListener,
}

impl<'a> IntoIterator for &'a UnixListener {
    type Item = io::Result<UnixStream>;
    type IntoIter = UnixIncoming<'a>;

    /// [`UnixListener::incoming`], as std has it: `for stream in &listener`.
    fn into_iter(self) -> UnixIncoming<'a> {
        self.incoming()
    }
}

impl Iterator for UnixIncoming<'_> {
    type Item = io::Result<UnixStream>;
    fn next(&mut self) -> Option<io::Result<UnixStream>> {
        match self.listener.accept() {
            Ok((stream, _)) => Some(Ok(stream)),
            // A listener that was shut down (EINVAL) or closed under us (EBADF) is over.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EBADF)) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

/// A Unix stream socket: `std::os::unix::net::UnixStream`, except that reads, writes and
/// connects park the calling coroutine, not its thread. On a plain thread it blocks the thread,
/// as std's does.
///
/// `Read` and `Write` are implemented for `UnixStream` and for `&UnixStream`, so one coroutine
/// can read while another writes.
///
/// ```no_run
/// use corun::net::UnixStream;
/// use std::io::{Read, Write};
/// let mut stream = UnixStream::connect("/path/to/my/socket")?;
/// stream.write_all(b"hello world")?;
/// let mut response = String::new();
/// stream.read_to_string(&mut response)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UnixStream {
    source: Source<net::UnixStream>,
}

impl UnixStream {
    /// Connects to the socket named by `path`.
    ///
    /// If the listener's backlog is full, it waits (trying again every millisecond) until
    /// there is room, as a blocking `connect` does.
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        UnixStream::connect_addr(&SocketAddr::from_pathname(path)?)
    }

    /// Connects to the socket named by `socket_addr` (a path, or on Linux an abstract name).
    pub fn connect_addr(socket_addr: &SocketAddr) -> io::Result<UnixStream> {
        loop {
            // On Linux a Unix `connect` completes at once or fails; `EAGAIN` means the backlog
            // is full, and nothing will report when it is not: try again shortly. (A fresh
            // socket each time: mio's `connect_addr` makes the socket and connects it.)
            match mio::net::UnixStream::connect_addr(socket_addr) {
                Ok(stream) => return Ok(UnixStream::from_std_nonblocking(stream.into())),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => crate::sleep(RETRY),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Creates an unnamed pair of connected sockets.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = mio::net::UnixStream::pair()?;
        Ok((
            UnixStream::from_std_nonblocking(a.into()),
            UnixStream::from_std_nonblocking(b.into()),
        ))
    }

    fn from_std_nonblocking(stream: net::UnixStream) -> UnixStream {
        UnixStream {
            source: Source::new(stream),
        }
    }

    /// A new handle to the same connection (a duplicated descriptor). It starts with this
    /// handle's timeouts; unlike std's (which live in the socket), they are then its own.
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        let clone = UnixStream::from_std_nonblocking(self.source.get_ref().try_clone()?);
        self.source.copy_settings_to(&clone.source);
        Ok(clone)
    }

    /// The local address of the connection (usually unnamed for the connecting side).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.source.get_ref().local_addr()
    }

    /// The address of the remote peer.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.source.get_ref().peer_addr()
    }

    super::timeout_methods!();

    /// Shuts down the read half, the write half, or both. Coroutines blocked on the connection
    /// wake up (a read then returns `Ok(0)`).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.source.get_ref().shutdown(how)
    }

    /// Reads without removing the data from the queue, waiting until some is there.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.source.do_io(Direction::Read, |s| peek(s.as_fd(), buf))
    }
}

/// A Unix datagram socket: `std::os::unix::net::UnixDatagram`, except that sends and receives
/// park the calling coroutine, not its thread. On a plain thread it blocks the thread, as
/// std's does.
///
/// Unix datagrams are reliable and ordered: a send to a receiver whose queue is full waits
/// until there is room (trying again every millisecond, since the kernel does not always
/// report it), or fails with `WouldBlock` after the write timeout.
///
/// ```no_run
/// use corun::net::UnixDatagram;
/// let socket = UnixDatagram::bind("/path/to/my/socket")?;
/// socket.send_to(b"hello world", "/path/to/other/socket")?;
/// let mut buf = [0; 100];
/// let (count, address) = socket.recv_from(&mut buf)?;
/// println!("socket {:?} sent {:?}", address, &buf[..count]);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UnixDatagram {
    source: Source<net::UnixDatagram>,
}

impl UnixDatagram {
    /// Creates a socket bound to the path `path`, which must not exist yet.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        UnixDatagram::bind_addr(&SocketAddr::from_pathname(path)?)
    }

    /// Creates a socket bound to `socket_addr` (a path, or on Linux an abstract name).
    pub fn bind_addr(socket_addr: &SocketAddr) -> io::Result<UnixDatagram> {
        mio::net::UnixDatagram::bind_addr(socket_addr)
            .map(|socket| UnixDatagram::from_std_nonblocking(socket.into()))
    }

    /// Creates a socket that is not bound to any address: it can send, but nobody can send
    /// to it (its address is unnamed).
    pub fn unbound() -> io::Result<UnixDatagram> {
        mio::net::UnixDatagram::unbound()
            .map(|socket| UnixDatagram::from_std_nonblocking(socket.into()))
    }

    /// Creates an unnamed pair of connected sockets.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = mio::net::UnixDatagram::pair()?;
        Ok((
            UnixDatagram::from_std_nonblocking(a.into()),
            UnixDatagram::from_std_nonblocking(b.into()),
        ))
    }

    fn from_std_nonblocking(socket: net::UnixDatagram) -> UnixDatagram {
        UnixDatagram {
            source: Source::new(socket),
        }
    }

    /// Connects the socket to the socket named by `path`: [`send`](UnixDatagram::send) and
    /// [`recv`](UnixDatagram::recv) then go to and come from it only. It does not wait.
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        self.source.get_ref().connect(path)
    }

    /// Connects the socket to `socket_addr` (a path, or on Linux an abstract name).
    pub fn connect_addr(&self, socket_addr: &SocketAddr) -> io::Result<()> {
        self.source.get_ref().connect_addr(socket_addr)
    }

    /// A new handle to the same socket (a duplicated descriptor). It starts with this handle's
    /// timeouts; unlike std's (which live in the socket), they are then its own.
    pub fn try_clone(&self) -> io::Result<UnixDatagram> {
        let clone = UnixDatagram::from_std_nonblocking(self.source.get_ref().try_clone()?);
        self.source.copy_settings_to(&clone.source);
        Ok(clone)
    }

    /// The address of the socket.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.source.get_ref().local_addr()
    }

    /// The address of the peer this socket is [connected](UnixDatagram::connect) to
    /// (`NotConnected` if none).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.source.get_ref().peer_addr()
    }

    /// Receives a single datagram, waiting until one arrives. Returns the number of bytes
    /// read and the address of the sender (unnamed if it is not bound). If `buf` is too small
    /// for the message, the rest is discarded.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.source.do_io(Direction::Read, |s| s.recv_from(buf))
    }

    /// Receives a single datagram, waiting until one arrives; returns the number of bytes
    /// read.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.source.do_io(Direction::Read, |s| s.recv(buf))
    }

    /// Like [`recv_from`](UnixDatagram::recv_from), but leaves the datagram in the queue: the
    /// next receive returns it again.
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.source.do_io(Direction::Read, |s| {
            recv_from_flags(s.as_fd(), buf, libc::MSG_PEEK)
        })
    }

    /// Like [`recv`](UnixDatagram::recv), but leaves the datagram in the queue.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.source.do_io(Direction::Read, |s| peek(s.as_fd(), buf))
    }

    /// Sends `buf` to the socket named by `path`, returning the number of bytes written.
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        self.send_to_addr(buf, &SocketAddr::from_pathname(path)?)
    }

    /// Sends `buf` to `socket_addr` (a path, or on Linux an abstract name), returning the
    /// number of bytes written.
    pub fn send_to_addr(&self, buf: &[u8], socket_addr: &SocketAddr) -> io::Result<usize> {
        self.source.do_io_retrying(Direction::Write, RETRY, |s| {
            s.send_to_addr(buf, socket_addr)
        })
    }

    /// Sends `buf` to the [connected](UnixDatagram::connect) peer, returning the number of
    /// bytes written.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.source
            .do_io_retrying(Direction::Write, RETRY, |s| s.send(buf))
    }

    super::timeout_methods!();

    /// Shuts down the read half, the write half, or both. Coroutines blocked in a receive on
    /// this socket wake up (the receive then returns `Ok(0)`).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.source.get_ref().shutdown(how)
    }
}

super::stream_read_write!(UnixStream, short_transfers_drain: false);
super::fd_conversions!(
    UnixStream,
    net::UnixStream,
    from_std_nonblocking,
    net::UnixStream
);
super::fd_conversions!(
    UnixListener,
    net::UnixListener,
    from_std_nonblocking,
    net::UnixListener
);
super::fd_conversions!(
    UnixDatagram,
    net::UnixDatagram,
    from_std_nonblocking,
    net::UnixDatagram
);

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.source.get_ref(), f)
    }
}

impl fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.source.get_ref(), f)
    }
}

impl fmt::Debug for UnixDatagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.source.get_ref(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(path: &[u8]) -> (libc::sockaddr_un, libc::socklen_t) {
        let mut addr = empty_sockaddr();
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        for (c, &b) in addr.sun_path.iter_mut().zip(path) {
            *c = b as libc::c_char;
        }
        let offset = std::mem::offset_of!(libc::sockaddr_un, sun_path);
        (addr, (offset + path.len()) as libc::socklen_t)
    }

    #[test]
    fn kernel_addresses_convert_to_std_ones() {
        let (addr, len) = raw(b"");
        assert!(to_socket_addr(&addr, len).is_unnamed());
        assert!(to_socket_addr(&addr, 0).is_unnamed());
        let (addr, len) = raw(b"/tmp/x\0");
        let std_addr = to_socket_addr(&addr, len);
        assert_eq!(std_addr.as_pathname(), Some(Path::new("/tmp/x")));
        let (addr, len) = raw(b"/tmp/x"); // no terminating NUL counted
        let std_addr = to_socket_addr(&addr, len);
        assert_eq!(std_addr.as_pathname(), Some(Path::new("/tmp/x")));
        let (addr, len) = raw(b"\0abs\0tract");
        let std_addr = to_socket_addr(&addr, len);
        assert_eq!(std_addr.as_abstract_name(), Some(&b"abs\0tract"[..]));
        // A length beyond the structure is clamped, not trusted.
        let (addr, _) = raw(b"/tmp/y\0");
        let std_addr = to_socket_addr(&addr, 4096);
        assert_eq!(std_addr.as_pathname(), Some(Path::new("/tmp/y")));
        // A path filling `sun_path` (108 bytes, no NUL), which std cannot represent: unnamed,
        // not an error that would lose an accepted connection.
        let (addr, len) = raw(&[b'p'; 108]);
        assert!(to_socket_addr(&addr, len).is_unnamed());
    }
}
