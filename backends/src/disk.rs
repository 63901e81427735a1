//! The embedded disk store (feature `disk`): entries in one file on local disk, kept across
//! restarts, on [redb](https://docs.rs/redb).
//!
//! What it gives:
//!
//! - **Survives a restart.** Entries are written in redb transactions committed with
//!   [`Durability::Immediate`](redb::Durability::Immediate): a commit is on disk when a `set`
//!   returns. A process killed mid-write leaves the file as of its last commit: redb keeps two
//!   commit slots with checksums and opens on the newest valid one. Bytes that are not a sound
//!   entry (written by another build, altered on disk) read as a counted miss: every entry is in
//!   the codec's checked envelope (see [`codec`]), full key included.
//! - **Bounded in bytes.** Each entry is charged its key (twice: the entry and the index), its
//!   bytes, its tag rows and 64 bytes of index overhead; when a commit goes over
//!   [`max_bytes`](DiskBuilder::max_bytes) the entries that expire soonest are evicted first.
//!   The file itself is larger than the charge by redb's page slack (see the README's
//!   figures); redb reuses the pages of evicted entries, so it stops growing.
//! - **Lifetimes kept after a restart.** Expiry is wall-clock time, stored with the entry: an
//!   entry past its lifetime is never served, and is reclaimed by the next commits (and by a
//!   sweep every second when nothing is written).
//! - **Off the async workers.** Reads run on tokio's blocking pool; writes go to one writer
//!   thread that commits them in groups (one `fsync` for every write waiting). Every call is
//!   bounded by the store's timeout: a stalled disk is a miss, never a hung request. Writes
//!   beyond the queue's bound are refused (counted), never buffered without limit; removals are
//!   always queued.
//! - **Invalidation** by key, by tag (an index of tags), by pattern over the readable key (a
//!   scan) and soft purges (the entry's stored times rewritten), like Redis.
//!
//! One process opens a directory at a time (redb locks the file): another process fails to
//! open it, with a clear error. In one process, opening it again with the same settings gives
//! a handle to the store open already.
//!
//! ```
//! use std::{sync::Arc, time::Duration};
//! use layercake_backends::{Backend, Entry, Key, Timestamp, disk::Disk};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::env::temp_dir().join(format!("layercake-doc-{}", std::process::id()));
//! let key = Key::from_parts(["user", "42"]);
//! {
//!     let store = Disk::builder().directory(&dir).max_bytes(64 << 20).open()?;
//!     let entry = Entry::new("Ada".to_string(), Timestamp::now(), Duration::from_secs(60), Duration::ZERO);
//!     store.set(&key, Arc::new(entry)).await?;
//! } // closed: the file is released
//! let store = Disk::builder().directory(&dir).open()?;
//! let found: Option<Arc<Entry<String>>> = store.get(&key).await?;
//! assert_eq!(found.unwrap().value(), "Ada");
//! # drop(store); std::fs::remove_dir_all(&dir)?; Ok(()) }
//! ```

use std::{
    collections::BTreeMap,
    fmt,
    panic::AssertUnwindSafe,
    path::{Path, PathBuf},
    sync::{
        Arc, Condvar, Mutex,
        atomic::{AtomicU64, Ordering::Relaxed},
        mpsc,
    },
    thread,
    time::Duration,
};

use bytes::Bytes;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use tokio::sync::oneshot;

use crate::{
    Backend, BackendError, BackendErrorKind, Entry, Key, Lookup, Selection, Tier, TierHealth,
    Timestamp,
    codec::{self, Codec, Compression, Format, Postcard},
    key::glob_matches,
};

/// Encoded key → (retain until, charged bytes, the envelope).
const ENTRIES: TableDefinition<'static, &[u8], (u64, u64, &[u8])> = TableDefinition::new("entries");
/// (retain until, encoded key): the order of expiry and eviction.
const EXPIRY: TableDefinition<'static, (u64, &[u8]), ()> = TableDefinition::new("expiry");
/// (tag, encoded key): the entries of each tag.
const TAGS: TableDefinition<'static, (&str, &[u8]), ()> = TableDefinition::new("tags");
/// Counters kept with the data: `bytes` (the charge of every entry).
const META: TableDefinition<'static, &str, u64> = TableDefinition::new("meta");

/// The file in the store's directory.
const FILE: &str = "layercake.redb";
/// What an entry is charged beyond its key, bytes and tag rows: its index rows' overhead.
const OVERHEAD: u64 = 64;
/// The most writes one commit takes.
const BATCH: usize = 256;
/// The most expired entries one commit reclaims (the rest go in the next).
const SWEEP: usize = 512;
/// How often the writer reclaims expired entries when nothing is written.
const IDLE_SWEEP: Duration = Duration::from_secs(1);

/// The disk store; see the [module docs](self). Cheap to clone (clones share the file).
/// The file is closed when the last clone is dropped (after the writes queued before).
pub struct Disk<F = Postcard> {
    shared: Arc<Shared>,
    codec: Arc<Codec<F>>,
}

struct Shared {
    db: Arc<Db>,
    /// The writer's queue; taken on drop, which stops the writer.
    queue: Mutex<Option<mpsc::Sender<Op>>>,
    writer: Mutex<Option<thread::JoinHandle<()>>>,
    counters: Arc<Counters>,
    directory: PathBuf,
    settings: Settings,
}

/// What a store was opened with; a second open of its directory in the process must agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Settings {
    max_bytes: u64,
    page_cache: usize,
    max_queued: u64,
    timeout: Duration,
    name: &'static str,
}

/// The database of a store. Its drop closes the file, then says so to an `open` waiting for it
/// (the file is free once every reader's handle is gone, which only the last drop knows).
struct Db(Option<Database>);

impl Db {
    fn get(&self) -> &Database {
        // `None` only inside `drop`.
        self.0
            .as_ref()
            .unwrap_or_else(|| unreachable!("a store's database is open until dropped"))
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        drop(self.0.take());
        let (lock, closed) = &CLOSED;
        let _told = lock.lock().unwrap_or_else(|e| e.into_inner());
        closed.notify_all();
    }
}

/// Rung when a store's database is closed.
static CLOSED: (Mutex<()>, Condvar) = (Mutex::new(()), Condvar::new());

/// The stores open in this process, by directory.
static OPEN: Mutex<BTreeMap<PathBuf, std::sync::Weak<Shared>>> = Mutex::new(BTreeMap::new());

#[derive(Default)]
struct Counters {
    /// The charge of every entry, as of the last commit.
    bytes: AtomicU64,
    entries: AtomicU64,
    evicted: AtomicU64,
    expired: AtomicU64,
    corrupt: AtomicU64,
    errors: AtomicU64,
    timeouts: AtomicU64,
    refused: AtomicU64,
    /// Writes queued and not yet committed.
    queued: AtomicU64,
}

/// The disk store's counters.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = std::env::temp_dir().join(format!("layercake-doc-stats-{}", std::process::id()));
/// let store = layercake_backends::disk::Disk::builder().directory(&dir).open()?;
/// assert_eq!(store.stats().entries, 0);
/// # drop(store); std::fs::remove_dir_all(&dir)?; Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DiskStats {
    /// Entries held, as of the last commit.
    pub entries: u64,
    /// Bytes charged against [`max_bytes`](DiskBuilder::max_bytes), as of the last commit.
    pub bytes: u64,
    /// Entries evicted to stay within the budget.
    pub evicted: u64,
    /// Entries reclaimed after their lifetime ended.
    pub expired: u64,
    /// Entries read back that were not sound (counted misses; they are removed).
    pub corrupt: u64,
    /// Calls that failed in redb (I/O, a full disk).
    pub errors: u64,
    /// Calls not answered within the timeout.
    pub timeouts: u64,
    /// Writes refused because the queue was full (the disk is slower than the writes).
    pub refused: u64,
}

/// Builds a [`Disk`] store.
///
/// ```
/// use std::time::Duration;
/// use layercake_backends::disk::Disk;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = std::env::temp_dir().join(format!("layercake-doc-builder-{}", std::process::id()));
/// let store = Disk::builder()
///     .directory(&dir)
///     .max_bytes(256 << 20)
///     .page_cache(16 << 20)
///     .timeout(Duration::from_millis(250))
///     .open()?;
/// # drop(store); std::fs::remove_dir_all(&dir)?; Ok(()) }
/// ```
#[must_use]
pub struct DiskBuilder<F = Postcard> {
    directory: PathBuf,
    codec: Codec<F>,
    max_bytes: u64,
    page_cache: usize,
    max_queued: u64,
    timeout: Duration,
    name: &'static str,
}

impl Disk<Postcard> {
    /// A builder with the defaults: the directory `CACHE_DIR` names (else `layercake-cache` in
    /// the working directory), 256 MiB of entries, a 16 MiB page cache, postcard without
    /// compression, a 250 ms timeout, up to 4,096 writes queued.
    ///
    /// ```
    /// let builder = layercake_backends::disk::Disk::builder();
    /// # drop(builder);
    /// ```
    pub fn builder() -> DiskBuilder<Postcard> {
        DiskBuilder {
            directory: std::env::var_os("CACHE_DIR")
                .map_or_else(|| PathBuf::from("layercake-cache"), PathBuf::from),
            codec: Codec::new(Postcard),
            max_bytes: 256 << 20,
            page_cache: 16 << 20,
            max_queued: 4096,
            timeout: Duration::from_millis(250),
            name: "disk",
        }
    }
}

impl<F> DiskBuilder<F> {
    /// The directory of the store's file (created if missing).
    ///
    /// ```
    /// let builder = layercake_backends::disk::Disk::builder().directory("/var/cache/shop");
    /// # drop(builder);
    /// ```
    pub fn directory(mut self, directory: impl AsRef<Path>) -> Self {
        self.directory = directory.as_ref().to_path_buf();
        self
    }

    /// The budget: what the entries may be charged in all (see the [module docs](self)).
    /// Default 256 MiB.
    ///
    /// ```
    /// let builder = layercake_backends::disk::Disk::builder().max_bytes(1 << 30);
    /// # drop(builder);
    /// ```
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// The memory redb keeps pages of the file in. Default 16 MiB.
    ///
    /// ```
    /// let builder = layercake_backends::disk::Disk::builder().page_cache(64 << 20);
    /// # drop(builder);
    /// ```
    pub fn page_cache(mut self, bytes: usize) -> Self {
        self.page_cache = bytes;
        self
    }

    /// How many writes may wait for the writer; more are refused (and counted). Default 4,096.
    ///
    /// ```
    /// let builder = layercake_backends::disk::Disk::builder().max_queued(1024);
    /// # drop(builder);
    /// ```
    pub fn max_queued(mut self, writes: u64) -> Self {
        self.max_queued = writes.max(1);
        self
    }

    /// How entries are encoded; see [`codec`].
    ///
    /// ```
    /// use layercake_backends::{codec::Postcard, disk::Disk};
    /// let builder = Disk::builder().format(Postcard);
    /// # drop(builder);
    /// ```
    pub fn format<G>(self, format: G) -> DiskBuilder<G> {
        DiskBuilder {
            directory: self.directory,
            codec: self.codec.with_format(format),
            max_bytes: self.max_bytes,
            page_cache: self.page_cache,
            max_queued: self.max_queued,
            timeout: self.timeout,
            name: self.name,
        }
    }

    /// Compresses entries of `min_size` bytes or more.
    ///
    /// ```
    /// use layercake_backends::{codec::Compression, disk::Disk};
    /// let builder = Disk::builder().compression(Compression::None, 0);
    /// # drop(builder);
    /// ```
    pub fn compression(mut self, compression: Compression, min_size: usize) -> Self {
        self.codec = self
            .codec
            .compression(compression)
            .min_compress_size(min_size);
        self
    }

    /// The bound on every call: a read, or waiting for a write's commit. Default 250 ms.
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = layercake_backends::disk::Disk::builder().timeout(Duration::from_millis(50));
    /// # drop(builder);
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The store's name in `Cache-Status`, health and metrics. Default `disk`.
    ///
    /// ```
    /// let builder = layercake_backends::disk::Disk::builder().name("local-disk");
    /// # drop(builder);
    /// ```
    pub fn name(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// Opens (or creates) the store. This blocks: it reads the file, and after a crash redb
    /// repairs it first; call it at start-up (or in `spawn_blocking`). Expired entries are
    /// reclaimed by the first commits. A directory open in this process already, with the
    /// same settings, gives a handle to that store (a configuration reload that keeps its disk
    /// tier keeps its store); with other settings, it is an error. Fails too when the directory
    /// cannot be created, another process has it open, or the file is not a redb database.
    ///
    /// ```
    /// use layercake_backends::disk::Disk;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("layercake-doc-open-{}", std::process::id()));
    /// let store = Disk::builder().directory(&dir).open()?;
    /// let same = Disk::builder().directory(&dir).open()?; // the same store
    /// assert!(Disk::builder().directory(&dir).max_bytes(1 << 20).open().is_err(), "other settings");
    /// # drop((store, same)); std::fs::remove_dir_all(&dir)?; Ok(()) }
    /// ```
    pub fn open(self) -> Result<Disk<F>, BackendError> {
        let directory = self.directory;
        let fail = |what: &str, error: &dyn fmt::Display| {
            BackendError::new(
                BackendErrorKind::Unavailable,
                format!("disk store {}: {what}: {error}", directory.display()),
            )
        };
        std::fs::create_dir_all(&directory).map_err(|e| fail("creating the directory", &e))?;
        let settings = Settings {
            max_bytes: self.max_bytes,
            page_cache: self.page_cache,
            max_queued: self.max_queued,
            timeout: self.timeout,
            name: self.name,
        };
        // One store per directory in a process: opened again with the same settings, the
        // store open already is shared (a configuration reload that keeps its disk tier).
        let canonical = std::fs::canonicalize(&directory).unwrap_or_else(|_| directory.clone());
        let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|_, store| store.strong_count() > 0);
        if let Some(shared) = open.get(&canonical).and_then(std::sync::Weak::upgrade) {
            if shared.settings != settings {
                return Err(fail(
                    "opening",
                    &"open in this process already, with other settings (one store per directory)",
                ));
            }
            return Ok(Disk {
                shared,
                codec: Arc::new(self.codec),
            });
        }
        // A store of this directory that is closing (its last handle just dropped) lets go of
        // the file in a moment: wait for that (told by `Db`'s drop), a second at most.
        let closing = open.contains_key(&canonical);
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        let (lock, closed) = &CLOSED;
        let mut waiting = lock.lock().unwrap_or_else(|e| e.into_inner());
        let db = loop {
            match Database::builder()
                .set_cache_size(self.page_cache)
                .create(directory.join(FILE))
            {
                Ok(db) => break db,
                Err(redb::DatabaseError::DatabaseAlreadyOpen) if closing => {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return Err(fail("opening", &"its last store did not close within 1 s"));
                    }
                    waiting = closed
                        .wait_timeout(waiting, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                    return Err(fail("opening", &"another process has it open"));
                }
                Err(e) => return Err(fail("opening", &e)),
            }
        };
        drop(waiting);
        let db = Arc::new(Db(Some(db)));
        let counters = Arc::new(Counters::default());
        // Create the tables and read the counters.
        let (bytes, entries) = (|| -> Result<(u64, u64), redb::Error> {
            let tx = db.get().begin_write()?;
            let totals = {
                let entries = tx.open_table(ENTRIES)?;
                tx.open_table(EXPIRY)?;
                tx.open_table(TAGS)?;
                let meta = tx.open_table(META)?;
                let bytes = meta.get("bytes")?.map_or(0, |g| g.value());
                (bytes, entries.len()?)
            };
            tx.commit()?;
            Ok(totals)
        })()
        .map_err(|e| fail("reading", &e))?;
        counters.bytes.store(bytes, Relaxed);
        counters.entries.store(entries, Relaxed);
        let (queue, receiver) = mpsc::channel();
        let writer = Writer {
            db: Arc::clone(&db),
            counters: Arc::clone(&counters),
            max_bytes: self.max_bytes,
        };
        let writer = thread::Builder::new()
            .name("layercake-disk".to_owned())
            .spawn(move || writer.run(&receiver))
            .map_err(|e| fail("starting the writer thread", &e))?;
        let shared = Arc::new(Shared {
            db,
            queue: Mutex::new(Some(queue)),
            writer: Mutex::new(Some(writer)),
            counters,
            directory,
            settings,
        });
        open.insert(canonical, Arc::downgrade(&shared));
        Ok(Disk {
            shared,
            codec: Arc::new(self.codec),
        })
    }
}

/// A selection the writer owns.
enum Select {
    Tags(Vec<Arc<str>>),
    Pattern(String),
}

impl Select {
    fn of(selection: Selection<'_>) -> Self {
        match selection {
            Selection::Tags(tags) => Select::Tags(tags.to_vec()),
            Selection::Pattern(pattern) => Select::Pattern(pattern.to_owned()),
        }
    }
}

type Reply<T> = Option<oneshot::Sender<Result<T, String>>>;

/// A write for the writer thread.
enum Op {
    Set {
        key: Key,
        bytes: Vec<u8>,
        tags: Vec<Arc<str>>,
        retain_until: u64,
        reply: Reply<()>,
    },
    Remove {
        key: Key,
        reply: Reply<u64>,
    },
    Clear {
        reply: Reply<u64>,
    },
    Select {
        select: Select,
        /// `Some(now)`: mark stale from then on; `None`: remove.
        stale_from: Option<Timestamp>,
        reply: Reply<u64>,
    },
}

/// The tables of one write transaction.
struct Tables<'t> {
    entries: redb::Table<'t, &'static [u8], (u64, u64, &'static [u8])>,
    expiry: redb::Table<'t, (u64, &'static [u8]), ()>,
    tags: redb::Table<'t, (&'static str, &'static [u8]), ()>,
    bytes: u64,
}

impl Tables<'_> {
    /// Removes the entry under `key` and its index rows; whether there was one.
    fn delete(&mut self, key: &[u8]) -> Result<bool, redb::Error> {
        let Some(old) = self.entries.remove(key)? else {
            return Ok(false);
        };
        let (retain_until, charged, bytes) = old.value();
        self.expiry.remove((retain_until, key))?;
        if let Some(tags) = codec::envelope_tags(bytes) {
            for tag in tags {
                self.tags.remove((tag, key))?;
            }
        }
        self.bytes = self.bytes.saturating_sub(charged);
        Ok(true)
    }

    /// Removes the entry that expires first, if it expires by `by` (`u64::MAX`: any).
    fn delete_first(&mut self, by: u64) -> Result<bool, redb::Error> {
        let first = self
            .expiry
            .first()?
            .map(|(k, _)| (k.value().0, k.value().1.to_vec()));
        match first {
            Some((retain_until, key)) if retain_until <= by => {
                // An index row without its entry (never written so, but cheap to mend).
                if !self.delete(&key)? {
                    self.expiry.remove((retain_until, key.as_slice()))?;
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// The keys `select` selects.
    fn selected(&self, select: &Select) -> Result<Vec<Vec<u8>>, redb::Error> {
        let mut keys = Vec::new();
        match select {
            Select::Tags(tags) => {
                for tag in tags {
                    for row in self.tags.range((&**tag, &[][..])..)? {
                        let (row, _) = row?;
                        let (at, key) = row.value();
                        if at != &**tag {
                            break;
                        }
                        keys.push(key.to_vec());
                    }
                }
                keys.sort_unstable();
                keys.dedup();
            }
            Select::Pattern(pattern) => {
                let mut readable = String::new();
                for row in self.entries.iter()? {
                    let (key, _) = row?;
                    let Some(key) = Key::from_encoded(key.value()) else {
                        continue;
                    };
                    readable.clear();
                    key.write_readable(&mut readable);
                    if glob_matches(pattern, &readable) {
                        keys.push(key.as_bytes().to_vec());
                    }
                }
            }
        }
        Ok(keys)
    }
}

/// The writer thread: takes the queued writes in groups, one transaction (and one `fsync`)
/// for each group.
struct Writer {
    db: Arc<Db>,
    counters: Arc<Counters>,
    max_bytes: u64,
}

impl Writer {
    fn run(self, queue: &mpsc::Receiver<Op>) {
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            match queue.recv_timeout(IDLE_SWEEP) {
                Ok(op) => batch.push(op),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
            while batch.len() < BATCH {
                match queue.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
            let writes = batch.len() as u64;
            // redb may panic on a file altered under it: the batch fails, the writer goes on.
            let done = std::panic::catch_unwind(AssertUnwindSafe(|| self.commit(&mut batch)));
            if !matches!(done, Ok(Ok(()))) {
                self.counters.errors.fetch_add(1, Relaxed);
                let why = match done {
                    Ok(Err(error)) => error.to_string(),
                    _ => "the disk store's writer panicked".to_owned(),
                };
                tracing::warn!(error = %why, "disk store: a commit failed");
                for op in batch.drain(..) {
                    op.fail(&why);
                }
            }
            batch.clear();
            self.counters.queued.fetch_sub(writes, Relaxed);
        }
    }

    /// Applies `batch` in one transaction, reclaims what expired and evicts what is over the
    /// budget, commits, then answers each write.
    fn commit(&self, batch: &mut Vec<Op>) -> Result<(), redb::Error> {
        let now = Timestamp::now().as_millis();
        let mut tx = self.db.get().begin_write()?;
        tx.set_quick_repair(true);
        let mut answers: Vec<Result<u64, String>> = Vec::with_capacity(batch.len());
        let (mut evicted, mut expired) = (0, 0);
        let entries = {
            let mut meta = tx.open_table(META)?;
            let mut t = Tables {
                entries: tx.open_table(ENTRIES)?,
                expiry: tx.open_table(EXPIRY)?,
                tags: tx.open_table(TAGS)?,
                bytes: meta.get("bytes")?.map_or(0, |g| g.value()),
            };
            for op in batch.iter() {
                answers.push(self.apply(&mut t, op)?);
            }
            while expired < SWEEP && t.delete_first(now)? {
                expired += 1;
            }
            while t.bytes > self.max_bytes && t.delete_first(u64::MAX)? {
                evicted += 1;
            }
            meta.insert("bytes", t.bytes)?;
            self.counters.bytes.store(t.bytes, Relaxed);
            t.entries.len()?
        };
        tx.commit()?;
        self.counters.entries.store(entries, Relaxed);
        self.counters.evicted.fetch_add(evicted, Relaxed);
        self.counters.expired.fetch_add(expired as u64, Relaxed);
        for (op, answer) in batch.drain(..).zip(answers) {
            op.answer(answer);
        }
        Ok(())
    }

    /// One write, in the transaction; an error of the write itself (not of redb) is its answer.
    fn apply(&self, t: &mut Tables<'_>, op: &Op) -> Result<Result<u64, String>, redb::Error> {
        match op {
            Op::Set {
                key,
                bytes,
                tags,
                retain_until,
                ..
            } => {
                let key = key.as_bytes();
                let tag_rows: usize = tags.iter().map(|tag| tag.len() + key.len()).sum();
                let charged = (2 * key.len() + bytes.len() + tag_rows) as u64 + OVERHEAD;
                t.delete(key)?;
                if charged > self.max_bytes {
                    return Ok(Err(format!(
                        "disk set: an entry of {charged} bytes, over the whole budget of {}",
                        self.max_bytes
                    )));
                }
                t.entries
                    .insert(key, (*retain_until, charged, bytes.as_slice()))?;
                t.expiry.insert((*retain_until, key), ())?;
                for tag in tags {
                    t.tags.insert((&**tag, key), ())?;
                }
                t.bytes += charged;
                Ok(Ok(1))
            }
            Op::Remove { key, .. } => Ok(Ok(u64::from(t.delete(key.as_bytes())?))),
            Op::Clear { .. } => {
                let count = t.entries.len()?;
                t.entries.retain(|_, _| false)?;
                t.expiry.retain(|_, ()| false)?;
                t.tags.retain(|_, ()| false)?;
                t.bytes = 0;
                Ok(Ok(count))
            }
            Op::Select {
                select, stale_from, ..
            } => {
                let keys = t.selected(select)?;
                let mut count = 0;
                for key in keys {
                    match stale_from {
                        None => count += u64::from(t.delete(&key)?),
                        Some(now) => {
                            let marked = t.entries.get(key.as_slice())?.map(|row| {
                                let (retain_until, charged, bytes) = row.value();
                                (retain_until, charged, codec::mark_stale(bytes, *now))
                            });
                            match marked {
                                Some((retain_until, charged, Ok(bytes))) => {
                                    t.entries.insert(
                                        key.as_slice(),
                                        (retain_until, charged, bytes.as_slice()),
                                    )?;
                                    count += 1;
                                }
                                // Not a sound entry: it would read as a miss; drop it.
                                Some((_, _, Err(_))) => {
                                    t.delete(&key)?;
                                }
                                None => {}
                            }
                        }
                    }
                }
                Ok(Ok(count))
            }
        }
    }
}

impl Op {
    fn answer(self, answer: Result<u64, String>) {
        match self {
            Op::Set { reply, .. } => {
                if let Some(reply) = reply {
                    let _ = reply.send(answer.map(drop));
                }
            }
            Op::Remove { reply, .. } | Op::Clear { reply } | Op::Select { reply, .. } => {
                if let Some(reply) = reply {
                    let _ = reply.send(answer);
                }
            }
        }
    }

    fn fail(self, why: &str) {
        self.answer(Err(why.to_owned()));
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Closing the queue stops the writer once it has committed what was queued; joining
        // it releases the file before the store is gone (so it can be opened again at once).
        drop(self.queue.lock().unwrap_or_else(|e| e.into_inner()).take());
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(writer) = writer {
            let _ = writer.join();
        }
    }
}

impl<F> Disk<F> {
    /// The store's counters.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("layercake-doc-stats2-{}", std::process::id()));
    /// let store = layercake_backends::disk::Disk::builder().directory(&dir).open()?;
    /// assert_eq!(store.stats().corrupt, 0);
    /// # drop(store); std::fs::remove_dir_all(&dir)?; Ok(()) }
    /// ```
    pub fn stats(&self) -> DiskStats {
        let c = &self.shared.counters;
        DiskStats {
            entries: c.entries.load(Relaxed),
            bytes: c.bytes.load(Relaxed),
            evicted: c.evicted.load(Relaxed),
            expired: c.expired.load(Relaxed),
            corrupt: c.corrupt.load(Relaxed),
            errors: c.errors.load(Relaxed),
            timeouts: c.timeouts.load(Relaxed),
            refused: c.refused.load(Relaxed),
        }
    }

    /// The directory the store's file is in.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = std::env::temp_dir().join(format!("layercake-doc-dir-{}", std::process::id()));
    /// let store = layercake_backends::disk::Disk::builder().directory(&dir).open()?;
    /// assert!(store.directory().join("layercake.redb").exists());
    /// # drop(store); std::fs::remove_dir_all(&dir)?; Ok(()) }
    /// ```
    pub fn directory(&self) -> &Path {
        &self.shared.directory
    }

    /// Queues `op` for the writer and waits for its answer (within the timeout). A `set`
    /// (`refusable`) is refused when the queue is full.
    async fn write<T: Send + 'static>(
        &self,
        what: &'static str,
        refusable: bool,
        op: impl FnOnce(Reply<T>) -> Op,
    ) -> Result<T, BackendError> {
        let shared = &*self.shared;
        let queued = shared.counters.queued.fetch_add(1, Relaxed);
        if refusable && queued >= shared.settings.max_queued {
            shared.counters.queued.fetch_sub(1, Relaxed);
            shared.counters.refused.fetch_add(1, Relaxed);
            return Err(BackendError::new(
                BackendErrorKind::Unavailable,
                format!("disk {what}: {queued} writes queued already, refused"),
            ));
        }
        let (reply, answer) = oneshot::channel();
        if !shared.enqueue(op(Some(reply))) {
            return Err(BackendError::new(
                BackendErrorKind::Unavailable,
                format!("disk {what}: the store is closed"),
            ));
        }
        match tokio::time::timeout(shared.settings.timeout, answer).await {
            Ok(Ok(Ok(value))) => Ok(value),
            Ok(Ok(Err(why))) => Err(BackendError::new(
                BackendErrorKind::Other,
                format!("disk {what}: {why}"),
            )),
            Ok(Err(_)) => Err(BackendError::new(
                BackendErrorKind::Unavailable,
                format!("disk {what}: the writer stopped"),
            )),
            Err(_) => {
                shared.counters.timeouts.fetch_add(1, Relaxed);
                Err(BackendError::new(
                    BackendErrorKind::Timeout,
                    format!(
                        "disk {what}: not committed within {:?}",
                        shared.settings.timeout
                    ),
                ))
            }
        }
    }

    /// Runs `read` on the blocking pool with a read transaction, within the timeout.
    async fn read<T: Send + 'static>(
        &self,
        what: &'static str,
        read: impl FnOnce(&redb::ReadTransaction) -> Result<T, redb::Error> + Send + 'static,
    ) -> Result<T, BackendError> {
        let db = Arc::clone(&self.shared.db);
        let task = tokio::task::spawn_blocking(move || {
            let tx = db.get().begin_read()?;
            read(&tx)
        });
        let shared = &*self.shared;
        match tokio::time::timeout(shared.settings.timeout, task).await {
            Ok(Ok(Ok(value))) => Ok(value),
            Ok(Ok(Err(error))) => {
                shared.counters.errors.fetch_add(1, Relaxed);
                Err(BackendError::new(
                    BackendErrorKind::Unavailable,
                    format!("disk {what}: {error}"),
                ))
            }
            Ok(Err(panicked)) => {
                shared.counters.errors.fetch_add(1, Relaxed);
                Err(BackendError::new(
                    BackendErrorKind::Unavailable,
                    format!("disk {what}: the read failed: {panicked}"),
                ))
            }
            Err(_) => {
                shared.counters.timeouts.fetch_add(1, Relaxed);
                Err(BackendError::new(
                    BackendErrorKind::Timeout,
                    format!(
                        "disk {what}: no answer within {:?}",
                        shared.settings.timeout
                    ),
                ))
            }
        }
    }
}

impl<F> Clone for Disk<F> {
    fn clone(&self) -> Self {
        Disk {
            shared: Arc::clone(&self.shared),
            codec: Arc::clone(&self.codec),
        }
    }
}

impl<F> fmt::Debug for Disk<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Disk")
            .field("directory", &self.shared.directory)
            .field("max_bytes", &self.shared.settings.max_bytes)
            .finish_non_exhaustive()
    }
}

impl<F: Send + Sync + 'static> Tier for Disk<F> {}

impl<V, F> Backend<V> for Disk<F>
where
    V: Send + Sync + 'static,
    F: Format<V>,
{
    async fn get(&self, key: &Key) -> Lookup<V> {
        let owned = key.clone();
        let found = self
            .read("get", move |tx| {
                let entries = tx.open_table(ENTRIES)?;
                let row = entries.get(owned.as_bytes())?;
                Ok(row.map(|row| {
                    let (retain_until, _, bytes) = row.value();
                    (retain_until, Bytes::copy_from_slice(bytes))
                }))
            })
            .await?;
        let Some((retain_until, bytes)) = found else {
            return Ok(None);
        };
        if retain_until <= Timestamp::now().as_millis() {
            // Past its lifetime: never served; the writer reclaims it.
            return Ok(None);
        }
        match self.codec.decode(key, bytes) {
            Ok(entry) => Ok(Some(Arc::new(entry))),
            Err(error) => {
                self.shared.counters.corrupt.fetch_add(1, Relaxed);
                // Drop it, so that it is not read again (the answer is not awaited).
                self.shared.counters.queued.fetch_add(1, Relaxed);
                self.shared.enqueue(Op::Remove {
                    key: key.clone(),
                    reply: None,
                });
                Err(error.into())
            }
        }
    }

    async fn set(&self, key: &Key, entry: Arc<Entry<V>>) -> Result<(), BackendError> {
        let now = Timestamp::now();
        if entry.time_to_live(now).is_zero() {
            return Backend::<V>::remove(self, key).await;
        }
        let bytes = self.codec.encode(key, &entry).map_err(|e| {
            BackendError::new(BackendErrorKind::Other, format!("encoding the entry: {e}"))
        })?;
        let retain_until = entry.retain_until().as_millis();
        let tags = entry.tags().to_vec();
        let key = key.clone();
        self.write("set", true, move |reply| Op::Set {
            key,
            bytes,
            tags,
            retain_until,
            reply,
        })
        .await
    }

    async fn remove(&self, key: &Key) -> Result<(), BackendError> {
        Backend::<V>::remove_counted(self, key).await.map(drop)
    }

    async fn remove_counted(&self, key: &Key) -> Result<Option<u64>, BackendError> {
        let key = key.clone();
        self.write("remove", false, move |reply| Op::Remove { key, reply })
            .await
            .map(Some)
    }

    async fn clear(&self) -> Result<(), BackendError> {
        self.write("clear", false, |reply| Op::Clear { reply })
            .await
            .map(drop)
    }

    async fn remove_selected(&self, selection: Selection<'_>) -> Result<Option<u64>, BackendError> {
        let select = Select::of(selection);
        self.write("remove", false, move |reply| Op::Select {
            select,
            stale_from: None,
            reply,
        })
        .await
        .map(Some)
    }

    async fn mark_stale_selected(
        &self,
        selection: Selection<'_>,
        now: Timestamp,
    ) -> Result<Option<u64>, BackendError> {
        let select = Select::of(selection);
        self.write("mark stale", false, move |reply| Op::Select {
            select,
            stale_from: Some(now),
            reply,
        })
        .await
        .map(Some)
    }

    fn name(&self) -> &'static str {
        self.shared.settings.name
    }

    async fn health(&self) -> Vec<TierHealth> {
        let started = std::time::Instant::now();
        let read = self
            .read("health", |tx| {
                let entries = tx.open_table(ENTRIES)?;
                Ok(entries.len()?)
            })
            .await;
        let stats = self.stats();
        let (up, detail) = match read {
            Ok(entries) => (
                true,
                format!(
                    "{entries} entries, {} of {} bytes, in {}",
                    stats.bytes,
                    self.shared.settings.max_bytes,
                    self.shared.directory.display()
                ),
            ),
            Err(error) => (false, error.to_string()),
        };
        vec![TierHealth::new(
            self.shared.settings.name,
            up,
            Some(started.elapsed()),
            detail,
        )]
    }
}

impl Shared {
    /// Hands `op` to the writer; `false` when the store is closed. The caller has counted it
    /// in `queued`; a write not queued is taken off the count here.
    fn enqueue(&self, op: Op) -> bool {
        let sent = self
            .queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|queue| queue.send(op).is_ok());
        if !sent {
            self.counters.queued.fetch_sub(1, Relaxed);
        }
        sent
    }
}
