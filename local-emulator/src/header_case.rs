//! Header names as the client sent them. hyper keeps header names in
//! lower case, but API Gateway passes `$connect` and the REQUEST authorizer
//! the names exactly as the client wrote them (DESIGN.md §2; AWS's own
//! sample authorizer reads `headers.HeaderAuth1`). So the accept loop reads
//! the connection through [`Recording`], which keeps a copy of the bytes up
//! to the end of the first request's head, and the first request carries
//! the original spellings in an [`OriginalNames`] extension.
//!
//! Only the first request of a connection is covered: a WebSocket upgrade
//! is the first request on its connection in every client we know of. A
//! later request on a kept-alive connection gets lower-case names.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Longest head kept; hyper refuses longer ones anyway.
const MAX_HEAD: usize = 64 * 1024;

/// The bytes of a connection's first request head, as read so far.
#[derive(Clone, Default)]
pub(crate) struct Head(Arc<Mutex<HeadState>>);

#[derive(Default)]
struct HeadState {
    bytes: Vec<u8>,
    complete: bool,
}

impl Head {
    /// The original spelling of each header name of the recorded head,
    /// keyed by its lower-case form.
    pub(crate) fn original_names(&self) -> OriginalNames {
        let state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        OriginalNames(parse_names(&state.bytes))
    }

    fn record(&self, bytes: &[u8]) {
        let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if state.complete {
            return;
        }
        let room = MAX_HEAD.saturating_sub(state.bytes.len());
        state
            .bytes
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
        if state.bytes.windows(4).any(|w| w == b"\r\n\r\n") || state.bytes.len() >= MAX_HEAD {
            state.complete = true;
        }
    }
}

/// Lower-case header name → the name as the client sent it.
#[derive(Clone, Debug, Default)]
pub(crate) struct OriginalNames(HashMap<String, String>);

impl OriginalNames {
    /// The client's spelling of `name` (given in any case), or `name`.
    pub(crate) fn spelling<'a>(&'a self, name: &'a str) -> &'a str {
        self.0
            .get(&name.to_ascii_lowercase())
            .map_or(name, String::as_str)
    }
}

/// Header names from a request head: the lines after the request line, up
/// to the blank line, each up to its colon.
fn parse_names(head: &[u8]) -> HashMap<String, String> {
    let text = String::from_utf8_lossy(head);
    let end = text.find("\r\n\r\n").unwrap_or(text.len());
    text[..end]
        .split("\r\n")
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(name, _)| name.trim())
        .filter(|name| !name.is_empty())
        .map(|name| (name.to_ascii_lowercase(), name.to_owned()))
        .collect()
}

/// A stream that records what is read from it into a [`Head`] until the
/// first head is complete; writes pass straight through.
pub(crate) struct Recording<S> {
    inner: S,
    head: Head,
}

impl<S> Recording<S> {
    pub(crate) fn new(inner: S, head: Head) -> Self {
        Self { inner, head }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Recording<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let fresh = &buf.filled()[before..];
            if !fresh.is_empty() {
                self.head.record(fresh);
            }
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Recording<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_the_clients_spelling_and_the_body_is_ignored() {
        let head = Head::default();
        head.record(b"GET /prod?token=x HTTP/1.1\r\nHost: a\r\nHeaderAuth1: v\r\nX-MiXeD: 1");
        head.record(b"\r\nx-mixed: 2\r\n\r\nBody: not a header");
        let names = head.original_names();
        assert_eq!(names.spelling("headerauth1"), "HeaderAuth1");
        assert_eq!(names.spelling("host"), "Host");
        assert_eq!(names.spelling("body"), "body", "after the head");
        // A name sent twice in two spellings: one of them, consistently.
        assert!(["X-MiXeD", "x-mixed"].contains(&names.spelling("x-mixed")));
    }

    #[test]
    fn recording_stops_after_the_first_head() {
        let head = Head::default();
        head.record(b"GET / HTTP/1.1\r\nA: 1\r\n\r\n");
        head.record(b"GET / HTTP/1.1\r\nLater: 1\r\n\r\n");
        assert_eq!(head.original_names().spelling("later"), "later");
    }
}
