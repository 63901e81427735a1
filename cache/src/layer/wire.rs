//! The stored response as bytes, for byte tiers: serde, so every serde format can carry it.
//! Decoding checks the status, every header name and value: bytes that are not a response
//! are an error (a counted miss), never a response.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde::{
    Deserialize, Deserializer, Serialize, Serializer,
    de::{self, SeqAccess, Visitor},
    ser::{SerializeSeq, SerializeStruct},
};

use super::{CachedResponse, StoredHeaders, response::Vary};

/// Bytes written as bytes (not as a sequence of numbers) by formats that can.
struct Blob<'a>(&'a [u8]);

impl Serialize for Blob<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

struct Headers<'a>(&'a StoredHeaders);

impl Serialize for Headers<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for (name, value) in self.0 {
            seq.serialize_element(&(name.as_str(), Blob(value.as_bytes())))?;
        }
        seq.end()
    }
}

/// How a stored response varies, as written.
#[derive(Serialize, Deserialize)]
enum WireVary {
    Variants { names: Vec<String>, generation: u64 },
    Selected { selection: OwnedBlob },
}

impl Serialize for CachedResponse {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut response = serializer.serialize_struct("CachedResponse", 4)?;
        response.serialize_field("status", &self.status().as_u16())?;
        response.serialize_field("headers", &Headers(self.headers()))?;
        response.serialize_field("body", &Blob(self.body()))?;
        let vary = self.vary().map(|vary| match vary {
            Vary::Variants { names, generation } => WireVary::Variants {
                names: names.iter().map(|n| n.as_str().to_owned()).collect(),
                generation: *generation,
            },
            Vary::Selected { selection } => WireVary::Selected {
                selection: OwnedBlob(selection.to_vec()),
            },
        });
        response.serialize_field("vary", &vary)?;
        response.end()
    }
}

/// Owned bytes, read from bytes or from a sequence of numbers (JSON).
struct OwnedBlob(Vec<u8>);

impl Serialize for OwnedBlob {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Blob(&self.0).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for OwnedBlob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BlobVisitor;
        impl<'de> Visitor<'de> for BlobVisitor {
            type Value = OwnedBlob;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<OwnedBlob, E> {
                Ok(OwnedBlob(v.to_vec()))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<OwnedBlob, E> {
                Ok(OwnedBlob(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OwnedBlob, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
                while let Some(byte) = seq.next_element::<u8>()? {
                    out.push(byte);
                }
                Ok(OwnedBlob(out))
            }
        }
        deserializer.deserialize_byte_buf(BlobVisitor)
    }
}

#[derive(Deserialize)]
#[serde(rename = "CachedResponse")]
struct Wire {
    status: u16,
    headers: Vec<(String, OwnedBlob)>,
    body: OwnedBlob,
    vary: Option<WireVary>,
}

impl<'de> Deserialize<'de> for CachedResponse {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = Wire::deserialize(deserializer)?;
        let status = StatusCode::from_u16(wire.status).map_err(de::Error::custom)?;
        let mut headers = HeaderMap::with_capacity(wire.headers.len());
        for (name, value) in wire.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(de::Error::custom)?;
            let value = HeaderValue::from_bytes(&value.0).map_err(de::Error::custom)?;
            headers.append(name, value);
        }
        let vary = match wire.vary {
            None => None,
            Some(WireVary::Variants { names, generation }) => {
                let names = names
                    .iter()
                    .map(|name| HeaderName::from_bytes(name.as_bytes()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(de::Error::custom)?;
                Some(Vary::Variants {
                    names: names.into(),
                    generation,
                })
            }
            Some(WireVary::Selected { selection }) => Some(Vary::Selected {
                selection: selection.0.into(),
            }),
        };
        let response = CachedResponse::from_decoded(status, headers, Bytes::from(wire.body.0));
        Ok(response.with_vary(vary.map(std::sync::Arc::new)))
    }
}
