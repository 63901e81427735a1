//! From a [`Config`] to a running layer: the backend stack through [`DynBackend`], the rules
//! through the boxed predicates and key, everything else through the layer's own builder (so
//! a configured layer checks what a coded one checks, with the field named).

use std::{
    collections::HashSet,
    future::Future,
    pin::Pin,
    sync::{Mutex, OnceLock},
};

use http::HeaderName;
use layercake_backends::DynBackend;

use super::{
    ConfigError, DynCacheLayer,
    dynamic::{DynKey, DynRequestPredicate, DynResponsePredicate},
    schema::*,
};
use crate::{
    BuildError, CacheLayer, Moka,
    compose::{self, Compose},
    layer::{
        CachedResponse,
        key::{HeaderPrefix, Headers, Lowercase, PathParams, Query},
    },
    predicate::{Always, Matches, Not, RequestPredicate, ResponsePredicate, request, response},
};

/// The stored-response backend every configured stack is.
pub(crate) type Stack = DynBackend<CachedResponse>;

/// Builds the layer of `config` on `backend` (already built from `config.backend`).
pub(crate) fn layer(config: &Config, backend: Stack) -> Result<DynCacheLayer, ConfigError> {
    let key = match &config.key {
        Some(parts) => key(parts, "key")?,
        None => DynKey::new().then(crate::layer::PathAndQuery),
    };
    let cache_if = match &config.request {
        Some(rule) => request_rule(rule, "request")?,
        None => DynRequestPredicate::new(Always),
    };
    let store_if = match &config.response {
        Some(rule) => response_rule(rule, "response")?,
        None => DynResponsePredicate::new(response::DefaultStore),
    };
    let mut b = CacheLayer::builder(backend)
        .key(key)
        .cache_if(cache_if)
        .store_if(store_if);
    macro_rules! set {
        ($value:expr, $setter:ident $(, $map:expr)?) => {
            if let Some(value) = $value.clone() {
                b = b.$setter($($map)?(value));
            }
        };
    }
    set!(config.name, name);
    set!(config.namespace, namespace);
    set!(config.mode, mode);
    set!(config.cache_control, cache_control);
    set!(config.client_directives, client_directives);
    set!(config.authority_in_key, authority_in_key);
    let policy = &config.policy;
    // A preset first: the fields after it override its parts.
    set!(policy.preset, preset);
    set!(policy.ttl, ttl, |d: super::HumanDuration| d.get());
    set!(policy.stale, stale, |d: super::HumanDuration| d.get());
    set!(policy.stale_policy, stale_policy);
    set!(
        policy.negative_ttl,
        negative_ttl,
        |d: super::HumanDuration| d.get()
    );
    set!(
        policy.refresh_before,
        refresh_before,
        |d: super::HumanDuration| d.get()
    );
    set!(
        policy.concurrency,
        concurrency,
        |n: std::num::NonZeroUsize| n.get()
    );
    set!(
        policy.lock_timeout,
        lock_timeout,
        |d: super::HumanDuration| d.get()
    );
    set!(
        policy.stale_if_error,
        stale_if_error,
        |d: super::HumanDuration| d.get()
    );
    set!(
        policy.upstream_timeout,
        upstream_timeout,
        |d: super::HumanDuration| d.get()
    );
    let limits = &config.limits;
    set!(limits.max_body_size, max_body_size, |s: super::ByteSize| s
        .usize());
    set!(limits.min_body_size, min_body_size, |s: super::ByteSize| s
        .usize());
    set!(
        limits.max_request_body_size,
        max_request_body_size,
        |s: super::ByteSize| s.usize()
    );
    set!(config.methods, methods, texts);
    set!(config.statuses, statuses, statuses);
    set!(
        config.stale_if_error_statuses,
        stale_if_error_statuses,
        statuses
    );
    let headers = &config.headers;
    set!(headers.allowlist, header_allowlist, texts);
    set!(headers.allow_authorization, allow_authorization);
    set!(headers.allow_cookies, allow_cookies);
    set!(headers.ignore_cookies, ignore_cookies);
    set!(headers.allow_set_cookie, allow_set_cookie);
    set!(
        headers.targeted_cache_control,
        targeted_cache_control,
        texts
    );
    set!(headers.last_targeted_hop, last_targeted_hop);
    let tags = &config.tags;
    set!(tags.static_tags, tags);
    set!(tags.headers, tag_headers, texts);
    set!(tags.keep_headers, keep_tag_headers);
    b.build().map_err(|error| {
        let path = match &error {
            BuildError::ZeroTtl => "policy.ttl",
            BuildError::BodySizeRange { .. } => "limits.min_body_size",
            BuildError::NoMethods => "methods",
            BuildError::ZeroLockTimeout => "policy.lock_timeout",
            BuildError::InvalidName(_) => "name",
            BuildError::EmptyNamespace => "namespace",
            BuildError::ZeroConcurrency => "policy.concurrency",
            BuildError::RefreshBeforeOutOfRange { .. } => "policy.refresh_before",
            BuildError::FleetOutsideRuntime | BuildError::BackgroundRefresh(_) => "",
            #[cfg(feature = "chunked")]
            BuildError::ChunkSize { .. } => "",
        };
        ConfigError::new(path, error.to_string())
    })
}

fn texts<T>(values: Vec<super::Text<T>>) -> Vec<T> {
    values.into_iter().map(super::Text::into_inner).collect()
}

fn statuses(values: Vec<super::Status>) -> Vec<http::StatusCode> {
    values.into_iter().map(super::Status::get).collect()
}

type Building<'a> = Pin<Box<dyn Future<Output = Result<Stack, ConfigError>> + Send + 'a>>;

/// Builds the stack `config` describes; `path` is where it is in the file, for errors.
pub(crate) fn backend<'a>(config: &'a BackendConfig, path: String) -> Building<'a> {
    Box::pin(async move {
        match config {
            BackendConfig::Moka(moka) => Ok(DynBackend::new(self::moka(moka))),
            BackendConfig::Redis(redis) => self::redis(redis, format!("{path}.redis")).await,
            BackendConfig::Memcached(store) => {
                self::memcached(store, format!("{path}.memcached")).await
            }
            BackendConfig::Disk(store) => self::disk(store, format!("{path}.disk")).await,
            BackendConfig::Compose(tiers) => {
                let path = format!("{path}.compose");
                let l1 = backend(&tiers.l1, format!("{path}.l1")).await?;
                let l2 = backend(&tiers.l2, format!("{path}.l2")).await?;
                Ok(read(
                    tiers.read.unwrap_or(ReadPolicyName::Sequential),
                    tiers.write.unwrap_or(WritePolicyName::OptimisticParallel),
                    tiers.refill.unwrap_or(RefillPolicyName::Always),
                    l1,
                    l2,
                ))
            }
        }
    })
}

fn moka(config: &MokaConfig) -> Moka {
    let mut builder = Moka::builder();
    if let Some(name) = &config.name {
        builder = builder.name(intern(name));
    }
    if let Some(bytes) = config.max_bytes {
        builder = builder.max_bytes(bytes.get());
    }
    if let Some(entries) = config.max_entries {
        builder = builder.max_entries(entries);
    }
    if let Some(cap) = config.max_ttl {
        builder = builder.max_time_to_live(cap.get());
    }
    builder.build()
}

/// `$body` with `$format` bound to the codec format `$name` names, or the error that this build
/// lacks it (`$path` is the tier's path in the file).
#[cfg(any(feature = "redis", feature = "memcached", feature = "disk"))]
macro_rules! with_format {
    ($name:expr, $path:expr, |$format:ident| $body:expr) => {
        match $name {
            FormatName::Postcard => {
                let $format = crate::codec::Postcard;
                $body
            }
            #[cfg(feature = "json")]
            FormatName::Json => {
                let $format = crate::codec::Json;
                $body
            }
            #[cfg(feature = "ron")]
            FormatName::Ron => {
                let $format = crate::codec::Ron;
                $body
            }
            #[cfg(feature = "bincode")]
            FormatName::Bincode => {
                let $format = crate::codec::Bincode;
                $body
            }
            #[cfg(feature = "rkyv")]
            FormatName::Rkyv => {
                let $format = crate::codec::Rkyv;
                $body
            }
            #[allow(unreachable_patterns)]
            other => Err(ConfigError::new(
                format!("{}.format", $path),
                format!(
                    "this build has no {other:?} format: enable layercake's feature `{}`",
                    format!("{other:?}").to_ascii_lowercase()
                ),
            )),
        }
    };
}

/// `$builder` (a Redis or Memcached builder) with what every networked tier's section may say:
/// its name, prefix, timeout (not zero), circuit breaker and compression.
#[cfg(any(feature = "redis", feature = "memcached"))]
macro_rules! network_tier {
    ($builder:expr, $config:expr, $path:expr) => {{
        let mut builder = $builder;
        if let Some(name) = &$config.name {
            builder = builder.name(intern(name));
        }
        if let Some(prefix) = &$config.prefix {
            builder = builder.prefix(prefix.clone());
        }
        if let Some(timeout) = $config.timeout {
            if timeout.get().is_zero() {
                return Err(ConfigError::new(
                    format!("{}.timeout", $path),
                    "a store's call bound must be greater than zero",
                ));
            }
            builder = builder.timeout(timeout.get());
        }
        if let Some(breaker) = $config.circuit_breaker {
            builder = builder.circuit_breaker(breaker.failures, breaker.cool_down.get());
        }
        if let Some(compression) = $config.compression {
            let min_size = compression.min_size.map_or(0, super::ByteSize::usize);
            let path = format!("{}.compression", $path);
            builder = builder.compression(self::compression(compression, &path)?, min_size);
        }
        builder
    }};
}

#[cfg(not(feature = "redis"))]
async fn redis(_: &RedisConfig, path: String) -> Result<Stack, ConfigError> {
    Err(ConfigError::new(
        path,
        "this build has no Redis store: enable layercake's feature `redis`",
    ))
}

#[cfg(feature = "redis")]
async fn redis(config: &RedisConfig, path: String) -> Result<Stack, ConfigError> {
    let mut builder = crate::Redis::builder();
    if let Some(url) = &config.url {
        builder = builder.url(url.clone());
    }
    if let Some(nodes) = &config.cluster {
        #[cfg(feature = "redis-cluster")]
        {
            builder = builder.cluster(nodes.iter().cloned());
        }
        #[cfg(not(feature = "redis-cluster"))]
        {
            let _ = nodes;
            return Err(ConfigError::new(
                format!("{path}.cluster"),
                "this build has no Redis Cluster support: enable layercake's feature `redis-cluster`",
            ));
        }
    }
    if let Some(size) = config.max_payload_size {
        builder = builder.max_payload_size(size.usize());
    }
    builder = network_tier!(builder, config, path);
    let cluster = config.cluster.is_some();
    let url = if cluster { "cluster" } else { "url" };
    let fail = |e: layercake_backends::BackendError| {
        ConfigError::new(format!("{path}.{url}"), e.to_string())
    };
    let format = config.format.unwrap_or(FormatName::Postcard);
    with_format!(format, &path, |format| {
        let builder = builder.format(format);
        let store = if cluster {
            builder.connect().await
        } else {
            builder.build()
        };
        store.map(DynBackend::new).map_err(fail)
    })
}

#[cfg(not(feature = "memcached"))]
async fn memcached(_: &MemcachedConfig, path: String) -> Result<Stack, ConfigError> {
    Err(ConfigError::new(
        path,
        "this build has no Memcached store: enable layercake's feature `memcached`",
    ))
}

#[cfg(feature = "memcached")]
async fn memcached(config: &MemcachedConfig, path: String) -> Result<Stack, ConfigError> {
    let mut builder = crate::Memcached::builder();
    if let Some(address) = &config.address {
        builder = builder.address(address.clone());
    }
    if let Some(size) = config.max_item_size {
        builder = builder.max_item_size(size.usize());
    }
    if let Some(connections) = config.connections {
        builder = builder.connections(connections.get());
    }
    builder = network_tier!(builder, config, path);
    let format = config.format.unwrap_or(FormatName::Postcard);
    with_format!(format, &path, |format| {
        builder
            .format(format)
            .build()
            .map(DynBackend::new)
            .map_err(|e| ConfigError::new(format!("{path}.prefix"), e.to_string()))
    })
}

#[cfg(not(feature = "disk"))]
async fn disk(_: &DiskConfig, path: String) -> Result<Stack, ConfigError> {
    Err(ConfigError::new(
        path,
        "this build has no disk store: enable layercake's feature `disk`",
    ))
}

#[cfg(feature = "disk")]
async fn disk(config: &DiskConfig, path: String) -> Result<Stack, ConfigError> {
    let mut builder = crate::Disk::builder();
    if let Some(name) = &config.name {
        builder = builder.name(intern(name));
    }
    if let Some(directory) = &config.directory {
        builder = builder.directory(directory);
    }
    if let Some(bytes) = config.max_bytes {
        builder = builder.max_bytes(bytes.get());
    }
    if let Some(bytes) = config.page_cache {
        builder = builder.page_cache(bytes.usize());
    }
    if let Some(timeout) = config.timeout {
        if timeout.get().is_zero() {
            return Err(ConfigError::new(
                format!("{path}.timeout"),
                "a store's call bound must be greater than zero",
            ));
        }
        builder = builder.timeout(timeout.get());
    }
    if let Some(compression) = config.compression {
        let min_size = compression.min_size.map_or(0, super::ByteSize::usize);
        let at = format!("{path}.compression");
        builder = builder.compression(self::compression(compression, &at)?, min_size);
    }
    let format = config.format.unwrap_or(FormatName::Postcard);
    let directory = format!("{path}.directory");
    with_format!(format, &path, |format| {
        let builder = builder.format(format);
        // Opening reads the file (and repairs it after a crash): off the async workers.
        match tokio::task::spawn_blocking(move || builder.open()).await {
            Ok(opened) => opened
                .map(DynBackend::new)
                .map_err(|e| ConfigError::new(directory, e.to_string())),
            Err(e) => Err(ConfigError::new(directory, e.to_string())),
        }
    })
}

#[cfg(any(feature = "redis", feature = "memcached", feature = "disk"))]
fn compression(
    config: CompressionConfig,
    path: &str,
) -> Result<crate::codec::Compression, ConfigError> {
    use crate::codec::Compression;
    let level = |range: std::ops::RangeInclusive<i32>, default: i32| match config.level {
        None => Ok(default),
        Some(level) if range.contains(&level) => Ok(level),
        Some(level) => Err(ConfigError::new(
            format!("{path}.level"),
            format!(
                "level {level} is out of range for {:?}: expected {} to {}",
                config.algorithm,
                range.start(),
                range.end()
            ),
        )),
    };
    match config.algorithm {
        CompressionName::None => Ok(Compression::None),
        #[cfg(feature = "zstd")]
        CompressionName::Zstd => Ok(Compression::Zstd {
            level: level(1..=22, 3)?,
        }),
        #[cfg(feature = "gzip")]
        CompressionName::Gzip => Ok(Compression::Gzip {
            level: level(0..=9, 6)?.unsigned_abs(),
        }),
        #[allow(unreachable_patterns)]
        other => {
            let _ = level;
            Err(ConfigError::new(
                format!("{path}.algorithm"),
                format!(
                    "this build has no {other:?} compression: enable layercake's feature `{}`",
                    format!("{other:?}").to_ascii_lowercase()
                ),
            ))
        }
    }
}

/// A composed stack with its policies picked at run time: one monomorphized `Compose` per
/// combination, each erased.
fn read(
    read: ReadPolicyName,
    write: WritePolicyName,
    refill: RefillPolicyName,
    l1: Stack,
    l2: Stack,
) -> Stack {
    match read {
        ReadPolicyName::Sequential => self::write::<compose::Sequential>(write, refill, l1, l2),
        ReadPolicyName::Race => self::write::<compose::Race>(write, refill, l1, l2),
        ReadPolicyName::Parallel => self::write::<compose::Parallel>(write, refill, l1, l2),
    }
}

fn write<R: compose::ReadPolicy>(
    write: WritePolicyName,
    refill: RefillPolicyName,
    l1: Stack,
    l2: Stack,
) -> Stack {
    match write {
        WritePolicyName::Sequential => self::refill::<R, compose::Sequential>(refill, l1, l2),
        WritePolicyName::OptimisticParallel => {
            self::refill::<R, compose::OptimisticParallel>(refill, l1, l2)
        }
        WritePolicyName::Race => self::refill::<R, compose::Race>(refill, l1, l2),
    }
}

fn refill<R: compose::ReadPolicy, W: compose::WritePolicy>(
    refill: RefillPolicyName,
    l1: Stack,
    l2: Stack,
) -> Stack {
    match refill {
        RefillPolicyName::Always => {
            DynBackend::new(Compose::<_, _, R, W, compose::Always>::new(l1, l2))
        }
        RefillPolicyName::Never => {
            DynBackend::new(Compose::<_, _, R, W, compose::Never>::new(l1, l2))
        }
    }
}

/// A tier's name, kept for the life of the process (tiers name themselves with a
/// `&'static str`): each distinct name is kept once, however often configurations reload.
fn intern(name: &str) -> &'static str {
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match names.get(name) {
        Some(kept) => kept,
        None => {
            let kept: &'static str = Box::leak(name.into());
            names.insert(kept);
            kept
        }
    }
}

fn key(parts: &[KeyPart], path: &str) -> Result<DynKey, ConfigError> {
    let mut key = DynKey::new();
    for (n, part) in parts.iter().enumerate() {
        key = key_part(part, &format!("{path}[{n}]"), key)?;
    }
    Ok(key)
}

/// Adds `part` to `key`.
fn key_part(part: &KeyPart, path: &str, key: DynKey) -> Result<DynKey, ConfigError> {
    Ok(match part {
        KeyPart::Path => key.then(crate::layer::Path),
        KeyPart::PathAndQuery => key.then(crate::layer::PathAndQuery),
        KeyPart::Query(select) => key.then(match (&select.only, &select.except) {
            (None, None) => Query::all(),
            (Some(only), None) => Query::only(only),
            (None, Some(except)) => Query::except(except),
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    format!("{path}.query"),
                    "give `only` or `except`, not both",
                ));
            }
        }),
        KeyPart::Headers(names) => key.then(Headers::new(texts(names.clone()))),
        KeyPart::PathParams(pattern) => key.then(
            PathParams::try_new(pattern)
                .map_err(|e| ConfigError::new(format!("{path}.path_params"), e.to_string()))?,
        ),
        KeyPart::HeaderPrefix(prefix) => key.then(HeaderPrefix::new(prefix)),
        KeyPart::Lowercase(inner) => {
            let inner = key_part(inner, &format!("{path}.lowercase"), DynKey::new())?;
            key.then(Lowercase(inner))
        }
    })
}

fn request_rule(rule: &RequestRule, path: &str) -> Result<DynRequestPredicate, ConfigError> {
    Ok(match rule {
        RequestRule::All(rules) => fold(
            rules,
            path,
            "all",
            request_rule,
            DynRequestPredicate::new(Always),
            |a, b| DynRequestPredicate::new(a.and(b)),
        )?,
        RequestRule::Any(rules) => fold(
            rules,
            path,
            "any",
            request_rule,
            DynRequestPredicate::new(Not(Always)),
            |a, b| DynRequestPredicate::new(a.or(b)),
        )?,
        RequestRule::Not(rule) => {
            DynRequestPredicate::new(request_rule(rule, &format!("{path}.not"))?.not())
        }
        RequestRule::Method(methods) => {
            DynRequestPredicate::new(request::methods(texts(methods.clone())))
        }
        RequestRule::Path(patterns) => DynRequestPredicate::new(
            request::paths(patterns)
                .map_err(|e| ConfigError::new(format!("{path}.path"), e.to_string()))?,
        ),
        RequestRule::PathPrefix(prefix) => {
            DynRequestPredicate::new(request::path_prefix(prefix.clone()))
        }
        RequestRule::Header(value) => {
            let path = format!("{path}.header");
            let name = header_name(&value.name, &path)?;
            DynRequestPredicate::new(matching(request::header(name), value, &path)?)
        }
        RequestRule::Query(value) => {
            let path = format!("{path}.query");
            DynRequestPredicate::new(matching(request::query(&value.name), value, &path)?)
        }
    })
}

fn response_rule(rule: &ResponseRule, path: &str) -> Result<DynResponsePredicate, ConfigError> {
    Ok(match rule {
        ResponseRule::All(rules) => fold(
            rules,
            path,
            "all",
            response_rule,
            DynResponsePredicate::new(Always),
            |a, b| DynResponsePredicate::new(a.and(b)),
        )?,
        ResponseRule::Any(rules) => fold(
            rules,
            path,
            "any",
            response_rule,
            DynResponsePredicate::new(Not(Always)),
            |a, b| DynResponsePredicate::new(a.or(b)),
        )?,
        ResponseRule::Not(rule) => {
            DynResponsePredicate::new(response_rule(rule, &format!("{path}.not"))?.not())
        }
        ResponseRule::Default => DynResponsePredicate::new(response::DefaultStore),
        ResponseRule::Status(codes) => {
            DynResponsePredicate::new(response::statuses(statuses(codes.clone())))
        }
        ResponseRule::StatusClass(class) => {
            DynResponsePredicate::new(response::status_class(*class))
        }
        ResponseRule::Header(value) => {
            let path = format!("{path}.header");
            let name = header_name(&value.name, &path)?;
            DynResponsePredicate::new(matching(response::header(name), value, &path)?)
        }
        ResponseRule::ContentType(types) => {
            DynResponsePredicate::new(response::content_types(types))
        }
        ResponseRule::BodySize(range) => {
            let min = range.min.map_or(0, super::ByteSize::usize);
            let max = range.max.map_or(usize::MAX, super::ByteSize::usize);
            if min > max {
                return Err(ConfigError::new(
                    format!("{path}.body_size.min"),
                    format!("min ({min} bytes) is larger than max ({max} bytes)"),
                ));
            }
            DynResponsePredicate::new(response::body_size(min..=max))
        }
    })
}

/// `all` / `any` of `rules`: each built, then combined pairwise; none is `empty`.
fn fold<T, P>(
    rules: &[T],
    path: &str,
    name: &str,
    build: fn(&T, &str) -> Result<P, ConfigError>,
    empty: P,
    combine: impl Fn(P, P) -> P,
) -> Result<P, ConfigError> {
    let path = format!("{path}.{name}");
    let mut built = rules
        .iter()
        .enumerate()
        .map(|(n, rule)| build(rule, &format!("{path}[{n}]")));
    let Some(first) = built.next() else {
        return Ok(empty);
    };
    built.try_fold(first?, |all, next| Ok(combine(all, next?)))
}

fn header_name(name: &str, path: &str) -> Result<HeaderName, ConfigError> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
        ConfigError::new(
            format!("{path}.name"),
            format!("{name:?} is not a header name (a token such as content-type)"),
        )
    })
}

/// `predicate` (which tests a named value's presence) narrowed to the one test `rule` gives.
fn matching<S>(
    predicate: Matches<S>,
    rule: &ValueRule,
    path: &str,
) -> Result<Matches<S>, ConfigError> {
    let given = [
        rule.equals.is_some(),
        rule.one_of.is_some(),
        rule.contains.is_some(),
        rule.matches.is_some(),
    ];
    if given.iter().filter(|&&g| g).count() > 1 {
        return Err(ConfigError::new(
            path,
            "give at most one of `equals`, `one_of`, `contains`, `matches`",
        ));
    }
    if let Some(value) = &rule.equals {
        return Ok(predicate.equals(value));
    }
    if let Some(values) = &rule.one_of {
        return Ok(predicate.one_of(values));
    }
    if let Some(needle) = &rule.contains {
        return Ok(predicate.contains(needle));
    }
    match &rule.matches {
        None => Ok(predicate),
        #[cfg(feature = "regex")]
        Some(pattern) => regex::Regex::new(pattern)
            .map(|regex| predicate.matches(regex))
            .map_err(|e| ConfigError::new(format!("{path}.matches"), e.to_string())),
        #[cfg(not(feature = "regex"))]
        Some(_) => Err(ConfigError::new(
            format!("{path}.matches"),
            "this build has no regular expressions: enable layercake's feature `regex`",
        )),
    }
}
