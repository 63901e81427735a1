//! Filling memory stores far past their budget, and a counting allocator to measure them with,
//! for `tests/memory_budget.rs` and `benches/memory.rs`. Each fill calls `at_end` while its
//! store still holds its entries.

// A counting global allocator needs `unsafe impl GlobalAlloc`; it only forwards to `System`.
#![allow(unsafe_code)]

use std::{
    alloc::{GlobalAlloc, Layout, System},
    convert::Infallible,
    sync::atomic::{AtomicUsize, Ordering::Relaxed},
    time::Duration,
};

use bytes::Bytes;
use http::{Request, Response, header};
use http_body_util::Full;
use layercake::{Cache, CacheLayer, Moka};
use tower::{Layer, Service, ServiceExt};

/// A global allocator that counts the live heap and its peak (bytes asked of the allocator).
/// A binary measuring with it declares `#[global_allocator] static A: LiveHeap = LiveHeap;`.
pub struct LiveHeap;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static END: AtomicUsize = AtomicUsize::new(0);

fn grew(size: usize) {
    let live = LIVE.fetch_add(size, Relaxed) + size;
    PEAK.fetch_max(live, Relaxed);
}

// SAFETY: every call is forwarded to the system allocator unchanged; the counters are atomics.
unsafe impl GlobalAlloc for LiveHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: forwarded as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= layout.size() {
            grew(new_size - layout.size());
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Relaxed);
        }
        // SAFETY: forwarded as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Notes what is live now: the end of a fill, while its store still holds its entries.
pub fn mark_end() {
    END.store(LIVE.load(Relaxed), Relaxed);
}

/// The peak live heap `fill` reaches above what was live before it, and what was live when it
/// called [`mark_end`] (both 0 unless [`LiveHeap`] is the global allocator).
pub fn measure(fill: impl FnOnce()) -> (usize, usize) {
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    END.store(base, Relaxed);
    fill();
    (
        PEAK.load(Relaxed) - base,
        END.load(Relaxed).saturating_sub(base),
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Typed: `count` distinct strings of `size` bytes into a cache of `budget` bytes.
pub fn typed_strings(count: usize, size: usize, budget: usize, at_end: impl FnOnce()) {
    let rt = runtime();
    rt.block_on(async {
        let cache: Cache<String, Moka> = Cache::builder(Moka::with_max_bytes(budget as u64))
            .ttl(Duration::from_secs(3600))
            .build()
            .unwrap();
        for i in 0..count {
            let value = format!("{i:0>size$}");
            cache.insert(i.to_string(), value).await;
        }
        cache.backend().run_pending_tasks();
        at_end();
    });
}

/// Typed: `count` distinct byte buffers of `size` bytes into a cache of `budget` bytes.
pub fn typed_bytes(count: usize, size: usize, budget: usize, at_end: impl FnOnce()) {
    let rt = runtime();
    rt.block_on(async {
        let cache: Cache<Bytes, Moka> = Cache::builder(Moka::with_max_bytes(budget as u64))
            .ttl(Duration::from_secs(3600))
            .build()
            .unwrap();
        for i in 0..count {
            cache
                .insert(i.to_string(), Bytes::from(vec![i as u8; size]))
                .await;
        }
        cache.backend().run_pending_tasks();
        at_end();
    });
}

/// The inner service: a response of `size` bytes of its own (not shared between responses),
/// with `Content-Type: text/plain` and `headers`, varying on `x-variant` when `vary` is set.
fn origin(
    size: usize,
    vary: bool,
    headers: &'static [(&'static str, &'static str)],
) -> impl Service<
    Request<Full<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future: Send,
> + Clone
+ Send
+ 'static {
    tower::service_fn(move |_: Request<Full<Bytes>>| async move {
        let mut response = Response::new(Full::new(Bytes::from(vec![b'x'; size])));
        let map = response.headers_mut();
        map.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        for (name, value) in headers {
            map.append(*name, value.parse().unwrap());
        }
        if vary {
            map.insert(header::VARY, "x-variant".parse().unwrap());
        }
        Ok::<_, Infallible>(response)
    })
}

/// Response headers as a typical origin sends them, beside `Content-Type`.
pub const TYPICAL_HEADERS: &[(&str, &str)] = &[
    ("etag", "\"33a64df551425fcc55e4d42a148795d9f25f89d4\""),
    (
        "cache-control",
        "public, max-age=3600, stale-while-revalidate=60",
    ),
    ("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT"),
    ("x-request-id", "f058ebd6-02f7-4d3f-942e-904344e8cde5"),
];

/// Through the layer: `count` requests, each for a URL of its own (or, with `vary`, one URL
/// and a variant of its own), of `size` bytes, into a store of `budget` bytes.
pub fn layer(count: usize, size: usize, budget: usize, vary: bool, at_end: impl FnOnce()) {
    layer_with(count, size, budget, vary, &[], 1, at_end);
}

/// As [`layer`] into a store that evicts nothing, each response with `headers` too, and every
/// URL requested once more (a hit) before `at_end`: what a store holds once its entries have
/// been served (a hit shares the stored buffers, which may give them a shared count).
pub fn layer_served(
    count: usize,
    size: usize,
    headers: &'static [(&'static str, &'static str)],
    at_end: impl FnOnce(),
) {
    layer_with(count, size, usize::MAX / 4, false, headers, 2, at_end);
}

fn layer_with(
    count: usize,
    size: usize,
    budget: usize,
    vary: bool,
    headers: &'static [(&'static str, &'static str)],
    passes: usize,
    at_end: impl FnOnce(),
) {
    let rt = runtime();
    rt.block_on(async {
        let store = Moka::with_max_bytes(budget as u64);
        let cache = CacheLayer::builder(store.clone())
            .ttl(Duration::from_secs(3600))
            .build()
            .unwrap();
        let svc = cache.layer(origin(size, vary, headers));
        let request = |i: usize| {
            let mut request = Request::get(if vary {
                "/page".to_owned()
            } else {
                format!("/page/{i}")
            });
            if vary {
                request = request.header("x-variant", i.to_string());
            }
            request.body(Full::default()).unwrap()
        };
        fill(svc, &store, count * passes, |i| request(i % count), at_end).await;
    });
}

/// Sends `count` requests (the `i`-th is `request(i)`) through `svc` and reads each response
/// whole, lets the stores (tasks that follow the bodies) run, then calls `at_end` while `store`
/// still holds its entries.
async fn fill<S, B>(
    svc: S,
    store: &Moka,
    count: usize,
    request: impl Fn(usize) -> Request<Full<Bytes>>,
    at_end: impl FnOnce(),
) where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
{
    for i in 0..count {
        let response = svc.clone().oneshot(request(i)).await.unwrap();
        let body = http_body_util::BodyExt::collect(response.into_body()).await;
        drop(body);
        tokio::task::yield_now().await;
    }
    for _ in 0..16 {
        tokio::task::yield_now().await;
    }
    store.run_pending_tasks();
    at_end();
}

/// Through the layer in front of a real HTTP/1.1 origin (hyper on loopback, reached through
/// the reverse proxy example's hyper-util client): `count` responses of `size` bytes, each for
/// a URL of its own, into a store of `budget` bytes. What hyper reads arrives in slices of its
/// connection's read buffer: what the store keeps must not hold those buffers.
pub fn proxied(count: usize, size: usize, budget: usize, at_end: impl FnOnce()) {
    use super::http_origin::{HttpOrigin, Upstream, respond};
    let rt = runtime();
    rt.block_on(async {
        let body = Bytes::from(vec![b'x'; size]);
        let origin = HttpOrigin::start(move |_, _| {
            let body = body.clone();
            async move {
                respond(
                    200,
                    &[
                        ("cache-control", "max-age=3600"),
                        ("content-type", "text/plain"),
                        ("etag", "\"a-validator-of-some-length\""),
                    ],
                    body,
                )
            }
        })
        .await;
        let store = Moka::with_max_bytes(budget as u64);
        let cache = CacheLayer::builder(store.clone())
            .ttl(Duration::from_secs(3600))
            .build()
            .unwrap();
        let svc = cache.layer(Upstream::<Full<Bytes>>::new(origin.uri()));
        let request = |i: usize| {
            Request::get(format!("/page/{i}"))
                .body(Full::default())
                .unwrap()
        };
        fill(svc, &store, count, request, at_end).await;
    });
}
