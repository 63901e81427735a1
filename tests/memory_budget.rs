//! A `Moka` store stays inside its byte budget: the peak of the live heap (a counting global
//! allocator) while filling one far past its budget is at most 1.25 times the budget, for
//! typed values small and large, responses through the layer, and `Vary` variants.
//! `benches/memory.rs` runs the same fills at full size (64 MiB, a million entries).
//!
//! One test, so that nothing else allocates while it measures.

use layercake_tests::memory::{
    LiveHeap, layer, mark_end, measure, proxied, typed_bytes, typed_strings,
};

#[global_allocator]
static GLOBAL: LiveHeap = LiveHeap;

const KIB: usize = 1024;
const BUDGET: usize = 4 * 1024 * KIB;

/// A fill, given what to call at its end.
type Fill = Box<dyn FnOnce(fn())>;

/// The peak of the live heap while `fill` runs, and what is live at its end, over the budget.
fn ratios(fill: Fill) -> (f64, f64) {
    let (peak, end) = measure(|| fill(mark_end));
    (peak as f64 / BUDGET as f64, end as f64 / BUDGET as f64)
}

#[test]
fn a_moka_store_holds_at_most_a_quarter_more_than_its_budget() {
    let cases: [(&str, Fill); 5] = [
        (
            "layer 20,000 × 1 KiB responses from a real hyper origin",
            Box::new(|end| proxied(20_000, KIB, BUDGET, end)),
        ),
        (
            "typed 40,000 × 1 KiB strings",
            Box::new(|end| typed_strings(40_000, KIB, BUDGET, end)),
        ),
        (
            "typed 64 × 256 KiB bytes",
            Box::new(|end| typed_bytes(64, 256 * KIB, BUDGET, end)),
        ),
        (
            "layer 20,000 × 1 KiB responses",
            Box::new(|end| layer(20_000, KIB, BUDGET, false, end)),
        ),
        (
            "layer 20,000 Vary variants × 1 KiB",
            Box::new(|end| layer(20_000, KIB, BUDGET, true, end)),
        ),
    ];
    for (name, fill) in cases {
        let (peak, end) = ratios(fill);
        assert!(peak <= 1.25, "{name}: peak {peak:.2}× the budget");
        // Filled far past the budget, the store is full: it was not bounded by something else.
        assert!(end >= 0.75, "{name}: only {end:.2}× the budget at the end");
    }
}
