//! Cache keys: length-prefixed parts with a stable 128-bit hash, their readable form, and the
//! glob patterns that select keys by it.

use std::{
    fmt,
    hash::{Hash, Hasher},
    sync::Arc,
};

use bytes::Bytes;

/// A cache key: an ordered list of parts, with a stable 128-bit hash.
///
/// Parts are length-prefixed, so `["ab", "c"]` and `["a", "bc"]` are different keys, and
/// equality compares the parts themselves, not only the hash: two different inputs never share
/// an entry. The hash (xxh3-128 over the encoded parts) is stable across processes and builds,
/// so instances that share a store agree on it; it is what hash maps and byte tiers index by.
/// [`Display`](fmt::Display) prints the readable form, parts joined by `:`.
///
/// ```
/// use layercake_backends::Key;
///
/// let a = Key::from_parts(["users", "42"]);
/// assert_eq!(a, Key::from_parts(["users", "42"]));
/// assert_ne!(a, Key::from_parts(["users4", "2"]));
/// assert_eq!(a.to_string(), "users:42");
/// assert_eq!(a.hash128(), Key::from_parts(["users", "42"]).hash128());
/// ```
#[derive(Clone)]
pub struct Key {
    hash: u128,
    // One allocation of exactly the encoded length, shared by every clone (a `Bytes` made
    // from a copy allocates a second, shared header the first time it is cloned).
    encoded: Arc<[u8]>,
}

impl Key {
    /// Starts a key; add parts with [`KeyBuilder::push`].
    ///
    /// ```
    /// use layercake_backends::Key;
    ///
    /// let mut key = Key::builder();
    /// key.push("users").push("42");
    /// assert_eq!(key.build(), Key::from_parts(["users", "42"]));
    /// ```
    pub fn builder() -> KeyBuilder {
        KeyBuilder::with_capacity(64)
    }

    /// A key made of `parts`, in order.
    ///
    /// ```
    /// use layercake_backends::Key;
    /// let key = Key::from_parts(["orders", "2026"]);
    /// assert_eq!(key.to_string(), "orders:2026");
    /// ```
    pub fn from_parts<I>(parts: I) -> Key
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let mut builder = Key::builder();
        for part in parts {
            builder.push(part);
        }
        builder.build()
    }

    /// A builder that starts with this key's parts, to extend a fixed prefix per request.
    ///
    /// ```
    /// use layercake_backends::Key;
    ///
    /// let prefix = Key::from_parts(["app", "v1"]);
    /// let mut key = prefix.to_builder();
    /// key.push("users");
    /// assert_eq!(key.build(), Key::from_parts(["app", "v1", "users"]));
    /// ```
    #[inline]
    pub fn to_builder(&self) -> KeyBuilder {
        let mut builder = KeyBuilder::with_capacity(self.encoded.len() + 64);
        builder.push_key(self);
        builder
    }

    /// The stable 128-bit hash of the key.
    ///
    /// ```
    /// use layercake_backends::Key;
    ///
    /// let key = Key::from_parts(["users", "42"]);
    /// assert_eq!(key.hash128(), Key::from_parts(["users", "42"]).hash128());
    /// assert_ne!(key.hash128(), Key::from_parts(["users4", "2"]).hash128());
    /// ```
    pub fn hash128(&self) -> u128 {
        self.hash
    }

    /// The key, borrowed: what [`Backend::peek`](crate::Backend::peek) takes, so that a key
    /// built on the stack can be looked up without copying it first.
    ///
    /// ```
    /// use layercake_backends::Key;
    ///
    /// let key = Key::from_parts(["users", "42"]);
    /// assert_eq!(key.as_key_ref().to_key(), key);
    /// ```
    pub fn as_key_ref(&self) -> KeyRef<'_> {
        KeyRef {
            hash: self.hash,
            encoded: &self.encoded,
        }
    }

    /// The encoded parts (each a little-endian `u32` length, then the bytes): the exact input
    /// the key stands for, for stores that must check it on read.
    ///
    /// ```
    /// use layercake_backends::Key;
    ///
    /// let key = Key::from_parts(["ab"]);
    /// assert_eq!(key.as_bytes(), b"\x02\0\0\0ab");
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        &self.encoded
    }

    /// The key as people read it, for store key names and patterns: its parts joined by `:`,
    /// each as it is when it is short printable text, else `~` and the hex of a 64-bit hash of
    /// it (a part longer than 200 bytes, or with bytes outside printable ASCII: spaces, binary).
    /// Not unique on its own (a part may hold `:`); stores that name entries by it add the
    /// 128-bit hash.
    ///
    /// ```
    /// use layercake_backends::Key;
    ///
    /// let key = Key::from_parts(["layercake", "value/1", "user:42"]);
    /// assert_eq!(key.readable(), "layercake:value/1:user:42");
    /// let long = Key::from_parts(["a", &"x".repeat(300)]);
    /// assert!(long.readable().starts_with("a:~"));
    /// ```
    pub fn readable(&self) -> String {
        let mut out = String::with_capacity(self.encoded.len());
        self.write_readable(&mut out);
        out
    }

    /// Writes the [readable form](Key::readable) into `out` (cleared first): for matching many
    /// keys with one buffer.
    ///
    /// ```
    /// use layercake_backends::Key;
    ///
    /// let mut readable = String::new();
    /// for key in [Key::from_parts(["a", "1"]), Key::from_parts(["b", "2"])] {
    ///     key.write_readable(&mut readable);
    ///     assert!(readable.len() == 3);
    /// }
    /// ```
    pub fn write_readable(&self, out: &mut String) {
        out.clear();
        for (i, part) in self.parts().enumerate() {
            if i > 0 {
                out.push(':');
            }
            push_readable(out, part);
        }
    }

    /// The key whose [encoded parts](Key::as_bytes) are `encoded`, as another process sent
    /// them; `None` when they are not a sequence of length-prefixed parts.
    ///
    /// ```
    /// use layercake_backends::Key;
    ///
    /// let key = Key::from_parts(["users", "42"]);
    /// let back = Key::from_encoded(key.as_bytes());
    /// assert_eq!(back, Some(key));
    /// assert_eq!(Key::from_encoded(b"\x09\0\0\0ab"), None);
    /// ```
    pub fn from_encoded(encoded: &[u8]) -> Option<Key> {
        let mut rest = encoded;
        while !rest.is_empty() {
            let (len, tail) = rest.split_first_chunk::<4>()?;
            rest = tail.get(u32::from_le_bytes(*len) as usize..)?;
        }
        Some(Key {
            hash: xxhash_rust::xxh3::xxh3_128(encoded),
            encoded: Arc::from(encoded),
        })
    }

    /// The key's parts, in order.
    ///
    /// ```
    /// use layercake_backends::Key;
    /// let key = Key::from_parts(["a", "bc"]);
    /// assert_eq!(key.parts().collect::<Vec<_>>(), [&b"a"[..], b"bc"]);
    /// ```
    pub fn parts(&self) -> impl Iterator<Item = &[u8]> + '_ {
        decode_parts(&self.encoded)
    }
}

/// The parts of an encoding of length-prefixed parts, in order.
fn decode_parts(encoded: &[u8]) -> impl Iterator<Item = &[u8]> + '_ {
    let mut rest = encoded;
    std::iter::from_fn(move || {
        let (len, tail) = rest.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(*len) as usize;
        let (part, tail) = tail.split_at(len.min(tail.len()));
        rest = tail;
        Some(part)
    })
}

/// Appends the readable form of one key part (see [`Key::readable`]).
///
/// ```
/// let mut out = String::new();
/// layercake_backends::key::push_readable(&mut out, b"users");
/// assert_eq!(out, "users");
/// ```
pub fn push_readable(out: &mut String, part: &[u8]) {
    const MAX_READABLE: usize = 200;
    let plain = part.len() <= MAX_READABLE && part.iter().all(u8::is_ascii_graphic);
    match std::str::from_utf8(part) {
        Ok(text) if plain => out.push_str(text),
        _ => {
            use std::fmt::Write;
            let _ = write!(out, "~{:016x}", xxhash_rust::xxh3::xxh3_64(part));
        }
    }
}

/// `text` as a glob that matches it literally: the characters globs treat specially
/// (`* ? [ ] \`) escaped.
///
/// ```
/// use layercake_backends::key::{glob_escape, glob_matches};
///
/// assert_eq!(glob_escape("a*b"), "a\\*b");
/// assert!(glob_matches(&glob_escape("a*b"), "a*b"));
/// assert!(!glob_matches(&glob_escape("a*b"), "axb"));
/// ```
pub fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Whether `text` matches `pattern`, a glob in Redis's dialect (`SCAN … MATCH`): `*` any run,
/// `?` any one character, `[abc]`, `[a-z]` and `[^a]` classes, `\` to take the next character
/// as it is. The memory tiers match with it so that a pattern means the same on every tier.
///
/// ```
/// use layercake_backends::key::glob_matches;
///
/// assert!(glob_matches("users:*", "users:42"));
/// assert!(glob_matches("/items/1?", "/items/12"));
/// assert!(glob_matches("v[0-9]", "v7"));
/// assert!(!glob_matches("users:*", "user:42"));
/// ```
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    matches_from(pattern.as_bytes(), text.as_bytes())
}

fn matches_from(mut pattern: &[u8], mut text: &[u8]) -> bool {
    while let Some((&p, rest)) = pattern.split_first() {
        match p {
            b'*' => {
                let rest = {
                    let mut rest = rest;
                    while let Some((b'*', more)) = rest.split_first() {
                        rest = more;
                    }
                    rest
                };
                if rest.is_empty() {
                    return true;
                }
                return (0..=text.len()).any(|at| matches_from(rest, &text[at..]));
            }
            b'?' => {
                let Some((_, more)) = text.split_first() else {
                    return false;
                };
                (pattern, text) = (rest, more);
            }
            b'[' => {
                let Some((&c, more)) = text.split_first() else {
                    return false;
                };
                let (negate, mut class) = match rest.split_first() {
                    Some((b'^', class)) => (true, class),
                    _ => (false, rest),
                };
                let mut hit = false;
                loop {
                    match class {
                        [] => break,
                        [b']', tail @ ..] => {
                            class = tail;
                            break;
                        }
                        [b'\\', x, tail @ ..] => {
                            hit |= *x == c;
                            class = tail;
                        }
                        [a, b'-', b, tail @ ..] if *b != b']' => {
                            let (lo, hi) = if a <= b { (*a, *b) } else { (*b, *a) };
                            hit |= (lo..=hi).contains(&c);
                            class = tail;
                        }
                        [x, tail @ ..] => {
                            hit |= *x == c;
                            class = tail;
                        }
                    }
                }
                if hit == negate {
                    return false;
                }
                (pattern, text) = (class, more);
            }
            _ => {
                let (literal, rest) = match (p, rest.split_first()) {
                    (b'\\', Some((&x, rest))) => (x, rest),
                    _ => (p, rest),
                };
                match text.split_first() {
                    Some((&c, more)) if c == literal => (pattern, text) = (rest, more),
                    _ => return false,
                }
            }
        }
    }
    text.is_empty()
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.encoded == other.encoded
    }
}

impl Eq for Key {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u128(self.hash);
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.as_key_ref(), f)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({self} #{:032x})", self.hash)
    }
}

/// A [`Key`] borrowed from where it was built: its hash and its encoded parts.
///
/// A [`KeyBuilder`] hands one out with [`as_key`](KeyBuilder::as_key), a `Key` with
/// [`as_key_ref`](Key::as_key_ref). It hashes, compares and prints as the `Key` it stands for,
/// so a memory tier can look it up without the key being copied to the heap first; only a key
/// that is kept (a miss, to store under it) is made into a `Key`, with
/// [`to_key`](KeyRef::to_key).
///
/// ```
/// use layercake_backends::Key;
///
/// let mut builder = Key::builder();
/// builder.push("users").push("42");
/// let borrowed = builder.as_key();
/// assert_eq!(borrowed, Key::from_parts(["users", "42"]).as_key_ref());
/// assert_eq!(borrowed.to_string(), "users:42");
/// assert_eq!(borrowed.to_key(), Key::from_parts(["users", "42"]));
/// ```
#[derive(Clone, Copy)]
pub struct KeyRef<'a> {
    hash: u128,
    encoded: &'a [u8],
}

impl<'a> KeyRef<'a> {
    /// The key's stable 128-bit hash (as [`Key::hash128`]).
    ///
    /// ```
    /// use layercake_backends::Key;
    /// let key = Key::from_parts(["a"]);
    /// assert_eq!(key.as_key_ref().hash128(), key.hash128());
    /// ```
    pub fn hash128(self) -> u128 {
        self.hash
    }

    /// The encoded parts (as [`Key::as_bytes`]).
    ///
    /// ```
    /// use layercake_backends::Key;
    /// assert_eq!(Key::from_parts(["ab"]).as_key_ref().as_bytes(), b"\x02\0\0\0ab");
    /// ```
    pub fn as_bytes(self) -> &'a [u8] {
        self.encoded
    }

    /// The key's parts, in order.
    ///
    /// ```
    /// use layercake_backends::Key;
    /// let key = Key::from_parts(["a", "bc"]);
    /// assert_eq!(key.as_key_ref().parts().collect::<Vec<_>>(), [&b"a"[..], b"bc"]);
    /// ```
    pub fn parts(self) -> impl Iterator<Item = &'a [u8]> {
        decode_parts(self.encoded)
    }

    /// The key, owned: one allocation, of exactly the encoded length.
    ///
    /// ```
    /// use layercake_backends::Key;
    /// let key = Key::from_parts(["a"]);
    /// assert_eq!(key.as_key_ref().to_key(), key);
    /// ```
    pub fn to_key(self) -> Key {
        Key {
            hash: self.hash,
            encoded: Arc::from(self.encoded),
        }
    }
}

impl PartialEq for KeyRef<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.encoded == other.encoded
    }
}

impl Eq for KeyRef<'_> {}

impl Hash for KeyRef<'_> {
    /// As the [`Key`] it stands for.
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u128(self.hash);
    }
}

#[cfg(feature = "moka")]
impl equivalent::Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        self.hash == key.hash && self.encoded == &key.encoded[..]
    }
}

impl fmt::Display for KeyRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, part) in self.parts().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{}", part.escape_ascii())?;
        }
        Ok(())
    }
}

impl fmt::Debug for KeyRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyRef({self} #{:032x})", self.hash)
    }
}

/// Builds a [`Key`] part by part; see [`Key::builder`].
///
/// Parts are gathered in a buffer on the stack (spilling to the heap only for keys over
/// 192 bytes). Looking the key up where it was built ([`as_key`](KeyBuilder::as_key)) allocates
/// nothing; [`build`](KeyBuilder::build) allocates once, for the key itself.
///
/// ```
/// use layercake_backends::Key;
///
/// let mut key = Key::builder();
/// key.push("GET").push("/search?q=rust");
/// assert_eq!(key.build(), Key::from_parts(["GET", "/search?q=rust"]));
/// ```
#[derive(Clone)]
pub struct KeyBuilder {
    inline: [u8; INLINE],
    len: usize,
    spilled: Option<Vec<u8>>,
}

const INLINE: usize = 192;

impl Default for KeyBuilder {
    #[inline]
    fn default() -> Self {
        KeyBuilder {
            inline: [0; INLINE],
            len: 0,
            spilled: None,
        }
    }
}

impl fmt::Debug for KeyBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyBuilder")
            .field("encoded", &self.as_slice().escape_ascii().to_string())
            .finish()
    }
}

impl KeyBuilder {
    /// A builder with room for `capacity` bytes of encoded parts.
    ///
    /// ```
    /// use layercake_backends::KeyBuilder;
    /// let mut key = KeyBuilder::with_capacity(512);
    /// key.push("a long key");
    /// # drop(key.build());
    /// ```
    #[inline]
    pub fn with_capacity(capacity: usize) -> Self {
        let mut builder = KeyBuilder::default();
        if capacity > INLINE {
            builder.spilled = Some(Vec::with_capacity(capacity));
        }
        builder
    }

    fn as_slice(&self) -> &[u8] {
        match &self.spilled {
            Some(heap) => heap,
            None => &self.inline[..self.len],
        }
    }

    #[inline]
    fn extend(&mut self, bytes: &[u8]) {
        if let Some(heap) = &mut self.spilled {
            heap.extend_from_slice(bytes);
        } else if let Some(room) = self.inline.get_mut(self.len..self.len + bytes.len()) {
            room.copy_from_slice(bytes);
            self.len += bytes.len();
        } else {
            self.spill(bytes);
        }
    }

    /// Moves the parts to the heap, with `bytes` after them.
    #[cold]
    fn spill(&mut self, bytes: &[u8]) {
        let mut heap = Vec::with_capacity((self.len + bytes.len()) * 2);
        heap.extend_from_slice(&self.inline[..self.len]);
        heap.extend_from_slice(bytes);
        self.spilled = Some(heap);
    }

    /// Appends one part.
    ///
    /// ```
    /// use layercake_backends::Key;
    /// let mut key = Key::builder();
    /// key.push("users").push(b"\x00binary");
    /// assert_eq!(key.build().parts().count(), 2);
    /// ```
    #[inline]
    pub fn push(&mut self, part: impl AsRef<[u8]>) -> &mut Self {
        let part = part.as_ref();
        // Parts longer than 4 GiB are not keys anyone should build; clamp rather than panic.
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        let part = &part[..len as usize];
        let at = self.len;
        // Most parts fit inline: the length and the bytes are written in one go.
        if self.spilled.is_none() && at + 4 + part.len() <= INLINE {
            self.inline[at..at + 4].copy_from_slice(&len.to_le_bytes());
            self.inline[at + 4..at + 4 + part.len()].copy_from_slice(part);
            self.len = at + 4 + part.len();
        } else {
            self.extend(&len.to_le_bytes());
            self.extend(part);
        }
        self
    }

    /// Appends the parts of `key`, in order: a fixed prefix, written into a builder that is
    /// already where it is used (see [`Key::to_builder`] for a new one).
    ///
    /// ```
    /// use layercake_backends::{Key, KeyBuilder};
    ///
    /// let prefix = Key::from_parts(["app", "v1"]);
    /// let mut key = KeyBuilder::default();
    /// key.push_key(&prefix).push("users");
    /// assert_eq!(key.build(), Key::from_parts(["app", "v1", "users"]));
    /// ```
    #[inline]
    pub fn push_key(&mut self, key: &Key) -> &mut Self {
        self.extend(&key.encoded);
        self
    }

    /// Appends a part made of several pieces, as if they were concatenated (no separator, no
    /// allocation): `push_concat(["/a", "?b"])` equals `push("/a?b")`.
    ///
    /// ```
    /// use layercake_backends::Key;
    /// let mut key = Key::builder();
    /// key.push_concat([b"/search", b"?", b"q=rust"]);
    /// assert_eq!(key.build(), Key::from_parts(["/search?q=rust"]));
    /// ```
    #[inline]
    pub fn push_concat<const N: usize>(&mut self, pieces: [&[u8]; N]) -> &mut Self {
        let total: usize = pieces.iter().map(|p| p.len()).sum();
        let at = self.len;
        if self.spilled.is_none() && at + 4 + total <= INLINE {
            // `total` fits inline, so it fits a `u32`.
            self.inline[at..at + 4].copy_from_slice(&(total as u32).to_le_bytes());
            let mut end = at + 4;
            for piece in pieces {
                self.inline[end..end + piece.len()].copy_from_slice(piece);
                end += piece.len();
            }
            self.len = end;
            return self;
        }
        let len = u32::try_from(total).unwrap_or(u32::MAX);
        self.extend(&len.to_le_bytes());
        let mut left = len as usize;
        for piece in pieces {
            let take = piece.len().min(left);
            self.extend(&piece[..take]);
            left -= take;
        }
        self
    }

    /// The parts pushed so far, in order (for an extractor that transforms another's parts).
    ///
    /// ```
    /// use layercake_backends::Key;
    ///
    /// let mut key = Key::builder();
    /// key.push("a").push("bc");
    /// assert_eq!(key.parts().collect::<Vec<_>>(), [&b"a"[..], b"bc"]);
    /// ```
    pub fn parts(&self) -> impl Iterator<Item = &[u8]> + '_ {
        decode_parts(self.as_slice())
    }

    /// The length of the parts pushed so far, encoded: a mark to [`truncate`](Self::truncate)
    /// back to.
    ///
    /// ```
    /// use layercake_backends::Key;
    ///
    /// let mut key = Key::builder();
    /// key.push("a");
    /// let mark = key.len();
    /// key.push("tentative");
    /// key.truncate(mark);
    /// assert_eq!(key.build(), Key::from_parts(["a"]));
    /// ```
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// Whether no part was pushed yet.
    ///
    /// ```
    /// use layercake_backends::Key;
    /// let mut key = Key::builder();
    /// assert!(key.is_empty());
    /// key.push("");
    /// assert!(!key.is_empty(), "an empty part is still a part");
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops the parts pushed since [`len`](Self::len) was `mark`.
    ///
    /// ```
    /// use layercake_backends::Key;
    /// let mut key = Key::builder();
    /// key.push("kept");
    /// let mark = key.len();
    /// key.push("dropped");
    /// key.truncate(mark);
    /// assert_eq!(key.build(), Key::from_parts(["kept"]));
    /// ```
    pub fn truncate(&mut self, mark: usize) {
        match &mut self.spilled {
            Some(heap) => heap.truncate(mark),
            None => self.len = self.len.min(mark),
        }
    }

    /// The parts pushed so far as they are encoded in the key (each length-prefixed).
    ///
    /// ```
    /// use layercake_backends::Key;
    ///
    /// let mut key = Key::builder();
    /// key.push("ab");
    /// assert_eq!(key.encoded(), b"\x02\0\0\0ab");
    /// ```
    pub fn encoded(&self) -> &[u8] {
        self.as_slice()
    }

    /// Finishes the key: one allocation, of exactly the encoded length.
    ///
    /// ```
    /// use layercake_backends::Key;
    /// let mut key = Key::builder();
    /// key.push("k");
    /// let key: Key = key.build();
    /// assert_eq!(key.to_string(), "k");
    /// ```
    pub fn build(self) -> Key {
        self.as_key().to_key()
    }

    /// The key built so far, hashed and borrowed, not copied: to look it up, and
    /// [`to_key`](KeyRef::to_key) it only when it must be kept.
    ///
    /// ```
    /// use layercake_backends::Key;
    /// let mut key = Key::builder();
    /// key.push("k");
    /// assert_eq!(key.as_key(), Key::from_parts(["k"]).as_key_ref());
    /// ```
    pub fn as_key(&self) -> KeyRef<'_> {
        let encoded = self.as_slice();
        KeyRef {
            hash: xxhash_rust::xxh3::xxh3_128(encoded),
            encoded,
        }
    }
}

/// A [`Hasher`] for maps keyed by [`Key`]: it takes the key's 128-bit hash as it is, folded to
/// 64 bits, instead of hashing again. Use it through [`BuildKeyHasher`].
///
/// ```
/// use std::collections::HashMap;
/// use layercake_backends::{BuildKeyHasher, Key};
///
/// let mut map: HashMap<Key, u32, BuildKeyHasher> = HashMap::default();
/// map.insert(Key::from_parts(["a"]), 1);
/// assert_eq!(map[&Key::from_parts(["a"])], 1);
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyHasher(u64);

/// Builds [`KeyHasher`]s.
///
/// ```
/// use std::collections::HashSet;
/// use layercake_backends::{BuildKeyHasher, Key};
/// let mut seen: HashSet<Key, BuildKeyHasher> = HashSet::default();
/// assert!(seen.insert(Key::from_parts(["a"])));
/// ```
pub type BuildKeyHasher = std::hash::BuildHasherDefault<KeyHasher>;

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only reached when something other than a `Key` is hashed: fold the bytes in.
        for &b in bytes {
            self.0 = self.0.rotate_left(5) ^ u64::from(b);
            self.0 = self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u128(&mut self, hash: u128) {
        self.0 ^= hash as u64 ^ (hash >> 64) as u64;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn globs_match_as_redis_does() {
        use super::glob_matches as m;
        assert!(m("*", ""));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "axxbyy"));
        assert!(m("[^a]x", "bx"));
        assert!(!m("[^a]x", "ax"));
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
        assert!(m("h?llo", "hello"));
        assert!(m("[a-c][z-x]", "by"));
    }

    use super::*;

    #[test]
    fn length_prefixes_keep_part_boundaries() {
        let a = Key::from_parts(["ab", "c"]);
        let b = Key::from_parts(["a", "bc"]);
        assert_ne!(a, b);
        assert_ne!(a.hash128(), b.hash128());
        assert_ne!(Key::from_parts(["a"]), Key::from_parts(["a", ""]));
    }

    #[test]
    fn parts_round_trip_and_concat_matches_push() {
        let mut k = Key::builder();
        k.push_concat([b"/path", b"?q=1"]).push([0u8, 255]);
        let k = k.build();
        let parts: Vec<&[u8]> = k.parts().collect();
        assert_eq!(parts, vec![&b"/path?q=1"[..], &[0u8, 255][..]]);
        assert_eq!(k, Key::from_parts([&b"/path?q=1"[..], &[0, 255]]));
        assert_eq!(k.to_string(), "/path?q=1:\\x00\\xff");
    }

    #[test]
    fn long_keys_spill_to_the_heap_and_stay_equal() {
        let long = "x".repeat(500);
        let mut spilled = Key::builder();
        spilled.push("a").push(&long).push("b");
        let spilled = spilled.build();
        assert_eq!(spilled, Key::from_parts(["a", long.as_str(), "b"]));
        let parts: Vec<&[u8]> = spilled.parts().collect();
        assert_eq!(parts, vec![&b"a"[..], long.as_bytes(), b"b"]);
        let mut extended = Key::from_parts(["a"]).to_builder();
        extended.push(&long).push("b");
        assert_eq!(extended.build(), spilled);
    }

    #[test]
    fn hash_is_stable_across_processes() {
        // A fixed value: if this changes, keys written by older builds are no longer found.
        assert_eq!(
            Key::from_parts(["layercake"]).hash128(),
            xxhash_rust::xxh3::xxh3_128(b"\x09\x00\x00\x00layercake")
        );
    }
}

/// A value that keys cache entries: it writes itself into a [`KeyBuilder`] as one or more
/// parts, the same way in every process and every build, so instances sharing a store agree.
///
/// Strings and byte strings are one part each, as they are; integers, `bool` and `char` are
/// one part of their text (`42`, `true`), so `42` and `"42"` name the same entry, as they read
/// the same in Redis; a tuple is its elements' parts in order, which keeps `("a", "b:c")` and
/// `("a:b", "c")` apart; `uuid::Uuid` (feature `uuid`) is its hyphenated text. A type of your
/// own implements it by writing its fields, or derives it with `#[derive(CacheKey)]`
/// (`layercake`).
///
/// ```
/// use layercake_backends::{CacheKey, Key, KeyBuilder};
///
/// fn key(k: impl CacheKey) -> Key {
///     let mut builder = Key::builder();
///     k.write_key(&mut builder);
///     builder.build()
/// }
/// assert_eq!(key(("users", 42u64)), Key::from_parts(["users", "42"]));
/// assert_eq!(key(42u64), key("42"));
/// assert_ne!(key(("a", "b:c")), key(("a:b", "c")));
///
/// struct Page { site: String, number: u32 }
/// impl CacheKey for Page {
///     fn write_key(&self, key: &mut KeyBuilder) {
///         self.site.write_key(key);
///         self.number.write_key(key);
///     }
/// }
/// let page = Page { site: "docs".into(), number: 3 };
/// assert_eq!(key(&page), key(("docs", 3u32)));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot key a cache entry",
    label = "not a cache key",
    note = "keys are strings, byte strings, integers, `bool`, `char`, tuples of keys, or a type of your own that implements `CacheKey` (or derives it: `#[derive(CacheKey)]`)"
)]
pub trait CacheKey {
    /// Writes the key's parts into `key`.
    fn write_key(&self, key: &mut KeyBuilder);
}

impl<T: CacheKey + ?Sized> CacheKey for &T {
    fn write_key(&self, key: &mut KeyBuilder) {
        (**self).write_key(key);
    }
}

/// Keys written as they are: one part each.
macro_rules! bytes_keys {
    ($($ty:ty),*) => {$(
        impl CacheKey for $ty {
            fn write_key(&self, key: &mut KeyBuilder) {
                key.push(AsRef::<[u8]>::as_ref(self));
            }
        }
    )*};
}
bytes_keys!(str, String, [u8], Vec<u8>, Bytes);

/// Shared and boxed strings: as the string.
macro_rules! str_keys {
    ($($ty:ty),*) => {$(
        impl CacheKey for $ty {
            fn write_key(&self, key: &mut KeyBuilder) {
                key.push(self.as_bytes());
            }
        }
    )*};
}
str_keys!(
    std::sync::Arc<str>,
    Box<str>,
    std::rc::Rc<str>,
    std::borrow::Cow<'_, str>
);

impl<const N: usize> CacheKey for [u8; N] {
    fn write_key(&self, key: &mut KeyBuilder) {
        key.push(self);
    }
}

/// Keys written as their text: one part each, no allocation.
macro_rules! integer_keys {
    ($($ty:ty),*) => {$(
        impl CacheKey for $ty {
            fn write_key(&self, key: &mut KeyBuilder) {
                key.push(itoa::Buffer::new().format(*self));
            }
        }
    )*};
}
integer_keys!(
    u8, u16, u32, u64, u128, usize, i8, i16, i32, i64, i128, isize
);

impl CacheKey for bool {
    fn write_key(&self, key: &mut KeyBuilder) {
        key.push(if *self { "true" } else { "false" });
    }
}

impl CacheKey for char {
    fn write_key(&self, key: &mut KeyBuilder) {
        key.push(self.encode_utf8(&mut [0; 4]).as_bytes());
    }
}

#[cfg(feature = "uuid")]
#[cfg_attr(docsrs, doc(cfg(feature = "uuid")))]
impl CacheKey for uuid::Uuid {
    fn write_key(&self, key: &mut KeyBuilder) {
        key.push(
            self.hyphenated()
                .encode_lower(&mut uuid::Uuid::encode_buffer())
                .as_bytes(),
        );
    }
}

/// Tuples: their elements' parts, in order.
macro_rules! tuple_keys {
    ($(($($name:ident),+)),*) => {$(
        impl<$($name: CacheKey),+> CacheKey for ($($name,)+) {
            #[allow(non_snake_case)]
            fn write_key(&self, key: &mut KeyBuilder) {
                let ($($name,)+) = self;
                $($name.write_key(key);)+
            }
        }
    )*};
}
tuple_keys!(
    (A),
    (A, B),
    (A, B, C),
    (A, B, C, D),
    (A, B, C, D, E),
    (A, B, C, D, E, F)
);
