//! The stored response in rkyv: read in place, the body served as a slice of the stored bytes.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use layercake_backends::codec::{CodecError, Format, Rkyv};

use super::{CachedResponse, response::Vary};

#[derive(rkyv::Archive, rkyv::Serialize)]
struct Record {
    status: u16,
    headers: Vec<Header>,
    body: Vec<u8>,
    /// 0: does not vary; 1: a URL's list of variants (`names`, `generation`); 2: a variant
    /// (`selection`).
    vary: u8,
    names: Vec<String>,
    generation: u64,
    selection: Vec<u8>,
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
        let mut record = Record {
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
            vary: 0,
            names: Vec::new(),
            generation: 0,
            selection: Vec::new(),
        };
        match value.vary() {
            None => {}
            Some(Vary::Variants { names, generation }) => {
                record.vary = 1;
                record.names = names.iter().map(|n| n.as_str().to_owned()).collect();
                record.generation = *generation;
            }
            Some(Vary::Selected { selection }) => {
                record.vary = 2;
                record.selection = selection.to_vec();
            }
        }
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
        let vary = match record.vary {
            0 => None,
            1 => {
                let names = record
                    .names
                    .iter()
                    .map(|name| HeaderName::from_bytes(name.as_bytes()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(error)?;
                Some(Vary::Variants {
                    names: names.into(),
                    generation: record.generation.to_native(),
                })
            }
            2 => Some(Vary::Selected {
                selection: record.selection.as_slice().into(),
            }),
            other => return Err(error(format!("unknown vary kind {other}"))),
        };
        let response = CachedResponse::from_decoded(status, headers, body);
        Ok(response.with_vary(vary.map(std::sync::Arc::new)))
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
