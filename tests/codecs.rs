//! Every decoder against random bytes: an error or a value, never a panic; and the stored
//! response through every format, with and without compression.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use layercake::{
    Entry, Key, Timestamp,
    codec::{Bincode, Codec, Compression, Format, Json, Postcard, Rkyv, Ron},
    layer::CachedResponse,
};
use proptest::prelude::*;

fn response() -> CachedResponse {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("text/html"));
    headers.append("x-many", HeaderValue::from_static("1"));
    headers.append("x-many", HeaderValue::from_static("2"));
    CachedResponse::new(
        StatusCode::NOT_FOUND,
        headers,
        Bytes::from_static(b"<h1>gone</h1>"),
    )
}

fn round_trip<F: Format<CachedResponse>>(codec: Codec<F>) {
    let key = Key::from_parts(["page"]);
    let entry = Entry::new(
        response(),
        Timestamp::now(),
        Duration::from_secs(5),
        Duration::ZERO,
    );
    let bytes = Bytes::from(codec.encode(&key, &entry).unwrap());
    let back: Entry<CachedResponse> = codec.decode(&key, bytes).unwrap();
    assert_eq!(back.value().status(), StatusCode::NOT_FOUND);
    assert_eq!(back.value().headers(), entry.value().headers());
    assert_eq!(back.value().body(), entry.value().body());
}

#[test]
fn the_stored_response_round_trips_in_every_format_and_compression() {
    for compression in [
        Compression::None,
        Compression::Zstd { level: 1 },
        Compression::Gzip { level: 1 },
    ] {
        round_trip(
            Codec::new(Postcard)
                .compression(compression)
                .min_compress_size(0),
        );
        round_trip(
            Codec::new(Json)
                .compression(compression)
                .min_compress_size(0),
        );
        round_trip(
            Codec::new(Ron)
                .compression(compression)
                .min_compress_size(0),
        );
        round_trip(
            Codec::new(Bincode)
                .compression(compression)
                .min_compress_size(0),
        );
        round_trip(
            Codec::new(Rkyv)
                .compression(compression)
                .min_compress_size(0),
        );
    }
}

/// Decodes random bytes with `format`: any outcome but a panic is fine, and a value that comes
/// out is a well-formed response (its headers were validated).
fn survives<F: Format<CachedResponse>>(format: F, bytes: &[u8]) {
    if let Ok(response) = format.decode(Bytes::copy_from_slice(bytes)) {
        for (name, value) in response.headers() {
            assert!(!name.as_str().is_empty());
            let _ = value.as_bytes();
        }
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic_any_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        survives(Postcard, &bytes);
        survives(Json, &bytes);
        survives(Ron, &bytes);
        survives(Bincode, &bytes);
        survives(Rkyv, &bytes);
        let _ = <Postcard as Format<Vec<String>>>::decode(&Postcard, Bytes::from(bytes.clone()));
        let _ = <Bincode as Format<Vec<String>>>::decode(&Bincode, Bytes::from(bytes.clone()));
        let _ = <Ron as Format<Vec<String>>>::decode(&Ron, Bytes::from(bytes.clone()));
        let _ = <Json as Format<Vec<String>>>::decode(&Json, Bytes::from(bytes));
    }

    #[test]
    fn flipped_bytes_of_a_real_encoding_never_panic_any_decoder(position in any::<prop::sample::Index>(), bit in 0u8..8) {
        let key = Key::from_parts(["page"]);
        let entry = Entry::new(response(), Timestamp::now(), Duration::from_secs(5), Duration::ZERO);
        for encoded in [
            Codec::new(Postcard).encode(&key, &entry).unwrap(),
            Codec::new(Rkyv).encode(&key, &entry).unwrap(),
            Codec::new(Bincode).encode(&key, &entry).unwrap(),
            Codec::new(Ron).encode(&key, &entry).unwrap(),
        ] {
            // Skip the envelope (and its checksum): flip a byte of the payload itself.
            // Envelope: 40 bytes of header, key (length + bytes), no tags (2), payload length.
            let payload = &encoded[44 + key.as_bytes().len() + 2 + 4..encoded.len() - 8];
            let mut flipped = payload.to_vec();
            let at = position.index(flipped.len());
            flipped[at] ^= 1 << bit;
            survives(Postcard, &flipped);
            survives(Rkyv, &flipped);
            survives(Bincode, &flipped);
            survives(Ron, &flipped);
        }
    }
}
