//! Networking that parks coroutines instead of threads: the `std::net` types, same names, same
//! methods, same errors.
//!
//! Porting blocking code is a change of import: `std::net::TcpStream` becomes
//! `corun::net::TcpStream`. Inside a coroutine, a call that would block parks the coroutine
//! until the netpoller reports the socket ready, and its worker runs other coroutines meanwhile;
//! on a plain thread the same call blocks the thread, as std's does.
//!
//! Differences from std, all deliberate:
//! * Addresses are [`ToSocketAddrs`], corun's trait for the same types as std's, which resolves
//!   host names on the [blocking pool](crate::blocking) instead of on a worker. Code generic
//!   over std's trait wraps its argument in [`StdToSocketAddrs`].
//! * Timeouts (`set_read_timeout`, ...) and the non-blocking mode belong to the handle;
//!   `try_clone` copies them (later changes to one handle do not reach its clones).
//! * `set_nonblocking` sets how the handle behaves (return `WouldBlock` instead of waiting);
//!   the descriptor itself is always non-blocking. Descriptors handed over with `FromRawFd`,
//!   `From<OwnedFd>` or `From<std::net::TcpStream>` (...) are made non-blocking, and their
//!   `SO_RCVTIMEO`/`SO_SNDTIMEO` become the handle's timeouts; descriptors taken back with
//!   `IntoRawFd`, `Into<OwnedFd>` or `Into<std::net::TcpStream>` (...) are made blocking again
//!   unless the handle was in non-blocking mode, and get the handle's timeouts as
//!   `SO_RCVTIMEO`/`SO_SNDTIMEO`, so that the socket behaves as it did.
//! * [`TcpListener::incoming`] (and [`UnixListener::incoming`]) ends once the listener is shut
//!   down, so that a server loop can be stopped.
//!
//! **Taking a descriptor back affects its clones.** `O_NONBLOCK` belongs to the open file,
//! which every `try_clone` of a socket shares (as do `dup`s made by the caller). So
//! `into_raw_fd` (or `Into<OwnedFd>`, or `Into<std::net::TcpStream>`...) on one handle makes
//! the descriptors of its live clones blocking too, and a coroutine that then waits on a clone
//! blocks its worker thread until the kernel call returns (timeouts no longer apply either).
//! Take the descriptor back from the last handle only. Likewise, `FromRawFd` makes any other
//! descriptor of the same open file non-blocking.
//!
//! Unix domain sockets ([`UnixListener`], [`UnixStream`], [`UnixDatagram`]) use std's
//! [`std::os::unix::net::SocketAddr`] for their addresses.

mod addr;
mod tcp;
mod udp;
mod unix;

pub use addr::{StdToSocketAddrs, ToSocketAddrs};
pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixDatagram, UnixIncoming, UnixListener, UnixStream};

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Sets or clears `O_NONBLOCK` on a descriptor.
fn set_nonblocking(fd: BorrowedFd<'_>, nonblocking: bool) -> io::Result<()> {
    let mut value = libc::c_int::from(nonblocking);
    // SAFETY: FIONBIO reads one `c_int` from the pointer, which is valid for the call; `fd` is
    // borrowed, so it is open.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONBIO, &mut value) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A socket's `SO_RCVTIMEO` or `SO_SNDTIMEO` (`None`: no timeout, or not a socket).
fn socket_timeout(fd: BorrowedFd<'_>, option: libc::c_int) -> Option<std::time::Duration> {
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = std::mem::size_of::<libc::timeval>() as libc::socklen_t;
    // SAFETY: `tv` and `len` are valid for writes and `len` is the size of `tv`; `fd` is
    // borrowed, so it is open.
    let ret = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&raw mut tv).cast(),
            &mut len,
        )
    };
    if ret < 0 || (tv.tv_sec == 0 && tv.tv_usec == 0) {
        return None;
    }
    let secs = u64::try_from(tv.tv_sec).ok()?;
    let micros = u32::try_from(tv.tv_usec).ok()?;
    Some(std::time::Duration::new(secs, micros.saturating_mul(1000)))
}

/// Sets a socket's `SO_RCVTIMEO` or `SO_SNDTIMEO` (`None`: no timeout). Best effort: it
/// fails only for a descriptor that is not a socket.
fn set_socket_timeout(fd: BorrowedFd<'_>, option: libc::c_int, dur: Option<std::time::Duration>) {
    let tv = match dur {
        None => libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        Some(dur) => libc::timeval {
            tv_sec: libc::time_t::try_from(dur.as_secs()).unwrap_or(libc::time_t::MAX),
            // Rounded up, so that a timeout under a microsecond does not become "none".
            tv_usec: dur.subsec_micros().max(u32::from(dur.as_secs() == 0)) as libc::suseconds_t,
        },
    };
    // SAFETY: `tv` is valid for reads of the length given; `fd` is borrowed, so it is open.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&raw const tv).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
}

/// The handle's side of taking a socket over (made non-blocking already): the socket's
/// timeouts become the handle's.
fn adopt_timeouts<T: AsRawFd>(fd: BorrowedFd<'_>, source: &crate::io::source::Source<T>) {
    use crate::io::readiness::Direction;
    for (option, direction) in [
        (libc::SO_RCVTIMEO, Direction::Read),
        (libc::SO_SNDTIMEO, Direction::Write),
    ] {
        // A timeout read back from the kernel is never zero, so this cannot fail.
        let _ = source.set_timeout(direction, socket_timeout(fd, option));
    }
}

/// The other way: blocking again unless the handle was in non-blocking mode, with the handle's
/// timeouts as the socket's.
fn release(fd: BorrowedFd<'_>, nonblocking: bool, timeouts: [Option<std::time::Duration>; 2]) {
    let _ = set_nonblocking(fd, nonblocking);
    set_socket_timeout(fd, libc::SO_RCVTIMEO, timeouts[0]);
    set_socket_timeout(fd, libc::SO_SNDTIMEO, timeouts[1]);
}

/// `Read` and `Write` for a stream socket type `$ty` and for `&$ty` (as std has both), over
/// `self.source`. With `short_transfers_drain: true`, a plain read or write shorter than asked
/// marks the direction not ready (`Source::do_io_stream`). That holds for TCP (but for urgent
/// data, see DESIGN.md), not for Unix streams: a read stops early at a message that carries
/// descriptors or another sender's credentials, with data still queued. Vectored calls never
/// use the rule: the kernel takes at most `IOV_MAX` buffers, so they can be short with room or
/// data to spare.
macro_rules! stream_read_write {
    ($ty:ty, short_transfers_drain: $drain:expr) => {
        impl std::io::Read for &$ty {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let (direction, len) = (crate::io::readiness::Direction::Read, buf.len());
                let read = |mut s: &_| std::io::Read::read(&mut s, buf);
                match $drain {
                    true => self.source.do_io_stream(direction, len, read),
                    false => self.source.do_io(direction, read),
                }
            }

            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                self.source
                    .do_io(crate::io::readiness::Direction::Read, |mut s| {
                        std::io::Read::read_vectored(&mut s, bufs)
                    })
            }
        }

        impl std::io::Write for &$ty {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                let (direction, len) = (crate::io::readiness::Direction::Write, buf.len());
                let write = |mut s: &_| std::io::Write::write(&mut s, buf);
                match $drain {
                    true => self.source.do_io_stream(direction, len, write),
                    false => self.source.do_io(direction, write),
                }
            }

            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                self.source
                    .do_io(crate::io::readiness::Direction::Write, |mut s| {
                        std::io::Write::write_vectored(&mut s, bufs)
                    })
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        impl std::io::Read for $ty {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                (&*self).read(buf)
            }
            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                (&*self).read_vectored(bufs)
            }
        }

        impl std::io::Write for $ty {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                (&*self).write(buf)
            }
            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                (&*self).write_vectored(bufs)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                (&*self).flush()
            }
        }
    };
}
use stream_read_write;

/// The timeout and blocking-mode methods of a socket type whose `Source` is `self.source`, as
/// std's stream and datagram types have them (invoked inside the type's `impl` block).
macro_rules! timeout_methods {
    () => {
        /// Sets the read timeout: a read or receive that waits longer fails with `WouldBlock`,
        /// as std's does on Unix. `None` waits for ever; a zero duration is an error.
        pub fn set_read_timeout(&self, dur: Option<std::time::Duration>) -> std::io::Result<()> {
            self.source
                .set_timeout(crate::io::readiness::Direction::Read, dur)
        }

        /// Sets the write timeout: a write or send that waits longer fails with `WouldBlock`.
        /// `None` waits for ever; a zero duration is an error.
        pub fn set_write_timeout(&self, dur: Option<std::time::Duration>) -> std::io::Result<()> {
            self.source
                .set_timeout(crate::io::readiness::Direction::Write, dur)
        }

        /// The read timeout.
        pub fn read_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
            Ok(self.source.timeout(crate::io::readiness::Direction::Read))
        }

        /// The write timeout.
        pub fn write_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
            Ok(self.source.timeout(crate::io::readiness::Direction::Write))
        }

        /// Makes reads and writes return `WouldBlock` instead of waiting (the descriptor is
        /// non-blocking in any case; this sets how this handle behaves).
        pub fn set_nonblocking(&self, nonblocking: bool) -> std::io::Result<()> {
            self.source.set_nonblocking(nonblocking);
            Ok(())
        }

        /// Takes the pending error of the socket (`SO_ERROR`).
        pub fn take_error(&self) -> std::io::Result<Option<std::io::Error>> {
            self.source.get_ref().take_error()
        }
    };
}
use timeout_methods;

/// The descriptor conversions of a socket type `$ty` wrapping `$inner` (built by `$ctor` from a
/// non-blocking `$inner`), whose std counterpart is `$std`.
macro_rules! fd_conversions {
    ($ty:ident, $inner:ty, $ctor:ident, $std:ty) => {
        impl std::os::fd::AsRawFd for $ty {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.source.as_raw_fd()
            }
        }

        impl std::os::fd::AsFd for $ty {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                self.source.get_ref().as_fd()
            }
        }

        impl From<std::os::fd::OwnedFd> for $ty {
            /// Takes over a descriptor, making it non-blocking; its `SO_RCVTIMEO` and
            /// `SO_SNDTIMEO` become the handle's timeouts.
            fn from(fd: std::os::fd::OwnedFd) -> $ty {
                use std::os::fd::AsFd;
                // Non-blocking before the inner type sees it (mio's types assume it). Fails
                // only for a descriptor that is not open, which `OwnedFd` rules out.
                let _ = super::set_nonblocking(fd.as_fd(), true);
                let socket = $ty::$ctor(<$inner>::from(fd));
                super::adopt_timeouts(socket.source.get_ref().as_fd(), &socket.source);
                socket
            }
        }

        impl From<$ty> for std::os::fd::OwnedFd {
            /// Gives the descriptor back, deregistered, blocking again unless the handle was in
            /// non-blocking mode, and with the handle's timeouts as its `SO_RCVTIMEO` and
            /// `SO_SNDTIMEO`. Blocking is a flag of the open file, which live `try_clone`s
            /// share: they become blocking too (see the [module docs](crate::net)).
            fn from(socket: $ty) -> std::os::fd::OwnedFd {
                use crate::io::readiness::Direction;
                use std::os::fd::AsFd;
                let nonblocking = socket.source.is_nonblocking();
                let timeouts = [
                    socket.source.timeout(Direction::Read),
                    socket.source.timeout(Direction::Write),
                ];
                let fd = std::os::fd::OwnedFd::from(socket.source.into_inner());
                super::release(fd.as_fd(), nonblocking, timeouts);
                fd
            }
        }

        impl std::os::fd::FromRawFd for $ty {
            /// Takes over a descriptor, making it non-blocking.
            ///
            /// # Safety
            /// `fd` must be an open socket of the right kind that nobody else owns, as for
            /// std's `from_raw_fd`.
            unsafe fn from_raw_fd(fd: std::os::fd::RawFd) -> $ty {
                // SAFETY: the caller passes ownership of an open descriptor (this fn's contract).
                $ty::from(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
            }
        }

        impl std::os::fd::IntoRawFd for $ty {
            /// Gives the descriptor back, as `Into<OwnedFd>` does (blocking again unless the
            /// handle was in non-blocking mode; live `try_clone`s share that flag: see the
            /// [module docs](crate::net)).
            fn into_raw_fd(self) -> std::os::fd::RawFd {
                std::os::fd::OwnedFd::from(self).into_raw_fd()
            }
        }

        impl From<$std> for $ty {
            /// Takes over a std socket, making its descriptor non-blocking; its timeouts
            /// become the handle's.
            fn from(socket: $std) -> $ty {
                $ty::from(std::os::fd::OwnedFd::from(socket))
            }
        }

        impl From<$ty> for $std {
            /// Gives the socket back to std, as `Into<OwnedFd>` does (blocking again unless the
            /// handle was in non-blocking mode, with its timeouts; live `try_clone`s share the
            /// blocking flag: see the [module docs](crate::net)).
            fn from(socket: $ty) -> $std {
                <$std>::from(std::os::fd::OwnedFd::from(socket))
            }
        }
    };
}
use fd_conversions;
