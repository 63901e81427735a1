//! Does latency stay flat when entries expire? A steady stream of requests crosses many
//! expiry boundaries, with `OffloadRevalidate` (serve stale, refresh in the background) and
//! with `Revalidate` (wait for the upstream); per-request latencies are kept and their p50,
//! p99 and max printed. Then: what does the offload bookkeeping add to a stale hit?
//!
//! Run with `cargo bench -p layercake-benches --bench staleness`.

#![allow(missing_docs)]

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering::Relaxed},
    },
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http::{Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use layercake::{CacheLayer, Moka, StalePolicy};
use layercake_benches::poll_now;
use tower::{Layer, Service, ServiceExt};

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send>>;

/// An upstream that takes `delay` to answer; with `hang_after`, calls after that many never
/// answer (a refresh that stays in flight).
#[derive(Clone)]
struct Upstream {
    delay: Duration,
    hang_after: Option<usize>,
    calls: Arc<AtomicUsize>,
}

impl Service<Request<Full<Bytes>>> for Upstream {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<Full<Bytes>>) -> BoxFuture {
        let n = self.calls.fetch_add(1, Relaxed) + 1;
        let (delay, hang) = (self.delay, self.hang_after.is_some_and(|after| n > after));
        Box::pin(async move {
            if hang {
                std::future::pending::<()>().await;
            }
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            Ok(Response::new(Full::new(Bytes::from(vec![b'x'; 1024]))))
        })
    }
}

fn get() -> Request<Full<Bytes>> {
    let mut request = Request::new(Full::default());
    *request.uri_mut() = Uri::from_static("/stream");
    request
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank]
}

fn expiry_boundary(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("expiry_boundary");
    group.sample_size(10);
    for (name, policy) in [
        ("offload_revalidate", StalePolicy::OffloadRevalidate),
        ("revalidate", StalePolicy::Revalidate),
    ] {
        // An open-loop stream: one request every millisecond, whatever the previous ones are
        // doing, as clients arrive. Entries live 50 ms and the upstream takes 10 ms, so the
        // stream crosses an expiry every 50 requests.
        let layer = CacheLayer::builder(Moka::default())
            .ttl(Duration::from_millis(50))
            .stale(Duration::from_secs(60))
            .stale_policy(policy)
            .build()
            .unwrap();
        let upstream = Upstream {
            delay: Duration::from_millis(10),
            hang_after: None,
            calls: Arc::default(),
        };
        let svc = layer.layer(upstream.clone());
        let latencies = Arc::new(Mutex::new(Vec::new()));
        group.bench_function(BenchmarkId::new("request", name), |b| {
            // Criterion's time per iteration is the mean latency of one request of the stream.
            b.iter_custom(|iters| {
                let (svc, latencies) = (svc.clone(), Arc::clone(&latencies));
                rt.block_on(async move {
                    let mut pace = tokio::time::interval(Duration::from_millis(1));
                    let mut requests = tokio::task::JoinSet::new();
                    for _ in 0..iters {
                        pace.tick().await;
                        let svc = svc.clone();
                        requests.spawn(async move {
                            let start = Instant::now();
                            let response = svc.oneshot(get()).await.unwrap();
                            response.into_body().collect().await.unwrap();
                            start.elapsed()
                        });
                    }
                    let seen = requests.join_all().await;
                    let total = seen.iter().sum();
                    latencies.lock().unwrap().extend(seen);
                    total
                })
            })
        });
        let mut all = std::mem::take(&mut *latencies.lock().unwrap());
        all.sort_unstable();
        println!(
            "expiry_boundary/{name}: {} requests, {} upstream calls, p50 {:?}, p99 {:?}, max {:?}",
            all.len(),
            upstream.calls.load(Relaxed),
            percentile(&all, 0.50),
            percentile(&all, 0.99),
            all[all.len() - 1],
        );
    }
    group.finish();
}

fn stale_hit_bookkeeping(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _runtime = rt.enter();
    let mut group = c.benchmark_group("stale_hit");
    for (name, policy) in [
        ("return", StalePolicy::Return),
        (
            "offload_revalidate_deduplicated",
            StalePolicy::OffloadRevalidate,
        ),
    ] {
        // A 1 ms ttl, then every request is a stale hit; with OffloadRevalidate the first one
        // starts a refresh that never finishes, so every later one is deduplicated: the cost
        // measured is the stale hit plus the offload bookkeeping.
        let layer = CacheLayer::builder(Moka::default())
            .ttl(Duration::from_millis(1))
            .stale(Duration::from_secs(3600))
            .stale_policy(policy)
            .build()
            .unwrap();
        let mut svc = layer.layer(Upstream {
            delay: Duration::ZERO,
            hang_after: Some(1),
            calls: Arc::default(),
        });
        rt.block_on(async {
            let response = svc.clone().oneshot(get()).await.unwrap();
            response.into_body().collect().await.unwrap();
            for _ in 0..8 {
                tokio::task::yield_now().await;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        });
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut cx = Context::from_waker(Waker::noop());
                assert!(svc.poll_ready(&mut cx).is_ready());
                poll_now(svc.call(get())).unwrap()
            })
        });
        // Let the refresh task start, so later runs measure deduplication.
        rt.block_on(tokio::task::yield_now());
        let offload = layer.offload().stats();
        println!(
            "stale_hit/{name}: stale hits {}, refreshes spawned {}, deduplicated {}",
            layer.stats().stale_hits,
            offload.spawned,
            offload.deduplicated
        );
    }
    group.finish();
}

criterion_group!(benches, expiry_boundary, stale_hit_bookkeeping);
criterion_main!(benches);
