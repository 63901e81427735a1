//! The configuration file's schema: one struct or enum per section, every field optional
//! (absent means the builder's default), unknown fields rejected.

use std::num::NonZeroUsize;

use http::{HeaderName, Method};
use serde::{Deserialize, Serialize};

use super::units::{ByteSize, HumanDuration, Status, Text};
use crate::{
    Preset, StalePolicy,
    layer::{CacheControl, CacheMode, ClientDirectives},
    predicate::response::StatusClass,
};

/// A whole HTTP cache: what [`ConfiguredLayer`](super::ConfiguredLayer) builds. See the
/// [module docs](super) for a commented file.
///
/// ```
/// use layercake::config::Config;
/// let config = Config::from_yaml("name: edge\npolicy: { ttl: 30s }").unwrap();
/// assert_eq!(config.name.as_deref(), Some("edge"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// The cache's name in `Cache-Status` (default `layercake`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The first part of every key (default `layercake`): caches sharing a store keep apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `shared` (default) or `private`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<CacheMode>,
    /// `respect` (default), `override` or `origin_only`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
    /// `obey` (default) or `ignore` the client's `Cache-Control`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_directives: Option<ClientDirectives>,
    /// The storage stack (default: one Moka tier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<BackendConfig>,
    /// Lifetimes and single-flight.
    #[serde(default, skip_serializing_if = "PolicyConfig::is_empty")]
    pub policy: PolicyConfig,
    /// Body sizes.
    #[serde(default, skip_serializing_if = "LimitsConfig::is_empty")]
    pub limits: LimitsConfig,
    /// The methods the cache handles (default `[GET, HEAD]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<Text<Method>>>,
    /// The statuses stored without explicit freshness (default RFC 9111's heuristic set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statuses: Option<Vec<Status>>,
    /// The statuses answered from a stale entry inside `stale_if_error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_if_error_statuses: Option<Vec<Status>>,
    /// Which headers are stored, and which private ones are allowed.
    #[serde(default, skip_serializing_if = "HeadersConfig::is_empty")]
    pub headers: HeadersConfig,
    /// Whether the request's authority is part of the key (default `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority_in_key: Option<bool>,
    /// How the key is made from a request, part after part (default `[path_and_query]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Vec<KeyPart>>,
    /// Which requests use the cache (besides `methods`); default all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestRule>,
    /// Which responses are stored (besides the HTTP rules); default `default` (all but media
    /// and archives).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<ResponseRule>,
    /// Invalidation tags.
    #[serde(default, skip_serializing_if = "TagsConfig::is_empty")]
    pub tags: TagsConfig,
}

/// One storage tier, or two composed (which nest to any depth).
///
/// ```
/// use layercake::config::{BackendConfig, Config};
/// let config = Config::from_yaml("backend: { moka: { max_bytes: 64 MiB } }").unwrap();
/// assert!(matches!(config.backend, Some(BackendConfig::Moka(_))));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum BackendConfig {
    /// Moka, in this process's memory.
    Moka(MokaConfig),
    /// Redis, single or cluster (feature `redis`).
    Redis(RedisConfig),
    /// Memcached (feature `memcached`).
    Memcached(MemcachedConfig),
    /// A file on local disk, kept across restarts (feature `disk`).
    Disk(DiskConfig),
    /// `l1` in front of `l2`.
    Compose(Box<ComposeConfig>),
}

/// A Moka tier.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MokaConfig {
    /// The tier's name in `Cache-Status` and health (default `moka`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its capacity in bytes (default 64 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<ByteSize>,
    /// Its capacity in entries (default unbounded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_entries: Option<u64>,
    /// The longest an entry is kept, whatever its lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ttl: Option<HumanDuration>,
}

/// A Redis tier (feature `redis`; `cluster` needs `redis-cluster`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RedisConfig {
    /// The tier's name in `Cache-Status` and health (default `redis`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `redis://host:port/db` (default `REDIS_URL`, then `redis://127.0.0.1:6379`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The nodes of a Redis Cluster, instead of `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<Vec<String>>,
    /// The prefix of every Redis key this tier writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// How entries are encoded: `postcard` (default), `json`, `ron`, `bincode`, `rkyv`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<FormatName>,
    /// Compression of stored bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<CompressionConfig>,
    /// The largest entry read back, decoded (default 256 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_payload_size: Option<ByteSize>,
    /// The bound on every call (default 100 ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
    /// Failures in a row that open the circuit, and how long it stays open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit_breaker: Option<BreakerConfig>,
}

/// A Memcached tier (feature `memcached`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MemcachedConfig {
    /// The tier's name in `Cache-Status` and health (default `memcached`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `host:port` (default `MEMCACHED_ADDRESS`, then `127.0.0.1:11211`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The prefix of every key this tier writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// How entries are encoded: `postcard` (default), `json`, `ron`, `bincode`, `rkyv`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<FormatName>,
    /// Compression of stored bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<CompressionConfig>,
    /// The largest entry written (default 1 MiB, the server's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_item_size: Option<ByteSize>,
    /// The bound on every call (default 100 ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
    /// How many connections may be open at once (default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<NonZeroUsize>,
    /// Failures in a row that open the circuit, and how long it stays open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit_breaker: Option<BreakerConfig>,
}

/// A disk tier (feature `disk`): see `layercake::disk`.
///
/// ```
/// use layercake::config::{BackendConfig, Config};
/// let config = Config::from_yaml("backend: { disk: { directory: /var/cache/shop, max_bytes: 1 GiB } }").unwrap();
/// let Some(BackendConfig::Disk(disk)) = config.backend else { panic!() };
/// assert_eq!(disk.max_bytes.unwrap().get(), 1 << 30);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DiskConfig {
    /// The tier's name in `Cache-Status` and health (default `disk`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The directory of the store's file (default `CACHE_DIR`, then `layercake-cache`). A
    /// reload that keeps this section as it is keeps the store open (and its entries); other
    /// settings for a directory the running stack holds are refused (the running configuration
    /// stays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
    /// The budget of the entries (default 256 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<ByteSize>,
    /// The memory redb keeps pages of the file in (default 16 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_cache: Option<ByteSize>,
    /// How entries are encoded: `postcard` (default), `json`, `ron`, `bincode`, `rkyv`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<FormatName>,
    /// Compression of stored bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<CompressionConfig>,
    /// The bound on every call (default 250 ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
}

/// An encoding of stored entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FormatName {
    /// postcard (compact, the default).
    Postcard,
    /// JSON, for debugging (feature `json`).
    Json,
    /// RON, for debugging (feature `ron`).
    Ron,
    /// bincode (feature `bincode`; unmaintained, RUSTSEC-2025-0141).
    Bincode,
    /// rkyv, bodies read in place (feature `rkyv`).
    Rkyv,
}

/// Compression of a byte tier's entries.
///
/// ```
/// use layercake::config::{CompressionName, Config, BackendConfig};
/// let config = Config::from_yaml(
///     "backend: { redis: { compression: { algorithm: zstd, level: 9, min_size: 1 KiB } } }",
/// ).unwrap();
/// let Some(BackendConfig::Redis(redis)) = config.backend else { panic!() };
/// assert_eq!(redis.compression.unwrap().algorithm, CompressionName::Zstd);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CompressionConfig {
    /// `none`, `zstd` (feature `zstd`) or `gzip` (feature `gzip`).
    pub algorithm: CompressionName,
    /// The level (zstd 1–22, default 3; gzip 0–9, default 6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<i32>,
    /// Entries smaller than this are stored as they are (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_size: Option<ByteSize>,
}

/// A compression algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CompressionName {
    /// Stored as encoded.
    None,
    /// zstd.
    Zstd,
    /// gzip.
    Gzip,
}

/// A circuit breaker: after `failures` in a row, calls are skipped for `cool_down`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct BreakerConfig {
    /// Failures in a row that open the circuit.
    pub failures: u32,
    /// How long it stays open.
    pub cool_down: HumanDuration,
}

/// Two tiers composed: `l1` in front of `l2`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ComposeConfig {
    /// The front tier.
    pub l1: BackendConfig,
    /// The back tier.
    pub l2: BackendConfig,
    /// `sequential` (default), `race` or `parallel`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<ReadPolicyName>,
    /// `optimistic_parallel` (default), `sequential` or `race`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write: Option<WritePolicyName>,
    /// `always` (default: an `l2` hit is written into `l1`) or `never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refill: Option<RefillPolicyName>,
}

/// How a composed stack reads; see [`compose`](crate::compose).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReadPolicyName {
    /// `l1`, then `l2` on a miss.
    Sequential,
    /// Both at once, the first hit wins.
    Race,
    /// Both at once, the fresher wins.
    Parallel,
}

/// How a composed stack writes; see [`compose`](crate::compose).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WritePolicyName {
    /// `l1`, then `l2`.
    Sequential,
    /// Both at once, succeeds if either does.
    OptimisticParallel,
    /// Both at once, the first success answers.
    Race,
}

/// Whether a composed stack refills `l1` from `l2`; see [`compose`](crate::compose).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RefillPolicyName {
    /// An `l2` hit is written into `l1` with its remaining lifetime.
    Always,
    /// Never.
    Never,
}

/// Lifetimes and single-flight; see [`CacheLayerBuilder`](crate::CacheLayerBuilder).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PolicyConfig {
    /// A named set of ttl, stale window and stale policy; the fields below override it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<Preset>,
    /// How long a response is fresh when it says nothing of its own (default 60 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<HumanDuration>,
    /// How long after that it may be served stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale: Option<HumanDuration>,
    /// `return` (default), `revalidate` or `offload_revalidate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_policy: Option<StalePolicy>,
    /// The ttl of error responses without freshness of their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_ttl: Option<HumanDuration>,
    /// Refresh an entry this long before it expires (shorter than `ttl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_before: Option<HumanDuration>,
    /// How many callers go upstream at once for one key (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<NonZeroUsize>,
    /// How long a caller waits for another's result (default 5 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_timeout: Option<HumanDuration>,
    /// How long past its windows an entry may still answer an upstream error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_if_error: Option<HumanDuration>,
    /// The bound on an upstream call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_timeout: Option<HumanDuration>,
}

/// Body sizes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LimitsConfig {
    /// Larger response bodies stream through unstored (default 4 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_size: Option<ByteSize>,
    /// Smaller response bodies are not stored (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_body_size: Option<ByteSize>,
    /// The most of a request body read for a predicate or key (default 64 KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_request_body_size: Option<ByteSize>,
}

/// Which headers are stored, and which private ones are allowed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HeadersConfig {
    /// Only these response headers are stored (default every end-to-end header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowlist: Option<Vec<Text<HeaderName>>>,
    /// Store responses to requests with `Authorization` (default `false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_authorization: Option<bool>,
    /// Store responses to requests with cookies (default `false` in shared mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_cookies: Option<bool>,
    /// Cookies that do not make a request private (analytics, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_cookies: Option<Vec<String>>,
    /// Store responses with `Set-Cookie` (default `false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_set_cookie: Option<bool>,
    /// Targeted `Cache-Control` fields this cache obeys, in order (RFC 9213).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targeted_cache_control: Option<Vec<Text<HeaderName>>>,
    /// Remove the targeted fields from what this cache passes on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_targeted_hop: Option<bool>,
}

/// Invalidation tags.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TagsConfig {
    /// Tags of every stored response (`static:` in the file).
    #[serde(default, rename = "static", skip_serializing_if = "Option::is_none")]
    pub static_tags: Option<Vec<String>>,
    /// Response headers whose values are tags (`Surrogate-Key`, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Vec<Text<HeaderName>>>,
    /// Pass the tag headers on to the client (default `false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_headers: Option<bool>,
}

/// A part of the key; see [the key extractors](crate::layer::key).
///
/// ```
/// use layercake::config::{Config, KeyPart};
/// let config = Config::from_yaml("key: [path, { query: { only: [page] } }]").unwrap();
/// assert_eq!(config.key.unwrap()[0], KeyPart::Path);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum KeyPart {
    /// The path.
    Path,
    /// The path and the query string as sent.
    PathAndQuery,
    /// The query parameters, sorted and decoded: all, `only` these or all `except` these.
    Query(QueryKey),
    /// The values of these request headers.
    Headers(Vec<Text<HeaderName>>),
    /// The parameters of a path pattern in axum's syntax (`/users/{id}`).
    PathParams(String),
    /// Every request header whose name starts with this prefix.
    HeaderPrefix(String),
    /// Another part, lowercased.
    Lowercase(Box<KeyPart>),
}

/// Which query parameters are part of the key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct QueryKey {
    /// Only these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only: Option<Vec<String>>,
    /// All but these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub except: Option<Vec<String>>,
}

/// Which requests use the cache; see [`request`](crate::predicate::request).
///
/// ```
/// use layercake::config::Config;
/// let config = Config::from_yaml(
///     "request: { all: [ { path_prefix: /api }, { not: { header: { name: x-no-cache } } } ] }",
/// ).unwrap();
/// assert!(config.request.is_some());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum RequestRule {
    /// Every one of these.
    All(Vec<RequestRule>),
    /// Any of these.
    Any(Vec<RequestRule>),
    /// Not this.
    Not(Box<RequestRule>),
    /// One of these methods.
    Method(Vec<Text<Method>>),
    /// A path matching one of these patterns (axum's syntax: `/users/{id}`, `/assets/{*rest}`).
    Path(Vec<String>),
    /// A path under this prefix (whole segments).
    PathPrefix(String),
    /// A request header, present or with a value.
    Header(ValueRule),
    /// A query parameter, present or with a value.
    Query(ValueRule),
}

/// Which responses are stored; see [`response`](crate::predicate::response).
///
/// ```
/// use layercake::config::Config;
/// let config = Config::from_yaml("response: { content_type: [text/html, application/json] }").unwrap();
/// assert!(config.response.is_some());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum ResponseRule {
    /// Every one of these.
    All(Vec<ResponseRule>),
    /// Any of these.
    Any(Vec<ResponseRule>),
    /// Not this.
    Not(Box<ResponseRule>),
    /// The layer's default: every response but audio, video, PDFs and archives
    /// ([`DefaultStore`](crate::predicate::response::DefaultStore)); `response:` replaces it,
    /// `all: [default, …]` keeps it.
    Default,
    /// One of these statuses.
    Status(Vec<Status>),
    /// A status of this class.
    StatusClass(StatusClass),
    /// A response header, present or with a value.
    Header(ValueRule),
    /// One of these media types.
    ContentType(Vec<String>),
    /// A body size in this range (inclusive).
    BodySize(SizeRange),
}

/// A named value: present, or equal to, one of, containing or matching (feature `regex`).
/// At most one of the tests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ValueRule {
    /// The header or parameter name.
    pub name: String,
    /// Equal to this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<String>,
    /// Equal to one of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_of: Option<Vec<String>>,
    /// Containing this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<String>,
    /// Matching this regular expression (feature `regex`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<String>,
}

/// A range of sizes, both ends inclusive and optional.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SizeRange {
    /// The smallest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<ByteSize>,
    /// The largest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<ByteSize>,
}

macro_rules! is_empty {
    ($($ty:ident),+) => {$(
        impl $ty {
            fn is_empty(&self) -> bool {
                *self == Self::default()
            }
        }
    )+};
}
is_empty!(PolicyConfig, LimitsConfig, HeadersConfig, TagsConfig);
