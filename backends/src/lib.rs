//! Storage for [layercake](https://docs.rs/layercake): the [`Backend`] trait and the stores.
//!
//! A backend keeps [`Entry`] values under [`Key`]s until their time to live runs out. It knows
//! nothing of HTTP: the engine in `layercake` decides what an entry means and when it is fresh;
//! a backend only stores, returns and forgets.
//!
//! Stores, one module each, each behind a feature:
//!
//! | store | feature | kind |
//! |---|---|---|
//! | [`Moka`] | `moka` (default) | in memory, in process: entries behind `Arc`, no serialization |
//! | [`Redis`](redis::Redis) | `redis` | shared by every instance: bytes through a [`codec`], timeouts, a circuit breaker |
//! | [`Memcached`](memcached::Memcached) | `memcached` | shared by every instance: bytes through a [`codec`], pooled connections |
//! | [`Disk`](disk::Disk) | `disk` | on local disk, kept across restarts (redb), bounded in bytes |
//!
//! Users normally depend on `layercake` alone, which re-exports this crate.
//!
//! ```
//! use std::{sync::Arc, time::Duration};
//! use layercake_backends::{Backend, Entry, Key, Moka, Timestamp};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let store = Moka::builder().max_bytes(1 << 20).build();
//! let key = Key::from_parts(["users", "42"]);
//! let entry = Entry::new("Ada".to_string(), Timestamp::now(), Duration::from_secs(60), Duration::ZERO);
//! store.set(&key, Arc::new(entry)).await.unwrap();
//!
//! let found: Option<Arc<Entry<String>>> = store.get(&key).await.unwrap();
//! assert_eq!(found.unwrap().value(), "Ada");
//! # }
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]
mod backend;
#[cfg(any(feature = "redis", feature = "memcached"))]
mod breaker;
#[cfg(feature = "codec")]
pub mod codec;
#[cfg(feature = "disk")]
pub mod disk;
mod dynamic;
mod entry;
mod error;
pub mod key;
#[cfg(feature = "memcached")]
pub mod memcached;
#[cfg(feature = "moka")]
pub mod moka;
#[cfg(feature = "redis")]
pub mod redis;
mod time;

pub use backend::{Backend, Forget, Lookup, Selection, Tier, TierHealth, most_listed};
pub use dynamic::DynBackend;
pub use entry::{Entry, Freshness};
pub use error::{BackendError, BackendErrorKind};
pub use key::{BuildKeyHasher, CacheKey, Key, KeyBuilder, KeyHasher, KeyRef};
#[cfg(feature = "moka")]
pub use moka::Moka;
pub use time::Timestamp;
