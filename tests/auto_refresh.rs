//! Auto-refresh: a key in steady demand is refreshed before it expires; a cold key expires.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering::SeqCst},
    },
    time::Duration,
};

use http::StatusCode;
use layercake::{Cache, CacheLayer, Moka, refresh::AutoRefresh};
use layercake_tests::{Origin, cache_status, fetch, get, text};
use tokio::time::advance;
use tower::Layer;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn config() -> AutoRefresh {
    AutoRefresh {
        min_hits_per_minute: 10,
        check_interval: secs(5),
        ..AutoRefresh::default()
    }
}

/// A layer with a 30 s ttl that refreshes hot keys.
fn refreshing_layer() -> CacheLayer<Moka> {
    CacheLayer::builder(Moka::default())
        .ttl(secs(30))
        .auto_refresh(config())
        .build()
        .unwrap()
}

/// Upstream calls per path.
type Calls = Arc<Mutex<HashMap<String, usize>>>;

fn per_path_origin(calls: &Calls) -> Origin {
    let calls = Arc::clone(calls);
    Origin::new(move |req, _| {
        let calls = Arc::clone(&calls);
        async move {
            let path = req.uri().path().to_owned();
            let n = {
                let mut calls = calls.lock().unwrap();
                let n = calls.entry(path.clone()).or_default();
                *n += 1;
                *n
            };
            Ok(text(StatusCode::OK, format!("{path} v{n}")))
        }
    })
}

#[tokio::test(start_paused = true)]
async fn auto_refresh_keeps_a_hot_key_fresh_and_lets_a_cold_one_expire() {
    let calls = Calls::default();
    let origin = per_path_origin(&calls);
    let layer = refreshing_layer();
    assert!(layer.start_auto_refresh(origin.clone()));
    assert!(!layer.start_auto_refresh(origin.clone()), "started once");
    let svc = layer.layer(origin.clone());

    fetch(&svc, get("/cold")).await;
    fetch(&svc, get("/hot")).await;
    // /hot once a second for two minutes: never a miss after the first request.
    for second in 1..=120 {
        advance(secs(1)).await;
        let (parts, _) = fetch(&svc, get("/hot")).await;
        assert!(
            cache_status(&parts).starts_with("layercake; hit; ttl="),
            "second {second}: {}",
            cache_status(&parts)
        );
    }
    // Checks run every 5 s; an entry is refreshed at the last check before it expires:
    // stored at 0 s (fresh until 30 s), refreshed at 25, 50, 75 and 100 s.
    assert_eq!(calls.lock().unwrap()["/hot"], 1 + 4);
    assert_eq!(layer.stats().refreshes, 4);

    // /cold was asked for once: nobody refreshed it, it expired at 30 s.
    assert_eq!(calls.lock().unwrap()["/cold"], 1);
    let (parts, body) = fetch(&svc, get("/cold")).await;
    assert_eq!(body, "/cold v2");
    assert_eq!(
        cache_status(&parts),
        "layercake; fwd=uri-miss; fwd-status=200; stored"
    );
}

#[tokio::test(start_paused = true)]
async fn a_key_that_cools_down_is_no_longer_refreshed() {
    let calls = Calls::default();
    let origin = per_path_origin(&calls);
    let layer = refreshing_layer();
    layer.start_auto_refresh(origin.clone());
    let svc = layer.layer(origin.clone());
    // Hot for 20 s, then silence.
    for _ in 0..20 {
        fetch(&svc, get("/")).await;
        advance(secs(1)).await;
    }
    // The rate is the hits of the last full minute (or of the current one): 20 in [0, 60),
    // so the key stays hot until the minute [60, 120) has ended with none. Refreshes at 25, 50,
    // 75 and 100 s; at 120 s the key is dropped, and nothing refreshes it after that.
    for _ in 20..120 {
        advance(secs(1)).await;
    }
    assert_eq!(calls.lock().unwrap()["/"], 1 + 4);
    for _ in 120..300 {
        advance(secs(1)).await;
    }
    assert_eq!(calls.lock().unwrap()["/"], 1 + 4, "no refresh once cold");
    assert_eq!(layer.stats().refreshes, 4);
}

#[tokio::test(start_paused = true)]
async fn typed_cache_keeps_the_computation_to_refresh_a_hot_key() {
    let values: Cache<String, Moka> = Cache::builder(Moka::default())
        .ttl(secs(30))
        .auto_refresh(config())
        .build()
        .unwrap();
    let hot_calls = Arc::new(AtomicUsize::new(0));
    let cold_calls = Arc::new(AtomicUsize::new(0));
    let counting = |calls: &Arc<AtomicUsize>, name: &'static str| {
        let calls = Arc::clone(calls);
        move || async move { format!("{name} v{}", calls.fetch_add(1, SeqCst) + 1) }
    };

    values
        .get_or_compute("cold", counting(&cold_calls, "cold"))
        .await;
    for _ in 0..=120 {
        let value = values
            .get_or_compute("hot", counting(&hot_calls, "hot"))
            .await;
        assert!(value.starts_with("hot v"));
        advance(secs(1)).await;
    }
    assert_eq!(hot_calls.load(SeqCst), 1 + 4);
    assert_eq!(values.stats().misses, 2, "one miss per key, none after");
    assert_eq!(cold_calls.load(SeqCst), 1);
    values
        .get_or_compute("cold", counting(&cold_calls, "cold"))
        .await;
    assert_eq!(cold_calls.load(SeqCst), 2, "the cold key expired");
}

#[tokio::test(start_paused = true)]
async fn a_hot_variant_of_a_varying_url_is_refreshed_in_its_own_place() {
    let origin = Origin::new(|req, n| async move {
        let language = req.headers()["accept-language"]
            .to_str()
            .unwrap()
            .to_owned();
        let mut response = text(StatusCode::OK, format!("{language} v{n}"));
        response
            .headers_mut()
            .insert("vary", "accept-language".parse().unwrap());
        Ok(response)
    });
    let layer = refreshing_layer();
    assert!(layer.start_auto_refresh(origin.clone()));
    let svc = layer.layer(origin.clone());
    let in_language = |language: &str| {
        let mut request = get("/page");
        request
            .headers_mut()
            .insert("accept-language", language.parse().unwrap());
        request
    };
    fetch(&svc, in_language("fr")).await;
    for second in 1..=60 {
        advance(secs(1)).await;
        if second == 20 {
            // A variant stored later keeps the URL's list of variants longer than en's entry:
            // the check must look at the en variant, not at the list.
            fetch(&svc, in_language("de")).await;
        }
        let (parts, body) = fetch(&svc, in_language("en")).await;
        assert!(body.starts_with(b"en v"), "second {second}");
        if second > 1 {
            assert!(
                cache_status(&parts).starts_with("layercake; hit; ttl="),
                "second {second}: {}",
                cache_status(&parts)
            );
        }
    }
    assert!(
        layer.stats().refreshes >= 1,
        "the hot en variant was refreshed"
    );
    // The fr variant, asked for once, was not refreshed: it expired, and is fetched again.
    let (parts, body) = fetch(&svc, in_language("fr")).await;
    assert_eq!(body, format!("fr v{}", origin.calls()));
    assert!(
        cache_status(&parts).starts_with("layercake; fwd=vary-miss"),
        "{}",
        cache_status(&parts)
    );
}
