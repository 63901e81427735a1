//! The event log: one `tracing` event per sampled request, with what the cache did.

use std::sync::{Arc, Mutex};

use layercake::{CacheLayer, Moka, layer::EventLog};
use layercake_tests::{Origin, fetch, get, request};
use tower::Layer;

/// Collects what the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .filter(|line| line.contains("layercake::events"))
            .map(str::to_owned)
            .collect()
    }
}

#[tokio::test]
async fn each_sampled_request_is_one_event_with_what_the_cache_did() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let layer = CacheLayer::builder(Moka::default())
        .name("pages")
        .event_log(EventLog::new())
        .build()
        .unwrap();
    let svc = layer.layer(Origin::ok("page"));
    let mut first = get("http://example.com/secret-page");
    first
        .headers_mut()
        .insert("x-request-id", "req-1".parse().unwrap());
    fetch(&svc, first).await;
    fetch(&svc, get("http://example.com/secret-page")).await;
    fetch(&svc, request("POST", "http://example.com/form")).await;
    layer
        .invalidate_url("http://example.com/secret-page")
        .await
        .unwrap();

    let lines = captured.lines();
    assert_eq!(lines.len(), 4, "{lines:#?}");
    for (line, op) in lines.iter().zip(["store", "hit", "pass", "invalidate"]) {
        assert!(line.contains(&format!("op=\"{op}\"")), "{op}: {line}");
        assert!(line.contains("cache=\"pages\""), "{line}");
        assert!(!line.contains("secret-page"), "targets are hashed: {line}");
    }
    assert!(lines[0].contains("request_id=\"req-1\""), "{}", lines[0]);
    assert!(lines[0].contains("latency_us="), "{}", lines[0]);
    assert!(
        lines[1].contains("cache_status=\"pages; hit; ttl="),
        "{}",
        lines[1]
    );
    assert!(
        lines[3].contains("entries=Some(1)") || lines[3].contains("entries=1"),
        "{}",
        lines[3]
    );
}

#[tokio::test]
async fn sampling_logs_one_request_in_n() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let layer = CacheLayer::builder(Moka::default())
        .event_log(EventLog::new().sample(0.25))
        .build()
        .unwrap();
    let svc = layer.layer(Origin::ok("page"));
    for _ in 0..8 {
        fetch(&svc, get("/")).await;
    }
    assert_eq!(captured.lines().len(), 2);
}
