//! A minimal HTTP/1.1 "hello world" server with keep-alive, written as plain blocking code:
//! one coroutine per connection, which treats everything the client sends as hostile.
//!
//! ```text
//! cargo run --release --example http_hello                # listens on 127.0.0.1:8080
//! cargo run --release --example http_hello -- 0.0.0.0:9000
//! curl -v http://127.0.0.1:8080/
//! wrk -t1 -c100 -d3s http://127.0.0.1:8080/
//! ```
//!
//! What it answers:
//!
//! * `GET /` or `HEAD /`: `200` with `Hello, world!`; another path: `404`; another method: `405`
//!   (its body, if any, is read and discarded first, so the connection stays usable).
//! * A malformed request line or header line (bad method token, stray spaces, control bytes,
//!   obsolete line folding, a bad or conflicting `Content-Length`, an HTTP/1.1 request without
//!   exactly one `Host`): `400`, then the connection is closed.
//! * A request head (request line and headers) over 8 KiB: `431`, then close.
//! * An HTTP version other than 1.0 and 1.1: `505`, then close.
//! * A `Content-Length` over 1 MiB: `413`, then close (the body is not read); `Transfer-Encoding`
//!   (chunked bodies are not supported): `501`, then close.
//! * A client that does not finish its request within 10 s of the server starting to wait for
//!   it (head and body: a deadline, not a per-read timeout, so trickling one byte at a time does
//!   not extend it): `408`, then close; an idle keep-alive connection is closed silently. Writes
//!   to a client that stops reading time out after 10 s as well.
//! * Pipelined requests are answered in order, the answers to everything already buffered going
//!   out in one write. `Connection: close` is honoured; HTTP/1.0 keeps the connection only with
//!   `Connection: keep-alive`.
//!
//! After an error response the server shuts down its sending side and discards what the client
//! still sends for up to a second before closing (a "lingering close"), so that the client
//! reads the response rather than a reset.
//!
//! Ctrl-C stops it cleanly: the handler shuts the listening socket down, `incoming()` ends, and
//! dropping the runtime unwinds the connection coroutines. A second Ctrl-C exits at once.
//!
//! The parser ([`parse_request`] and the small functions under it) is pure and unit-tested:
//! `cargo test --example http_hello` (it also runs under `cargo test`).

use corun::net::{TcpListener, TcpStream};
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DEFAULT_ADDR: &str = "127.0.0.1:8080";
/// Largest request head (request line plus headers, with their line ends).
const MAX_HEAD: usize = 8 * 1024;
/// Largest request body the server reads (and discards).
const MAX_BODY: u64 = 1024 * 1024;
/// Time a client has to send a whole request, from when the server starts waiting for it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a write may wait for a client that does not read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing connection keeps discarding input after an error response.
const LINGER: Duration = Duration::from_secs(1);
const HELLO: &[u8] = b"Hello, world!\n";

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| DEFAULT_ADDR.to_owned());
    let runtime = corun::Runtime::new()?;
    let listener = TcpListener::bind(&addr)?;
    println!("http_hello listening on http://{}/", listener.local_addr()?);

    // Cleared (under the lock) before the listener closes, so the handler never shuts down a
    // descriptor number that was reused since.
    let stop_fd: Arc<Mutex<Option<RawFd>>> = Arc::new(Mutex::new(Some(listener.as_raw_fd())));
    let handler_fd = stop_fd.clone();
    ctrlc::set_handler(move || {
        if let Some(fd) = handler_fd.lock().unwrap().take() {
            eprintln!("\nstopping");
            // SAFETY: the listener's descriptor, still open: main takes it out of the mutex
            // before dropping the listener.
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
        } else {
            // A second Ctrl-C (or one while shutting down): stop at once.
            eprintln!("\nstopping at once");
            std::process::exit(130);
        }
    })
    .map_err(io::Error::other)?;

    runtime.block_on(|| {
        let mut backoff = AcceptBackoff::default();
        for stream in listener.incoming() {
            match stream {
                Ok(stream) => {
                    backoff.succeeded();
                    corun::spawn(move || {
                        if let Err(e) = serve(stream) {
                            if !matches!(
                                e.kind(),
                                io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
                            ) {
                                eprintln!("connection: {e}");
                            }
                        }
                    });
                }
                // Out of descriptors (the listener stays ready, so trying again at once would
                // spin), a connection reset before it was accepted...: wait a little, go on.
                Err(e) => backoff.failed(&e),
            }
        }
    });

    stop_fd.lock().unwrap().take();
    drop(listener);
    drop(runtime);
    println!("bye");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The connection loop

/// Serves one connection: requests in order until the client closes, asks to close, or errs.
fn serve(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    // Start of the unparsed input in `buf`; what is before it has been handled.
    let mut start = 0;
    // Responses not yet written: everything answered since the last read.
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    loop {
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        // Parse what is buffered, reading more while the head is incomplete.
        let (status, method, keep_alive, body_len, head_len) = loop {
            match parse_request(&buf[start..]) {
                Parsed::Request(head, head_len) => {
                    let status = route(&head);
                    break (
                        status,
                        head.method == "HEAD",
                        head.keep_alive,
                        head.content_length,
                        head_len,
                    );
                }
                Parsed::Error(status) => return close_with(stream, &mut out, status),
                Parsed::Incomplete => {}
            }
            // About to wait: send what has been answered so far.
            if !out.is_empty() {
                stream.write_all(&out)?;
                out.clear();
            }
            buf.drain(..start);
            start = 0;
            match read_more(&mut stream, &mut buf, deadline) {
                Ok(0) => return Ok(()), // closed; an unfinished request gets no answer
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    // Cut off. A client that had started a request is told why; an idle
                    // keep-alive connection just closes.
                    return if buf.iter().all(|b| matches!(b, b'\r' | b'\n')) {
                        Ok(())
                    } else {
                        close_with(stream, &mut out, Status::RequestTimeout)
                    };
                }
                Err(e) => return Err(e),
            }
        };
        start += head_len;

        // The body: refuse it if too large, otherwise read and discard it.
        if body_len > MAX_BODY {
            return close_with(stream, &mut out, Status::PayloadTooLarge);
        }
        let mut body_left = body_len as usize;
        let buffered = body_left.min(buf.len() - start);
        start += buffered;
        body_left -= buffered;
        if body_left > 0 {
            buf.clear();
            start = 0;
            match discard(&mut stream, body_left, deadline) {
                Ok(true) => {}
                Ok(false) => return Ok(()), // closed mid-body
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    return close_with(stream, &mut out, Status::RequestTimeout)
                }
                Err(e) => return Err(e),
            }
        }

        write_response(&mut out, status, method, keep_alive);
        if !keep_alive {
            stream.write_all(&out)?;
            return linger_and_close(stream);
        }
    }
}

/// What a well-formed request gets: the hello page at `/`, 404 elsewhere, 405 for methods
/// other than GET and HEAD.
fn route(head: &Head<'_>) -> Status {
    if head.method != "GET" && head.method != "HEAD" {
        Status::MethodNotAllowed
    } else if head.path == "/" {
        Status::Ok
    } else {
        Status::NotFound
    }
}

/// Reads once into the spare end of `buf`, waiting until `deadline` at most (then `TimedOut`).
fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>, deadline: Instant) -> io::Result<usize> {
    let len = buf.len();
    buf.resize(len + 8192, 0);
    let result = read_until(stream, &mut buf[len..], deadline);
    buf.truncate(len + *result.as_ref().unwrap_or(&0));
    result
}

/// Reads and throws away `n` bytes. `Ok(false)` if the client closed first.
fn discard(stream: &mut TcpStream, mut n: usize, deadline: Instant) -> io::Result<bool> {
    let mut scratch = [0u8; 8192];
    while n > 0 {
        let want = n.min(scratch.len());
        match read_until(stream, &mut scratch[..want], deadline)? {
            0 => return Ok(false),
            got => n -= got,
        }
    }
    Ok(true)
}

/// One `read`, given whatever time is left until `deadline`; a timeout is `TimedOut`.
fn read_until(stream: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(io::ErrorKind::TimedOut.into())
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            result => return result,
        }
    }
}

/// Sends what is pending plus an error response, then closes gracefully.
fn close_with(mut stream: TcpStream, out: &mut Vec<u8>, status: Status) -> io::Result<()> {
    write_response(out, status, false, false);
    stream.write_all(out)?;
    linger_and_close(stream)
}

/// Shuts down the sending side, then discards what the client still sends (for `LINGER` at
/// most) before closing: closing with unread input would reset the connection, and the client
/// could lose the response.
fn linger_and_close(mut stream: TcpStream) -> io::Result<()> {
    stream.shutdown(Shutdown::Write)?;
    let deadline = Instant::now() + LINGER;
    let mut scratch = [0u8; 4096];
    while let Ok(1..) = read_until(&mut stream, &mut scratch, deadline) {}
    Ok(())
}

/// Appends a response: the hello page, or a short text explaining `status`. Errors and
/// `keep_alive == false` add `Connection: close`; `head_only` (a HEAD request) omits the body.
fn write_response(out: &mut Vec<u8>, status: Status, head_only: bool, keep_alive: bool) {
    let body: &[u8] = match status {
        Status::Ok => HELLO,
        other => other.reason().as_bytes(),
    };
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n",
        status.code(),
        status.reason(),
        body.len() + usize::from(status != Status::Ok),
    );
    if status == Status::MethodNotAllowed {
        out.extend_from_slice(b"Allow: GET, HEAD\r\n");
    }
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(body);
        if status != Status::Ok {
            out.push(b'\n');
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing (pure functions)

/// The statuses this server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    PayloadTooLarge,
    HeaderFieldsTooLarge,
    NotImplemented,
    VersionNotSupported,
}

impl Status {
    fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::BadRequest => 400,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::RequestTimeout => 408,
            Status::PayloadTooLarge => 413,
            Status::HeaderFieldsTooLarge => 431,
            Status::NotImplemented => 501,
            Status::VersionNotSupported => 505,
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::BadRequest => "Bad Request",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::RequestTimeout => "Request Timeout",
            Status::PayloadTooLarge => "Content Too Large",
            Status::HeaderFieldsTooLarge => "Request Header Fields Too Large",
            Status::NotImplemented => "Not Implemented",
            Status::VersionNotSupported => "HTTP Version Not Supported",
        }
    }
}

/// The HTTP versions served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    Http10,
    Http11,
}

/// What the server needs from a request head.
#[derive(Debug, PartialEq, Eq)]
struct Head<'a> {
    method: &'a str,
    /// The path of the target, without the query (`/` for `*` and for an absolute URI without
    /// a path).
    path: &'a str,
    version: Version,
    content_length: u64,
    /// Whether the connection stays open after the response.
    keep_alive: bool,
}

/// The result of looking at the buffered input.
#[derive(Debug, PartialEq, Eq)]
enum Parsed<'a> {
    /// A whole head, and its length in bytes (including the empty lines skipped before it).
    Request(Head<'a>, usize),
    /// Not a whole head yet, and nothing wrong so far.
    Incomplete,
    /// The response to send before closing.
    Error(Status),
}

/// Parses the request head at the start of `input`, if it is all there.
fn parse_request(input: &[u8]) -> Parsed<'_> {
    // Empty lines before a request line are ignored (RFC 9112, 2.2); they count toward the limit.
    let skip = input
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(input.len());
    let Some(end) = head_end(input, skip) else {
        if input.len() > MAX_HEAD {
            return Parsed::Error(Status::HeaderFieldsTooLarge);
        }
        // Reject a bad request line without waiting for the rest of the head.
        let rest = &input[skip..];
        return match rest.iter().position(|&b| b == b'\n') {
            Some(eol) => match parse_request_line(strip_cr(&rest[..eol])) {
                Ok(_) => Parsed::Incomplete,
                Err(status) => Parsed::Error(status),
            },
            None if rest.iter().all(|&b| is_request_line_byte(b) || b == b'\r') => {
                Parsed::Incomplete
            }
            None => Parsed::Error(Status::BadRequest),
        };
    };
    if end > MAX_HEAD {
        return Parsed::Error(Status::HeaderFieldsTooLarge);
    }
    match parse_head(&input[skip..end]) {
        Ok(head) => Parsed::Request(head, end),
        Err(status) => Parsed::Error(status),
    }
}

/// The index just past the empty line that ends the head starting at `from`, if it is there.
/// Lines end in CRLF or a bare LF.
fn head_end(input: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(nl) = input[i..].iter().position(|&b| b == b'\n') {
        let next = i + nl + 1;
        match input.get(next..) {
            Some([b'\n', ..]) => return Some(next + 1),
            Some([b'\r', b'\n', ..]) => return Some(next + 2),
            _ => i = next,
        }
    }
    None
}

/// A line without its CR (the LF is already gone).
fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Parses a complete head: the request line, then header lines, then the empty line.
fn parse_head(head: &[u8]) -> Result<Head<'_>, Status> {
    let mut lines = head.split(|&b| b == b'\n').map(strip_cr);
    let (method, target, version) = parse_request_line(lines.next().unwrap_or_default())?;
    let path = match target {
        "*" if method == "OPTIONS" => "/",
        "*" => return Err(Status::BadRequest),
        t => path_of(t).ok_or(Status::BadRequest)?,
    };

    let mut content_length: Option<u64> = None;
    let mut too_long = false;
    let mut hosts = 0;
    let (mut close, mut keep_alive_asked) = (false, false);
    for line in lines.take_while(|l| !l.is_empty()) {
        let (name, value) = parse_header_line(line)?;
        if name.eq_ignore_ascii_case("content-length") {
            match parse_content_length(value)? {
                Some(n) if content_length.is_some_and(|c| c != n) => {
                    return Err(Status::BadRequest)
                }
                Some(n) => content_length = Some(n),
                None => too_long = true,
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Status::NotImplemented);
        } else if name.eq_ignore_ascii_case("host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case("connection") {
            for option in value.split(|&b| b == b',') {
                let option = trim_ows(option);
                close |= option.eq_ignore_ascii_case(b"close");
                keep_alive_asked |= option.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    if version == Version::Http11 && hosts != 1 {
        return Err(Status::BadRequest);
    }
    if too_long {
        return Err(Status::PayloadTooLarge);
    }
    let keep_alive = match version {
        Version::Http11 => !close,
        Version::Http10 => keep_alive_asked && !close,
    };
    Ok(Head {
        method,
        path,
        version,
        content_length: content_length.unwrap_or(0),
        keep_alive,
    })
}

/// `method SP request-target SP HTTP-version`, with single spaces and nothing else.
fn parse_request_line(line: &[u8]) -> Result<(&str, &str, Version), Status> {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Status::BadRequest);
    };
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(Status::BadRequest);
    }
    if target.is_empty() || !target.iter().all(|&b| b.is_ascii_graphic()) {
        return Err(Status::BadRequest);
    }
    let version = parse_version(version)?;
    // Both are ASCII, checked above.
    let method = std::str::from_utf8(method).map_err(|_| Status::BadRequest)?;
    let target = std::str::from_utf8(target).map_err(|_| Status::BadRequest)?;
    Ok((method, target, version))
}

/// `HTTP/1.1` and `HTTP/1.0` are served; another well-formed `HTTP/d.d` is 505; anything
/// else is malformed.
fn parse_version(version: &[u8]) -> Result<Version, Status> {
    match version {
        b"HTTP/1.1" => Ok(Version::Http11),
        b"HTTP/1.0" => Ok(Version::Http10),
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            Err(Status::VersionNotSupported)
        }
        _ => Err(Status::BadRequest),
    }
}

/// The path of an origin-form (`/a/b?q`) or absolute-form (`http://host/a/b?q`) target.
fn path_of(target: &str) -> Option<&str> {
    let path = if target.starts_with('/') {
        target
    } else {
        let rest = target
            .strip_prefix("http://")
            .or_else(|| target.strip_prefix("https://"))?;
        match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => &rest[i..],
            _ => "/",
        }
    };
    Some(path.split('?').next().unwrap_or(path))
}

/// `name: value`: a token, a colon right after it, optional whitespace around the value, and
/// no control bytes in the value (obsolete line folding, a line starting with whitespace, is
/// rejected too: the name would be empty).
fn parse_header_line(line: &[u8]) -> Result<(&str, &[u8]), Status> {
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(Status::BadRequest)?;
    let (name, value) = (&line[..colon], trim_ows(&line[colon + 1..]));
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err(Status::BadRequest);
    }
    if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(Status::BadRequest);
    }
    let name = std::str::from_utf8(name).map_err(|_| Status::BadRequest)?;
    Ok((name, value))
}

/// A `Content-Length` value: digits only. `Ok(None)` if it is too large to represent (so
/// certainly over the limit).
fn parse_content_length(value: &[u8]) -> Result<Option<u64>, Status> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(Status::BadRequest);
    }
    Ok(std::str::from_utf8(value).ok().and_then(|v| v.parse().ok()))
}

/// Trims spaces and tabs at both ends.
fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// A token character (RFC 9110, 5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A byte that may appear in a request line (visible ASCII and the space).
fn is_request_line_byte(b: u8) -> bool {
    b == b' ' || b.is_ascii_graphic()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(input: &str) -> (Head<'_>, usize) {
        match parse_request(input.as_bytes()) {
            Parsed::Request(head, len) => (head, len),
            other => panic!("{input:?}: {other:?}"),
        }
    }

    fn error(input: &[u8]) -> Status {
        match parse_request(input) {
            Parsed::Error(status) => status,
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(input)),
        }
    }

    #[test]
    fn simple_get() {
        let input = "GET /index?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\nGET / HTTP/1.1";
        let (head, len) = request(input);
        assert_eq!(
            head,
            Head {
                method: "GET",
                path: "/index",
                version: Version::Http11,
                content_length: 0,
                keep_alive: true
            }
        );
        assert_eq!(&input[len..], "GET / HTTP/1.1");
    }

    #[test]
    fn bare_lf_and_leading_empty_lines() {
        let (head, len) = request("\r\n\nGET / HTTP/1.1\nHost: a\n\n");
        assert_eq!(head.path, "/");
        assert_eq!(len, 27);
    }

    #[test]
    fn incomplete() {
        for input in [
            "",
            "\r\n",
            "GE",
            "GET / HTTP/1.1\r",
            "GET / HTTP/1.1\r\nHost: a\r\n",
        ] {
            assert_eq!(
                parse_request(input.as_bytes()),
                Parsed::Incomplete,
                "{input:?}"
            );
        }
    }

    #[test]
    fn malformed_request_lines() {
        for line in [
            "GET  / HTTP/1.1",
            "GET / HTTP/1.1 ",
            " GET / HTTP/1.1",
            "GET /",
            "GET / HTTP/1.1 extra",
            "G(T / HTTP/1.1",
            "GET / http/1.1",
            "GET / HTTP/1",
            "GET / HTTP/1.10",
            "GET foo HTTP/1.1",
            "GET * HTTP/1.1",
        ] {
            let input = format!("{line}\r\nHost: a\r\n\r\n");
            assert_eq!(error(input.as_bytes()), Status::BadRequest, "{line:?}");
        }
        // Found as soon as the line is complete, or as soon as a bad byte arrives.
        assert_eq!(error(b"GET  / HTTP/1.1\r\n"), Status::BadRequest);
        assert_eq!(error(b"GET /\x00"), Status::BadRequest);
        assert_eq!(error(b"\x16\x03\x01\x02\x00"), Status::BadRequest); // a TLS hello
    }

    #[test]
    fn versions() {
        assert_eq!(
            error(b"GET / HTTP/2.0\r\n\r\n"),
            Status::VersionNotSupported
        );
        assert_eq!(error(b"GET / HTTP/0.9\r\n"), Status::VersionNotSupported);
        let (head, _) = request("GET / HTTP/1.0\r\n\r\n");
        assert_eq!((head.version, head.keep_alive), (Version::Http10, false));
        let (head, _) = request("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        assert!(head.keep_alive);
    }

    #[test]
    fn connection_close() {
        let (head, _) = request("GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n");
        assert!(!head.keep_alive);
    }

    #[test]
    fn host_required_once_in_1_1() {
        assert_eq!(error(b"GET / HTTP/1.1\r\n\r\n"), Status::BadRequest);
        assert_eq!(
            error(b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"),
            Status::BadRequest
        );
    }

    #[test]
    fn bad_header_lines() {
        for line in [
            "NoColon",
            ": empty-name",
            "Bad Name: x",
            "Name : x",
            " folded: x",
            "X: a\x01b",
        ] {
            let input = format!("GET / HTTP/1.1\r\nHost: a\r\n{line}\r\n\r\n");
            assert_eq!(error(input.as_bytes()), Status::BadRequest, "{line:?}");
        }
        let (_, _) = request("GET / HTTP/1.1\r\nHost: a\r\nX: \tspaced value\t \r\n\r\n");
    }

    #[test]
    fn content_length() {
        let (head, len) = request("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello");
        assert_eq!((head.content_length, len), (5, 47));
        let (head, _) =
            request("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n");
        assert_eq!(head.content_length, 5);
        for value in ["-1", "+5", "5 5", "0x10", ""] {
            let input = format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {value}\r\n\r\n");
            assert_eq!(error(input.as_bytes()), Status::BadRequest, "{value:?}");
        }
        assert_eq!(
            error(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Status::BadRequest
        );
        assert_eq!(
            error(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
            Status::PayloadTooLarge
        );
    }

    #[test]
    fn transfer_encoding_not_implemented() {
        assert_eq!(
            error(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Status::NotImplemented
        );
    }

    #[test]
    fn head_limit() {
        let mut big = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
        big.resize(MAX_HEAD + 1, b'a');
        assert_eq!(error(&big), Status::HeaderFieldsTooLarge); // incomplete and too long
        big.extend_from_slice(b"\r\n\r\n");
        assert_eq!(error(&big), Status::HeaderFieldsTooLarge); // complete and too long
        let mut fits = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
        fits.resize(MAX_HEAD - 4, b'a');
        fits.extend_from_slice(b"\r\n\r\n");
        assert!(matches!(parse_request(&fits), Parsed::Request(_, MAX_HEAD)));
    }

    #[test]
    fn targets() {
        assert_eq!(path_of("/a/b?c"), Some("/a/b"));
        assert_eq!(path_of("http://h:1/x?y"), Some("/x"));
        assert_eq!(path_of("http://h?y"), Some("/"));
        assert_eq!(path_of("ftp://h/"), None);
        let (head, _) = request("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(route(&head), Status::MethodNotAllowed);
    }

    #[test]
    fn responses() {
        let mut out = Vec::new();
        write_response(&mut out, Status::Ok, false, true);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n\r\nHello, world!\n"
        );
        out.clear();
        write_response(&mut out, Status::BadRequest, true, false);
        assert_eq!(
            out,
            &b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 12\r\nConnection: close\r\n\r\n"[..]
        );
    }
}

/// What the accept loop does after an error: most likely the process is out of descriptors,
/// and the pending connection stays queued (the listener stays ready), so trying again at once
/// would spin. Wait 5 ms, doubling up to 1 s while the errors go on (Go's net/http does the
/// same), and report the first error of each streak rather than every attempt.
#[derive(Default)]
struct AcceptBackoff {
    delay: Option<std::time::Duration>,
}

impl AcceptBackoff {
    fn failed(&mut self, error: &std::io::Error) {
        let delay = match self.delay {
            None => {
                eprintln!("accept: {error} (retrying with back-off)");
                std::time::Duration::from_millis(5)
            }
            Some(delay) => (delay * 2).min(std::time::Duration::from_secs(1)),
        };
        self.delay = Some(delay);
        corun::sleep(delay);
    }

    fn succeeded(&mut self) {
        self.delay = None;
    }
}
