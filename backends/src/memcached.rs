//! The Memcached store (feature `memcached`): a byte tier on one `memcached` server, through
//! pooled connections of [memcache-async](https://docs.rs/memcache-async)'s text protocol.
//!
//! Entries are stored in the codec's checked envelope (see [`codec`](crate::codec)), so foreign
//! or corrupt bytes read as a counted miss. Keys are the store's prefix and the key's 128-bit
//! hash in hex: always within Memcached's 250 bytes and free of spaces and control characters,
//! whatever the key's parts (the envelope keeps the full key, so two keys never answer for each
//! other). Lifetimes follow Memcached's rule: up to 30 days as seconds from now, longer as the
//! Unix time of expiry.
//!
//! Every call is bounded by the store's timeout and goes through a circuit breaker (one for
//! reads, one for writes), as the Redis store's do: a Memcached that is down, slow or erroring
//! is a miss, never a failed request. A connection whose call failed or was cancelled is
//! closed, never reused half-read.
//!
//! Memcached cannot list its keys: selections (tags, patterns) and `clear` are not supported
//! (a layer's memory tier in front still honours them; change the prefix to drop everything).
//!
//! ```no_run
//! use layercake_backends::memcached::Memcached;
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Memcached::builder().address("127.0.0.1:11211").prefix("shop:").build()?;
//! # drop(store); Ok(()) }
//! ```

use std::{
    fmt,
    future::Future,
    io::ErrorKind,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use memcache_async::ascii::Protocol;
use tokio::{net::TcpStream, sync::Semaphore};

use crate::{
    Backend, BackendError, BackendErrorKind, Entry, Key, Lookup, Tier, Timestamp,
    breaker::Breaker,
    codec::{Codec, Compression, Format, Postcard},
};

/// A connection to the server.
type Connection = Protocol<TcpStream>;

/// Memcached's largest relative expiry: longer ones are read as a Unix time (30 days).
const RELATIVE_LIMIT: u64 = 30 * 24 * 3600;

/// The Memcached store; see the [module docs](self). Cheap to clone (clones share the pool).
pub struct Memcached<F = Postcard> {
    shared: Arc<Shared>,
    codec: Arc<Codec<F>>,
}

struct Shared {
    address: String,
    prefix: String,
    timeout: Duration,
    max_item_size: usize,
    /// Idle connections, ready for a call.
    idle: Mutex<Vec<Connection>>,
    /// Bounds the connections open at once.
    connections: Semaphore,
    read: Breaker,
    write: Breaker,
    counters: Counters,
    name: &'static str,
}

#[derive(Default)]
struct Counters {
    errors: AtomicU64,
    timeouts: AtomicU64,
    rejected: AtomicU64,
    corrupt: AtomicU64,
}

/// The Memcached store's counters.
///
/// ```
/// use layercake_backends::memcached::Memcached;
/// let store = Memcached::builder().build().unwrap();
/// assert_eq!(store.stats().errors, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemcachedStats {
    /// Calls that failed (refused, reset, an error answer).
    pub errors: u64,
    /// Calls not answered within the timeout.
    pub timeouts: u64,
    /// Calls not made: a breaker was open, or no connection of the pool was free in time.
    pub rejected: u64,
    /// Entries read back that were not valid (counted misses).
    pub corrupt: u64,
    /// Whether a breaker is open now.
    pub breaker_open: bool,
}

/// Builds a [`Memcached`] store.
///
/// ```
/// use std::time::Duration;
/// use layercake_backends::memcached::Memcached;
/// let store = Memcached::builder()
///     .address("127.0.0.1:11211")
///     .prefix("app:")
///     .timeout(Duration::from_millis(50))
///     .connections(8)
///     .build()
///     .unwrap();
/// # drop(store);
/// ```
#[must_use]
pub struct MemcachedBuilder<F = Postcard> {
    address: String,
    prefix: String,
    codec: Codec<F>,
    timeout: Duration,
    connections: usize,
    max_item_size: usize,
    failures: u32,
    cool_down: Duration,
    name: &'static str,
}

impl Memcached<Postcard> {
    /// A builder with the defaults: `127.0.0.1:11211` (or `MEMCACHED_ADDRESS`), prefix
    /// `layercake:`, postcard without compression, 100 ms timeout, 4 connections, items up to
    /// 1 MiB (Memcached's default), a breaker opening after 5 failures in a row for 1 s.
    ///
    /// ```
    /// let store = layercake_backends::memcached::Memcached::builder().build().unwrap();
    /// # drop(store);
    /// ```
    pub fn builder() -> MemcachedBuilder<Postcard> {
        MemcachedBuilder {
            address: std::env::var("MEMCACHED_ADDRESS")
                .unwrap_or_else(|_| "127.0.0.1:11211".to_owned()),
            prefix: "layercake:".to_owned(),
            codec: Codec::new(Postcard),
            timeout: Duration::from_millis(100),
            connections: 4,
            max_item_size: 1024 * 1024,
            failures: 5,
            cool_down: Duration::from_secs(1),
            name: "memcached",
        }
    }
}

impl<F> MemcachedBuilder<F> {
    /// The server, `host:port` (a `memcache://` or `tcp://` prefix is accepted).
    ///
    /// ```
    /// use layercake_backends::memcached::Memcached;
    /// let store = Memcached::builder().address("memcache://127.0.0.1:11211").build().unwrap();
    /// # drop(store);
    /// ```
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.address = address.into();
        self
    }

    /// The prefix of every key this store writes: letters, digits and punctuation, at most 200
    /// bytes. Default `layercake:`.
    ///
    /// ```
    /// use layercake_backends::memcached::Memcached;
    /// assert!(Memcached::builder().prefix("has space").build().is_err());
    /// ```
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How entries are encoded; see [`codec`](crate::codec).
    ///
    /// ```
    /// use layercake_backends::{codec::Postcard, memcached::Memcached};
    /// let store = Memcached::builder().format(Postcard).build().unwrap();
    /// # drop(store);
    /// ```
    pub fn format<G>(self, format: G) -> MemcachedBuilder<G> {
        MemcachedBuilder {
            address: self.address,
            prefix: self.prefix,
            codec: self.codec.with_format(format),
            timeout: self.timeout,
            connections: self.connections,
            max_item_size: self.max_item_size,
            failures: self.failures,
            cool_down: self.cool_down,
            name: self.name,
        }
    }

    /// Compresses entries of `min_size` bytes or more.
    ///
    /// ```
    /// use layercake_backends::{codec::Compression, memcached::Memcached};
    /// let store = Memcached::builder().compression(Compression::None, 0).build().unwrap();
    /// # drop(store);
    /// ```
    pub fn compression(mut self, compression: Compression, min_size: usize) -> Self {
        self.codec = self
            .codec
            .compression(compression)
            .min_compress_size(min_size);
        self
    }

    /// The bound on every call: connecting, reading, writing. Default 100 ms.
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake_backends::memcached::Memcached;
    /// let store = Memcached::builder().timeout(Duration::from_millis(20)).build().unwrap();
    /// # drop(store);
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many connections may be open at once (calls beyond wait for one). Default 4.
    ///
    /// ```
    /// use layercake_backends::memcached::Memcached;
    /// let store = Memcached::builder().connections(16).build().unwrap();
    /// # drop(store);
    /// ```
    pub fn connections(mut self, connections: usize) -> Self {
        self.connections = connections.max(1);
        self
    }

    /// The largest entry written: a larger one is not sent, and the write is an error. Keep it
    /// at the server's own limit (`-I`, 1 MiB by default): the client writes with `noreply`, so
    /// an item the server refuses is simply not stored (a miss later), without an error here.
    ///
    /// ```
    /// use layercake_backends::memcached::Memcached;
    /// let store = Memcached::builder().max_item_size(8 << 20).build().unwrap();
    /// # drop(store);
    /// ```
    pub fn max_item_size(mut self, bytes: usize) -> Self {
        self.max_item_size = bytes;
        self
    }

    /// The breakers open after `failures` failed calls in a row and stay open for
    /// `cool_down`, then let one call through to probe the server.
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake_backends::memcached::Memcached;
    /// let store = Memcached::builder().circuit_breaker(3, Duration::from_millis(500)).build().unwrap();
    /// # drop(store);
    /// ```
    pub fn circuit_breaker(mut self, failures: u32, cool_down: Duration) -> Self {
        self.failures = failures.max(1);
        self.cool_down = cool_down;
        self
    }

    /// The store's name in `Cache-Status`, health and metrics. Default `memcached`.
    ///
    /// ```
    /// use layercake_backends::{Backend, memcached::Memcached};
    /// let store = Memcached::builder().name("shared").build().unwrap();
    /// assert_eq!(Backend::<String>::name(&store), "shared");
    /// ```
    pub fn name(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// The store; it connects on first use. Fails on a prefix Memcached cannot carry.
    ///
    /// ```
    /// let store = layercake_backends::memcached::Memcached::builder().build().unwrap();
    /// # drop(store);
    /// ```
    pub fn build(self) -> Result<Memcached<F>, BackendError> {
        let valid = |b: u8| b.is_ascii_graphic();
        if self.prefix.len() > 200 || !self.prefix.bytes().all(valid) {
            return Err(BackendError::new(
                BackendErrorKind::Other,
                format!(
                    "memcached prefix {:?}: at most 200 printable ASCII bytes, no spaces",
                    self.prefix
                ),
            ));
        }
        let address = self
            .address
            .trim_start_matches("memcache://")
            .trim_start_matches("tcp://")
            .trim_end_matches('/')
            .to_owned();
        Ok(Memcached {
            shared: Arc::new(Shared {
                address,
                prefix: self.prefix,
                timeout: self.timeout,
                max_item_size: self.max_item_size,
                idle: Mutex::new(Vec::with_capacity(self.connections)),
                connections: Semaphore::new(self.connections),
                read: Breaker::new("memcached", self.failures, self.cool_down),
                write: Breaker::new("memcached", self.failures, self.cool_down),
                counters: Counters::default(),
                name: self.name,
            }),
            codec: Arc::new(self.codec),
        })
    }
}

/// Memcached's `exptime` for an entry that must live `ttl` from `now` (Unix seconds): seconds
/// up to 30 days, the Unix time of expiry beyond (Memcached reads larger numbers so). Rounded
/// up, at least one second (0 would mean "never").
fn exptime(ttl: Duration, now_unix: u64) -> u32 {
    let seconds = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    let value = if seconds <= RELATIVE_LIMIT {
        seconds
    } else {
        now_unix.saturating_add(seconds)
    };
    u32::try_from(value).unwrap_or(u32::MAX)
}

impl<F> Memcached<F> {
    /// The Memcached key of `key`: the prefix and the key's hash in hex.
    ///
    /// ```
    /// use layercake_backends::{Key, memcached::Memcached};
    /// let store = Memcached::builder().prefix("app:").build().unwrap();
    /// let name = store.memcached_key(&Key::from_parts(["a very long part ".repeat(100)]));
    /// assert!(name.starts_with("app:") && name.len() == 4 + 32);
    /// ```
    pub fn memcached_key(&self, key: &Key) -> String {
        format!("{}{:032x}", self.shared.prefix, key.hash128())
    }

    /// The store's counters.
    ///
    /// ```
    /// let store = layercake_backends::memcached::Memcached::builder().build().unwrap();
    /// assert!(!store.stats().breaker_open);
    /// ```
    pub fn stats(&self) -> MemcachedStats {
        let c = &self.shared.counters;
        MemcachedStats {
            errors: c.errors.load(Relaxed),
            timeouts: c.timeouts.load(Relaxed),
            rejected: c.rejected.load(Relaxed),
            corrupt: c.corrupt.load(Relaxed),
            breaker_open: self.shared.read.is_open() || self.shared.write.is_open(),
        }
    }

    /// Runs `op` on a connection, under the timeout and the breaker for its kind of access.
    /// `op` hands the connection back with its answer; the connection goes back to the pool
    /// only then, so one whose call failed or was cancelled mid-way is closed, never reused
    /// half-read.
    async fn call<T, Op, Fut>(
        &self,
        name: &'static str,
        write: bool,
        op: Op,
    ) -> Result<T, BackendError>
    where
        Op: FnOnce(Connection) -> Fut,
        Fut: Future<Output = (Connection, std::io::Result<T>)>,
    {
        let shared = &*self.shared;
        let breaker = if write { &shared.write } else { &shared.read };
        let Some(permit) = breaker.allow() else {
            shared.counters.rejected.fetch_add(1, Relaxed);
            return Err(BackendError::new(
                BackendErrorKind::Unavailable,
                format!("memcached {name}: circuit open, not calling Memcached"),
            ));
        };
        // Waiting for a free connection says nothing of the server (only that this process
        // asks more at once than the pool holds): it is bounded, counted, and leaves the
        // breaker as it was.
        let slot = tokio::time::timeout(shared.timeout, shared.connections.acquire()).await;
        let Ok(Ok(_slot)) = slot else {
            shared.counters.rejected.fetch_add(1, Relaxed);
            return Err(BackendError::new(
                BackendErrorKind::Timeout,
                format!(
                    "memcached {name}: no free connection within {:?}",
                    shared.timeout
                ),
            ));
        };
        let answer = tokio::time::timeout(shared.timeout, async {
            let idle = shared
                .idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .pop();
            let connection = match idle {
                Some(connection) => connection,
                None => {
                    let stream = TcpStream::connect(&shared.address).await?;
                    stream.set_nodelay(true)?;
                    Protocol::new(stream)
                }
            };
            let (connection, answer) = op(connection).await;
            if answer.is_ok() {
                shared
                    .idle
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(connection);
            }
            answer
        })
        .await;
        match answer {
            Ok(Ok(value)) => {
                permit.success();
                Ok(value)
            }
            Ok(Err(error)) => {
                permit.failure();
                shared.counters.errors.fetch_add(1, Relaxed);
                Err(BackendError::new(
                    BackendErrorKind::Unavailable,
                    format!("memcached {name}: {error}"),
                ))
            }
            Err(_) => {
                permit.failure();
                shared.counters.timeouts.fetch_add(1, Relaxed);
                Err(BackendError::new(
                    BackendErrorKind::Timeout,
                    format!("memcached {name}: no answer within {:?}", shared.timeout),
                ))
            }
        }
    }
}

/// Waits until the server has applied the commands sent on `connection` so far. The client
/// writes with `noreply` (no answer to wait for), and Memcached runs a connection's commands in
/// order: once a `version` is answered, the write is in, visible to every connection, and an
/// error the server sent for it (an item too large, say) is read here as this call's error
/// instead of being left on the connection for the next caller.
async fn settled(connection: &mut Connection) -> std::io::Result<()> {
    connection.version().await.map(drop)
}

impl<F> Clone for Memcached<F> {
    fn clone(&self) -> Self {
        Memcached {
            shared: Arc::clone(&self.shared),
            codec: Arc::clone(&self.codec),
        }
    }
}

impl<F> fmt::Debug for Memcached<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Memcached")
            .field("address", &self.shared.address)
            .field("prefix", &self.shared.prefix)
            .finish_non_exhaustive()
    }
}

impl<F: Send + Sync + 'static> Tier for Memcached<F> {}

impl<V, F> Backend<V> for Memcached<F>
where
    V: Send + Sync + 'static,
    F: Format<V>,
{
    async fn get(&self, key: &Key) -> Lookup<V> {
        let name = &self.memcached_key(key);
        let found = self
            .call("get", false, |mut c| async move {
                let answer = match c.get(name).await {
                    Ok(bytes) => Ok(Some(bytes)),
                    Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
                    Err(error) => Err(error),
                };
                (c, answer)
            })
            .await?;
        let Some(bytes) = found else {
            return Ok(None);
        };
        match self.codec.decode(key, Bytes::from(bytes)) {
            Ok(entry) => Ok(Some(Arc::new(entry))),
            Err(error) => {
                self.shared.counters.corrupt.fetch_add(1, Relaxed);
                Err(error.into())
            }
        }
    }

    async fn set(&self, key: &Key, entry: Arc<Entry<V>>) -> Result<(), BackendError> {
        let now = Timestamp::now();
        let ttl = entry.time_to_live(now);
        if ttl.is_zero() {
            return Backend::<V>::remove(self, key).await;
        }
        let bytes = self.codec.encode(key, &entry).map_err(|e| {
            BackendError::new(BackendErrorKind::Other, format!("encoding the entry: {e}"))
        })?;
        if bytes.len() > self.shared.max_item_size {
            return Err(BackendError::new(
                BackendErrorKind::Other,
                format!(
                    "memcached set: {} bytes, over the item limit of {}",
                    bytes.len(),
                    self.shared.max_item_size
                ),
            ));
        }
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let expires = exptime(ttl, unix);
        let (name, bytes) = (&self.memcached_key(key), &bytes);
        self.call("set", true, |mut c| async move {
            let answer = match c.set(name, bytes, expires).await {
                Ok(()) => settled(&mut c).await,
                Err(error) => Err(error),
            };
            (c, answer)
        })
        .await
    }

    async fn remove(&self, key: &Key) -> Result<(), BackendError> {
        let name = &self.memcached_key(key);
        self.call("delete", true, |mut c| async move {
            let answer = match c.delete(name).await {
                Ok(()) => settled(&mut c).await,
                Err(error) => Err(error),
            };
            (c, answer)
        })
        .await
    }

    async fn clear(&self) -> Result<(), BackendError> {
        Err(BackendError::new(
            BackendErrorKind::Unsupported,
            "memcached cannot list its keys to clear them: change the prefix instead",
        ))
    }

    fn name(&self) -> &'static str {
        self.shared.name
    }

    async fn health(&self) -> Vec<crate::TierHealth> {
        let started = std::time::Instant::now();
        let shared = &*self.shared;
        let version = tokio::time::timeout(shared.timeout, async {
            let stream = TcpStream::connect(&shared.address).await?;
            Protocol::new(stream).version().await
        })
        .await;
        let latency = started.elapsed();
        let (up, detail) = match version {
            Ok(Ok(version)) => (true, format!("memcached {version}")),
            Ok(Err(error)) => (false, error.to_string()),
            Err(_) => (false, format!("no answer within {:?}", shared.timeout)),
        };
        vec![crate::TierHealth::new(
            shared.name,
            up,
            Some(latency),
            detail,
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_follow_the_thirty_day_rule() {
        let now = 1_800_000_000;
        assert_eq!(exptime(Duration::from_millis(1), now), 1);
        assert_eq!(exptime(Duration::from_millis(1500), now), 2);
        assert_eq!(exptime(Duration::from_secs(60), now), 60);
        let thirty_days = Duration::from_secs(RELATIVE_LIMIT);
        assert_eq!(exptime(thirty_days, now), 2_592_000);
        let longer = thirty_days + Duration::from_secs(1);
        assert_eq!(exptime(longer, now), 1_800_000_000 + 2_592_001);
    }
}
