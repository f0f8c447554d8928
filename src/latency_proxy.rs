//! `roomcast latency-proxy`: a TCP proxy that adds a fixed delay to every
//! byte in each direction, so a store served on 127.0.0.1 (moto) answers
//! with the round trip of a real one (DynamoDB in-region: single-digit
//! milliseconds). Contention that a 0.3 ms loopback hides then shows as it
//! would in AWS: a read-then-write window is as wide as two round trips.
//!
//! The delay is a pipe's, not a queue's: bytes read at `t` are written at
//! `t + one_way`, and reading goes on meanwhile, so many requests can be in
//! flight on one keep-alive connection and throughput is not capped by the
//! latency. Half the round trip goes each way.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Serves `listener`, forwarding every connection to `upstream` with
/// `round_trip` added to each exchange. Runs until the task is dropped.
pub(crate) async fn serve(listener: TcpListener, upstream: String, round_trip: Duration) {
    let one_way = round_trip / 2;
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let upstream = upstream.clone();
        tokio::spawn(async move {
            let server = match TcpStream::connect(&upstream).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(%upstream, error = %e, "latency proxy: upstream refused");
                    return;
                }
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::join!(pipe(cr, sw, one_way), pipe(sr, cw, one_way));
        });
    }
}

/// Copies `from` to `to`, each chunk delayed by `delay` after it was read.
async fn pipe<R, W>(mut from: R, mut to: W, delay: Duration)
where
    R: AsyncReadExt + Unpin + Send + 'static,
    W: AsyncWriteExt + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if tx
                    .send((Instant::now() + delay, buf[..n].to_vec()))
                    .is_err()
                {
                    break;
                }
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server behind the proxy: one exchange takes the round trip,
    /// and twenty pipelined ones take about one round trip, not twenty.
    #[tokio::test]
    async fn adds_the_round_trip_without_serialising_requests() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo_addr = echo.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy_addr = proxy.local_addr().unwrap();
        let rtt = Duration::from_millis(300);
        tokio::spawn(serve(proxy, echo_addr.to_string(), rtt));
        let mut s = TcpStream::connect(proxy_addr).await.unwrap();
        let t0 = std::time::Instant::now();
        s.write_all(b"x").await.unwrap();
        let mut one = [0u8; 1];
        s.read_exact(&mut one).await.unwrap();
        assert!(t0.elapsed() >= rtt, "one exchange took {:?}", t0.elapsed());
        let t1 = std::time::Instant::now();
        for _ in 0..20 {
            s.write_all(b"y").await.unwrap();
        }
        let mut twenty = [0u8; 20];
        s.read_exact(&mut twenty).await.unwrap();
        assert_eq!(&twenty, &[b'y'; 20]);
        let took = t1.elapsed();
        assert!(took >= rtt, "pipelined exchanges took {took:?}");
        // Serialised, they would take 20 round trips (6 s); pipelined, one
        // (0.3 s). The bound sits ten times above the pipelined figure.
        assert!(took < rtt * 10, "the proxy serialised requests: {took:?}");
    }
}
