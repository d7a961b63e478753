//! TCP: [`TcpListener`] and [`TcpStream`], mirroring `std::net`.

use super::addr::{each_addr, ToSocketAddrs};
use crate::io::readiness::Direction;
use crate::io::source::Source;
use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// A TCP socket server, listening for connections: `std::net::TcpListener`, except that
/// [`accept`](TcpListener::accept) parks the calling coroutine, not its thread.
///
/// ```no_run
/// use corun::net::TcpListener;
/// use std::io::{Read, Write};
/// let listener = TcpListener::bind("127.0.0.1:7878")?;
/// for stream in listener.incoming() {
///     let mut stream = stream?;
///     corun::spawn(move || {
///         let mut buf = [0; 1024];
///         while let Ok(n @ 1..) = stream.read(&mut buf) {
///             if stream.write_all(&buf[..n]).is_err() {
///                 break;
///             }
///         }
///     });
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct TcpListener {
    source: Source<mio::net::TcpListener>,
}

impl TcpListener {
    /// Creates a listener bound to `addr` (each address in turn, until one works). It sets
    /// `SO_REUSEADDR` and a backlog of 1024.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        each_addr(addr, mio::net::TcpListener::bind).map(TcpListener::from_mio)
    }

    fn from_mio(listener: mio::net::TcpListener) -> TcpListener {
        TcpListener {
            source: Source::new(listener),
        }
    }

    /// Accepts a new connection, parking until one arrives (or the timeout set by... there is
    /// none for listeners, as in std). The stream it returns is ready for coroutines and
    /// threads alike.
    ///
    /// Errors are the kernel's, returned as they come: when the process is out of file
    /// descriptors this is `EMFILE` (the pending connection stays queued, and the listener
    /// keeps working once descriptors are freed).
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        self.source
            .do_io(Direction::Read, |listener| listener.accept())
            .map(|(stream, addr)| (TcpStream::from_mio(stream), addr))
    }

    /// An iterator over incoming connections: [`accept`](TcpListener::accept) in a loop. Unlike
    /// std's, it ends when the listener is shut down (`shutdown(2)` on its descriptor makes
    /// `accept` fail with `EINVAL`), so a server loop can be stopped from another coroutine.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The local address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.source.get_ref().local_addr()
    }

    /// A new handle to the same socket (a duplicated descriptor).
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        let fd = self.source.get_ref().as_fd().try_clone_to_owned()?;
        let clone = TcpListener::from_mio(mio::net::TcpListener::from(fd));
        self.source.copy_settings_to(&clone.source);
        Ok(clone)
    }

    /// Sets `IP_TTL` on the socket.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.source.get_ref().set_ttl(ttl)
    }

    /// The `IP_TTL` of the socket.
    pub fn ttl(&self) -> io::Result<u32> {
        self.source.get_ref().ttl()
    }

    /// Takes the pending error of the socket (`SO_ERROR`).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.source.get_ref().take_error()
    }

    /// Makes `accept` return `WouldBlock` instead of waiting (the descriptor is non-blocking
    /// in any case; this sets how this handle behaves).
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.source.set_nonblocking(nonblocking);
        Ok(())
    }
}

/// The iterator of [`TcpListener::incoming`].
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        match self.listener.accept() {
            Ok((stream, _)) => Some(Ok(stream)),
            // A listener that was shut down (EINVAL) or closed under us (EBADF) is over.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EBADF)) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

/// A TCP connection: `std::net::TcpStream`, except that reads, writes and connects park the
/// calling coroutine, not its thread. On a plain thread it blocks the thread, as std's does.
///
/// `Read` and `Write` are implemented for `TcpStream` and for `&TcpStream`, so one coroutine
/// can read while another writes.
pub struct TcpStream {
    source: Source<std::net::TcpStream>,
}

impl TcpStream {
    /// Opens a connection to `addr` (each address in turn, until one works; names are
    /// resolved on the blocking pool).
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        each_addr(addr, |addr| TcpStream::connect_until(addr, None))
    }

    /// Opens a connection to `addr`, giving up after `timeout` with an error of kind
    /// [`TimedOut`](io::ErrorKind::TimedOut). As in std, a zero timeout is an error.
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        TcpStream::connect_until(*addr, Instant::now().checked_add(timeout))
    }

    fn connect_until(addr: SocketAddr, deadline: Option<Instant>) -> io::Result<TcpStream> {
        // A non-blocking connect: in progress until the socket becomes writable.
        let stream = TcpStream::from_mio(mio::net::TcpStream::connect(addr)?);
        stream.source.do_io_until(
            Direction::Write,
            || deadline,
            || io::Error::new(io::ErrorKind::TimedOut, "connection timed out"),
            |socket| match socket.take_error()? {
                Some(e) => Err(e),
                None => match socket.peer_addr() {
                    Ok(_) => Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                        Err(io::ErrorKind::WouldBlock.into())
                    }
                    Err(e) => Err(e),
                },
            },
        )?;
        Ok(stream)
    }

    fn from_mio(stream: mio::net::TcpStream) -> TcpStream {
        TcpStream {
            source: Source::new(stream.into()),
        }
    }

    fn from_std_nonblocking(stream: std::net::TcpStream) -> TcpStream {
        TcpStream {
            source: Source::new(stream),
        }
    }

    /// The address of the remote peer.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.source.get_ref().peer_addr()
    }

    /// The local address of the connection.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.source.get_ref().local_addr()
    }

    /// Shuts down the read half, the write half, or both. Coroutines blocked on the connection
    /// wake up (a read then returns `Ok(0)`).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.source.get_ref().shutdown(how)
    }

    /// A new handle to the same connection (a duplicated descriptor). It starts with this
    /// handle's timeouts; unlike std's (which live in the socket), they are then its own.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        let clone = TcpStream::from_std_nonblocking(self.source.get_ref().try_clone()?);
        self.source.copy_settings_to(&clone.source);
        Ok(clone)
    }

    super::timeout_methods!();

    /// Reads without removing the data from the queue, waiting until some is there.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.source.do_io(Direction::Read, |s| s.peek(buf))
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.source.get_ref().set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.source.get_ref().nodelay()
    }

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.source.get_ref().set_ttl(ttl)
    }

    /// The `IP_TTL` of the socket.
    pub fn ttl(&self) -> io::Result<u32> {
        self.source.get_ref().ttl()
    }
}

super::stream_read_write!(TcpStream, short_transfers_drain: true);
super::fd_conversions!(
    TcpStream,
    std::net::TcpStream,
    from_std_nonblocking,
    std::net::TcpStream
);
super::fd_conversions!(
    TcpListener,
    mio::net::TcpListener,
    from_mio,
    std::net::TcpListener
);

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.source.get_ref(), f)
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.source.get_ref(), f)
    }
}
