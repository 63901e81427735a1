//! On tokio's paused clock: a second passing between two hits would change `Age` and the
//! `ttl` in `Cache-Status`, whose shared values are made once per second of value.
//!
//! The hit path's promise, checked by counting: an HTTP hit from memory allocates only the
//! response's own header map, and never copies the body; a typed hit (and a
//! `#[cached_handler]` function's) allocates nothing.

// A counting global allocator needs `unsafe impl GlobalAlloc`; it only forwards to `System`.
#![allow(unsafe_code)]

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
    pin::pin,
    task::{Context, Poll, Waker},
};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body::Body;
use http_body_util::Full;
use layercake::{CacheLayer, Moka};
use layercake_tests::{Origin, read, settle, text};
use tower::{Layer, Service, ServiceExt};

/// Counts allocations made by the current thread while counting is on.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to the system allocator unchanged; the counters are
// thread-local cells that never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|n| n.set(n.get() + 1));
        }
        // SAFETY: forwarded as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|n| n.set(n.get() + 1));
        }
        // SAFETY: forwarded as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn counted<T>(f: impl FnOnce() -> T) -> (T, usize) {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|c| c.set(true));
    let out = f();
    COUNTING.with(|c| c.set(false));
    (out, ALLOCATIONS.with(Cell::get))
}

/// Allocations of three memory hits after the first, through `layer` in front of `origin`,
/// and the bodies they served. `memory` is the Moka store the hits come from: its pending
/// maintenance is run before each hit, as moka otherwise does it now and then inside a read
/// (amortized work of moka's, not of the hit).
async fn hits<B>(layer: CacheLayer<B>, origin: &Origin, memory: &Moka) -> (Vec<usize>, Vec<Bytes>)
where
    B: layercake::Backend<layercake::layer::CachedResponse>,
{
    let mut svc = layer.layer(origin.clone());
    read(
        svc.clone()
            .oneshot(layercake_tests::get("/hot"))
            .await
            .unwrap(),
    )
    .await;
    settle().await;
    let mut bodies = Vec::new();
    let mut counts = Vec::new();
    for _ in 0..3 {
        let req: Request<Full<Bytes>> = layercake_tests::get("/hot");
        let mut cx = Context::from_waker(Waker::noop());
        assert!(svc.poll_ready(&mut cx).is_ready());
        memory.run_pending_tasks();
        let (frame, allocations) = counted(|| {
            let mut future = pin!(svc.call(req));
            let Poll::Ready(Ok(response)) = future.as_mut().poll(&mut cx) else {
                panic!("a memory hit is ready at once");
            };
            let mut body = pin!(response.into_body());
            let Poll::Ready(Some(Ok(frame))) = body.as_mut().poll_frame(&mut cx) else {
                panic!("the stored body is one ready frame");
            };
            frame.into_data().unwrap()
        });
        counts.push(allocations);
        bodies.push(frame);
    }
    (counts, bodies)
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn an_l1_hit_of_a_composed_stack_allocates_what_a_bare_hit_does() {
    use layercake::compose::Compose;
    let origin = Origin::ok("composed");
    let l1 = Moka::default();
    let tiers: Compose<Moka, layercake_tests::TestTier> = Compose::new(
        l1.clone(),
        layercake_tests::TestTier::new(std::time::Duration::ZERO),
    );
    let composed_layer = CacheLayer::builder(tiers).build().unwrap();
    let (composed, bodies) = hits(composed_layer, &origin, &l1).await;
    let bare_store = Moka::default();
    let bare_layer = CacheLayer::builder(bare_store.clone()).build().unwrap();
    let (bare, _) = hits(bare_layer, &Origin::ok("bare"), &bare_store).await;
    assert_eq!(&composed[1..], &bare[1..]);
    assert_eq!(&composed[1..], [2, 2]);
    assert!(bodies.iter().all(|b| b == "composed"));
    assert_eq!(origin.calls(), 1);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_memory_hit_allocates_only_the_header_map_and_shares_the_body() {
    let origin = Origin::new(|_, _| async {
        let mut res = text(StatusCode::OK, vec![b'x'; 1024]);
        res.headers_mut()
            .insert("content-type", "text/plain".parse().unwrap());
        Ok(res)
    });
    let store = Moka::default();
    let layer = CacheLayer::builder(store.clone()).build().unwrap();
    let (counts, bodies) = hits(layer, &origin, &store).await;
    assert_eq!(origin.calls(), 1);
    // The first hit makes the shared `Age`/`Cache-Status` values; after that: two for the
    // response's header map (its index and its entries). The key is looked up where it was
    // built, on the stack.
    assert_eq!(&counts[1..], [2, 2], "allocations per hit: {counts:?}");
    // Every hit hands out the same stored bytes: a reference count, not a copy.
    assert_eq!(bodies[0].len(), 1024);
    assert!(bodies.iter().all(|b| b.as_ptr() == bodies[0].as_ptr()));
}

/// A typed cache on `Moka`, and the same through `#[cached_handler]`.
static TYPED: std::sync::LazyLock<layercake::Cache<std::sync::Arc<String>, Moka>> =
    std::sync::LazyLock::new(|| layercake::Cache::builder(Moka::default()).build().unwrap());

#[layercake::cached_handler(ttl = 60)]
async fn cached_report(id: u64) -> std::sync::Arc<String> {
    std::sync::Arc::new(format!("report {id}"))
}

/// Allocations of `hit`, polled once (a memory hit is ready at once), and what it gave.
fn typed_hit_allocations<F: Future<Output = std::sync::Arc<String>>>(
    hit: impl Fn() -> F,
) -> (usize, std::sync::Arc<String>) {
    let (value, allocations) = counted(|| {
        let mut future = pin!(hit());
        let Poll::Ready(value) = future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        else {
            panic!("a memory hit is ready at once");
        };
        value
    });
    (allocations, value)
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_typed_memory_hit_allocates_nothing_and_shares_the_value() {
    let stored = TYPED
        .get_or_compute(7u64, || async { std::sync::Arc::new("seven".to_owned()) })
        .await;
    settle().await;
    let hit = || TYPED.get_or_compute(7u64, || async { std::sync::Arc::new("other".to_owned()) });
    for _ in 0..3 {
        // Moka's pending maintenance first (its health check runs it), as in `hits` above.
        TYPED.health().await;
        let (allocations, value) = typed_hit_allocations(hit);
        // The key is built on the stack and looked up there; the value is an `Arc` handed out.
        assert_eq!(allocations, 0, "a typed hit allocated");
        assert!(std::sync::Arc::ptr_eq(&value, &stored));
    }
    assert_eq!(TYPED.stats().hits, 3);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_cached_function_hit_allocates_nothing() {
    let stored = cached_report(7).await;
    settle().await;
    for _ in 0..3 {
        cached_report::cache().health().await;
        let (allocations, value) = typed_hit_allocations(|| cached_report(7));
        assert_eq!(allocations, 0, "a #[cached_handler] hit allocated");
        assert!(std::sync::Arc::ptr_eq(&value, &stored));
    }
}
