//! Decoders never allocate more than they may: with a payload limit of 1 MiB, no single
//! allocation made while decoding random, mutated or hostile bytes (a zstd bomb, a bincode
//! length that the input cannot hold) is larger than 1 MiB, and nothing panics.

// A counting global allocator needs `unsafe impl GlobalAlloc`; it only forwards to `System`.
#![allow(unsafe_code)]

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use layercake::{
    Entry, Key, Timestamp,
    codec::{Bincode, Codec, Compression, Format, Json, Postcard, Rkyv},
    layer::CachedResponse,
};
use proptest::prelude::*;

/// Records the largest allocation the current thread makes while recording is on.
struct Largest;

thread_local! {
    static RECORDING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn record(size: usize) {
    if RECORDING.with(Cell::get) {
        LARGEST.with(|largest| largest.set(largest.get().max(size)));
    }
}

// SAFETY: every call is forwarded to the system allocator unchanged; the records are
// thread-local cells that never allocate.
unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: forwarded as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        // SAFETY: forwarded as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Largest = Largest;

/// The payload limit every codec here is given.
const LIMIT: usize = 1024 * 1024;

/// The largest allocation `f` makes.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|largest| largest.set(0));
    RECORDING.with(|on| on.set(true));
    let out = f();
    RECORDING.with(|on| on.set(false));
    (out, LARGEST.with(Cell::get))
}

fn compressions() -> [Compression; 3] {
    [
        Compression::None,
        Compression::Zstd { level: 3 },
        Compression::Gzip { level: 6 },
    ]
}

fn codec<F>(format: F, compression: Compression) -> Codec<F> {
    Codec::new(format)
        .compression(compression)
        .min_compress_size(0)
        .max_payload_size(LIMIT)
}

/// Decodes `bytes` as a `V` with every format and compression; asserts no allocation over the
/// limit. Returns how many decoded.
fn decode_everywhere<V>(key: &Key, bytes: &Bytes) -> usize
where
    Postcard: Format<V>,
    Json: Format<V>,
    Bincode: Format<V>,
{
    let mut decoded = 0;
    for compression in compressions() {
        let (ok, largest) = largest_allocation(|| {
            [
                codec(Postcard, compression)
                    .decode::<V>(key, bytes.clone())
                    .is_ok(),
                codec(Json, compression)
                    .decode::<V>(key, bytes.clone())
                    .is_ok(),
                codec(Bincode, compression)
                    .decode::<V>(key, bytes.clone())
                    .is_ok(),
            ]
        });
        assert!(
            largest <= LIMIT,
            "decoding {} bytes allocated {largest} at once ({compression:?})",
            bytes.len()
        );
        decoded += ok.iter().filter(|ok| **ok).count();
    }
    decoded
}

fn entry<V>(value: V) -> Entry<V> {
    Entry::new(
        value,
        Timestamp::now(),
        Duration::from_secs(60),
        Duration::ZERO,
    )
}

#[test]
fn a_zstd_or_gzip_bomb_is_refused_without_allocating_what_it_claims() {
    let key = Key::from_parts(["bomb"]);
    // 64 MiB of zeros compress to a few kilobytes; the reader's limit is 1 MiB.
    let bomb = entry(vec![0u8; 64 * 1024 * 1024]);
    for compression in [
        Compression::Zstd { level: 3 },
        Compression::Gzip { level: 6 },
    ] {
        let writer = Codec::new(Postcard)
            .compression(compression)
            .min_compress_size(0);
        let bytes = Bytes::from(writer.encode(&key, &bomb).unwrap());
        assert!(bytes.len() < 1024 * 1024, "{} bytes", bytes.len());
        let (result, largest) = largest_allocation(|| {
            codec(Postcard, compression).decode::<Vec<u8>>(&key, bytes.clone())
        });
        // zstd refuses the frame's window, gzip stops at the limit.
        let error = result.unwrap_err().to_string();
        assert!(
            error.contains("larger than allowed") || error.contains("too much memory"),
            "{error}"
        );
        assert!(
            largest <= LIMIT,
            "{compression:?} allocated {largest} at once"
        );
    }
    // Just under the limit still reads, and costs about its size.
    let fits = entry(vec![7u8; LIMIT - 64]);
    for compression in compressions() {
        let bytes = Bytes::from(codec(Postcard, compression).encode(&key, &fits).unwrap());
        let (result, largest) = largest_allocation(|| {
            codec(Postcard, compression).decode::<Vec<u8>>(&key, bytes.clone())
        });
        assert_eq!(result.unwrap().value().len(), LIMIT - 64);
        assert!(
            largest <= LIMIT,
            "{compression:?} allocated {largest} at once"
        );
    }
}

#[test]
fn a_length_the_input_cannot_hold_is_never_allocated() {
    // bincode (standard: varint lengths): 252 then a u32 says "a string of 100 MiB", then 3
    // bytes. postcard: a varint of 100 MiB, then 3 bytes.
    let bincode = Bytes::from_static(&[252, 0x00, 0x00, 0x40, 0x06, b'a', b'b', b'c']);
    let postcard = Bytes::from_static(&[0x80, 0x80, 0x80, 0x32, b'a', b'b', b'c']);
    let (results, largest) = largest_allocation(|| {
        [
            <Bincode as Format<String>>::decode(&Bincode, bincode.clone()).is_err(),
            <Postcard as Format<String>>::decode(&Postcard, postcard.clone()).is_err(),
        ]
    });
    assert_eq!(results, [true; 2]);
    assert!(
        largest < 1024,
        "allocated {largest} bytes at once for 8 bytes of input"
    );
    // A sequence's claimed length is only a hint: serde pre-allocates at most 1 MiB for it.
    let (failed, largest) = largest_allocation(|| {
        [
            <Postcard as Format<Vec<String>>>::decode(&Postcard, postcard.clone()).is_err(),
            <Bincode as Format<Vec<u8>>>::decode(&Bincode, bincode.clone()).is_err(),
        ]
    });
    assert_eq!(failed, [true; 2]);
    assert!(
        largest <= LIMIT,
        "allocated {largest} bytes at once for 8 bytes of input"
    );
}

fn response() -> CachedResponse {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "text/plain".parse().unwrap());
    CachedResponse::new(StatusCode::OK, headers, Bytes::from_static(b"hello, world"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn random_bytes_never_panic_nor_allocate_past_the_limit(
        bytes in prop::collection::vec(any::<u8>(), 0..4096),
    ) {
        let key = Key::from_parts(["k"]);
        let bytes = Bytes::from(bytes);
        prop_assert_eq!(decode_everywhere::<Vec<u8>>(&key, &bytes), 0);
        prop_assert_eq!(decode_everywhere::<String>(&key, &bytes), 0);
        for format in [&bytes[..], &bytes[bytes.len().min(8)..]] {
            let payload = Bytes::copy_from_slice(format);
            let (_, largest) = largest_allocation(|| {
                let _ = <Bincode as Format<Vec<String>>>::decode(&Bincode, payload.clone());
                let _ = <Postcard as Format<Vec<String>>>::decode(&Postcard, payload.clone());
                let _ = <Json as Format<Vec<String>>>::decode(&Json, payload.clone());
                let _ = <Postcard as Format<CachedResponse>>::decode(&Postcard, payload.clone());
                let _ = <Rkyv as Format<CachedResponse>>::decode(&Rkyv, payload.clone());
            });
            prop_assert!(largest <= LIMIT, "a payload of {} bytes allocated {largest}", payload.len());
        }
    }

    #[test]
    fn mutated_encodings_never_panic_nor_allocate_past_the_limit(
        value in prop::collection::vec(".{0,64}", 0..16),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let key = Key::from_parts(["k"]);
        for compression in compressions() {
            let encoded = codec(Postcard, compression).encode(&key, &entry(value.clone())).unwrap();
            let mut mutated = encoded.clone();
            let i = at.index(mutated.len());
            mutated[i] = byte;
            let truncated = encoded[..cut.index(encoded.len())].to_vec();
            for bytes in [mutated, truncated] {
                decode_everywhere::<Vec<String>>(&key, &Bytes::from(bytes));
            }
            // The payload alone, mutated, through the formats (the envelope's checksum no
            // longer stands in the way).
            let mut payload = postcard::to_stdvec(&value).unwrap();
            if !payload.is_empty() {
                let i = at.index(payload.len());
                payload[i] = byte;
            }
            let payload = Bytes::from(payload);
            let (_, largest) = largest_allocation(|| {
                let _ = <Bincode as Format<Vec<String>>>::decode(&Bincode, payload.clone());
                let _ = <Postcard as Format<Vec<String>>>::decode(&Postcard, payload.clone());
            });
            prop_assert!(largest <= LIMIT);
        }
        let response = entry(response());
        for bytes in [
            codec(Postcard, Compression::None).encode(&key, &response).unwrap(),
            codec(Rkyv, Compression::None).encode(&key, &response).unwrap(),
        ] {
            let mut mutated = bytes;
            let i = at.index(mutated.len());
            mutated[i] = byte;
            let mutated = Bytes::from(mutated);
            let (_, largest) = largest_allocation(|| {
                let _ = codec(Postcard, Compression::None).decode::<CachedResponse>(&key, mutated.clone());
                let _ = codec(Rkyv, Compression::None).decode::<CachedResponse>(&key, mutated.clone());
            });
            prop_assert!(largest <= LIMIT);
        }
    }
}
