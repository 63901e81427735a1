//! What a typed value weighs: the bytes it occupies in memory, for the byte budget of a memory
//! tier ([`Moka`](crate::Moka)).
//!
//! A typed [`Cache`](crate::Cache) weighs its values with [`GetSize`] by default (the
//! [`get-size2`](https://docs.rs/get-size2) crate): the value's own size plus the heap it owns
//! (a `String`'s bytes, a `Vec`'s capacity, what an `Arc` points to …), implemented for the
//! primitives, strings, vectors, maps, `Bytes`, tuples and options, and derived for your own
//! types. A type that has no `GetSize` needs a weigher of its own
//! ([`CacheBuilder::weigher`](crate::CacheBuilder::weigher)): a cache without one does not
//! compile, so no budget silently counts a string as its 24 bytes of `size_of`.
//!
//! ```
//! use layercake::{Cache, GetSize, Moka};
//!
//! #[derive(Clone, GetSize)]
//! struct User { id: u64, name: String }
//!
//! let users: Cache<User, Moka> = Cache::builder(Moka::default()).build().unwrap();
//!
//! // A type without `GetSize`: say what it weighs.
//! #[derive(Clone)]
//! struct Opaque(std::sync::Arc<[u8]>);
//! let blobs: Cache<Opaque, Moka> = Cache::builder(Moka::default())
//!     .weigher(|blob: &Opaque| 16 + blob.0.len())
//!     .build()
//!     .unwrap();
//! # drop((users, blobs));
//! ```

pub use get_size2::{GetSize, GetSizeTracker};
/// Derives [`GetSize`]: the heap a value owns is the sum of its fields' (`#[get_size(ignore)]`
/// leaves a field out). Needs no other dependency than `layercake`.
pub use layercake_macros::GetSize;

/// How a [`CacheBuilder`](crate::CacheBuilder) weighs values of type `V`: [`ByGetSize`] (the
/// default) or a function given to [`weigher`](crate::CacheBuilder::weigher).
#[diagnostic::on_unimplemented(
    message = "values of type `{V}` have no weight for the cache's byte budget",
    label = "`{V}` does not implement `GetSize`",
    note = "derive it (`#[derive(Clone, layercake::GetSize)]`), or give the cache a weigher: `.weigher(|value: &{V}| …)`"
)]
///
/// ```
/// use layercake::{Cache, Moka};
/// // A closure is a weigher: here, a value's length in bytes.
/// let cache: Cache<String, Moka> = Cache::builder(Moka::default())
///     .weigher(|value: &String| value.len())
///     .build()
///     .unwrap();
/// # drop(cache);
/// ```
pub trait Weigher<V> {
    /// The function that weighs a value.
    fn into_fn(self) -> fn(&V) -> usize;
}

/// Weighs a value with [`GetSize::get_size`]: its `size_of` and the heap it owns.
///
/// ```
/// use layercake::{Cache, Moka};
/// // The default weigher of a cache of `GetSize` values.
/// let cache: Cache<Vec<u8>, Moka> = Cache::builder(Moka::default()).build().unwrap();
/// # drop(cache);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ByGetSize;

impl<V: GetSize> Weigher<V> for ByGetSize {
    fn into_fn(self) -> fn(&V) -> usize {
        |value| value.get_size()
    }
}

impl<V> Weigher<V> for fn(&V) -> usize {
    fn into_fn(self) -> fn(&V) -> usize {
        self
    }
}
