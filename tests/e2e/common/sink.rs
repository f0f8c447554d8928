//! A local HTTP server that records every POST body (JSON), standing in
//! for a team's backend: a rule target's callback, a webhook.

use std::time::Duration;

use http_body_util::BodyExt;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// The deadlock detector for waiting on a post.
const WAIT: Duration = Duration::from_secs(20);

pub(crate) struct Sink {
    pub(crate) url: String,
    posts: mpsc::UnboundedReceiver<(String, Value)>,
    server: tokio::task::JoinHandle<()>,
}

impl Sink {
    /// Listens on 127.0.0.1 (a free port) until dropped.
    pub(crate) async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, posts) = mpsc::unbounded_channel();
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let tx = tx.clone();
                        async move {
                            let path = req.uri().path().to_owned();
                            let body = req.into_body().collect().await?.to_bytes();
                            let v = serde_json::from_slice(&body).unwrap_or(Value::Null);
                            let _ = tx.send((path, v));
                            Ok::<_, hyper::Error>(hyper::Response::new(http_body_util::Full::new(
                                bytes::Bytes::from_static(b"{}"),
                            )))
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { url, posts, server }
    }

    /// The next post whose path and body `pred` accepts, as (path, body);
    /// others are dropped.
    pub(crate) async fn next_where(
        &mut self,
        what: &str,
        pred: impl Fn(&str, &Value) -> bool,
    ) -> (String, Value) {
        tokio::time::timeout(WAIT, async {
            loop {
                let (path, v) = self.posts.recv().await.expect("the sink is running");
                if pred(&path, &v) {
                    return (path, v);
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no post with {what} within {WAIT:?}"))
    }

    /// The posts already received and not yet read.
    pub(crate) fn received(&mut self) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        while let Ok(p) = self.posts.try_recv() {
            out.push(p);
        }
        out
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.server.abort();
    }
}
