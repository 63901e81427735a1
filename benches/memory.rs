//! How much memory a `Moka` store with a byte budget really holds: the peak of the live heap
//! (a counting global allocator) while filling it far past its budget, against the budget.
//!
//! ```sh
//! cargo bench -p layercake-benches --bench memory            # every case, full size
//! cargo bench -p layercake-benches --bench memory -- vary    # the cases whose name has `vary`
//! ```
//!
//! Not a criterion bench: it measures bytes, not time. Each case runs alone (the allocator
//! counts every thread), from a baseline taken before the store is made.

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

/// Counts the live heap and its peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static END: AtomicUsize = AtomicUsize::new(0);

/// Notes what is live at the end of a case, while its store still holds its entries.
fn mark_end() {
    END.store(LIVE.load(Relaxed), Relaxed);
}

fn grew(size: usize) {
    let live = LIVE.fetch_add(size, Relaxed) + size;
    PEAK.fetch_max(live, Relaxed);
}

// SAFETY: every call is forwarded to the system allocator unchanged; the counters are atomics.
unsafe impl GlobalAlloc for Counting {
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

#[global_allocator]
static GLOBAL: Counting = Counting;

const MIB: usize = 1024 * 1024;

/// The peak live heap `fill` reaches above what was live before it, and what is live after.
fn measure(fill: impl FnOnce()) -> (usize, usize) {
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
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
fn typed_strings(count: usize, size: usize, budget: usize) {
    let rt = runtime();
    rt.block_on(async {
        let cache: Cache<String, Moka> = Cache::builder(Moka::new(budget as u64))
            .ttl(Duration::from_secs(3600))
            .build()
            .unwrap();
        for i in 0..count {
            let value = format!("{i:0>size$}");
            cache.insert(i.to_string(), value).await;
        }
        cache.backend().run_pending_tasks();
        mark_end();
    });
}

/// Typed: `count` distinct byte buffers of `size` bytes into a cache of `budget` bytes.
fn typed_bytes(count: usize, size: usize, budget: usize) {
    let rt = runtime();
    rt.block_on(async {
        let cache: Cache<Bytes, Moka> = Cache::builder(Moka::new(budget as u64))
            .ttl(Duration::from_secs(3600))
            .build()
            .unwrap();
        for i in 0..count {
            cache
                .insert(i.to_string(), Bytes::from(vec![i as u8; size]))
                .await;
        }
        cache.backend().run_pending_tasks();
        mark_end();
    });
}

/// The inner service: a response of `size` bytes of its own (not shared between responses),
/// varying on `x-variant` when `vary` is set.
fn origin(
    size: usize,
    vary: bool,
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
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        if vary {
            headers.insert(header::VARY, "x-variant".parse().unwrap());
        }
        Ok::<_, Infallible>(response)
    })
}

/// Through the layer: `count` requests, each for a URL of its own (or, with `vary`, one URL
/// and a variant of its own), of `size` bytes, into a store of `budget` bytes.
fn layer(count: usize, size: usize, budget: usize, vary: bool) {
    let rt = runtime();
    rt.block_on(async {
        let store = Moka::new(budget as u64);
        let cache = CacheLayer::builder(store.clone())
            .ttl(Duration::from_secs(3600))
            .build()
            .unwrap();
        let svc = cache.layer(origin(size, vary));
        for i in 0..count {
            let mut request = Request::get(if vary {
                "/page".to_owned()
            } else {
                format!("/page/{i}")
            });
            if vary {
                request = request.header("x-variant", i.to_string());
            }
            let request = request.body(Full::default()).unwrap();
            let response = svc.clone().oneshot(request).await.unwrap();
            let body = http_body_util::BodyExt::collect(response.into_body()).await;
            drop(body);
            // The store follows the body, in a task.
            tokio::task::yield_now().await;
        }
        for _ in 0..16 {
            tokio::task::yield_now().await;
        }
        store.run_pending_tasks();
        mark_end();
    });
}

/// What one entry costs a `Moka` store beyond its value: `count` entries of a `u64` under keys
/// like the typed cache's, in a store that evicts nothing, divided by `count`.
fn overhead_per_entry(count: usize) -> usize {
    let (_, live) = measure(|| {
        let store = Moka::builder()
            .max_bytes(u64::MAX / 2)
            .max_entries(u64::MAX / 4)
            .build();
        let now = layercake::Timestamp::now();
        for i in 0..count as u64 {
            let key = layercake::Key::from_parts(["layercake", "value/1", &i.to_string()]);
            let entry = layercake::Entry::new(i, now, Duration::from_secs(3600), Duration::ZERO);
            let stored = layercake::Backend::set(&store, &key, std::sync::Arc::new(entry));
            layercake_benches::poll_now(stored).expect("a memory tier never fails");
        }
        store.run_pending_tasks();
        mark_end();
    });
    live / count
}

fn main() {
    let filter = std::env::args()
        .skip(1)
        .find(|arg| !arg.starts_with('-'))
        .unwrap_or_default();
    let budget = 64 * MIB;
    type Case = (&'static str, Box<dyn Fn()>);
    let cases: Vec<Case> = vec![
        (
            "typed 1,000,000 × 1 KiB strings",
            Box::new(move || typed_strings(1_000_000, 1024, budget)),
        ),
        (
            "typed 2,000 × 1 MiB bytes",
            Box::new(move || typed_bytes(2_000, MIB, budget)),
        ),
        (
            "layer 1,000,000 × 1 KiB responses",
            Box::new(move || layer(1_000_000, 1024, budget, false)),
        ),
        (
            "layer 2,000 × 1 MiB responses",
            Box::new(move || layer(2_000, MIB, budget, false)),
        ),
        (
            "layer vary 200,000 variants × 1 KiB",
            Box::new(move || layer(200_000, 1024, budget, true)),
        ),
    ];
    if "overhead".contains(filter.as_str()) {
        println!(
            "one entry costs a Moka store {} bytes beyond its value (keys of ~30 bytes)\n",
            overhead_per_entry(200_000)
        );
    }
    println!("| case | budget | peak live heap | peak / budget | live at the end |");
    println!("|---|---:|---:|---:|---:|");
    for (name, case) in cases {
        if !name.contains(filter.as_str()) {
            continue;
        }
        let (peak, after) = measure(case);
        println!(
            "| {name} | {} MiB | {:.1} MiB | {:.2}× | {:.1} MiB |",
            budget / MIB,
            peak as f64 / MIB as f64,
            peak as f64 / budget as f64,
            after as f64 / MIB as f64,
        );
    }
}
