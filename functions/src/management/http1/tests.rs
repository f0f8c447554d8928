//! The client against a scripted server on 127.0.0.1: what it sends, how it
//! frames answers, when it reuses a connection, and its bad cases.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// One scripted answer: raw bytes, then whether the server closes.
struct Answer {
    bytes: Vec<u8>,
    close: bool,
}

fn answer(bytes: &str) -> Answer {
    Answer {
        bytes: bytes.as_bytes().to_vec(),
        close: false,
    }
}

fn closing(bytes: &str) -> Answer {
    Answer {
        bytes: bytes.as_bytes().to_vec(),
        close: true,
    }
}

/// A request as the server read it, and on which connection.
#[derive(Debug)]
struct Seen {
    connection: usize,
    head: String,
    body: Vec<u8>,
}

struct Server {
    authority: String,
    connections: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// Serves `answers` in order, one per request, across connections.
async fn serve(answers: Vec<Answer>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let authority = listener.local_addr().unwrap().to_string();
    let answers = Arc::new(Mutex::new(VecDeque::from(answers)));
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (count, log) = (connections.clone(), seen.clone());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let connection = count.fetch_add(1, Ordering::SeqCst) + 1;
            let (answers, log) = (answers.clone(), log.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                while let Some((head, body)) = read_request(&mut stream, &mut buf).await {
                    log.lock().unwrap().push(Seen {
                        connection,
                        head,
                        body,
                    });
                    let Some(next) = answers.lock().unwrap().pop_front() else {
                        return;
                    };
                    if stream.write_all(&next.bytes).await.is_err() || next.close {
                        return;
                    }
                }
            });
        }
    });
    Server {
        authority,
        connections,
        seen,
    }
}

/// One request (head and `content-length` body), or `None` at the end.
async fn read_request(
    stream: &mut tokio::net::TcpStream,
    buf: &mut Vec<u8>,
) -> Option<(String, Vec<u8>)> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(n)) = req.parse(buf) {
            let len: usize = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .map_or(0, |h| {
                    std::str::from_utf8(h.value).unwrap().parse().unwrap()
                });
            while buf.len() < n + len {
                if stream.read_buf(buf).await.ok()? == 0 {
                    return None;
                }
            }
            let head = String::from_utf8(buf[..n].to_vec()).unwrap();
            let body = buf[n..n + len].to_vec();
            buf.drain(..n + len);
            return Some((head, body));
        }
        if stream.read_buf(buf).await.ok()? == 0 {
            return None;
        }
    }
}

fn client(server: &Server) -> Http1 {
    Http1::new(&server.authority, None, Settings::default()).unwrap()
}

const OK: &str = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n";

#[tokio::test]
async fn sends_one_well_formed_post_and_reuses_the_connection() {
    let server = serve(vec![answer(OK), answer(OK), answer(OK)]).await;
    let http = client(&server);
    for body in [&b"one"[..], b"", b"three"] {
        let reply = http
            .post(
                "/prod/@connections/abc%3D",
                &[("x-amz-date", "20261206T000000Z")],
                body,
            )
            .await
            .unwrap();
        assert_eq!(reply.status, 200);
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 1, "kept alive");
    let seen = server.seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    let first = &seen[0];
    assert!(
        first
            .head
            .starts_with("POST /prod/@connections/abc%3D HTTP/1.1\r\n")
    );
    assert!(
        first
            .head
            .contains(&format!("\r\nhost: {}\r\n", server.authority))
    );
    assert!(first.head.contains("\r\nx-amz-date: 20261206T000000Z\r\n"));
    assert!(first.head.contains("\r\ncontent-length: 3\r\n"));
    assert_eq!(first.body, b"one");
    assert!(seen[1].head.contains("\r\ncontent-length: 0\r\n"));
    assert_eq!(seen[2].body, b"three");
}

#[tokio::test]
async fn an_error_answer_keeps_its_headers_and_body() {
    let body = r#"{"message":"Gone"}"#;
    let server = serve(vec![answer(&format!(
        "HTTP/1.1 410 Gone\r\nx-amzn-ErrorType: GoneException:http://internal\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    ))])
    .await;
    let reply = client(&server).post("/p", &[], b"x").await.unwrap();
    assert_eq!(reply.status, 410);
    assert_eq!(
        reply.header("X-AMZN-ERRORTYPE").as_deref(),
        Some("GoneException:http://internal")
    );
    assert_eq!(reply.body, body.as_bytes());
    assert_eq!(reply.header("missing"), None);
}

#[tokio::test]
async fn chunked_answers_with_trailers_are_read_and_the_connection_reused() {
    let chunked = "HTTP/1.1 429 Too Many Requests\r\ntransfer-encoding: chunked\r\n\r\n\
                   5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: t\r\n\r\n";
    let server = serve(vec![answer(chunked), answer(OK)]).await;
    let http = client(&server);
    let reply = http.post("/p", &[], b"x").await.unwrap();
    assert_eq!(
        (reply.status, reply.body.as_slice()),
        (429, &b"hello world"[..])
    );
    assert_eq!(http.post("/p", &[], b"y").await.unwrap().status, 200);
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn informational_answers_are_skipped() {
    let server = serve(vec![answer(&format!("HTTP/1.1 100 Continue\r\n\r\n{OK}"))]).await;
    assert_eq!(
        client(&server).post("/p", &[], b"x").await.unwrap().status,
        200
    );
}

#[tokio::test]
async fn connection_close_and_unframed_answers_are_not_reused() {
    let server = serve(vec![
        answer("HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"),
        // No length: the body runs until the server closes.
        closing("HTTP/1.1 500 Internal Server Error\r\n\r\noops"),
        answer(OK),
    ])
    .await;
    let http = client(&server);
    assert_eq!(http.post("/p", &[], b"1").await.unwrap().status, 200);
    let reply = http.post("/p", &[], b"2").await.unwrap();
    assert_eq!((reply.status, reply.body.as_slice()), (500, &b"oops"[..]));
    assert_eq!(http.post("/p", &[], b"3").await.unwrap().status, 200);
    let on: Vec<usize> = server
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.connection)
        .collect();
    assert_eq!(on, vec![1, 2, 3], "a new connection each time");
}

#[tokio::test]
async fn a_connection_the_server_closed_while_idle_is_replaced() {
    // The first answer closes the connection without saying so: the
    // client keeps it and finds out when it next sends.
    let server = serve(vec![closing(OK), answer(OK)]).await;
    let http = client(&server);
    assert_eq!(http.post("/p", &[], b"1").await.unwrap().status, 200);
    assert_eq!(http.post("/p", &[], b"2").await.unwrap().status, 200);
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
    let bodies: Vec<Vec<u8>> = server
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.body.clone())
        .collect();
    assert_eq!(bodies, vec![b"1".to_vec(), b"2".to_vec()], "each sent once");
}

#[tokio::test]
async fn a_fresh_connection_closed_without_an_answer_is_an_error() {
    let server = serve(vec![]).await;
    let err = client(&server).post("/p", &[], b"x").await.unwrap_err();
    assert!(matches!(err, Http1Error::Io(_)), "{err:?}");
    assert_eq!(server.connections.load(Ordering::SeqCst), 1, "not retried");
}

#[tokio::test]
async fn a_cut_answer_is_an_error_and_the_connection_is_dropped() {
    let server = serve(vec![
        closing("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort"),
        answer(OK),
    ])
    .await;
    let http = client(&server);
    let err = http.post("/p", &[], b"x").await.unwrap_err();
    assert!(matches!(err, Http1Error::Io(_)), "{err:?}");
    assert_eq!(http.post("/p", &[], b"y").await.unwrap().status, 200);
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn malformed_and_oversized_answers_are_refused() {
    let huge_head = format!("HTTP/1.1 200 OK\r\nx-big: {}\r\n\r\n", "a".repeat(MAX_HEAD));
    let cases = [
        "garbage\r\n\r\n".to_owned(),
        "HTTP/1.1 200 OK\r\ncontent-length: nope\r\n\r\n".to_owned(),
        "HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nxx".to_owned(),
        format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n",
            MAX_BODY + 1
        ),
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n".to_owned(),
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabXX".to_owned(),
        huge_head,
    ];
    for case in cases {
        let server = serve(vec![closing(&case)]).await;
        let err = client(&server).post("/p", &[], b"x").await.unwrap_err();
        assert!(
            matches!(err, Http1Error::Malformed(_)),
            "{:?}: {err:?}",
            &case[..case.len().min(60)]
        );
    }
}

#[tokio::test]
async fn a_call_dropped_mid_exchange_leaves_its_connection_out_of_the_pool() {
    // The server reads the first request and never answers it.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let authority = listener.local_addr().unwrap().to_string();
    let (got, mut requests) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            let got = got.clone();
            let mut buf = Vec::new();
            if held.is_empty() {
                read_request(&mut stream, &mut buf).await;
                let _ = got.send(1);
                held.push(stream);
            } else {
                tokio::spawn(async move {
                    while read_request(&mut stream, &mut buf).await.is_some() {
                        let _ = got.send(2);
                        if stream.write_all(OK.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        }
    });
    let http = Http1::new(&authority, None, Settings::default()).unwrap();
    {
        let stalled = http.post("/p", &[], b"x");
        tokio::pin!(stalled);
        tokio::select! {
            _ = &mut stalled => panic!("the server never answers"),
            Some(1) = requests.recv() => {}
        }
    }
    assert_eq!(http.idle.lock().unwrap().len(), 0);
    assert_eq!(http.post("/p", &[], b"y").await.unwrap().status, 200);
    assert_eq!(
        requests.recv().await,
        Some(2),
        "served on a second connection"
    );
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let authority = listener.local_addr().unwrap().to_string();
    drop(listener);
    let err = Http1::new(&authority, None, Settings::default())
        .unwrap()
        .post("/p", &[], b"x")
        .await
        .unwrap_err();
    assert!(matches!(err, Http1Error::Connect { .. }), "{err:?}");
}

#[test]
fn authorities_split_into_host_and_port() {
    assert_eq!(
        split_authority("example.com", 443),
        Some(("example.com".into(), 443))
    );
    assert_eq!(
        split_authority("127.0.0.1:3001", 80),
        Some(("127.0.0.1".into(), 3001))
    );
    assert_eq!(
        split_authority("[::1]:3001", 80),
        Some(("::1".into(), 3001))
    );
    assert_eq!(split_authority("[::1]", 443), Some(("::1".into(), 443)));
    for bad in ["", ":80", "host:port", "[::1", "[::1]x", "host:99999"] {
        assert_eq!(split_authority(bad, 80), None, "{bad}");
    }
}

/// A TLS server on 127.0.0.1 with a self-signed certificate for that
/// address, answering every request with `OK`; and a client configuration
/// that trusts it (or, with `trusted` false, trusts nothing).
async fn tls_pair(trusted: bool) -> (String, Arc<tokio_rustls::rustls::ClientConfig>) {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let der = CertificateDer::from(cert.der().to_vec());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![der.clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let authority = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = Vec::new();
                loop {
                    let mut headers = [httparse::EMPTY_HEADER; 32];
                    let mut req = httparse::Request::new(&mut headers);
                    if let Ok(httparse::Status::Complete(n)) = req.parse(&buf) {
                        // Bodies here are one byte.
                        while buf.len() < n + 1 {
                            if tls.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                                return;
                            }
                        }
                        buf.drain(..n + 1);
                        if tls.write_all(OK.as_bytes()).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    if tls.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                        return;
                    }
                }
            });
        }
    });
    let mut roots = rustls::RootCertStore::empty();
    if trusted {
        roots.add(der).unwrap();
    }
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (authority, Arc::new(client))
}

#[tokio::test]
async fn posts_over_tls_on_one_kept_alive_connection() {
    let (authority, tls) = tls_pair(true).await;
    let http = Http1::new(&authority, Some(tls), Settings::default()).unwrap();
    for _ in 0..3 {
        assert_eq!(http.post("/p", &[], b"x").await.unwrap().status, 200);
    }
    assert_eq!(http.idle.lock().unwrap().len(), 1, "one connection, reused");
}

#[tokio::test]
async fn a_certificate_not_trusted_is_a_connect_error() {
    let (authority, tls) = tls_pair(false).await;
    let err = Http1::new(&authority, Some(tls), Settings::default())
        .unwrap()
        .post("/p", &[], b"x")
        .await
        .unwrap_err();
    assert!(matches!(err, Http1Error::Connect { .. }), "{err:?}");
}
