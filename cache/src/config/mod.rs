//! A whole HTTP cache from a YAML or TOML file, swapped at run time without a restart
//! (feature `config`).
//!
//! Code builds typed, generic stacks (`Compose<Moka, Redis>`), which cost nothing for being
//! generic. Operators want to change the stack, the lifetimes and the rules without a new
//! build: a [`Config`] read from a file builds the same layer through one erased backend
//! ([`DynBackend`]) and boxed rules ([`DynKey`], [`DynRequestPredicate`],
//! [`DynResponsePredicate`]). A [`ConfiguredLayer`] serves with it and [reloads](ConfiguredLayer::reload)
//! a new one atomically: requests already in flight finish under the configuration they started
//! with, a configuration that fails to build leaves the running one in place and says why.
//!
//! ```yaml
//! name: edge                  # the cache's name in Cache-Status
//! namespace: shop             # the first part of every key
//! mode: shared                # shared | private
//! cache_control: respect      # respect | override | origin_only
//! backend:                    # moka | redis | memcached | disk | compose (nesting to any depth)
//!   compose:
//!     read: sequential        # sequential | race | parallel
//!     write: optimistic_parallel  # sequential | optimistic_parallel | race
//!     refill: always          # always | never
//!     l1: { moka: { max_bytes: 64 MiB } }
//!     l2:
//!       redis:
//!         url: redis://127.0.0.1:6379
//!         prefix: "shop:"
//!         format: postcard    # postcard | json | ron | bincode | rkyv
//!         compression: { algorithm: zstd, level: 3, min_size: 1 KiB }
//!         timeout: 250ms
//!         circuit_breaker: { failures: 5, cool_down: 5s }
//! policy:
//!   ttl: 60s                  # seconds, or "250ms", "5m", "1h 30m"
//!   stale: 5m
//!   stale_policy: offload_revalidate  # return | revalidate | offload_revalidate
//!   negative_ttl: 5s
//!   concurrency: 1
//!   lock_timeout: 5s
//!   stale_if_error: 10m
//! limits: { max_body_size: 4 MiB }
//! methods: [GET, HEAD]
//! headers: { allowlist: [content-type, etag, last-modified, cache-control] }
//! key: [path, { query: { only: [page, sort] } }, { headers: [accept-language] }]
//! request: { all: [ { path_prefix: /api }, { not: { header: { name: x-no-cache } } } ] }
//! response: { all: [ default, { status: [200, 404] } ] }
//! tags: { static: [shop], headers: [surrogate-key] }
//! ```
//!
//! The same in TOML: `[policy]` with `ttl = "60s"`, `[backend.compose.l1.moka]` and so on.
//! Unknown fields are errors. So is anything that would not build: every [`ConfigError`] names
//! the field's path, its line and column where known, and what was expected.
//!
//! ```
//! use layercake::config::{Config, ConfiguredLayer};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::from_yaml("name: edge\npolicy: { ttl: 30s, stale: 5m }")?;
//! let cache = ConfiguredLayer::new(config).await?;
//! let app: axum::Router = axum::Router::new().layer(cache.clone());
//! // Later: a new configuration, built before it replaces the old one.
//! cache.reload(Config::from_yaml("name: edge\npolicy: { ttl: 60s }")?).await?;
//! assert_eq!(cache.config().policy.ttl.unwrap().get().as_secs(), 60);
//! # drop(app); Ok(()) }
//! ```

mod build;
mod dynamic;
mod error;
mod schema;
mod units;

use std::{
    path::Path,
    sync::Arc,
    task::{Context, Poll},
};

use arc_swap::ArcSwap;
use http::{Request, Response};
use http_body::Body;
use layercake_backends::DynBackend;
use tower_layer::Layer;
use tower_service::Service;

use self::{
    build::Stack,
    error::{Format, locate},
};
pub use self::{
    dynamic::{DynKey, DynRequestPredicate, DynResponsePredicate},
    error::ConfigError,
    schema::{
        BackendConfig, BreakerConfig, ComposeConfig, CompressionConfig, CompressionName, Config,
        DiskConfig, FormatName, HeadersConfig, KeyPart, LimitsConfig, MemcachedConfig, MokaConfig,
        PolicyConfig, QueryKey, ReadPolicyName, RedisConfig, RefillPolicyName, RequestRule,
        ResponseRule, SizeRange, TagsConfig, ValueRule, WritePolicyName,
    },
    units::{ByteSize, HumanDuration, Status, Text, TextValue},
};
use crate::{
    CacheLayer,
    layer::{CacheBody, CachedResponse, ResponseFuture},
};

/// The layer a [`Config`] builds: a [`CacheLayer`] over the erased stack and boxed rules.
pub type DynCacheLayer =
    CacheLayer<DynBackend<CachedResponse>, DynKey, DynRequestPredicate, DynResponsePredicate>;

impl Config {
    /// Reads a configuration written in YAML.
    ///
    /// ```
    /// use layercake::config::Config;
    /// let config = Config::from_yaml("policy:\n  ttl: 30s\n").unwrap();
    /// assert_eq!(config.policy.ttl.unwrap().get().as_secs(), 30);
    /// let error = Config::from_yaml("policy:\n  tll: 30s\n").unwrap_err();
    /// assert_eq!((error.path(), error.line()), ("policy.tll", Some(2)));
    /// ```
    pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
        let mut path = String::new();
        serde_saphyr::with_deserializer_from_str(text, |deserializer| {
            serde_path_to_error::deserialize(deserializer).map_err(|error| {
                path = field_path(&error);
                error.into_inner()
            })
        })
        .map_err(|error| {
            let position = error
                .location()
                .map(|at| (to_usize(at.line()), to_usize(at.column())));
            let message = error.without_snippet().to_string();
            ConfigError::new(path, strip_position(&message)).at(position)
        })
    }

    /// Reads a configuration written in TOML.
    ///
    /// ```
    /// use layercake::config::Config;
    /// let config = Config::from_toml("name = \"edge\"\n[policy]\nttl = \"30s\"\n").unwrap();
    /// assert_eq!(config.name.as_deref(), Some("edge"));
    /// ```
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let position =
            |error: &toml::de::Error| error.span().map(|span| line_column(text, span.start));
        let deserializer = toml::Deserializer::parse(text)
            .map_err(|error| ConfigError::new("", error.message()).at(position(&error)))?;
        serde_path_to_error::deserialize(deserializer).map_err(|error| {
            let path = field_path(&error);
            let error = error.into_inner();
            ConfigError::new(path, error.message()).at(position(&error))
        })
    }

    /// Reads a configuration file: YAML (`.yaml`, `.yml`) or TOML (`.toml`).
    ///
    /// ```no_run
    /// let config = layercake::config::Config::from_file("cache.yaml").unwrap();
    /// # drop(config);
    /// ```
    pub fn from_file(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        Source::read(path.as_ref())?.parse()
    }

    /// This configuration in YAML, as [`from_yaml`](Self::from_yaml) reads it back.
    ///
    /// ```
    /// use layercake::config::Config;
    /// let config = Config::from_yaml("name: edge\nkey: [path]\n").unwrap();
    /// assert_eq!(Config::from_yaml(&config.to_yaml().unwrap()).unwrap(), config);
    /// ```
    pub fn to_yaml(&self) -> Result<String, ConfigError> {
        serde_saphyr::to_string(self).map_err(|e| ConfigError::new("", e.to_string()))
    }

    /// This configuration in TOML, as [`from_toml`](Self::from_toml) reads it back.
    ///
    /// ```
    /// use layercake::config::Config;
    /// let config = Config::from_yaml("name: edge\npolicy: { ttl: 30s }\n").unwrap();
    /// assert_eq!(Config::from_toml(&config.to_toml().unwrap()).unwrap(), config);
    /// ```
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        toml::to_string(self).map_err(|e| ConfigError::new("", e.to_string()))
    }

    /// Builds the layer this configuration describes (connecting to a Redis Cluster's nodes,
    /// if it has one). Errors name the field; [`ConfiguredLayer::from_file`] adds its line.
    ///
    /// ```
    /// use layercake::config::Config;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let layer = Config::from_yaml("name: edge").unwrap().build().await.unwrap();
    /// assert_eq!(layer.tier_hits()[0].tier, "moka");
    /// let error = Config::from_yaml("policy: { ttl: 10s, refresh_before: 20s }")
    ///     .unwrap().build().await.unwrap_err();
    /// assert_eq!(error.path(), "policy.refresh_before");
    /// # }
    /// ```
    pub async fn build(&self) -> Result<DynCacheLayer, ConfigError> {
        let backend = self.backend().await?;
        build::layer(self, backend)
    }

    async fn backend(&self) -> Result<Stack, ConfigError> {
        match &self.backend {
            Some(backend) => build::backend(backend, "backend".to_owned()).await,
            None => Ok(DynBackend::new(crate::Moka::default())),
        }
    }
}

fn field_path<E>(error: &serde_path_to_error::Error<E>) -> String {
    // `?` stands for a part the parser had not named yet (a syntax error inside it).
    let path = error.path().to_string();
    let path = path.trim_end_matches('?').trim_end_matches('.');
    if path == "." {
        String::new()
    } else {
        path.to_owned()
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// serde-saphyr's message without the position it appends (we keep ours apart).
fn strip_position(message: &str) -> String {
    let first = message.lines().next().unwrap_or("");
    match first.rfind(" at line ") {
        Some(at) => first[..at].to_owned(),
        None => first.to_owned(),
    }
}

/// The 1-based line and column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// A configuration file's text, and how it is written.
struct Source {
    file: String,
    text: String,
    format: Format,
}

impl Source {
    fn read(path: &Path) -> Result<Source, ConfigError> {
        let file = path.display().to_string();
        let format = match path.extension().and_then(|e| e.to_str()) {
            Some("yaml" | "yml") => Format::Yaml,
            Some("toml") => Format::Toml,
            _ => {
                return Err(ConfigError::new(
                    "",
                    "a configuration file is YAML (.yaml, .yml) or TOML (.toml)",
                )
                .in_file(file));
            }
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new("", format!("cannot read it: {e}")).in_file(&file))?;
        Ok(Source { file, text, format })
    }

    fn parse(&self) -> Result<Config, ConfigError> {
        match self.format {
            Format::Yaml => Config::from_yaml(&self.text),
            Format::Toml => Config::from_toml(&self.text),
        }
        .map_err(|e| e.in_file(&self.file))
    }

    /// `error`, found after the file was read, with the file and the field's position.
    fn locate(&self, error: ConfigError) -> ConfigError {
        let position = locate(&self.text, self.format, error.path());
        error.at(position).in_file(&self.file)
    }
}

/// What a [`ConfiguredLayer`] serves with: a configuration and the layer built from it.
struct Current {
    config: Arc<Config>,
    backend: Stack,
    layer: DynCacheLayer,
}

/// A cache layer built from a [`Config`], whose configuration can be replaced while it serves.
///
/// Cheap to clone; clones share the configuration (a reload through one is seen by all). Each
/// request is served by the configuration current when it arrived, to its end. A reload whose
/// storage stack is unchanged keeps the stack and its entries; a changed stack starts empty.
///
/// ```
/// use layercake::config::{Config, ConfiguredLayer};
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let cache = ConfiguredLayer::new(Config::from_yaml("name: a")?).await?;
/// let error = cache.reload(Config::from_yaml("name: a\npolicy: { ttl: 0 }")?).await.unwrap_err();
/// assert_eq!(error.path(), "policy.ttl");
/// assert_eq!(cache.config().name.as_deref(), Some("a")); // the old one still serves
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ConfiguredLayer {
    current: Arc<ArcSwap<Current>>,
    reloading: Arc<tokio::sync::Mutex<()>>,
}

impl ConfiguredLayer {
    /// Builds the layer `config` describes.
    ///
    /// ```
    /// use layercake::config::{Config, ConfiguredLayer};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache = ConfiguredLayer::new(Config::default()).await.unwrap();
    /// assert_eq!(cache.current().stats().hits, 0);
    /// # }
    /// ```
    pub async fn new(config: Config) -> Result<ConfiguredLayer, ConfigError> {
        let current = Self::build(config, None).await?;
        Ok(ConfiguredLayer {
            current: Arc::new(ArcSwap::from_pointee(current)),
            reloading: Arc::default(),
        })
    }

    /// Reads and builds the configuration in `path` (YAML or TOML, by its extension); errors
    /// give the file, line and column.
    ///
    /// ```no_run
    /// use layercake::config::ConfiguredLayer;
    /// # #[tokio::main] async fn main() {
    /// match ConfiguredLayer::from_file("cache.yaml").await {
    ///     Ok(cache) => drop(cache),
    ///     Err(error) => eprintln!("{error}"), // cache.yaml:12:5: policy.ttl: …
    /// }
    /// # }
    /// ```
    pub async fn from_file(path: impl AsRef<Path>) -> Result<ConfiguredLayer, ConfigError> {
        let source = Source::read(path.as_ref())?;
        let config = source.parse()?;
        let current = Self::build(config, None)
            .await
            .map_err(|e| source.locate(e))?;
        Ok(ConfiguredLayer {
            current: Arc::new(ArcSwap::from_pointee(current)),
            reloading: Arc::default(),
        })
    }

    /// Replaces the configuration with `config`, built first: on an error the current one
    /// stays and the error says why. Requests in flight finish under the old configuration;
    /// requests that arrive once this returns are served by the new one.
    ///
    /// ```
    /// use layercake::config::{Config, ConfiguredLayer};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let cache = ConfiguredLayer::new(Config::from_yaml("name: before")?).await?;
    /// cache.reload(Config::from_yaml("name: after")?).await?;
    /// assert_eq!(cache.config().name.as_deref(), Some("after"));
    /// # Ok(()) }
    /// ```
    pub async fn reload(&self, config: Config) -> Result<(), ConfigError> {
        let _one_at_a_time = self.reloading.lock().await;
        let old = self.current.load_full();
        let current = Self::build(config, Some(&old)).await?;
        self.current.store(Arc::new(current));
        Ok(())
    }

    /// Reads `path` again and [reloads](Self::reload) it: what a `SIGHUP` handler calls.
    ///
    /// ```no_run
    /// use layercake::config::ConfiguredLayer;
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let cache = ConfiguredLayer::from_file("cache.yaml").await?;
    /// if let Err(error) = cache.reload_file("cache.yaml").await {
    ///     eprintln!("kept the running configuration: {error}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn reload_file(&self, path: impl AsRef<Path>) -> Result<(), ConfigError> {
        let source = Source::read(path.as_ref())?;
        let config = source.parse()?;
        let _one_at_a_time = self.reloading.lock().await;
        let old = self.current.load_full();
        let current = Self::build(config, Some(&old))
            .await
            .map_err(|e| source.locate(e))?;
        self.current.store(Arc::new(current));
        Ok(())
    }

    /// The configuration serving now.
    ///
    /// ```
    /// use layercake::config::{Config, ConfiguredLayer};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache = ConfiguredLayer::new(Config::default()).await.unwrap();
    /// assert_eq!(*cache.config(), Config::default());
    /// # }
    /// ```
    pub fn config(&self) -> Arc<Config> {
        Arc::clone(&self.current.load().config)
    }

    /// The layer serving now: for its [stats](CacheLayer::stats), [health](CacheLayer::health)
    /// and invalidation. A reload replaces it; take it again afterwards.
    ///
    /// ```
    /// use layercake::config::{Config, ConfiguredLayer};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache = ConfiguredLayer::new(Config::default()).await.unwrap();
    /// assert!(cache.current().health().await.up);
    /// # }
    /// ```
    pub fn current(&self) -> DynCacheLayer {
        self.current.load().layer.clone()
    }

    async fn build(config: Config, old: Option<&Current>) -> Result<Current, ConfigError> {
        let backend = match old {
            Some(old) if old.config.backend == config.backend => old.backend.clone(),
            _ => config.backend().await?,
        };
        let layer = build::layer(&config, backend.clone())?;
        Ok(Current {
            config: Arc::new(config),
            backend,
            layer,
        })
    }
}

impl std::fmt::Debug for ConfiguredLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfiguredLayer")
            .field("config", &self.current.load().config)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for ConfiguredLayer {
    type Service = ConfiguredService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ConfiguredService {
            current: Arc::clone(&self.current),
            inner,
        }
    }
}

/// The service a [`ConfiguredLayer`] makes: each request goes through the layer of the
/// configuration current when it arrives.
#[derive(Clone)]
pub struct ConfiguredService<S> {
    current: Arc<ArcSwap<Current>>,
    inner: S,
}

impl<S: std::fmt::Debug> std::fmt::Debug for ConfiguredService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfiguredService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ConfiguredService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    ReqBody: Send + 'static,
    ResBody: Body + Send + 'static,
    ResBody::Error: Send + 'static,
{
    type Response = Response<CacheBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // What the request needs of the configuration (its layer's state) it takes with it, so
        // a reload while it is in flight changes nothing for it.
        let current = self.current.load();
        crate::layer::service::serve(&current.layer.shared, &mut self.inner, request)
    }
}
