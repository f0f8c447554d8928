//! A proxy in front of moto that answers chosen DynamoDB requests with
//! DynamoDB's throttling error, the way an on-demand table answers writes
//! to a hot partition, and forwards everything else untouched.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// Which requests to refuse, and how many more times.
#[derive(Default)]
struct Rule {
    /// The operation (`X-Amz-Target` suffix), e.g. `UpdateItem`.
    operation: String,
    /// Text the request body must contain (a key, an expression).
    body_contains: String,
    remaining: usize,
}

/// The proxy; it stops with the test's runtime.
pub(crate) struct Throttler {
    /// Point the DynamoDB client here.
    pub(crate) endpoint: String,
    rule: Arc<Mutex<Rule>>,
    hits: Arc<AtomicUsize>,
}

impl Throttler {
    /// Forwards to `upstream` (moto) until told to throttle.
    pub(crate) async fn start(upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let rule = Arc::new(Mutex::new(Rule::default()));
        let hits = Arc::new(AtomicUsize::new(0));
        let http = reqwest::Client::new();
        let (r, h) = (rule.clone(), hits.clone());
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (rule, hits, http, upstream) =
                    (r.clone(), h.clone(), http.clone(), upstream.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        handle(
                            req,
                            rule.clone(),
                            hits.clone(),
                            http.clone(),
                            upstream.clone(),
                        )
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        Self {
            endpoint,
            rule,
            hits,
        }
    }

    /// Throttles the next `times` requests of `operation` whose body
    /// contains `body_contains`.
    pub(crate) fn throttle(&self, operation: &str, body_contains: &str, times: usize) {
        *self.rule.lock().unwrap() = Rule {
            operation: operation.to_owned(),
            body_contains: body_contains.to_owned(),
            remaining: times,
        };
    }

    /// Requests refused so far.
    pub(crate) fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn handle(
    req: Request<Incoming>,
    rule: Arc<Mutex<Rule>>,
    hits: Arc<AtomicUsize>,
    http: reqwest::Client,
    upstream: String,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let refuse = {
        let mut rule = rule.lock().unwrap();
        let matches = rule.remaining > 0
            && target.ends_with(&format!(".{}", rule.operation))
            && String::from_utf8_lossy(&body).contains(&rule.body_contains);
        if matches {
            rule.remaining -= 1;
        }
        matches
    };
    if refuse {
        hits.fetch_add(1, Ordering::SeqCst);
        // What DynamoDB answers when a partition is past its throughput.
        let error = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Throughput exceeds the current capacity of your table or index."}"#;
        let mut response = Response::new(Full::new(Bytes::from_static(error.as_bytes())));
        *response.status_mut() = hyper::StatusCode::BAD_REQUEST;
        response.headers_mut().insert(
            "content-type",
            hyper::header::HeaderValue::from_static("application/x-amz-json-1.0"),
        );
        return Ok(response);
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut forward = http.request(parts.method, format!("{upstream}{path}"));
    for (name, value) in &parts.headers {
        if name != hyper::header::HOST {
            forward = forward.header(name, value);
        }
    }
    let Ok(answer) = forward.body(body).send().await else {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = hyper::StatusCode::BAD_GATEWAY;
        return Ok(response);
    };
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        response = response.header(name, value);
    }
    let bytes = answer.bytes().await.unwrap_or_default();
    Ok(response.body(Full::new(bytes)).unwrap())
}
