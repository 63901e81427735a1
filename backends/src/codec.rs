//! Codecs for byte tiers: how an [`Entry`] becomes bytes in Redis (or any byte store) and back.
//!
//! Stored bytes are an envelope around the encoded value:
//!
//! ```text
//! magic "LYCK" | envelope version | format id | compression id | flags
//! value type (xxh3-64 of the Rust type's name, u64 LE)
//! stored_at | fresh_until | stale_until | error_until | retain_until   (u64 LE, ms since the epoch)
//! key length (u32 LE) | the key's encoded parts
//! tag count (u16 LE) | each tag: length (u16 LE) and UTF-8 bytes
//! payload length (u32 LE) | payload (the value, in the format, maybe compressed)
//! checksum (xxh3-64 of everything before it, u64 LE)
//! ```
//!
//! Reading checks every part: foreign, truncated or corrupt bytes, another format, an unknown
//! compression, a checksum that does not match, an entry written for another key (the full
//! key is compared, not its hash), or one written as a value of another type (two caches of
//! different value types on one namespace: a `String` is never read as a `u64`) all fail to
//! decode. The value type is identified by its name, as `std::any::type_name` gives it: the
//! same in every process built from the same code; a build with another compiler may name a
//! type differently, which reads as a miss, never as a wrong value. The store reports that as a
//! [`Corrupt`](crate::BackendErrorKind::Corrupt) error, which the engine counts and reads as a
//! miss: never a panic, never a wrong answer.
//!
//! Formats ([`Format`]): [`Postcard`] is the default (compact, fast, maintained, with a stable
//! wire format since 1.0 — entries written by one build are read by the next); [`Json`]
//! (feature `json`) and [`Ron`] (feature `ron`) are for debugging; [`Bincode`] (feature `bincode`) is offered for those who
//! use it elsewhere, but bincode is unmaintained (RUSTSEC-2025-0141), so it is never the
//! default. [`Rkyv`] (feature `rkyv`) reads the HTTP layer's stored response in place: its body
//! is served as a slice of the bytes read from the store.
//! Compression ([`Compression`]): zstd (feature `zstd`) or gzip (feature `gzip`), with a level,
//! skipped for payloads under a size threshold.
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use layercake_backends::{Entry, Key, Timestamp, codec::{Codec, Postcard}};
//!
//! let codec = Codec::new(Postcard);
//! let key = Key::from_parts(["user", "7"]);
//! let entry = Entry::new("Ada".to_string(), Timestamp::now(), Duration::from_secs(60), Duration::ZERO);
//! let bytes = Bytes::from(codec.encode(&key, &entry).unwrap());
//! let back: Entry<String> = codec.decode(&key, bytes.clone()).unwrap();
//! assert_eq!(back.value(), "Ada");
//! assert_eq!(back.fresh_until(), entry.fresh_until());
//!
//! // Read under another key, or with a byte flipped: an error, not a value.
//! assert!(codec.decode::<String>(&Key::from_parts(["user", "8"]), bytes.clone()).is_err());
//! let mut flipped = bytes.to_vec();
//! flipped[50] ^= 1;
//! assert!(codec.decode::<String>(&key, Bytes::from(flipped)).is_err());
//! ```

use std::fmt;

use bytes::Bytes;

use crate::{BackendError, BackendErrorKind, Entry, Key, Timestamp};

const MAGIC: &[u8; 4] = b"LYCK";
const ENVELOPE_VERSION: u8 = 3;
/// Magic and ids, the value type, five times.
const HEADER: usize = 4 + 4 + 8 + 5 * 8;
/// Where the five times start.
const TIMES: usize = 4 + 4 + 8;

/// The identity of value type `V` in the envelope.
fn type_id<V>() -> u64 {
    xxhash_rust::xxh3::xxh3_64(std::any::type_name::<V>().as_bytes())
}
const CHECKSUM: usize = 8;

/// A serialization format for values of type `V` in byte tiers.
///
/// A format has an id, stored in every entry, so that bytes written in one format are never
/// read as another. Serde formats implement `Format<V>` for every `V: Serialize +
/// DeserializeOwned`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot encode values of type `{V}`",
    label = "no codec for `{V}`",
    note = "serde formats (`Postcard`, `Json`, `Ron`, `Bincode`) need `{V}: serde::Serialize + serde::de::DeserializeOwned`"
)]
pub trait Format<V>: Clone + Send + Sync + 'static {
    /// The id stored in every entry's envelope. Ids below 128 are layercake's own.
    const ID: u8;
    /// A short name for logs and errors.
    const NAME: &'static str;

    /// Appends the encoding of `value` to `out`.
    fn encode(&self, value: &V, out: &mut Vec<u8>) -> Result<(), CodecError>;

    /// Decodes a value from `payload` (which a format may keep slices of, instead of copying).
    fn decode(&self, payload: Bytes) -> Result<V, CodecError>;
}

/// The stored bytes of an entry, marked stale from `now` (a soft purge, as
/// [`Entry::mark_stale`] does in memory): its fresh and stale windows end at `now` at the
/// latest, and the checksum is made again. The value is not decoded, so this works
/// whatever its type or format; bytes that are not a sound envelope are an error.
///
/// ```
/// use std::time::Duration;
/// use bytes::Bytes;
/// use layercake_backends::{Entry, Freshness, Key, Timestamp, codec::{Codec, Postcard}};
///
/// let codec = Codec::new(Postcard);
/// let key = Key::from_parts(["k"]);
/// let t0 = Timestamp::from_millis(1_000);
/// let entry = Entry::new(5u32, t0, Duration::from_secs(60), Duration::from_secs(60));
/// let bytes = codec.encode(&key, &entry).unwrap();
/// let now = t0 + Duration::from_secs(1);
/// let marked = layercake_backends::codec::mark_stale(&bytes, now).unwrap();
/// let back: Entry<u32> = codec.decode(&key, Bytes::from(marked)).unwrap();
/// assert_eq!(back.freshness(now), Freshness::StaleIfError(Duration::ZERO));
/// assert_eq!(*back.value(), 5);
/// ```
pub fn mark_stale(bytes: &[u8], now: Timestamp) -> Result<Vec<u8>, CodecError> {
    let total = bytes.len();
    if total < HEADER + 8 + CHECKSUM {
        return Err(CodecError::new("truncated: shorter than an envelope"));
    }
    let (body, checksum) = bytes.split_at(total - CHECKSUM);
    if &body[..4] != MAGIC || body[4] != ENVELOPE_VERSION {
        return Err(CodecError::new("not a layercake entry of this version"));
    }
    if xxhash_rust::xxh3::xxh3_64(body) != u64::from_le_bytes(checksum.try_into().expect("8 bytes"))
    {
        return Err(CodecError::new("checksum mismatch: corrupt or truncated"));
    }
    let mut out = body.to_vec();
    let word = |out: &[u8], n: usize| {
        let at = TIMES + 8 * n;
        u64::from_le_bytes(out[at..at + 8].try_into().expect("8 bytes"))
    };
    let fresh_until = word(&out, 1).min(now.as_millis());
    let stale_until = word(&out, 2).min(now.as_millis()).max(fresh_until);
    out[TIMES + 8..TIMES + 16].copy_from_slice(&fresh_until.to_le_bytes());
    out[TIMES + 16..TIMES + 24].copy_from_slice(&stale_until.to_le_bytes());
    let checksum = xxhash_rust::xxh3::xxh3_64(&out);
    out.extend_from_slice(&checksum.to_le_bytes());
    Ok(out)
}

/// The tags of stored bytes, read without decoding the value (and without checking the
/// checksum: a store decodes before it serves), for a store that indexes its entries by tag;
/// `None` when the bytes are not an envelope of this version.
#[cfg(feature = "disk")]
pub(crate) fn envelope_tags(bytes: &[u8]) -> Option<Vec<&str>> {
    if bytes.len() < HEADER + 8 + CHECKSUM || &bytes[..4] != MAGIC || bytes[4] != ENVELOPE_VERSION {
        return None;
    }
    let key_len = u32::from_le_bytes(bytes.get(HEADER..HEADER + 4)?.try_into().ok()?) as usize;
    let mut at = HEADER + 4 + key_len;
    let short = |at: &mut usize| -> Option<usize> {
        let raw = bytes.get(*at..*at + 2)?;
        *at += 2;
        Some(u16::from_le_bytes(raw.try_into().ok()?) as usize)
    };
    let count = short(&mut at)?;
    let mut tags = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let len = short(&mut at)?;
        let tag = bytes.get(at..at + len)?;
        at += len;
        tags.push(std::str::from_utf8(tag).ok()?);
    }
    Some(tags)
}

/// A value could not be encoded, or bytes could not be decoded.
///
/// ```
/// use layercake_backends::codec::CodecError;
/// let error = CodecError::new("truncated payload");
/// assert_eq!(error.to_string(), "truncated payload");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError(String);

impl CodecError {
    /// An error saying `what` went wrong.
    ///
    /// ```
    /// use layercake_backends::codec::CodecError;
    /// let error = CodecError::new("bad magic");
    /// # drop(error);
    /// ```
    pub fn new(what: impl Into<String>) -> Self {
        CodecError(what.into())
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CodecError {}

impl From<CodecError> for BackendError {
    fn from(error: CodecError) -> Self {
        BackendError::new(BackendErrorKind::Corrupt, error)
    }
}

/// Compression of stored payloads.
///
/// ```
/// use layercake_backends::codec::{Codec, Compression, Postcard};
/// let codec = Codec::new(Postcard).compression(Compression::None);
/// # drop(codec);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compression {
    /// Stored as encoded.
    #[default]
    None,
    /// zstd at `level` (1 fast … 22 small; 3 is zstd's default). Feature `zstd`.
    #[cfg(feature = "zstd")]
    Zstd {
        /// The compression level.
        level: i32,
    },
    /// gzip at `level` (0 none … 9 small; 6 is gzip's default). Feature `gzip`.
    #[cfg(feature = "gzip")]
    Gzip {
        /// The compression level.
        level: u32,
    },
}

impl Compression {
    fn id(self) -> u8 {
        match self {
            Compression::None => 0,
            #[cfg(feature = "zstd")]
            Compression::Zstd { .. } => 1,
            #[cfg(feature = "gzip")]
            Compression::Gzip { .. } => 2,
        }
    }

    fn compress(self, data: &[u8]) -> Result<Vec<u8>, CodecError> {
        match self {
            Compression::None => Ok(data.to_vec()),
            #[cfg(feature = "zstd")]
            Compression::Zstd { level } => {
                zstd::bulk::compress(data, level).map_err(|e| CodecError::new(format!("zstd: {e}")))
            }
            #[cfg(feature = "gzip")]
            Compression::Gzip { level } => {
                use std::io::Write;
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
                encoder
                    .write_all(data)
                    .and_then(|()| encoder.finish())
                    .map_err(|e| CodecError::new(format!("gzip: {e}")))
            }
        }
    }
}

/// Decompresses a payload stored with compression `id`, refusing to grow past `limit` bytes,
/// and never allocating more than `limit` bytes on the way.
fn decompress(id: u8, data: Bytes, limit: usize) -> Result<Bytes, CodecError> {
    match id {
        0 if data.len() > limit => Err(CodecError::new("payload larger than allowed")),
        0 => Ok(data),
        #[cfg(feature = "zstd")]
        1 => {
            let zstd = |e: std::io::Error| CodecError::new(format!("zstd: {e}"));
            // The slice is its own buffer (no `BufReader`), and the window the decoder keeps is
            // no larger than the limit: a frame asking for more is refused, not allocated.
            let mut decoder = zstd::stream::read::Decoder::with_buffer(&data[..]).map_err(zstd)?;
            decoder.window_log_max(window_log(limit)).map_err(zstd)?;
            read_limited("zstd", decoder, limit)
        }
        #[cfg(feature = "gzip")]
        2 => read_limited("gzip", flate2::read::GzDecoder::new(&data[..]), limit),
        other => {
            let _ = limit;
            Err(CodecError::new(format!(
                "unknown compression {other} (not enabled in this build?)"
            )))
        }
    }
}

/// The zstd window (log 2 of its bytes) that a payload of at most `limit` bytes can need: zstd
/// never needs a window larger than its content. Within zstd's bounds (10 to 31).
#[cfg(feature = "zstd")]
fn window_log(limit: usize) -> u32 {
    limit
        .max(1)
        .next_power_of_two()
        .trailing_zeros()
        .clamp(10, 31)
}

/// Reads all of a decompressor, but never more than `limit` bytes, in an output that grows by
/// doubling but never past `limit` (so a small payload cannot expand into a large allocation,
/// and a payload that fits never costs more than its size).
#[cfg(any(feature = "zstd", feature = "gzip"))]
fn read_limited(
    name: &str,
    mut reader: impl std::io::Read,
    limit: usize,
) -> Result<Bytes, CodecError> {
    let mut out: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 8 * 1024];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => return Ok(Bytes::from(out)),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CodecError::new(format!("{name}: {e}"))),
        };
        let len = out.len() + n;
        if len > limit {
            return Err(CodecError::new(format!(
                "{name}: payload larger than allowed"
            )));
        }
        if len > out.capacity() {
            let grown = (out.capacity() * 2).max(len).max(chunk.len()).min(limit);
            out.reserve_exact(grown - out.len());
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

/// Encodes and decodes entries for byte tiers: a [`Format`], a [`Compression`] and the
/// envelope described in the [module docs](self).
///
/// ```
/// use std::time::Duration;
/// use layercake_backends::{Entry, Key, Timestamp, codec::{Codec, Postcard}};
/// let codec = Codec::new(Postcard);
/// let key = Key::from_parts(["user", "42"]);
/// let entry = Entry::new("Ada".to_owned(), Timestamp::now(), Duration::from_secs(60), Duration::ZERO);
/// let bytes = codec.encode(&key, &entry).unwrap();
/// let back: Entry<String> = codec.decode(&key, bytes.into()).unwrap();
/// assert_eq!(back.value(), "Ada");
/// ```
#[derive(Debug, Clone)]
pub struct Codec<F> {
    format: F,
    compression: Compression,
    min_compress_size: usize,
    max_payload_size: usize,
}

impl<F> Codec<F> {
    /// The default bound on a payload read back: 256 MiB.
    ///
    /// ```
    /// use layercake_backends::codec::{Codec, Postcard};
    /// assert_eq!(Codec::<Postcard>::DEFAULT_MAX_PAYLOAD_SIZE, 256 << 20);
    /// ```
    pub const DEFAULT_MAX_PAYLOAD_SIZE: usize = 256 * 1024 * 1024;

    /// A codec in `format`, without compression.
    ///
    /// ```
    /// use layercake_backends::codec::{Codec, Postcard};
    /// let codec = Codec::new(Postcard);
    /// # drop(codec);
    /// ```
    pub fn new(format: F) -> Self {
        Codec {
            format,
            compression: Compression::None,
            min_compress_size: 1024,
            max_payload_size: Self::DEFAULT_MAX_PAYLOAD_SIZE,
        }
    }

    /// The same codec (compression, limits) in another format.
    ///
    /// ```
    /// use layercake_backends::codec::{Codec, Json, Postcard};
    ///
    /// let json: Codec<Json> = Codec::new(Postcard).with_format(Json);
    /// # drop(json);
    /// ```
    pub fn with_format<G>(&self, format: G) -> Codec<G> {
        Codec {
            format,
            compression: self.compression,
            min_compress_size: self.min_compress_size,
            max_payload_size: self.max_payload_size,
        }
    }

    /// Compresses payloads with `compression`. Default: none.
    ///
    /// ```
    /// use layercake_backends::codec::{Codec, Compression, Postcard};
    /// let codec = Codec::new(Postcard).compression(Compression::default());
    /// # drop(codec);
    /// ```
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Payloads smaller than this are stored uncompressed (compression would cost more than
    /// it saves). Default: 1 KiB.
    ///
    /// ```
    /// use layercake_backends::codec::{Codec, Postcard};
    /// let codec = Codec::new(Postcard).min_compress_size(4096);
    /// # drop(codec);
    /// ```
    pub fn min_compress_size(mut self, bytes: usize) -> Self {
        self.min_compress_size = bytes;
        self
    }

    /// The largest payload a read accepts, decompressed: a larger one reads as corrupt, and
    /// decoding never allocates more than this for the payload (a few kilobytes of a
    /// decompressor's own state aside). Default: 256 MiB ([`Codec::DEFAULT_MAX_PAYLOAD_SIZE`]).
    ///
    /// ```
    /// use layercake_backends::codec::{Codec, Postcard};
    ///
    /// let codec = Codec::new(Postcard).max_payload_size(8 * 1024 * 1024);
    /// # drop(codec);
    /// ```
    pub fn max_payload_size(mut self, bytes: usize) -> Self {
        self.max_payload_size = bytes;
        self
    }

    /// The format.
    ///
    /// ```
    /// use layercake_backends::codec::{Codec, Postcard};
    /// assert_eq!(*Codec::new(Postcard).format(), Postcard);
    /// ```
    pub fn format(&self) -> &F {
        &self.format
    }

    /// Encodes `entry`, stored under `key`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake_backends::{Entry, Key, Timestamp, codec::{Codec, Postcard}};
    /// let codec = Codec::new(Postcard);
    /// let key = Key::from_parts(["user", "42"]);
    /// let entry = Entry::new("Ada".to_owned(), Timestamp::now(), Duration::from_secs(60), Duration::ZERO);
    /// let bytes = codec.encode(&key, &entry).unwrap();
    /// assert!(!bytes.is_empty());
    /// ```
    pub fn encode<V>(&self, key: &Key, entry: &Entry<V>) -> Result<Vec<u8>, CodecError>
    where
        F: Format<V>,
    {
        let mut payload = Vec::new();
        self.format.encode(entry.value(), &mut payload)?;
        let compression = if payload.len() >= self.min_compress_size {
            self.compression
        } else {
            Compression::None
        };
        if compression != Compression::None {
            payload = compression.compress(&payload)?;
        }
        let key = key.as_bytes();
        let len = |n: usize| u32::try_from(n).map_err(|_| CodecError::new("entry too large"));
        let mut out = Vec::with_capacity(HEADER + 8 + key.len() + payload.len() + CHECKSUM);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[ENVELOPE_VERSION, F::ID, compression.id(), 0]);
        out.extend_from_slice(&type_id::<V>().to_le_bytes());
        for time in [
            entry.stored_at(),
            entry.fresh_until(),
            entry.stale_until(),
            entry.error_until(),
            entry.retain_until(),
        ] {
            out.extend_from_slice(&time.as_millis().to_le_bytes());
        }
        out.extend_from_slice(&len(key.len())?.to_le_bytes());
        out.extend_from_slice(key);
        let tags = entry.tags();
        let short =
            |n: usize| u16::try_from(n).map_err(|_| CodecError::new("too many or too long tags"));
        out.extend_from_slice(&short(tags.len())?.to_le_bytes());
        for tag in tags {
            out.extend_from_slice(&short(tag.len())?.to_le_bytes());
            out.extend_from_slice(tag.as_bytes());
        }
        out.extend_from_slice(&len(payload.len())?.to_le_bytes());
        out.extend_from_slice(&payload);
        let checksum = xxhash_rust::xxh3::xxh3_64(&out);
        out.extend_from_slice(&checksum.to_le_bytes());
        Ok(out)
    }

    /// Decodes an entry read under `key`; any mismatch is an error (see the
    /// [module docs](self)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake_backends::{Entry, Key, Timestamp, codec::{Codec, Postcard}};
    /// let codec = Codec::new(Postcard);
    /// let key = Key::from_parts(["user", "42"]);
    /// let entry = Entry::new("Ada".to_owned(), Timestamp::now(), Duration::from_secs(60), Duration::ZERO);
    /// let bytes = bytes::Bytes::from(codec.encode(&key, &entry).unwrap());
    /// let back: Entry<String> = codec.decode(&key, bytes.clone()).unwrap();
    /// assert_eq!(back.value(), "Ada");
    /// let other = Key::from_parts(["user", "7"]);
    /// assert!(codec.decode::<String>(&other, bytes).is_err(), "stored under another key");
    /// ```
    pub fn decode<V>(&self, key: &Key, bytes: Bytes) -> Result<Entry<V>, CodecError>
    where
        F: Format<V>,
    {
        let total = bytes.len();
        if total < HEADER + 8 + CHECKSUM {
            return Err(CodecError::new("truncated: shorter than an envelope"));
        }
        let (body, checksum) = bytes.split_at(total - CHECKSUM);
        let checksum = u64::from_le_bytes(checksum.try_into().expect("8 bytes"));
        if &body[..4] != MAGIC {
            return Err(CodecError::new("not a layercake entry (bad magic)"));
        }
        if xxhash_rust::xxh3::xxh3_64(body) != checksum {
            return Err(CodecError::new("checksum mismatch: corrupt or truncated"));
        }
        let [version, format, compression, _flags] = [body[4], body[5], body[6], body[7]];
        if version != ENVELOPE_VERSION {
            return Err(CodecError::new(format!(
                "unknown envelope version {version}"
            )));
        }
        if format != F::ID {
            return Err(CodecError::new(format!(
                "stored in format {format}, read as {} ({})",
                F::ID,
                F::NAME
            )));
        }
        let word = |at: usize| u64::from_le_bytes(body[at..at + 8].try_into().expect("8 bytes"));
        if word(8) != type_id::<V>() {
            return Err(CodecError::new(format!(
                "stored as another type than `{}`",
                std::any::type_name::<V>()
            )));
        }
        let time = |n: usize| Timestamp::from_millis(word(TIMES + 8 * n));
        let (stored_at, fresh_until, stale_until, error_until, retain_until) =
            (time(0), time(1), time(2), time(3), time(4));
        let mut at = HEADER;
        let read_len = |at: &mut usize| -> Result<usize, CodecError> {
            let end = *at + 4;
            let raw = body
                .get(*at..end)
                .ok_or_else(|| CodecError::new("truncated length"))?;
            *at = end;
            Ok(u32::from_le_bytes(raw.try_into().expect("4 bytes")) as usize)
        };
        let key_len = read_len(&mut at)?;
        let stored_key = body
            .get(at..at + key_len)
            .ok_or_else(|| CodecError::new("truncated key"))?;
        if stored_key != key.as_bytes() {
            return Err(CodecError::new("the entry was written for another key"));
        }
        at += key_len;
        let read_short = |at: &mut usize| -> Result<usize, CodecError> {
            let raw = body
                .get(*at..*at + 2)
                .ok_or_else(|| CodecError::new("truncated tags"))?;
            *at += 2;
            Ok(u16::from_le_bytes(raw.try_into().expect("2 bytes")) as usize)
        };
        let tag_count = read_short(&mut at)?;
        let mut tags = Vec::with_capacity(tag_count.min(64));
        for _ in 0..tag_count {
            let tag_len = read_short(&mut at)?;
            let raw = body
                .get(at..at + tag_len)
                .ok_or_else(|| CodecError::new("truncated tag"))?;
            let tag =
                std::str::from_utf8(raw).map_err(|_| CodecError::new("a tag is not UTF-8"))?;
            tags.push(std::sync::Arc::<str>::from(tag));
            at += tag_len;
        }
        let payload_len = read_len(&mut at)?;
        if at + payload_len != body.len() {
            return Err(CodecError::new("payload length does not match"));
        }
        let payload = bytes.slice(at..at + payload_len);
        let payload = decompress(compression, payload, self.max_payload_size)?;
        let weight = payload.len() + key_len;
        let value = self.format.decode(payload)?;
        Ok(
            Entry::from_parts(value, stored_at, fresh_until, stale_until)
                .with_error_until(error_until)
                .with_retain_until(retain_until)
                .with_tags(tags.into())
                .with_weight(weight),
        )
    }
}

/// [postcard](https://docs.rs/postcard): the default format. Compact and fast, maintained, and
/// with a wire format that is stable since 1.0.
///
/// ```
/// use layercake_backends::codec::{Codec, Postcard};
/// let codec = Codec::new(Postcard);
/// # drop(codec);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Postcard;

impl<V> Format<V> for Postcard
where
    V: serde::Serialize + serde::de::DeserializeOwned,
{
    const ID: u8 = 1;
    const NAME: &'static str = "postcard";

    fn encode(&self, value: &V, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let encoded =
            postcard::to_stdvec(value).map_err(|e| CodecError::new(format!("postcard: {e}")))?;
        out.extend_from_slice(&encoded);
        Ok(())
    }

    fn decode(&self, payload: Bytes) -> Result<V, CodecError> {
        postcard::from_bytes(&payload).map_err(|e| CodecError::new(format!("postcard: {e}")))
    }
}

/// JSON, for debugging: readable in `redis-cli`, large and slow. Feature `json`.
#[cfg(feature = "json")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json;

#[cfg(feature = "json")]
impl<V> Format<V> for Json
where
    V: serde::Serialize + serde::de::DeserializeOwned,
{
    const ID: u8 = 2;
    const NAME: &'static str = "json";

    fn encode(&self, value: &V, out: &mut Vec<u8>) -> Result<(), CodecError> {
        serde_json::to_writer(out, value).map_err(|e| CodecError::new(format!("json: {e}")))
    }

    fn decode(&self, payload: Bytes) -> Result<V, CodecError> {
        serde_json::from_slice(&payload).map_err(|e| CodecError::new(format!("json: {e}")))
    }
}

/// [RON](https://docs.rs/ron) (Rusty Object Notation), for debugging: readable like JSON, and
/// closer to Rust's own syntax (structs, enums and tuples as written in code). Large and slow,
/// as JSON is. Feature `ron`.
///
/// ```
/// use std::time::Duration;
/// use layercake_backends::{Entry, Key, Timestamp, codec::{Codec, Ron}};
///
/// let codec = Codec::new(Ron);
/// let key = Key::from_parts(["user", "7"]);
/// let entry = Entry::new(("Ada".to_owned(), 36u8), Timestamp::now(), Duration::from_secs(60), Duration::ZERO);
/// let bytes = codec.encode(&key, &entry).unwrap();
/// assert!(bytes.windows(7).any(|w| w == b"(\"Ada\",")); // readable in redis-cli
/// let back: Entry<(String, u8)> = codec.decode(&key, bytes.into()).unwrap();
/// assert_eq!(back.value(), entry.value());
/// ```
#[cfg(feature = "ron")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ron;

#[cfg(feature = "ron")]
impl<V> Format<V> for Ron
where
    V: serde::Serialize + serde::de::DeserializeOwned,
{
    const ID: u8 = 5;
    const NAME: &'static str = "ron";

    fn encode(&self, value: &V, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let text = ron::to_string(value).map_err(|e| CodecError::new(format!("ron: {e}")))?;
        out.extend_from_slice(text.as_bytes());
        Ok(())
    }

    fn decode(&self, payload: Bytes) -> Result<V, CodecError> {
        ron::de::from_bytes(&payload).map_err(|e| CodecError::new(format!("ron: {e}")))
    }
}

/// bincode 2 (serde mode, standard configuration). Feature `bincode`. bincode is unmaintained
/// (RUSTSEC-2025-0141): prefer [`Postcard`].
#[cfg(feature = "bincode")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bincode;

#[cfg(feature = "bincode")]
impl<V> Format<V> for Bincode
where
    V: serde::Serialize + serde::de::DeserializeOwned,
{
    const ID: u8 = 3;
    const NAME: &'static str = "bincode";

    fn encode(&self, value: &V, out: &mut Vec<u8>) -> Result<(), CodecError> {
        bincode::serde::encode_into_std_write(value, out, bincode::config::standard())
            .map(drop)
            .map_err(|e| CodecError::new(format!("bincode: {e}")))
    }

    /// bincode allocates a string or a byte buffer as long as the length its input claims,
    /// before reading it; its limit bounds what all claims add up to. Numbers claim their size
    /// in memory, up to 16 bytes for one byte of input (a `u128` varint), so the limit is the
    /// smallest power of two at least 16 times the payload: a lying length can never make it
    /// allocate more than 32 times the payload's size, where it could allocate 256 MiB from a
    /// few bytes (bincode's limit is a type parameter, hence one instance per power of two).
    fn decode(&self, payload: Bytes) -> Result<V, CodecError> {
        let claims = payload.len().saturating_mul(16);
        macro_rules! limited {
            ($($bits:literal)+) => {$(
                if claims <= 1 << $bits {
                    return bincode_decode::<V, { 1 << $bits }>(&payload);
                }
            )+};
        }
        limited!(8 10 12 14 16 18 20 21 22 23 24 25 26 27 28 29 30);
        // Payloads over 64 MiB: 2 GiB of claims, the most a 32-bit target can count.
        bincode_decode::<V, { 1 << 31 }>(&payload)
    }
}

/// Decodes `payload` with bincode, its claims bounded by `LIMIT` bytes.
#[cfg(feature = "bincode")]
fn bincode_decode<V, const LIMIT: usize>(payload: &[u8]) -> Result<V, CodecError>
where
    V: serde::de::DeserializeOwned,
{
    let config = bincode::config::standard().with_limit::<LIMIT>();
    let (value, read) = bincode::serde::decode_from_slice(payload, config)
        .map_err(|e| CodecError::new(format!("bincode: {e}")))?;
    if read != payload.len() {
        return Err(CodecError::new("bincode: trailing bytes"));
    }
    Ok(value)
}

/// [rkyv](https://docs.rs/rkyv): read in place, without deserializing. Feature `rkyv`.
/// `layercake` implements it for the HTTP layer's stored response, whose body is then served
/// straight out of the bytes read from the store (a slice, not a copy).
#[cfg(feature = "rkyv")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rkyv;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;

    #[allow(unused_mut)]
    fn codecs() -> Vec<Codec<Postcard>> {
        let mut codecs = vec![Codec::new(Postcard)];
        #[cfg(feature = "zstd")]
        codecs.push(
            Codec::new(Postcard)
                .compression(Compression::Zstd { level: 3 })
                .min_compress_size(0),
        );
        #[cfg(feature = "gzip")]
        codecs.push(
            Codec::new(Postcard)
                .compression(Compression::Gzip { level: 6 })
                .min_compress_size(0),
        );
        codecs
    }

    fn entry(value: Vec<u8>) -> Entry<Vec<u8>> {
        Entry::new(
            value,
            Timestamp::from_millis(1_000),
            Duration::from_secs(60),
            Duration::from_secs(5),
        )
        .with_stale_if_error(Duration::from_secs(600))
    }

    #[test]
    fn tags_survive_the_round_trip() {
        let key = Key::from_parts(["k"]);
        let tags: std::sync::Arc<[std::sync::Arc<str>]> =
            std::sync::Arc::from(["users".into(), "profile:7".into()]);
        let tagged = entry(vec![1]).with_tags(tags);
        let codec = Codec::new(Postcard);
        let back: Entry<Vec<u8>> = codec
            .decode(&key, Bytes::from(codec.encode(&key, &tagged).unwrap()))
            .unwrap();
        let names: Vec<&str> = back.tags().iter().map(|t| &**t).collect();
        assert_eq!(names, ["users", "profile:7"]);
    }

    #[test]
    fn round_trip_keeps_value_and_times() {
        let key = Key::from_parts(["k"]);
        for codec in codecs() {
            let original = entry(vec![7; 5000]);
            let bytes = Bytes::from(codec.encode(&key, &original).unwrap());
            let back: Entry<Vec<u8>> = codec.decode(&key, bytes).unwrap();
            assert_eq!(back.value(), original.value());
            assert_eq!(
                (
                    back.stored_at(),
                    back.fresh_until(),
                    back.stale_until(),
                    back.error_until()
                ),
                (
                    original.stored_at(),
                    original.fresh_until(),
                    original.stale_until(),
                    original.error_until()
                )
            );
        }
    }

    #[cfg(feature = "zstd")]
    #[test]
    fn compression_shrinks_and_is_skipped_below_the_threshold() {
        let key = Key::from_parts(["k"]);
        let compressing = Codec::new(Postcard).compression(Compression::Zstd { level: 3 });
        let plain = Codec::new(Postcard);
        let big = entry(vec![b'a'; 64 * 1024]);
        assert!(
            compressing.encode(&key, &big).unwrap().len()
                < plain.encode(&key, &big).unwrap().len() / 10
        );
        let small = entry(vec![b'a'; 100]);
        assert_eq!(
            compressing.encode(&key, &small).unwrap(),
            plain.encode(&key, &small).unwrap()
        );
    }

    #[test]
    fn a_value_of_another_type_is_refused() {
        let key = Key::from_parts(["k"]);
        let codec = Codec::new(Postcard);
        let text = Entry::new(
            "abcdef".to_owned(),
            Timestamp::from_millis(0),
            Duration::from_secs(60),
            Duration::ZERO,
        );
        let bytes = Bytes::from(codec.encode(&key, &text).unwrap());
        let err = codec.decode::<u64>(&key, bytes.clone()).unwrap_err();
        assert_eq!(err.to_string(), "stored as another type than `u64`");
        assert_eq!(
            codec.decode::<String>(&key, bytes).unwrap().value(),
            "abcdef"
        );
    }

    #[test]
    fn another_format_is_refused() {
        #[derive(Clone)]
        struct Other;
        impl Format<Vec<u8>> for Other {
            const ID: u8 = 99;
            const NAME: &'static str = "other";
            fn encode(&self, value: &Vec<u8>, out: &mut Vec<u8>) -> Result<(), CodecError> {
                out.extend_from_slice(value);
                Ok(())
            }
            fn decode(&self, payload: Bytes) -> Result<Vec<u8>, CodecError> {
                Ok(payload.to_vec())
            }
        }
        let key = Key::from_parts(["k"]);
        let bytes = Codec::new(Other)
            .encode(&key, &entry(vec![1, 2, 3]))
            .unwrap();
        let err = Codec::new(Postcard)
            .decode::<Vec<u8>>(&key, Bytes::from(bytes))
            .unwrap_err();
        assert_eq!(err.to_string(), "stored in format 99, read as 1 (postcard)");
    }

    proptest! {
        #[test]
        fn random_bytes_never_decode_and_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let key = Key::from_parts(["k"]);
            for codec in codecs() {
                prop_assert!(codec.decode::<Vec<u8>>(&key, Bytes::from(bytes.clone())).is_err());
            }
        }

        #[test]
        fn any_flipped_or_truncated_encoding_is_refused(
            value in proptest::collection::vec(any::<u8>(), 0..4096),
            position in any::<prop::sample::Index>(),
            bit in 0u8..8,
            cut in any::<prop::sample::Index>(),
        ) {
            let key = Key::from_parts(["k"]);
            for codec in codecs() {
                let encoded = codec.encode(&key, &entry(value.clone())).unwrap();
                let mut flipped = encoded.clone();
                let at = position.index(flipped.len());
                flipped[at] ^= 1 << bit;
                prop_assert!(codec.decode::<Vec<u8>>(&key, Bytes::from(flipped)).is_err());
                let truncated = encoded[..cut.index(encoded.len())].to_vec();
                prop_assert!(codec.decode::<Vec<u8>>(&key, Bytes::from(truncated)).is_err());
            }
        }
    }
}
