use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;

use super::*;

#[tokio::test]
async fn invocations_beyond_the_concurrency_limit_wait_their_turn() {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let (open, gate) = tokio::sync::watch::channel(false);
    let counter = in_flight.clone();
    let handler: Handler = Arc::new(move |_| {
        let counter = counter.clone();
        let mut gate = gate.clone();
        Box::pin(async move {
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = gate.wait_for(|open| *open).await;
            counter.fetch_sub(1, Ordering::SeqCst);
            Ok(json!({"statusCode": 200}))
        })
    });
    let f = Arc::new(Function {
        name: "limited".into(),
        function_name: "limited".into(),
        runs: Runs::InProcess(handler),
        timeout: Duration::from_secs(10),
        concurrency: Arc::new(tokio::sync::Semaphore::new(2)),
        faults: Arc::default(),
        timeline: Arc::new(Timeline::new(10)),
    });
    let metrics = Arc::new(Metrics::default());
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let (f, metrics) = (f.clone(), metrics.clone());
            tokio::spawn(async move { f.invoke("r", json!({}), &metrics).await })
        })
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while in_flight.load(Ordering::SeqCst) < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "two invocations should start"
        );
        tokio::task::yield_now().await;
    }
    // Give any third invocation every chance to (wrongly) start.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        in_flight.load(Ordering::SeqCst),
        2,
        "never more than the limit"
    );
    open.send_replace(true);
    for c in calls {
        assert!(c.await.unwrap().is_ok());
    }
}
