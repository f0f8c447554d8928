//! A keep-alive HTTP/1.1 client for one origin, made for the one request
//! a fan-out sends per recipient (PostToConnection).
//!
//! A general client (reqwest over hyper-util's pool) spends most of a
//! post's client-side CPU on what this request never needs: URL parsing
//! and conversion, redirect and retry layers, a cloned connector per call,
//! header maps, and a hand-off to a separate task that owns the
//! connection (BENCHMARKS.md, "The HTTP floor"). Here the caller's task
//! does the exchange itself: one write of head and body, reads until the
//! answer is framed, and the connection goes back to the pool. One
//! request at a time per connection (no pipelining: POST is not
//! idempotent, RFC 9112 §9.3.2), as many connections as posts in flight.
//!
//! Answers are framed by `Content-Length`, `Transfer-Encoding: chunked`,
//! or the end of the connection; anything not cleanly framed, any
//! `Connection: close`, and any call dropped mid-exchange (the caller's
//! timeout) leaves the connection out of the pool.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;

/// An answer's head may be this long; API Gateway's are a few hundred bytes.
const MAX_HEAD: usize = 16 * 1024;
/// An answer's body may be this long; PostToConnection answers with at
/// most a short JSON error.
const MAX_BODY: usize = 1024 * 1024;
/// Headers an answer may carry.
const MAX_HEADERS: usize = 64;

/// How the pool connects and how long it keeps connections.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// Connecting (TCP and TLS) must finish within this. Default 3.1 s,
    /// the SDK's connect timeout.
    pub(crate) connect_timeout: Duration,
    /// A connection idle for longer is closed rather than reused. Default
    /// 90 s.
    pub(crate) idle_timeout: Duration,
    /// Idle connections kept at most. Default 256.
    pub(crate) max_idle: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_millis(3100),
            idle_timeout: Duration::from_secs(90),
            max_idle: 256,
        }
    }
}

/// Why an exchange failed. Every variant leaves the connection closed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Http1Error {
    /// No connection could be made (refused, unresolvable, TLS refused, or
    /// not within the connect timeout). Nothing was sent: retry later.
    #[error("could not connect to {authority}: {source}")]
    Connect {
        authority: String,
        source: io::Error,
    },
    /// The connection failed while the request was sent or its answer
    /// read. The request may have been served: retry as for any transport
    /// failure.
    #[error("connection failed: {0}")]
    Io(#[from] io::Error),
    /// The answer was not well-formed HTTP/1.x, or over the size limits.
    #[error("malformed answer: {0}")]
    Malformed(&'static str),
}

/// An answer. Only a failure's head and body are kept (for the caller to
/// read its error type and message); a success's are skipped.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    head: Vec<u8>,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    /// A header of a failed answer, by name (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut headers);
        parsed.parse(&self.head).ok()?;
        let value = parsed
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))?
            .value;
        std::str::from_utf8(value).ok().map(str::to_owned)
    }
}

/// Connections to one origin (`http://` or `https://`, host and port).
pub(crate) struct Http1 {
    /// `host[:port]`, as the `Host` header carries it.
    authority: String,
    /// Host and port to connect to.
    host: String,
    port: u16,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    settings: Settings,
    idle: Mutex<Vec<Idle>>,
}

struct Idle {
    conn: Conn,
    since: Instant,
}

impl Http1 {
    /// For `authority` (`host[:port]`); `tls` for an `https://` origin.
    /// `None` if the authority has no usable host or port.
    pub(crate) fn new(
        authority: &str,
        tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
        settings: Settings,
    ) -> Option<Self> {
        let default_port = if tls.is_some() { 443 } else { 80 };
        let (host, port) = split_authority(authority, default_port)?;
        let tls = match tls {
            Some(config) => {
                let name = ServerName::try_from(host.clone()).ok()?;
                Some((TlsConnector::from(config), name))
            }
            None => None,
        };
        Some(Self {
            authority: authority.to_owned(),
            host,
            port,
            tls,
            settings,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// `host[:port]`, as sent in `Host` (and signed).
    pub(crate) fn authority(&self) -> &str {
        &self.authority
    }

    /// `POST path` with `headers` (besides `host` and `content-length`,
    /// which it adds) and `body`, on a pooled connection or a new one.
    pub(crate) async fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Reply, Http1Error> {
        let mut request = Vec::with_capacity(256 + body.len());
        write_head(&mut request, path, &self.authority, headers, body.len());
        request.extend_from_slice(body);
        let (mut conn, reused) = match self.checkout() {
            Some(c) => (c, true),
            None => (self.connect().await?, false),
        };
        let mut outcome = conn.exchange(&request).await;
        if reused && outcome.is_err() && !conn.answered {
            // The server closed the idle connection as the request went out
            // (nothing came back): once more, on a new connection, as
            // clients do for a connection that went stale in the pool.
            conn = self.connect().await?;
            outcome = conn.exchange(&request).await;
        }
        let (reply, reusable) = outcome?;
        if reusable {
            self.checkin(conn);
        }
        Ok(reply)
    }

    /// The most recently used idle connection that is still open.
    fn checkout(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(Idle { conn, since }) = idle.pop() {
            if since.elapsed() < self.settings.idle_timeout && conn.still_open() {
                return Some(conn);
            }
        }
        None
    }

    fn checkin(&self, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.settings.max_idle {
            idle.push(Idle {
                conn,
                since: Instant::now(),
            });
        }
    }

    async fn connect(&self) -> Result<Conn, Http1Error> {
        let connecting = async {
            let tcp = TcpStream::connect((self.host.as_str(), self.port)).await?;
            tcp.set_nodelay(true)?;
            Ok::<_, io::Error>(match &self.tls {
                None => Stream::Plain(tcp),
                Some((connector, name)) => {
                    Stream::Tls(Box::new(connector.connect(name.clone(), tcp).await?))
                }
            })
        };
        let failed = |source| Http1Error::Connect {
            authority: self.authority.clone(),
            source,
        };
        match tokio::time::timeout(self.settings.connect_timeout, connecting).await {
            Ok(Ok(stream)) => Ok(Conn {
                stream,
                buf: Vec::with_capacity(1024),
                answered: false,
            }),
            Ok(Err(e)) => Err(failed(e)),
            Err(_) => Err(failed(io::Error::new(
                io::ErrorKind::TimedOut,
                "connect timeout",
            ))),
        }
    }
}

/// `host[:port]` (IPv6 hosts in brackets) into host and port.
fn split_authority(authority: &str, default_port: u16) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after.strip_prefix(':') {
            Some(p) => (host, p.parse().ok()?),
            None if after.is_empty() => (host, default_port),
            None => return None,
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().ok()?),
            None => (authority, default_port),
        }
    };
    (!host.is_empty()).then(|| (host.to_owned(), port))
}

fn write_head(
    out: &mut Vec<u8>,
    path: &str,
    authority: &str,
    headers: &[(&str, &str)],
    len: usize,
) {
    out.extend_from_slice(b"POST ");
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(authority.as_bytes());
    for (name, value) in headers {
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
    }
    out.extend_from_slice(b"\r\ncontent-length: ");
    out.extend_from_slice(len.to_string().as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
}

/// One connection and what has been read from it but not yet used.
struct Conn {
    stream: Stream,
    buf: Vec<u8>,
    /// Whether any of the current exchange's answer has arrived.
    answered: bool,
}

/// How an answer's body ends.
enum Framing {
    None,
    Length(usize),
    Chunked,
    UntilClose,
}

impl Conn {
    /// Whether an idle connection is still usable: the peer has not closed
    /// it nor sent anything unasked. Costs no system call unless the
    /// runtime has seen the socket become readable.
    fn still_open(&self) -> bool {
        let tcp = self.stream.tcp();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match tcp.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            Poll::Ready(Ok(())) => {
                let mut byte = [0u8; 1];
                matches!(tcp.try_read(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
        }
    }

    /// Sends `request` and reads its answer; also says whether the
    /// connection can carry another request.
    async fn exchange(&mut self, request: &[u8]) -> Result<(Reply, bool), Http1Error> {
        self.answered = false;
        self.stream.write_all(request).await?;
        self.stream.flush().await?;
        self.read_reply().await
    }

    /// Reads one answer (skipping informational ones).
    async fn read_reply(&mut self) -> Result<(Reply, bool), Http1Error> {
        loop {
            let (status, head_len, framing, mut reusable) = self.read_head().await?;
            let failed = !(200..300).contains(&status);
            let head = if failed {
                self.buf[..head_len].to_vec()
            } else {
                Vec::new()
            };
            self.buf.drain(..head_len);
            if (100..200).contains(&status) {
                continue;
            }
            let body = match framing {
                Framing::None => Vec::new(),
                Framing::Length(n) => self.read_exact_body(n).await?,
                Framing::Chunked => self.read_chunked().await?,
                Framing::UntilClose => {
                    reusable = false;
                    self.read_until_close().await?
                }
            };
            // Bytes after the answer were never asked for.
            reusable &= self.buf.is_empty();
            let body = if failed { body } else { Vec::new() };
            return Ok((Reply { status, head, body }, reusable));
        }
    }

    /// Reads until a whole head is buffered; its status, length, framing,
    /// and whether the connection stays open after it.
    async fn read_head(&mut self) -> Result<(u16, usize, Framing, bool), Http1Error> {
        loop {
            if let Some(parsed) = parse_head(&self.buf)? {
                return Ok(parsed);
            }
            if self.buf.len() >= MAX_HEAD {
                return Err(Http1Error::Malformed("head over 16 KiB"));
            }
            self.fill().await?;
        }
    }

    async fn read_exact_body(&mut self, n: usize) -> Result<Vec<u8>, Http1Error> {
        while self.buf.len() < n {
            self.fill().await?;
        }
        Ok(self.buf.drain(..n).collect())
    }

    async fn read_chunked(&mut self) -> Result<Vec<u8>, Http1Error> {
        let mut body = Vec::new();
        loop {
            let (line, size) = loop {
                match httparse::parse_chunk_size(&self.buf) {
                    Ok(httparse::Status::Complete((line, size))) => break (line, size),
                    Ok(httparse::Status::Partial) if self.buf.len() < 1024 => self.fill().await?,
                    _ => return Err(Http1Error::Malformed("bad chunk size")),
                }
            };
            let size = usize::try_from(size).unwrap_or(usize::MAX);
            if size > MAX_BODY - body.len() {
                return Err(Http1Error::Malformed("body over 1 MiB"));
            }
            self.buf.drain(..line);
            if size == 0 {
                return self.skip_trailers().await.map(|()| body);
            }
            while self.buf.len() < size + 2 {
                self.fill().await?;
            }
            if &self.buf[size..size + 2] != b"\r\n" {
                return Err(Http1Error::Malformed("chunk not followed by CRLF"));
            }
            body.extend_from_slice(&self.buf[..size]);
            self.buf.drain(..size + 2);
        }
    }

    /// The trailer section after the last chunk, up to its empty line.
    async fn skip_trailers(&mut self) -> Result<(), Http1Error> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let empty = end == 0;
                self.buf.drain(..end + 2);
                if empty {
                    return Ok(());
                }
                continue;
            }
            if self.buf.len() >= MAX_HEAD {
                return Err(Http1Error::Malformed("trailers over 16 KiB"));
            }
            self.fill().await?;
        }
    }

    async fn read_until_close(&mut self) -> Result<Vec<u8>, Http1Error> {
        loop {
            if self.buf.len() > MAX_BODY {
                return Err(Http1Error::Malformed("body over 1 MiB"));
            }
            self.buf.reserve(4096);
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Ok(std::mem::take(&mut self.buf));
            }
            self.answered = true;
        }
    }

    /// Reads more into the buffer; the peer closing first is an error.
    async fn fill(&mut self) -> Result<(), Http1Error> {
        self.buf.reserve(4096);
        match self.stream.read_buf(&mut self.buf).await? {
            0 if !self.answered => Err(Http1Error::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed without an answer",
            ))),
            0 => Err(Http1Error::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before the answer was complete",
            ))),
            _ => {
                self.answered = true;
                Ok(())
            }
        }
    }
}

/// The head at the start of `buf`, if it is all there.
fn parse_head(buf: &[u8]) -> Result<Option<(u16, usize, Framing, bool)>, Http1Error> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut headers);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(Http1Error::Malformed("not an HTTP/1.x answer head")),
    };
    let status = parsed.code.unwrap_or(0);
    let mut reusable = parsed.version == Some(1);
    let mut length = None;
    let mut chunked = false;
    for h in parsed.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or(Http1Error::Malformed("bad content-length"))?;
            if length.is_some_and(|m| m != n) {
                return Err(Http1Error::Malformed("conflicting content-lengths"));
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // Only chunked is ever applied to an answer last (RFC 9112 §6.1).
            chunked = h
                .value
                .rsplit(|b| *b == b',')
                .next()
                .is_some_and(|v| v.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            if !chunked {
                reusable = false;
            }
        } else if h.name.eq_ignore_ascii_case("connection")
            && h.value
                .split(|b| *b == b',')
                .any(|v| v.trim_ascii().eq_ignore_ascii_case(b"close"))
        {
            reusable = false;
        }
    }
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::None
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        if n > MAX_BODY {
            return Err(Http1Error::Malformed("body over 1 MiB"));
        }
        Framing::Length(n)
    } else {
        // Neither: the body runs to the end of the connection (RFC 9112 §6.3).
        Framing::UntilClose
    };
    Ok(Some((status, len, framing, reusable)))
}

/// A plain or TLS connection.
enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref().0,
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests;
