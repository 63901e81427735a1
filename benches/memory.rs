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

use std::time::Duration;

use layercake::Moka;
use layercake_tests::memory::{
    LiveHeap, TYPICAL_HEADERS, layer, layer_served, mark_end, measure, typed_bytes, typed_strings,
};

#[global_allocator]
static GLOBAL: LiveHeap = LiveHeap;

const MIB: usize = 1024 * 1024;

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

/// What one stored HTTP response of `size` bytes costs, through the layer into a `Moka` store
/// that evicts nothing, against a raw `moka::sync::Cache<String, Bytes>` holding the same body
/// under the same URL: live heap per entry, each. `served`: every entry read once more first
/// (through the layer a hit; raw a `get`), as a store holds them once they are being served.
fn per_response(count: usize, size: usize, served: bool) -> PerResponse {
    let (_, layered) = measure(|| match served {
        false => layer(count, size, usize::MAX / 4, false, mark_end),
        true => layer_served(count, size, &[], mark_end),
    });
    let (_, typical) = measure(|| layer_served(count, size, TYPICAL_HEADERS, mark_end));
    let raw = |expiring: bool| {
        let (_, raw) = measure(|| {
            let builder = moka::sync::Cache::builder().max_capacity(u64::MAX);
            let cache: moka::sync::Cache<String, bytes::Bytes> = match expiring {
                true => builder.expire_after(EachItsOwn).build(),
                false => builder.build(),
            };
            for i in 0..count {
                cache.insert(format!("/page/{i}"), bytes::Bytes::from(vec![b'x'; size]));
            }
            let mut read = Vec::with_capacity(usize::from(served));
            for i in (0..count).filter(|_| served) {
                // Read and dropped, as a hit's body is once sent.
                read.clear();
                read.extend(cache.get(&format!("/page/{i}")));
                assert_eq!(read.len(), 1, "raw hit {i}");
            }
            drop(read);
            cache.run_pending_tasks();
            mark_end();
        });
        raw / count
    };
    PerResponse {
        layered: layered / count,
        typical: typical / count,
        raw: raw(false),
        expiring: raw(true),
    }
}

/// Live heap per stored response: through the layer (only `Content-Type`, and with
/// [`TYPICAL_HEADERS`]), and as raw moka entries of the same body (not expiring, and expiring
/// each at its own time, as every layercake entry does).
struct PerResponse {
    layered: usize,
    typical: usize,
    raw: usize,
    expiring: usize,
}

/// A moka expiry that gives each entry a lifetime of its own.
struct EachItsOwn;

impl moka::Expiry<String, bytes::Bytes> for EachItsOwn {
    fn expire_after_create(
        &self,
        key: &String,
        _: &bytes::Bytes,
        _: std::time::Instant,
    ) -> Option<Duration> {
        Some(Duration::from_secs(3600 + key.len() as u64))
    }
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
            Box::new(move || typed_strings(1_000_000, 1024, budget, mark_end)),
        ),
        (
            "typed 2,000 × 1 MiB bytes",
            Box::new(move || typed_bytes(2_000, MIB, budget, mark_end)),
        ),
        (
            "layer 1,000,000 × 1 KiB responses",
            Box::new(move || layer(1_000_000, 1024, budget, false, mark_end)),
        ),
        (
            "layer 2,000 × 1 MiB responses",
            Box::new(move || layer(2_000, MIB, budget, false, mark_end)),
        ),
        (
            "layer vary 200,000 variants × 1 KiB",
            Box::new(move || layer(200_000, 1024, budget, true, mark_end)),
        ),
    ];
    if "overhead".contains(filter.as_str()) {
        println!(
            "one entry costs a Moka store {} bytes beyond its value (keys of ~30 bytes)\n",
            overhead_per_entry(200_000)
        );
    }
    if "per response".contains(filter.as_str()) {
        println!(
            "| one stored 1 KiB response | layer | raw moka | ratio | raw moka, expiring | ratio |"
        );
        println!("|---|---:|---:|---:|---:|---:|");
        for (served, name) in [(false, "as stored"), (true, "once served")] {
            let it = per_response(20_000, 1024, served);
            let row = |what: &str, layered: usize| {
                println!(
                    "| {what} | {layered} B | {} B | {:.2}× | {} B | {:.2}× |",
                    it.raw,
                    layered as f64 / it.raw as f64,
                    it.expiring,
                    layered as f64 / it.expiring as f64
                );
            };
            row(&format!("{name}, `Content-Type` only"), it.layered);
            if served {
                row(&format!("{name}, five typical headers"), it.typical);
            }
        }
        println!();
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
