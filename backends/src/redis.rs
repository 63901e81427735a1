//! The Redis store: the tier that many instances share.
//!
//! [`Redis`] keeps entries as bytes ([`Codec`]: a format, optional compression, a checked
//! envelope) under `<prefix><readable key>#<hex of the key's 128-bit hash>` (see
//! [`Redis::redis_key`]), with `SET … PX` so Redis drops
//! an entry when its last window ends. It talks to Redis over one multiplexed,
//! auto-reconnecting connection (redis-rs's `ConnectionManager`, connected lazily: a Redis that
//! is down when the store is built is not an error). Every call has a timeout, and a circuit
//! breaker stops calling a Redis that keeps failing, then probes it again after a cool-down:
//! while Redis is away, reads are misses and writes are dropped, counted in
//! [`RedisStats`], and requests go on from upstream and from the other tiers.
//!
//! Tagged entries are also listed in a set per tag, `<prefix>tag:<tag>` (a `#` or `%` in the
//! tag written `%23`, `%25`), which lives as long as the longest-lived entry listed in it:
//! invalidating a tag pops its set and unlinks what was listed, without scanning the keyspace.
//!
//! Where it connects, first found wins: the builder's [`url`](RedisBuilder::url) (or a
//! [`client`](RedisBuilder::client) or [`connection_manager`](RedisBuilder::connection_manager)
//! of the application's), the `REDIS_URL` environment variable, a `REDIS_URL=` line in a
//! `.env` file in the working directory when asked for with [`dot_env`](RedisBuilder::dot_env),
//! then `redis://127.0.0.1:6379`. `redis://`, passwords (`redis://:secret@host`,
//! `redis://user:secret@host`) and database numbers (`redis://host/2`) all work; `rediss://`
//! (TLS) with the feature `redis-tls` (rustls with the webpki roots; as with any rustls 0.23
//! user, the application installs a crypto provider, e.g.
//! `rustls::crypto::ring::default_provider().install_default()`). A cluster is reached with
//! [`cluster`](RedisBuilder::cluster) and [`connect`](RedisBuilder::connect) (feature
//! `redis-cluster`).
//!
//! ```no_run
//! use std::time::Duration;
//! use layercake_backends::redis::Redis;
//!
//! # #[tokio::main] async fn main() -> Result<(), layercake_backends::BackendError> {
//! let redis = Redis::builder()
//!     .url("redis://127.0.0.1:6379/0")
//!     .prefix("myapp:")
//!     .timeout(Duration::from_millis(50))
//!     .build()?;
//! # Ok(()) }
//! ```

use std::{
    fmt,
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};

use bytes::Bytes;
use redis::aio::ConnectionManager;

use crate::{
    Backend, BackendError, BackendErrorKind, Entry, Key, Lookup, Selection, Tier, Timestamp,
    breaker::Breaker,
    codec::{Codec, Compression, Format, Postcard},
    key::glob_escape,
};

/// The Redis store; see the [module docs](self). A cheap handle: clones share the connection,
/// the breaker and the counters.
///
/// ```
/// use layercake_backends::redis::Redis;
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store: Redis = Redis::builder().url("redis://127.0.0.1:6379").build()?;
/// # drop(store); Ok(()) }
/// ```
pub struct Redis<F = Postcard> {
    connection: Connection,
    /// Where connections of their own (Pub/Sub, blocking reads) are opened: the one Redis, or
    /// each node of a cluster; none when the store was given a connection, not a client.
    clients: Arc<[redis::Client]>,
    prefix: Arc<str>,
    codec: Arc<Codec<F>>,
    timeout: Duration,
    breakers: Arc<Breakers>,
    stats: Arc<Counters>,
    /// Its name in `Cache-Status`, health and metrics.
    name: &'static str,
}

/// A breaker for reads and one for writes: a Redis that refuses writes (`OOM` under
/// `maxmemory` with `noeviction`, `READONLY` on a replica) still serves the reads it can.
#[derive(Debug)]
struct Breakers {
    read: Breaker,
    write: Breaker,
}

/// Which breaker a call goes through.
#[derive(Debug, Clone, Copy)]
enum Access {
    Read,
    Write,
}

/// A single Redis (through a `ConnectionManager`) or a Redis Cluster.
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    #[cfg(feature = "redis-cluster")]
    Cluster(redis::cluster_async::ClusterConnection),
}

impl Connection {
    async fn query<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> redis::RedisResult<T> {
        match self {
            Connection::Single(connection) => command.query_async(&mut connection.clone()).await,
            #[cfg(feature = "redis-cluster")]
            Connection::Cluster(connection) => command.query_async(&mut connection.clone()).await,
        }
    }

    /// Runs `command` on `node`: a command that names no key (`SCAN`, `CLUSTER NODES`), sent
    /// to the one Redis, or to a given node of a cluster.
    async fn query_on<T: redis::FromRedisValue>(
        &self,
        command: &redis::Cmd,
        node: &Node,
    ) -> redis::RedisResult<T> {
        #[cfg(not(feature = "redis-cluster"))]
        let _ = node;
        match self {
            Connection::Single(connection) => command.query_async(&mut connection.clone()).await,
            #[cfg(feature = "redis-cluster")]
            Connection::Cluster(connection) => {
                use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
                let routing = match node {
                    Node::Any => SingleNodeRoutingInfo::Random,
                    Node::At { host, port } => SingleNodeRoutingInfo::ByAddress {
                        host: host.clone(),
                        port: *port,
                    },
                };
                let value = connection
                    .clone()
                    .route_command(command.clone(), RoutingInfo::SingleNode(routing))
                    .await?;
                Ok(redis::from_redis_value(value)?)
            }
        }
    }

    /// Runs `commands`: one pipelined round trip on a single Redis; on a cluster, where keys
    /// live on different nodes, each command at once on its own.
    async fn run_all(&self, commands: Vec<redis::Cmd>) -> redis::RedisResult<()> {
        match self {
            Connection::Single(connection) => {
                let mut pipe = redis::pipe();
                for command in commands {
                    pipe.add_command(command).ignore();
                }
                pipe.query_async(&mut connection.clone()).await
            }
            #[cfg(feature = "redis-cluster")]
            Connection::Cluster(_) => {
                let runs = commands
                    .iter()
                    .map(|command| self.query::<redis::Value>(command));
                for result in futures_util::future::join_all(runs).await {
                    result?;
                }
                Ok(())
            }
        }
    }
}

impl Connection {
    /// Runs `commands`, each answering an integer, as [`run_all`](Connection::run_all) does;
    /// the sum of the answers.
    async fn sum_all(&self, commands: Vec<redis::Cmd>) -> redis::RedisResult<u64> {
        match self {
            Connection::Single(connection) => {
                let mut pipe = redis::pipe();
                for command in commands {
                    pipe.add_command(command);
                }
                let counts: Vec<u64> = pipe.query_async(&mut connection.clone()).await?;
                Ok(counts.into_iter().sum())
            }
            #[cfg(feature = "redis-cluster")]
            Connection::Cluster(_) => {
                let runs = commands.iter().map(|command| self.query::<u64>(command));
                let mut sum = 0;
                for result in futures_util::future::join_all(runs).await {
                    sum += result?;
                }
                Ok(sum)
            }
        }
    }
}

/// Lists an entry in a tag's set, and makes the set live at least as long as the entry:
/// `KEYS[1]` the set, `ARGV[1]` the entry's Redis key, `ARGV[2]` its time to live in ms.
const LINK_TAG: &str = "redis.call('SADD', KEYS[1], ARGV[1]) \
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then \
redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 1";

/// Replaces an entry with its stale-marked bytes only if it still holds what was read: `KEYS[1]`
/// the entry, `ARGV[1]` the bytes read, `ARGV[2]` the marked bytes. Its time to live is kept.
const MARK_STALE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL') return 1 end return 0";

/// Takes a lease if nobody holds it: `KEYS[1]` the lease, `ARGV[1]` the token, `ARGV[2]` its
/// time to live in ms; -1 when taken, else the holder's remaining time in ms.
const TAKE_LEASE: &str = "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then \
return -1 end return redis.call('PTTL', KEYS[1])";

/// Gives a lease back if it is still the caller's: `KEYS[1]` the lease, `ARGV[1]` the token.
const RELEASE_LEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
return redis.call('DEL', KEYS[1]) end return 0";

/// Runs `call` for at most `limit`: its answer, or its error or its timeout as a
/// [`BackendError`] naming `op` (of kind `Unavailable` or `Timeout`).
async fn within<T>(
    op: &str,
    limit: Duration,
    call: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, BackendError> {
    match tokio::time::timeout(limit, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(BackendError::new(
            BackendErrorKind::Unavailable,
            format!("redis {op}: {error}"),
        )),
        Err(_) => Err(BackendError::new(
            BackendErrorKind::Timeout,
            format!("redis {op}: no answer within {limit:?}"),
        )),
    }
}

/// Where a command that names no key goes.
#[derive(Debug, Clone)]
enum Node {
    /// The one Redis (any node of a cluster).
    Any,
    /// A given node of a cluster.
    #[cfg_attr(not(feature = "redis-cluster"), allow(dead_code))]
    At { host: String, port: u16 },
}

/// The primaries in a `CLUSTER NODES` answer: lines of `<id> <host:port@bus> <flags> …`, a
/// primary's flags holding `master` (and not `fail`).
#[cfg(feature = "redis-cluster")]
fn cluster_primaries(nodes: &str) -> Vec<Node> {
    nodes
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_id, address, flags) = (fields.next()?, fields.next()?, fields.next()?);
            let primary =
                flags.split(',').any(|f| f == "master") && !flags.split(',').any(|f| f == "fail");
            let (host, port) = address.split('@').next()?.rsplit_once(':')?;
            let port = port.parse().ok()?;
            primary.then(|| Node::At {
                host: host.to_owned(),
                port,
            })
        })
        .collect()
}

/// Configures a [`Redis`] store; see [`Redis::builder`].
///
/// ```
/// use std::time::Duration;
/// use layercake_backends::redis::Redis;
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = Redis::builder()
///     .url("redis://127.0.0.1:6379")
///     .prefix("app:")
///     .timeout(Duration::from_millis(50))
///     .build()?;
/// # drop(store); Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisBuilder<F = Postcard> {
    url: Option<String>,
    dot_env: bool,
    existing: Option<Existing>,
    cluster: Option<Vec<String>>,
    tls_root: Option<Vec<u8>>,
    prefix: String,
    codec: Codec<F>,
    timeout: Duration,
    failure_threshold: u32,
    cool_down: Duration,
    name: &'static str,
}

/// A client or connection the application made itself, for the store to use.
#[derive(Clone)]
enum Existing {
    Client(Box<redis::Client>),
    Manager(ConnectionManager),
    #[cfg(feature = "redis-cluster")]
    Cluster(redis::cluster_async::ClusterConnection),
}

impl fmt::Debug for Existing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Existing::Client(_) => "Client",
            Existing::Manager(_) => "ConnectionManager",
            #[cfg(feature = "redis-cluster")]
            Existing::Cluster(_) => "ClusterConnection",
        })
    }
}

/// Counters of a [`Redis`] store.
///
/// ```
/// use layercake_backends::redis::Redis;
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = Redis::builder().build()?;
/// let stats = store.stats();
/// assert_eq!((stats.errors, stats.timeouts), (0, 0));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct RedisStats {
    /// Calls that failed (connection, protocol or server errors).
    pub errors: u64,
    /// Calls that took longer than the timeout.
    pub timeouts: u64,
    /// Calls not made because the breaker was open.
    pub rejected: u64,
    /// Entries read back that could not be decoded (read as misses).
    pub corrupt: u64,
    /// Whether a breaker is open now: Redis is being left alone for reads, writes or both.
    pub breaker_open: bool,
    /// Whether the breaker for reads (`GET`) is open now.
    pub read_breaker_open: bool,
    /// Whether the breaker for writes (`SET`, `DEL`, clears) is open now.
    pub write_breaker_open: bool,
}

#[derive(Debug, Default)]
struct Counters {
    errors: AtomicU64,
    timeouts: AtomicU64,
    rejected: AtomicU64,
    corrupt: AtomicU64,
}

impl Redis<Postcard> {
    /// A builder with the defaults: URL resolved as the [module docs](self) say, prefix
    /// `layercake:`, postcard without compression, 100 ms timeout, breaker opening after 5
    /// failures in a row for 1 s.
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake_backends::redis::Redis;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Redis::builder().build()?; // connects on first use
    /// # drop(store);
    /// # Ok(()) }
    /// ```
    pub fn builder() -> RedisBuilder<Postcard> {
        RedisBuilder {
            url: None,
            dot_env: false,
            existing: None,
            cluster: None,
            tls_root: None,
            prefix: "layercake:".to_owned(),
            codec: Codec::new(Postcard),
            timeout: Duration::from_millis(100),
            failure_threshold: 5,
            cool_down: Duration::from_secs(1),
            name: "redis",
        }
    }
}

impl<F> RedisBuilder<F> {
    /// Connects to `url` (`redis://[user][:password@]host[:port][/db]`, or `rediss://`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake_backends::redis::Redis;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Redis::builder().url("redis://:secret@127.0.0.1:6379/2").build()?;
    /// # drop(store);
    /// # Ok(()) }
    /// ```
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Uses a Redis Cluster reached through `nodes` (some or all of its nodes' URLs) instead of a
    /// single Redis; build it with [`connect`](Self::connect). Feature `redis-cluster`.
    ///
    /// ```no_run
    /// use layercake_backends::redis::Redis;
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Redis::builder()
    ///     .cluster(["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"])
    ///     .connect()
    ///     .await?;
    /// # drop(store); Ok(()) }
    /// ```
    #[cfg(feature = "redis-cluster")]
    pub fn cluster<I>(mut self, nodes: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.cluster = Some(nodes.into_iter().map(Into::into).collect());
        self
    }

    /// For `rediss://`: trusts the certificate authority in `pem` instead of the webpki roots
    /// (a private CA, a self-signed server). Feature `redis-tls`.
    ///
    /// ```no_run
    /// use layercake_backends::redis::Redis;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pem = std::fs::read("ca.pem")?;
    /// let store = Redis::builder().url("rediss://cache.internal:6380").tls_root_certificate(pem).build()?;
    /// # drop(store);
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "redis-tls")]
    pub fn tls_root_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_root = Some(pem.into());
        self
    }

    /// Prefixes every key, so that several applications share one Redis. Default: `layercake:`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake_backends::redis::Redis;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Redis::builder().prefix("shop:").build()?;
    /// assert_eq!(store.prefix(), "shop:");
    /// # Ok(()) }
    /// ```
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Stores values in `format`. Default: [`Postcard`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake_backends::redis::Redis;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use layercake_backends::codec::Json;
    /// let readable = Redis::builder().format(Json).build()?; // feature `json`
    /// # drop(readable);
    /// # Ok(()) }
    /// ```
    pub fn format<G>(self, format: G) -> RedisBuilder<G> {
        RedisBuilder {
            url: self.url,
            dot_env: self.dot_env,
            existing: self.existing,
            cluster: self.cluster,
            tls_root: self.tls_root,
            prefix: self.prefix,
            // Compression and the payload bound set before stay set.
            codec: self.codec.with_format(format),
            timeout: self.timeout,
            failure_threshold: self.failure_threshold,
            cool_down: self.cool_down,
            name: self.name,
        }
    }

    /// Compresses payloads of at least `min_size` bytes. Default: none.
    ///
    /// ```
    /// # #[cfg(feature = "zstd")] {
    /// use layercake_backends::{codec::Compression, redis::Redis};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = Redis::builder().compression(Compression::Zstd { level: 3 }, 1024).build().unwrap();
    /// # drop(store);
    /// # });
    /// # }
    /// ```
    pub fn compression(mut self, compression: Compression, min_size: usize) -> Self {
        self.codec = self
            .codec
            .compression(compression)
            .min_compress_size(min_size);
        self
    }

    /// The largest payload a read accepts, decompressed (see [`Codec::max_payload_size`]): a
    /// larger one reads as a counted miss, and reading never allocates more than this for it.
    /// Default: 256 MiB.
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake_backends::redis::Redis;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Redis::builder().max_payload_size(8 << 20).build()?;
    /// # drop(store);
    /// # Ok(()) }
    /// ```
    pub fn max_payload_size(mut self, bytes: usize) -> Self {
        self.codec = self.codec.max_payload_size(bytes);
        self
    }

    /// The store's name in `Cache-Status` (`hit; ttl=42; detail=shared`), health and metrics.
    /// Default: `redis`.
    ///
    /// ```
    /// use layercake_backends::{Backend, redis::Redis};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Redis::builder().name("shared").build()?;
    /// assert_eq!(<Redis as Backend<String>>::name(&store), "shared");
    /// # Ok(()) }
    /// ```
    pub fn name(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// Every Redis call gives up after this long (read as a miss). Default: 100 ms.
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake_backends::redis::Redis;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Redis::builder().timeout(Duration::from_millis(25)).build()?;
    /// # drop(store);
    /// # Ok(()) }
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The breaker opens after `failures` failed calls in a row and stays open for
    /// `cool_down`, then lets one call through to probe Redis. Reads and writes have a breaker
    /// each, so a Redis that refuses writes (out of memory, a read-only replica) still serves
    /// reads. A probe whose caller goes away before it is answered lets the next call probe.
    /// Default: 5, 1 s.
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake_backends::redis::Redis;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Redis::builder()
    ///     .circuit_breaker(3, Duration::from_millis(500))
    ///     .build()?;
    /// # drop(store);
    /// # Ok(()) }
    /// ```
    pub fn circuit_breaker(mut self, failures: u32, cool_down: Duration) -> Self {
        self.failure_threshold = failures.max(1);
        self.cool_down = cool_down;
        self
    }

    /// Also looks for a `REDIS_URL=` line in a `.env` file in the working directory, when
    /// neither the builder nor the environment gives a URL. Off by default: a library does not
    /// read files of the working directory unless asked.
    ///
    /// ```
    /// use layercake_backends::redis::Redis;
    ///
    /// let builder = Redis::builder().dot_env();
    /// # drop(builder);
    /// ```
    pub fn dot_env(mut self) -> Self {
        self.dot_env = true;
        self
    }

    /// Uses a `redis::Client` the application made (its URL, TLS and credentials) instead of a
    /// URL; the store still makes its own multiplexed connection, with its timeouts.
    ///
    /// ```no_run
    /// use layercake_backends::redis::Redis;
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = redis::Client::open("redis://127.0.0.1:6379/1")?;
    /// let store = Redis::builder().client(client).build()?;
    /// # drop(store); Ok(()) }
    /// ```
    pub fn client(mut self, client: redis::Client) -> Self {
        self.existing = Some(Existing::Client(Box::new(client)));
        self
    }

    /// Uses a `ConnectionManager` the application already has (shared with its own commands);
    /// its configuration (timeouts, retries) is the application's.
    ///
    /// ```no_run
    /// use layercake_backends::redis::Redis;
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = redis::Client::open("redis://127.0.0.1:6379")?;
    /// let manager = redis::aio::ConnectionManager::new(client).await?;
    /// let store = Redis::builder().connection_manager(manager.clone()).build()?;
    /// # drop(store); Ok(()) }
    /// ```
    pub fn connection_manager(mut self, connection: ConnectionManager) -> Self {
        self.existing = Some(Existing::Manager(connection));
        self
    }

    /// Uses a cluster connection the application already has; build with
    /// [`build`](Self::build) or [`connect`](Self::connect). Feature `redis-cluster`.
    ///
    /// ```no_run
    /// use layercake_backends::redis::Redis;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = redis::cluster::ClusterClient::new(vec!["redis://127.0.0.1:7000"])?;
    /// let connection = client.get_async_connection().await?;
    /// let store = Redis::builder().cluster_connection(connection).connect().await?;
    /// # drop(store);
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "redis-cluster")]
    pub fn cluster_connection(
        mut self,
        connection: redis::cluster_async::ClusterConnection,
    ) -> Self {
        self.existing = Some(Existing::Cluster(connection));
        self
    }

    /// The URL the store will connect to: the builder's, else `REDIS_URL`, else (with
    /// [`dot_env`](Self::dot_env)) a `REDIS_URL` line in `.env`, else `redis://127.0.0.1:6379`.
    ///
    /// ```
    /// use layercake_backends::redis::Redis;
    ///
    /// let builder = Redis::builder().url("redis://cache.internal:6379");
    /// assert_eq!(builder.resolved_url(), "redis://cache.internal:6379");
    /// ```
    pub fn resolved_url(&self) -> String {
        resolve_url(
            self.url.as_deref(),
            std::env::var("REDIS_URL").ok(),
            self.dot_env.then(|| dot_env("REDIS_URL")).flatten(),
        )
    }

    /// Builds the store for a single Redis. The connection is made on first use; a malformed
    /// URL is an error now. Needs a tokio runtime. For a cluster, use [`connect`](Self::connect).
    ///
    /// ```
    /// use layercake_backends::redis::Redis;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Redis::builder().url("redis://127.0.0.1:6379").prefix("app:").build()?;
    /// # drop(store);
    /// # Ok(()) }
    /// ```
    pub fn build(mut self) -> Result<Redis<F>, BackendError> {
        let client = match self.existing.take() {
            Some(Existing::Manager(connection)) => {
                return Ok(self.store(Connection::Single(connection), Vec::new()));
            }
            #[cfg(feature = "redis-cluster")]
            Some(Existing::Cluster(connection)) => {
                return Ok(self.store(Connection::Cluster(connection), Vec::new()));
            }
            Some(Existing::Client(client)) => Some(*client),
            None => None,
        };
        if self.cluster.is_some() {
            return Err(BackendError::new(
                BackendErrorKind::Other,
                "a Redis Cluster store is built with `connect().await`",
            ));
        }
        let client = match client {
            Some(client) => client,
            None => {
                let url = self.resolved_url();
                match &self.tls_root {
                    #[cfg(feature = "redis-tls")]
                    Some(pem) => redis::Client::build_with_tls(
                        url.as_str(),
                        redis::TlsCertificates {
                            client_tls: None,
                            root_cert: Some(pem.clone()),
                        },
                    ),
                    _ => redis::Client::open(url.as_str()),
                }
                .map_err(|e| {
                    BackendError::new(BackendErrorKind::Other, format!("redis URL: {e}"))
                })?
            }
        };
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout.max(Duration::from_millis(100))))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let connection = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| BackendError::new(BackendErrorKind::Other, format!("redis: {e}")))?;
        Ok(self.store(Connection::Single(connection), vec![client]))
    }

    /// Builds the store, connecting now: to the cluster's nodes for a cluster (a cluster's
    /// topology must be read before any command), lazily for a single Redis as
    /// [`build`](Self::build) does.
    ///
    /// ```no_run
    /// use layercake_backends::redis::Redis;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Redis::builder()
    ///     .cluster(["redis://127.0.0.1:7000", "redis://127.0.0.1:7001"])
    ///     .connect()
    ///     .await?;
    /// # drop(store);
    /// # Ok(()) }
    /// ```
    pub async fn connect(self) -> Result<Redis<F>, BackendError> {
        #[cfg(feature = "redis-cluster")]
        if let Some(nodes) = &self.cluster {
            let client = redis::cluster::ClusterClient::builder(nodes.clone())
                .connection_timeout(self.timeout.max(Duration::from_millis(100)))
                .response_timeout(self.timeout)
                .build()
                .map_err(|e| {
                    BackendError::new(BackendErrorKind::Other, format!("redis cluster: {e}"))
                })?;
            let connection = client.get_async_connection().await.map_err(|e| {
                BackendError::new(BackendErrorKind::Unavailable, format!("redis cluster: {e}"))
            })?;
            let clients = nodes
                .iter()
                .filter_map(|node| redis::Client::open(node.as_str()).ok())
                .collect();
            let mut builder = self;
            builder.cluster = None;
            return Ok(builder.store(Connection::Cluster(connection), clients));
        }
        self.build()
    }

    fn store(self, connection: Connection, clients: Vec<redis::Client>) -> Redis<F> {
        Redis {
            connection,
            clients: clients.into(),
            prefix: self.prefix.into(),
            codec: Arc::new(self.codec),
            timeout: self.timeout,
            breakers: Arc::new(Breakers {
                read: Breaker::new("redis", self.failure_threshold, self.cool_down),
                write: Breaker::new("redis", self.failure_threshold, self.cool_down),
            }),
            stats: Arc::default(),
            name: self.name,
        }
    }
}

fn resolve_url(builder: Option<&str>, env: Option<String>, dot_env: Option<String>) -> String {
    builder
        .map(str::to_owned)
        .or(env.filter(|v| !v.is_empty()))
        .or(dot_env.filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned())
}

/// The value of `name` in a `.env` file in the working directory, if any.
fn dot_env(name: &str) -> Option<String> {
    dot_env_value(&std::fs::read_to_string(".env").ok()?, name)
}

/// The value of `name` in the text of a `.env` file.
fn dot_env_value(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let line = line.trim().strip_prefix("export ").unwrap_or(line.trim());
        let (key, value) = line.split_once('=')?;
        (key.trim() == name).then(|| value.trim().trim_matches(['"', '\'']).to_owned())
    })
}

impl<F> Redis<F> {
    /// The Redis key of `key`: the prefix, the key's [readable form](Key::readable) (what
    /// `redis-cli --scan` shows, and what patterns match), `#` and the hex of its 128-bit hash,
    /// which keeps names of different keys apart (the full key is also checked inside the
    /// stored bytes).
    ///
    /// ```
    /// use layercake_backends::{Key, redis::Redis};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let redis = Redis::builder().prefix("app:").build().unwrap();
    /// let name = redis.redis_key(&Key::from_parts(["layercake", "value/1", "user:42"]));
    /// assert!(name.starts_with("app:layercake:value/1:user:42#"));
    /// # }
    /// ```
    pub fn redis_key(&self, key: &Key) -> String {
        format!("{}{}#{:032x}", self.prefix, key.readable(), key.hash128())
    }

    /// The Redis key of the set that lists the entries tagged `tag`: `<prefix>tag:<tag>`, a
    /// `#` or `%` in the tag written `%23`, `%25` (so no pattern over entry names, which end
    /// in `#<hash>`, ever matches a tag's set).
    ///
    /// ```
    /// use layercake_backends::redis::Redis;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let redis = Redis::builder().prefix("app:").build().unwrap();
    /// assert_eq!(redis.tag_key("item:1"), "app:tag:item:1");
    /// assert_eq!(redis.tag_key("50%#1"), "app:tag:50%25%231");
    /// # }
    /// ```
    pub fn tag_key(&self, tag: &str) -> String {
        // Read back by `unescape_tag`.
        let mut name = String::with_capacity(self.prefix.len() + 4 + tag.len());
        name.push_str(&self.prefix);
        name.push_str("tag:");
        for c in tag.chars() {
            match c {
                '#' => name.push_str("%23"),
                '%' => name.push_str("%25"),
                c => name.push(c),
            }
        }
        name
    }

    /// Removes the entries listed under `tags`: each set popped in batches, what it listed
    /// unlinked; how many entries were still there.
    async fn remove_tagged(&self, tags: &[Arc<str>]) -> Result<u64, BackendError> {
        let mut removed = 0;
        for tag in tags {
            let set = self.tag_key(tag);
            loop {
                let mut pop = redis::cmd("SPOP");
                pop.arg(&set).arg(500);
                let members: Vec<String> = self
                    .call("SPOP", Access::Write, self.connection.query(&pop))
                    .await?;
                if members.is_empty() {
                    break;
                }
                let unlinks = members
                    .iter()
                    .map(|member| redis::cmd("UNLINK").arg(member).clone())
                    .collect();
                removed += self
                    .call("UNLINK", Access::Write, self.connection.sum_all(unlinks))
                    .await?;
            }
        }
        Ok(removed)
    }

    /// The names of the entries `selection` selects: the members of the tags' sets, or the
    /// keys a `SCAN … MATCH` finds (on every primary of a cluster).
    async fn selected(&self, selection: Selection<'_>) -> Result<Vec<String>, BackendError> {
        match selection {
            Selection::Tags(tags) => {
                let mut names = Vec::new();
                for tag in tags {
                    let members = redis::cmd("SMEMBERS").arg(self.tag_key(tag)).clone();
                    let listed: Vec<String> = self
                        .call("SMEMBERS", Access::Read, self.connection.query(&members))
                        .await?;
                    names.extend(listed);
                }
                names.sort_unstable();
                names.dedup();
                Ok(names)
            }
            Selection::Pattern(pattern) => {
                let glob = format!("{}{pattern}#*", glob_escape(&self.prefix));
                let mut names = Vec::new();
                self.scan(&glob, |batch| {
                    names.extend(batch);
                    std::future::ready(Ok(0))
                })
                .await?;
                Ok(names)
            }
        }
    }

    /// Marks the entries `selection` selects stale from `now` in place (see
    /// [`codec::mark_stale`](crate::codec::mark_stale)): each read, marked, and written back
    /// only if nobody wrote it meanwhile; how many were marked.
    async fn mark_stale_where(
        &self,
        selection: Selection<'_>,
        now: Timestamp,
    ) -> Result<u64, BackendError> {
        let names = self.selected(selection).await?;
        let mut marked = 0;
        for batch in names.chunks(64) {
            let reads = batch.iter().map(|name| async move {
                let get = redis::cmd("GET").arg(name).clone();
                let bytes: Option<Vec<u8>> = self
                    .call("GET", Access::Read, self.connection.query(&get))
                    .await?;
                let Some(bytes) = bytes else { return Ok(0) };
                let Ok(stale) = crate::codec::mark_stale(&bytes, now) else {
                    // Not an entry of ours (or corrupt): not ours to mark.
                    return Ok(0);
                };
                let mut swap = redis::cmd("EVAL");
                swap.arg(MARK_STALE).arg(1).arg(name).arg(bytes).arg(stale);
                self.call("EVAL", Access::Write, self.connection.query::<u64>(&swap))
                    .await
            });
            for result in futures_util::future::join_all(reads).await {
                marked += result?;
            }
        }
        Ok(marked)
    }

    /// The same store (connection, prefix, breakers, counters) with values in `format`: for a
    /// cache of another value type on the same Redis.
    ///
    /// ```
    /// use layercake_backends::{codec::Json, redis::Redis};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let redis = Redis::builder().build().unwrap();
    /// let readable: Redis<Json> = redis.with_format(Json);
    /// # drop(readable);
    /// # }
    /// ```
    pub fn with_format<G>(&self, format: G) -> Redis<G> {
        Redis {
            connection: self.connection.clone(),
            clients: Arc::clone(&self.clients),
            prefix: Arc::clone(&self.prefix),
            codec: Arc::new(self.codec.with_format(format)),
            timeout: self.timeout,
            breakers: Arc::clone(&self.breakers),
            stats: Arc::clone(&self.stats),
            name: self.name,
        }
    }

    /// The Redis key of `key`'s lease (see [`try_lease`](Redis::try_lease)):
    /// `<prefix>lease:<hex of the key's 128-bit hash>`.
    ///
    /// ```
    /// use layercake_backends::{Key, redis::Redis};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Redis::builder().prefix("app:").build()?;
    /// assert!(store.lease_key(&Key::from_parts(["k"])).starts_with("app:lease:"));
    /// # Ok(()) }
    /// ```
    pub fn lease_key(&self, key: &Key) -> String {
        format!("{}lease:{:032x}", self.prefix, key.hash128())
    }

    /// Takes the lease on `key` for `ttl` under `token` (`SET … NX PX`), unless another holds
    /// it: `Ok(())` when taken, `Err(remaining)` with the holder's remaining time otherwise.
    /// One fill per key for a fleet: the holder computes, the others wait for its result.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # use layercake_backends::{Key, redis::Redis};
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let redis = Redis::builder().build()?;
    /// let key = Key::from_parts(["report"]);
    /// if redis.try_lease(&key, 42, Duration::from_secs(5)).await?.is_ok() {
    ///     // … compute and store, then:
    ///     redis.release_lease(&key, 42).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn try_lease(
        &self,
        key: &Key,
        token: u64,
        ttl: Duration,
    ) -> Result<Result<(), Duration>, BackendError> {
        let mut take = redis::cmd("EVAL");
        take.arg(TAKE_LEASE)
            .arg(1)
            .arg(self.lease_key(key))
            .arg(token)
            .arg(ttl.as_millis().max(1) as u64);
        let answer: i64 = self
            .call("EVAL", Access::Write, self.connection.query(&take))
            .await?;
        Ok(match answer {
            -1 => Ok(()),
            // Expired between the two commands: try again at once.
            remaining => Err(Duration::from_millis(remaining.max(0) as u64)),
        })
    }

    /// Gives the lease on `key` back if `token` still holds it; whether it did (`false`: it
    /// expired, or an invalidation voided it, see [`void_lease`](Redis::void_lease)).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use layercake_backends::{Key, redis::Redis};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Redis::builder().build()?;
    /// let key = Key::from_parts(["report"]);
    /// if store.try_lease(&key, 7, Duration::from_secs(5)).await?.is_ok() {
    ///     // … compute and store …
    ///     store.release_lease(&key, 7).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn release_lease(&self, key: &Key, token: u64) -> Result<bool, BackendError> {
        let mut release = redis::cmd("EVAL");
        release
            .arg(RELEASE_LEASE)
            .arg(1)
            .arg(self.lease_key(key))
            .arg(token);
        let released: u64 = self
            .call("EVAL", Access::Write, self.connection.query(&release))
            .await?;
        Ok(released == 1)
    }

    /// Voids the lease on `key`, whoever holds it: its holder's result, computed from data an
    /// invalidation has since replaced, is then not stored. Whether there was one.
    ///
    /// ```no_run
    /// use layercake_backends::{Key, redis::Redis};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Redis::builder().build()?;
    /// // The entry was invalidated: whoever is computing it must not store it.
    /// store.void_lease(&Key::from_parts(["report"])).await?;
    /// # Ok(()) }
    /// ```
    pub async fn void_lease(&self, key: &Key) -> Result<bool, BackendError> {
        let void = redis::cmd("DEL").arg(self.lease_key(key)).clone();
        let voided: u64 = self
            .call("DEL", Access::Write, self.connection.query(&void))
            .await?;
        Ok(voided == 1)
    }

    /// The prefix of every key and channel name this store uses.
    ///
    /// ```
    /// use layercake_backends::redis::Redis;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Redis::builder().prefix("app:").build()?;
    /// assert_eq!(store.prefix(), "app:");
    /// # Ok(()) }
    /// ```
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Publishes `message` on `channel` (Redis Pub/Sub; on a cluster, every node's subscribers
    /// hear it), under the timeout and the write breaker; how many subscribers received it.
    ///
    /// ```no_run
    /// # use layercake_backends::redis::Redis;
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let redis = Redis::builder().build()?;
    /// let heard = redis.publish("news", b"hello").await?;
    /// # Ok(()) }
    /// ```
    pub async fn publish(&self, channel: &str, message: &[u8]) -> Result<u64, BackendError> {
        let mut publish = redis::cmd("PUBLISH");
        publish.arg(channel).arg(message);
        self.call("PUBLISH", Access::Write, self.connection.query(&publish))
            .await
    }

    /// A Pub/Sub connection of its own, subscribed to `channel`: to the one Redis, or to the
    /// first node of a cluster that answers (a cluster's nodes all hear every publication).
    /// Opened under the store's timeout; a store built from a connection rather than a URL or
    /// a client has nowhere to open one and says so.
    ///
    /// ```no_run
    /// use layercake_backends::redis::Redis;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Redis::builder().build()?;
    /// let mut pubsub = store.subscribe("app:events").await?;
    /// let _messages = pubsub.on_message();
    /// # Ok(()) }
    /// ```
    pub async fn subscribe(&self, channel: &str) -> Result<redis::aio::PubSub, BackendError> {
        let mut last = BackendError::new(
            BackendErrorKind::Unsupported,
            "this Redis store was given a connection, not a URL or a client: it cannot open a \
             Pub/Sub connection",
        );
        for client in self.clients.iter() {
            let subscribed = async {
                let mut pubsub = client.get_async_pubsub().await?;
                pubsub.subscribe(channel).await?;
                Ok::<_, redis::RedisError>(pubsub)
            };
            match within("SUBSCRIBE", self.timeout, subscribed).await {
                Ok(pubsub) => return Ok(pubsub),
                Err(error) => last = error,
            }
        }
        Err(last)
    }

    /// Appends an event to the stream `<prefix><stream>` (`XADD … MAXLEN ~ max_len *`: Redis
    /// trims the oldest events, roughly, past `max_len`); the event's id.
    ///
    /// ```no_run
    /// # use layercake_backends::redis::Redis;
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let redis = Redis::builder().build()?;
    /// let id = redis.stream_add("audit", &[("user", b"42".as_slice()), ("did", b"login")], 10_000).await?;
    /// let latest = redis.stream_latest("audit", 10).await?;
    /// assert_eq!(latest[0].id, id);
    /// # Ok(()) }
    /// ```
    pub async fn stream_add(
        &self,
        stream: &str,
        fields: &[(&str, &[u8])],
        max_len: usize,
    ) -> Result<String, BackendError> {
        let mut add = redis::cmd("XADD");
        add.arg(format!("{}{stream}", self.prefix))
            .arg("MAXLEN")
            .arg("~")
            .arg(max_len)
            .arg("*");
        for (name, value) in fields {
            add.arg(*name).arg(*value);
        }
        self.call("XADD", Access::Write, self.connection.query(&add))
            .await
    }

    /// The latest `count` events of the stream `<prefix><stream>`, newest first.
    ///
    /// ```no_run
    /// use layercake_backends::redis::Redis;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Redis::builder().build()?;
    /// let last = store.stream_latest("app:changes", 10).await?;
    /// println!("{} recent changes", last.len());
    /// # Ok(()) }
    /// ```
    pub async fn stream_latest(
        &self,
        stream: &str,
        count: usize,
    ) -> Result<Vec<redis::streams::StreamId>, BackendError> {
        let mut range = redis::cmd("XREVRANGE");
        range
            .arg(format!("{}{stream}", self.prefix))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(count);
        let reply: redis::streams::StreamRangeReply = self
            .call("XREVRANGE", Access::Read, self.connection.query(&range))
            .await?;
        Ok(reply.ids)
    }

    /// Up to `count` events of the stream `<prefix><stream>` after the id `after` (`"$"`: only
    /// events added from now on), waiting up to `block` for one to arrive (`XREAD BLOCK`);
    /// empty when none came. A blocking read holds its connection, so it runs on a connection
    /// of its own, never on the store's shared one.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use layercake_backends::redis::Redis;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Redis::builder().build()?;
    /// let next = store.stream_read("app:changes", "0", 100, Duration::from_millis(500)).await?;
    /// println!("{} changes", next.len());
    /// # Ok(()) }
    /// ```
    pub async fn stream_read(
        &self,
        stream: &str,
        after: &str,
        count: usize,
        block: Duration,
    ) -> Result<Vec<redis::streams::StreamId>, BackendError> {
        let Some(client) = self.clients.first() else {
            return Err(BackendError::new(
                BackendErrorKind::Unsupported,
                "this Redis store was given a connection, not a URL or a client: it cannot open \
                 a connection for a blocking read",
            ));
        };
        let name = format!("{}{stream}", self.prefix);
        let mut read = redis::cmd("XREAD");
        read.arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(block.as_millis() as u64)
            .arg("STREAMS")
            .arg(&name)
            .arg(after);
        let blocking = async {
            let mut connection = client.get_multiplexed_async_connection().await?;
            read.query_async::<Option<redis::streams::StreamReadReply>>(&mut connection)
                .await
        };
        let reply = within("XREAD", self.timeout + block, blocking).await?;
        Ok(reply
            .into_iter()
            .flat_map(|reply| reply.keys)
            .filter(|key| key.key == name)
            .flat_map(|key| key.ids)
            .collect())
    }

    /// The counters.
    ///
    /// ```
    /// use layercake_backends::redis::Redis;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Redis::builder().build()?;
    /// assert!(!store.stats().breaker_open);
    /// # Ok(()) }
    /// ```
    pub fn stats(&self) -> RedisStats {
        RedisStats {
            errors: self.stats.errors.load(Relaxed),
            timeouts: self.stats.timeouts.load(Relaxed),
            rejected: self.stats.rejected.load(Relaxed),
            corrupt: self.stats.corrupt.load(Relaxed),
            breaker_open: self.breakers.read.is_open() || self.breakers.write.is_open(),
            read_breaker_open: self.breakers.read.is_open(),
            write_breaker_open: self.breakers.write.is_open(),
        }
    }

    /// The connection to a single Redis, for commands of your own (`None` for a cluster).
    ///
    /// ```no_run
    /// use layercake_backends::redis::Redis;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Redis::builder().build()?;
    /// if let Some(mut conn) = store.connection() {
    ///     let _: () = redis::cmd("PING").query_async(&mut conn).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn connection(&self) -> Option<ConnectionManager> {
        match &self.connection {
            Connection::Single(connection) => Some(connection.clone()),
            #[cfg(feature = "redis-cluster")]
            Connection::Cluster(_) => None,
        }
    }

    /// Runs one Redis call under the timeout and the breaker for its kind of access. Dropped
    /// before it is answered, the call settles the breaker anyway (see [`Permit`]).
    async fn call<T, Fut>(
        &self,
        op: &'static str,
        access: Access,
        call: Fut,
    ) -> Result<T, BackendError>
    where
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let breaker = match access {
            Access::Read => &self.breakers.read,
            Access::Write => &self.breakers.write,
        };
        let Some(permit) = breaker.allow() else {
            self.stats.rejected.fetch_add(1, Relaxed);
            return Err(BackendError::new(
                BackendErrorKind::Unavailable,
                format!("redis {op}: circuit open, not calling Redis"),
            ));
        };
        let answer = within(op, self.timeout, call).await;
        match &answer {
            Ok(_) => permit.success(),
            Err(error) => {
                permit.failure();
                let counter = match error.kind() {
                    BackendErrorKind::Timeout => &self.stats.timeouts,
                    _ => &self.stats.errors,
                };
                counter.fetch_add(1, Relaxed);
            }
        }
        answer
    }

    /// Removes every key under the prefix: `SCAN` in batches (on a cluster, on every primary),
    /// each batch deleted in one pipelined round trip; how many were removed.
    ///
    /// ```no_run
    /// use layercake_backends::redis::Redis;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Redis::builder().prefix("tests:").build()?;
    /// let removed = store.clear_prefix().await?;
    /// println!("{removed} keys removed");
    /// # Ok(()) }
    /// ```
    pub async fn clear_prefix(&self) -> Result<u64, BackendError> {
        self.remove_scanned(&format!("{}*", glob_escape(&self.prefix)))
            .await
    }

    /// Removes every key that `MATCH`es `glob`: `SCAN` in batches (on a cluster, on every
    /// primary in turn), each batch deleted in one pipelined round trip (on a cluster, at once
    /// on each key's node); how many were removed.
    async fn remove_scanned(&self, glob: &str) -> Result<u64, BackendError> {
        self.scan(glob, |keys| async move {
            let deletes = keys
                .iter()
                .map(|key| redis::cmd("UNLINK").arg(key).clone())
                .collect();
            self.call("UNLINK", Access::Write, self.connection.sum_all(deletes))
                .await
        })
        .await
    }

    /// Calls `each` with every batch of keys a `SCAN … MATCH glob` finds (on a cluster, on
    /// every primary in turn); the sum of what it answered.
    async fn scan<Fut>(
        &self,
        glob: &str,
        mut each: impl FnMut(Vec<String>) -> Fut,
    ) -> Result<u64, BackendError>
    where
        Fut: Future<Output = Result<u64, BackendError>>,
    {
        let nodes = self.primaries().await?;
        let mut sum = 0;
        for node in nodes {
            let mut cursor: u64 = 0;
            loop {
                let mut scan = redis::cmd("SCAN");
                scan.arg(cursor)
                    .arg("MATCH")
                    .arg(glob)
                    .arg("COUNT")
                    .arg(500);
                let (next, keys): (u64, Vec<String>) = self
                    .call(
                        "SCAN",
                        Access::Write,
                        self.connection.query_on(&scan, &node),
                    )
                    .await?;
                if !keys.is_empty() {
                    sum += each(keys).await?;
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(sum)
    }

    /// The nodes whose keys a scan must go through: the one Redis, or every primary of a
    /// cluster (from `CLUSTER NODES`).
    async fn primaries(&self) -> Result<Vec<Node>, BackendError> {
        match &self.connection {
            Connection::Single(_) => Ok(vec![Node::Any]),
            #[cfg(feature = "redis-cluster")]
            Connection::Cluster(_) => {
                let nodes: String = self
                    .call(
                        "CLUSTER NODES",
                        Access::Write,
                        self.connection
                            .query_on(redis::cmd("CLUSTER").arg("NODES"), &Node::Any),
                    )
                    .await?;
                Ok(cluster_primaries(&nodes))
            }
        }
    }

    /// Stores several entries in one pipelined round trip (on a cluster: all at once, each on
    /// its node).
    ///
    /// ```no_run
    /// use std::{sync::Arc, time::Duration};
    /// use layercake_backends::{Entry, Key, Timestamp, redis::Redis};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Redis::builder().build()?;
    /// let entry = Arc::new(Entry::new("v".to_owned(), Timestamp::now(), Duration::from_secs(60), Duration::ZERO));
    /// store.set_many(&[(Key::from_parts(["a"]), Arc::clone(&entry)), (Key::from_parts(["b"]), entry)]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn set_many<V>(&self, entries: &[(Key, Arc<Entry<V>>)]) -> Result<(), BackendError>
    where
        F: Format<V>,
    {
        let now = Timestamp::now();
        let mut commands = Vec::with_capacity(entries.len());
        for (key, entry) in entries {
            let ttl = entry.time_to_live(now).as_millis() as u64;
            let mut command = if ttl == 0 {
                redis::cmd("DEL")
            } else {
                redis::cmd("SET")
            };
            let name = self.redis_key(key);
            command.arg(&name);
            if ttl > 0 {
                let bytes = self.codec.encode(key, entry).map_err(|e| {
                    BackendError::new(BackendErrorKind::Other, format!("encoding the entry: {e}"))
                })?;
                command.arg(bytes).arg("PX").arg(ttl);
            }
            commands.push(command);
            if ttl > 0 {
                for tag in entry.tags() {
                    let mut link = redis::cmd("EVAL");
                    link.arg(LINK_TAG)
                        .arg(1)
                        .arg(self.tag_key(tag))
                        .arg(&name)
                        .arg(ttl);
                    commands.push(link);
                }
            }
        }
        self.call("SET", Access::Write, self.connection.run_all(commands))
            .await
    }
}

impl<F> fmt::Debug for Redis<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redis")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<F> Clone for Redis<F> {
    fn clone(&self) -> Self {
        Redis {
            connection: self.connection.clone(),
            clients: Arc::clone(&self.clients),
            prefix: Arc::clone(&self.prefix),
            codec: Arc::clone(&self.codec),
            timeout: self.timeout,
            breakers: Arc::clone(&self.breakers),
            stats: Arc::clone(&self.stats),
            name: self.name,
        }
    }
}

impl<F: Send + Sync + 'static> Tier for Redis<F> {}

impl<V, F> Backend<V> for Redis<F>
where
    V: Send + Sync + 'static,
    F: Format<V>,
{
    async fn get(&self, key: &Key) -> Lookup<V> {
        let command = redis::cmd("GET").arg(self.redis_key(key)).clone();
        let bytes: Option<Vec<u8>> = self
            .call("GET", Access::Read, self.connection.query(&command))
            .await?;
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        match self.codec.decode(key, Bytes::from(bytes)) {
            Ok(entry) => Ok(Some(Arc::new(entry))),
            Err(error) => {
                self.stats.corrupt.fetch_add(1, Relaxed);
                Err(error.into())
            }
        }
    }

    async fn set(&self, key: &Key, entry: Arc<Entry<V>>) -> Result<(), BackendError> {
        self.set_many(&[(key.clone(), entry)]).await
    }

    async fn remove(&self, key: &Key) -> Result<(), BackendError> {
        <Self as Backend<V>>::remove_counted(self, key)
            .await
            .map(drop)
    }

    async fn remove_counted(&self, key: &Key) -> Result<Option<u64>, BackendError> {
        let command = redis::cmd("DEL").arg(self.redis_key(key)).clone();
        let removed: u64 = self
            .call("DEL", Access::Write, self.connection.query(&command))
            .await?;
        Ok(Some(removed))
    }

    async fn clear(&self) -> Result<(), BackendError> {
        self.clear_prefix().await.map(drop)
    }

    /// By tag: pops each tag's set and unlinks its members. By pattern: `SCAN`s with `MATCH`
    /// (on every primary of a cluster) and unlinks what it finds.
    async fn remove_selected(&self, selection: Selection<'_>) -> Result<Option<u64>, BackendError> {
        match selection {
            Selection::Tags(tags) => self.remove_tagged(tags).await.map(Some),
            Selection::Pattern(pattern) => {
                let glob = format!("{}{pattern}#*", glob_escape(&self.prefix));
                self.remove_scanned(&glob).await.map(Some)
            }
        }
    }

    /// Marks each selected entry's stored bytes stale, without decoding its value.
    async fn mark_stale_selected(
        &self,
        selection: Selection<'_>,
        now: Timestamp,
    ) -> Result<Option<u64>, BackendError> {
        self.mark_stale_where(selection, now).await.map(Some)
    }

    fn name(&self) -> &'static str {
        self.name
    }

    /// A `PING` under the store's timeout (not through the breakers: health asks even while
    /// they are open), its latency, and the breakers' states.
    async fn tags(&self, limit: usize) -> Result<Vec<(String, u64)>, BackendError> {
        let sets = format!("{}tag:*", crate::key::glob_escape(&self.prefix));
        let found = std::sync::Mutex::new(Vec::new());
        self.scan(&sets, |keys| {
            found
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend(keys);
            std::future::ready(Ok(0))
        })
        .await?;
        let found = found
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut tags = Vec::with_capacity(found.len());
        for set in found {
            let mut scard = redis::cmd("SCARD");
            scard.arg(&set);
            let count: u64 = self
                .call("SCARD", Access::Read, self.connection.query(&scard))
                .await?;
            let name = set.strip_prefix(&*self.prefix).unwrap_or(&set);
            let tag = name.strip_prefix("tag:").unwrap_or(name);
            tags.push((unescape_tag(tag), count));
        }
        Ok(crate::backend::most_listed(tags, limit))
    }

    async fn health(&self) -> Vec<crate::TierHealth> {
        let started = std::time::Instant::now();
        let command = redis::cmd("PING");
        let ping = self.connection.query_on::<String>(&command, &Node::Any);
        let ping = within("PING", self.timeout, ping).await;
        let latency = started.elapsed();
        let state = |open: bool| if open { "open" } else { "closed" };
        let stats = self.stats();
        let breakers = format!(
            "read breaker {}, write breaker {}",
            state(stats.read_breaker_open),
            state(stats.write_breaker_open),
        );
        let (up, detail) = match ping {
            Ok(_) => (true, breakers),
            Err(error) => (false, format!("{error}; {breakers}")),
        };
        vec![crate::TierHealth::new(self.name, up, Some(latency), detail)]
    }
}

/// A tag as [`Redis::tag_key`] wrote it, back (`%23` is `#`, `%25` is `%`).
fn unescape_tag(written: &str) -> String {
    let mut tag = String::with_capacity(written.len());
    let mut rest = written;
    while let Some(at) = rest.find('%') {
        tag.push_str(&rest[..at]);
        let escape = &rest[at..];
        if let Some(after) = escape.strip_prefix("%23") {
            tag.push('#');
            rest = after;
        } else if let Some(after) = escape.strip_prefix("%25") {
            tag.push('%');
            rest = after;
        } else {
            tag.push('%');
            rest = &escape[1..];
        }
    }
    tag.push_str(rest);
    tag
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_format_keeps_the_codec_settings_made_before_it() {
        let builder = Redis::builder()
            .compression(Compression::None, 77)
            .max_payload_size(1234)
            .format(Postcard);
        let codec = format!("{:?}", builder.codec);
        assert!(codec.contains("min_compress_size: 77"), "{codec}");
        assert!(codec.contains("max_payload_size: 1234"), "{codec}");
    }

    #[test]
    fn url_resolution_order() {
        let env = || Some("redis://from-env".to_owned());
        let file = || Some("redis://from-dotenv".to_owned());
        assert_eq!(
            resolve_url(Some("redis://arg"), env(), file()),
            "redis://arg"
        );
        assert_eq!(resolve_url(None, env(), file()), "redis://from-env");
        assert_eq!(resolve_url(None, None, file()), "redis://from-dotenv");
        assert_eq!(
            resolve_url(None, Some(String::new()), None),
            "redis://127.0.0.1:6379"
        );
    }

    #[test]
    fn dot_env_lines_are_read_like_a_shell_would() {
        let text = "# comment\nOTHER=1\nexport REDIS_URL=\"redis://:pw@cache:6380/2\"\n";
        assert_eq!(
            dot_env_value(text, "REDIS_URL").as_deref(),
            Some("redis://:pw@cache:6380/2")
        );
        assert_eq!(
            dot_env_value("REDIS_URL = 'redis://x' ", "REDIS_URL").as_deref(),
            Some("redis://x")
        );
        assert_eq!(dot_env_value("NOPE=1", "REDIS_URL"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn breaker_opens_after_failures_then_probes_once() {
        let breaker = Breaker::new("redis", 3, Duration::from_secs(1));
        for _ in 0..3 {
            breaker.allow().expect("closed").failure();
        }
        assert!(breaker.allow().is_none(), "open");
        tokio::time::advance(Duration::from_millis(1001)).await;
        let probe = breaker.allow().expect("one probe after the cool-down");
        assert!(breaker.allow().is_none(), "only one");
        probe.failure();
        assert!(breaker.allow().is_none(), "the failed probe opens it again");
        tokio::time::advance(Duration::from_millis(1001)).await;
        breaker.allow().expect("a probe").success();
        assert!(
            breaker.allow().is_some() && breaker.allow().is_some(),
            "closed"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_dropped_unanswered_lets_the_next_call_probe() {
        let breaker = Breaker::new("redis", 1, Duration::from_secs(1));
        breaker.allow().expect("closed").failure();
        tokio::time::advance(Duration::from_millis(1001)).await;
        drop(breaker.allow().expect("the probe"));
        let probe = breaker.allow().expect("the next call probes");
        probe.success();
        assert!(!breaker.is_open());
        // A call that was let through while closed and then dropped changes nothing.
        drop(breaker.allow().expect("closed"));
        assert!(!breaker.is_open());
    }
}
