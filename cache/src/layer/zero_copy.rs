//! The stored response in rkyv: read in place, the body served as a slice of the stored bytes.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use layercake_backends::codec::{CodecError, Format, Rkyv};

use super::CachedResponse;

#[derive(rkyv::Archive, rkyv::Serialize)]
struct Record {
    status: u16,
    headers: Vec<Header>,
    body: Vec<u8>,
}

#[derive(rkyv::Archive, rkyv::Serialize)]
struct Header {
    name: String,
    value: Vec<u8>,
}

fn error(what: impl std::fmt::Display) -> CodecError {
    CodecError::new(format!("rkyv: {what}"))
}

impl Format<CachedResponse> for Rkyv {
    const ID: u8 = 4;
    const NAME: &'static str = "rkyv";

    fn encode(&self, value: &CachedResponse, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let record = Record {
            status: value.status().as_u16(),
            headers: value
                .headers()
                .iter()
                .map(|(name, value)| Header {
                    name: name.as_str().to_owned(),
                    value: value.as_bytes().to_vec(),
                })
                .collect(),
            body: value.body().to_vec(),
        };
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&record).map_err(error)?;
        out.extend_from_slice(&bytes);
        Ok(())
    }

    fn decode(&self, payload: Bytes) -> Result<CachedResponse, CodecError> {
        // Validated access (bytecheck): out-of-bounds offsets or invalid data are errors.
        let record =
            rkyv::access::<ArchivedRecord, rkyv::rancor::Error>(&payload).map_err(error)?;
        let status = StatusCode::from_u16(record.status.to_native()).map_err(error)?;
        let mut headers = HeaderMap::with_capacity(record.headers.len());
        for header in record.headers.iter() {
            let name = HeaderName::from_bytes(header.name.as_bytes()).map_err(error)?;
            let value = HeaderValue::from_bytes(header.value.as_slice()).map_err(error)?;
            headers.append(name, value);
        }
        // The body is not copied: it is the part of the stored bytes rkyv points at.
        let body = payload.slice_ref(record.body.as_slice());
        Ok(CachedResponse::new(status, headers, body))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use layercake_backends::{Entry, Key, Timestamp, codec::Codec};

    use super::*;

    #[test]
    fn the_body_is_read_in_place() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("text/plain"));
        let response = CachedResponse::new(StatusCode::OK, headers, Bytes::from(vec![b'q'; 4096]));
        let entry = Entry::new(
            response,
            Timestamp::now(),
            Duration::from_secs(9),
            Duration::ZERO,
        );
        let key = Key::from_parts(["k"]);
        let codec = Codec::new(Rkyv);
        let stored = Bytes::from(codec.encode(&key, &entry).unwrap());
        let back: Entry<CachedResponse> = codec.decode(&key, stored.clone()).unwrap();
        assert_eq!(back.value().body(), entry.value().body());
        assert_eq!(back.value().headers(), entry.value().headers());
        let range = stored.as_ptr_range();
        assert!(
            range.contains(&back.value().body().as_ptr()),
            "a slice of the stored bytes"
        );
    }

    #[test]
    fn invalid_archives_are_errors() {
        for garbage in [vec![], vec![0xff; 3], vec![0x41; 200]] {
            assert!(Rkyv.decode(Bytes::from(garbage)).is_err());
        }
    }
}
