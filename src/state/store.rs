//! RocksDB state: the tables components declare (`state::table`), and
//! the `meta` column family this module owns.
//!
//! `meta` keys: `fingerprint` → topology fingerprint (u64 LE);
//! `pos\0<topic>\0<partition i32 BE>` → processed offset ranges
//! (`offsets::Ranges` bytes); `wm\0<aggregate>` → event-time watermark
//! (i64 LE) of a windowed aggregate; `source` → the source identity
//! (`source::identity`). The layout of every other table is its owner's
//! (`state::join`, `aggregate::state`).
//!
//! A state dir is marked by a `PINSTREAM_STATE` file, written before
//! RocksDB creates anything; a non-empty directory without it is refused
//! before a byte is written (it may hold someone else's files or database).
//! Dirs written before the marker existed are recognised by their column
//! families (`meta` plus only `join.*`/`agg.*`) and adopted.
//!
//! The write-ahead log is replayed with `TolerateCorruptedTailRecords`: a
//! torn last record (power loss) is dropped, but corruption inside the log
//! stops the open with an error, instead of RocksDB's default
//! point-in-time recovery, which silently rolls the state back to the
//! commit before the damage.
//!
//! Invariant: a commit is one `WriteBatch` holding the join rows, aggregate
//! deltas, source positions and watermarks it covers: after a crash the state
//! is as of some commit, never half of one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rocksdb::{ColumnFamilyDescriptor, IteratorMode, MergeOperands, Options, WriteBatch, DB};

use super::table::Merge;
use crate::aggregate::sketch::Sketch;
use crate::model::offsets::Ranges;
use crate::topology::Topology;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("RocksDB error in {path}: {source}")]
    Rocks {
        path: PathBuf,
        #[source]
        source: rocksdb::Error,
    },
    #[error(
        "state dir {path} was written by a different topology (fingerprint {found:016x}, this topology {expected:016x}); \
         use another --state-dir or delete it to start over"
    )]
    TopologyMismatch { path: PathBuf, found: u64, expected: u64 },
    #[error("corrupt state in {path}: {what}")]
    Corrupt { path: PathBuf, what: String },
    #[error(
        "{path} is not empty and is not a pinstream state dir (it holds {sample}); \
         refusing to write there: pass an empty or new --state-dir"
    )]
    Foreign { path: PathBuf, sample: String },
    /// A stop flag (SIGINT/SIGTERM) ended a long pass over the state; what
    /// was committed before it stands.
    #[error("interrupted while aggregating")]
    Interrupted,
    #[error("join spill file under {path}: {source}")]
    Spill {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the state in {path} is damaged: RocksDB found corruption in its write-ahead log or files ({source}); \
         it is not rolled back silently to an older commit. Start over with a new --state-dir (the live daemon re-reads Kafka from the start), or restore the dir from a backup"
    )]
    WalCorrupt {
        path: PathBuf,
        #[source]
        source: rocksdb::Error,
    },
}

impl StoreError {
    /// Whether a supervisor may retry the operation (I/O hiccups) rather
    /// than stop (corruption, wrong topology).
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Rocks { source, .. } => matches!(
                source.kind(),
                rocksdb::ErrorKind::Busy
                    | rocksdb::ErrorKind::TimedOut
                    | rocksdb::ErrorKind::TryAgain
                    | rocksdb::ErrorKind::Incomplete
            ),
            _ => false,
        }
    }
}

/// The file that marks a directory as a pinstream state dir.
pub const MARKER: &str = "PINSTREAM_STATE";

/// What a directory is, as far as opening a state there goes.
#[derive(Debug, PartialEq, Eq)]
pub enum DirKind {
    /// Missing or empty: a new state may be created.
    Empty,
    /// A pinstream state dir (marked, or an unmarked one of an older build).
    State,
    /// Anything else; `sample` names a few of its entries.
    Foreign { sample: String },
}

/// Looks at a directory without writing to it.
pub fn dir_kind(path: &Path) -> DirKind {
    let Ok(entries) = std::fs::read_dir(path) else {
        return if path.exists() {
            DirKind::Foreign {
                sample: "something that is not a readable directory".into(),
            }
        } else {
            DirKind::Empty
        };
    };
    // What an empty directory may hold: git's placeholder (the repository's
    // own `state/`), a fresh file system's `lost+found` (a mounted volume).
    let names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".gitkeep" && n != "lost+found")
        .collect();
    if names.is_empty() {
        return DirKind::Empty;
    }
    if names.iter().any(|n| n == MARKER) {
        return DirKind::State;
    }
    // An older pinstream state: RocksDB with our families only. list_cf
    // reads the MANIFEST and writes nothing.
    if names.iter().any(|n| n == "CURRENT") {
        if let Ok(cfs) = DB::list_cf(&Options::default(), path) {
            let ours = |n: &String| n == "default" || n == META || n.starts_with("join.") || n.starts_with("agg.");
            if cfs.iter().any(|n| n == META) && cfs.iter().all(ours) {
                return DirKind::State;
            }
        }
    }
    let mut sample: Vec<&str> = names.iter().map(String::as_str).take(3).collect();
    sample.sort_unstable();
    let more = names.len().saturating_sub(sample.len());
    let mut sample = sample.join(", ");
    if more > 0 {
        sample.push_str(&format!(" and {more} more"));
    }
    DirKind::Foreign { sample }
}

pub const META: &str = "meta";

fn pos_key(topic: &str, partition: i32) -> Vec<u8> {
    let mut k = b"pos\0".to_vec();
    k.extend_from_slice(topic.as_bytes());
    k.push(0);
    k.extend_from_slice(&partition.to_be_bytes());
    k
}

/// Present while a batch-plan replay's aggregation is deferred.
const DEFERRED_KEY: &[u8] = b"aggregates-deferred";

fn wm_key(agg: &str) -> Vec<u8> {
    let mut k = b"wm\0".to_vec();
    k.extend_from_slice(agg.as_bytes());
    k
}

/// How commits reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Every commit goes through RocksDB's write-ahead log (live daemon).
    Wal,
    /// No write-ahead log; [`Store::flush`] makes state durable (replay:
    /// RocksDB flushes all column families atomically, so a crash rolls
    /// state and positions back together to the last flush, and the next
    /// replay redoes the rest).
    Flush,
    /// Nothing needs to survive the process (a replay into a temporary
    /// state dir that is deleted afterwards): no WAL, no final flush, and
    /// the join table stays in memory unless it outgrows the cache.
    Ephemeral,
}

/// The opened state of one topology.
pub struct Store {
    db: DB,
    path: PathBuf,
    durability: Durability,
    /// Bumped after every write batch: readers (the HTTP query cache) know
    /// whether what they computed is still the committed state.
    generation: std::sync::atomic::AtomicU64,
    /// Tests: the next ingest fails after its file landed (a process
    /// killed right after an ingest, before the commit that follows).
    #[cfg(test)]
    pub(crate) fail_after_ingest: std::sync::atomic::AtomicBool,
}

impl Store {
    /// Opens (or creates) the state dir for a topology.
    pub fn open(path: &Path, topo: &Topology) -> Result<Store, StoreError> {
        Self::open_with(path, topo, Durability::Wal)
    }

    /// Opens an existing state for reading only (`answers`, `positions`):
    /// nothing is written, so it works on a read-only disk or a full one.
    pub fn open_read_only(path: &Path, topo: &Topology) -> Result<Store, StoreError> {
        Self::open_mode(path, topo, Durability::Wal, true)
    }

    pub fn open_with(path: &Path, topo: &Topology, durability: Durability) -> Result<Store, StoreError> {
        Self::open_mode(path, topo, durability, false)
    }

    fn open_mode(path: &Path, topo: &Topology, durability: Durability, read_only: bool) -> Result<Store, StoreError> {
        let rocks = |source| StoreError::Rocks {
            path: path.to_path_buf(),
            source,
        };
        let io = |what: &str, e: std::io::Error| StoreError::Corrupt {
            path: path.to_path_buf(),
            what: format!("{what}: {e}"),
        };
        match dir_kind(path) {
            DirKind::Foreign { sample } => {
                return Err(StoreError::Foreign {
                    path: path.to_path_buf(),
                    sample,
                })
            }
            DirKind::Empty if read_only => {
                return Err(StoreError::Corrupt {
                    path: path.to_path_buf(),
                    what: "no state here".into(),
                })
            }
            DirKind::Empty => {
                std::fs::create_dir_all(path).map_err(|e| io("cannot create the state dir", e))?;
                std::fs::write(path.join(MARKER), "pinstream state dir (RocksDB)\n")
                    .map_err(|e| io("cannot write the state dir marker", e))?;
            }
            DirKind::State => {
                if !read_only && !path.join(MARKER).exists() {
                    // Adopt an older unmarked state dir; a read-only one is
                    // still readable (answers, positions).
                    let _ = std::fs::write(path.join(MARKER), "pinstream state dir (RocksDB)\n");
                }
            }
        }
        if !read_only {
            // SST files an ingest left behind when the process died between
            // writing and ingesting them (`Store::ingest_sorted`).
            for e in std::fs::read_dir(path).into_iter().flatten().flatten() {
                let name = e.file_name();
                let name = name.to_string_lossy();
                if name.starts_with("ingest-") && name.ends_with(".sst") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let mut db_opts = Options::default();
        db_opts.set_wal_recovery_mode(rocksdb::DBRecoveryMode::TolerateCorruptedTailRecords);
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.increase_parallelism(2);
        // Column families flush together, so without a WAL no family is
        // ever ahead of another (state and positions stay consistent).
        db_opts.set_atomic_flush(true);
        if durability == Durability::Ephemeral {
            // What a temporary state holds goes with its dir: RocksDB need
            // not flush the memtables (which no WAL holds) when it closes, a
            // flush the end of every temporary replay waited for. Through
            // the options string: the C API of the RocksDB linked here has
            // no setter for it. Best effort: without it a close is slower.
            match db_opts.get_options_from_string("avoid_flush_during_shutdown=true") {
                Ok(o) => db_opts = o,
                Err(e) => tracing::debug!("avoid_flush_during_shutdown not set: {e}"),
            }
        }

        let mut wanted: Vec<(String, Options)> = vec![(META.into(), Options::default())];
        for t in topo.tables() {
            let mut o = Options::default();
            // Named, not RocksDB's default (Snappy where the library has
            // it, none where it does not): the same state files whichever
            // RocksDB is linked. LZ4 vs none measured equal in time on a
            // durable 1M-post replay (6.57 vs 6.49 s, 5 pairs), 64 vs 88 MB.
            o.set_compression_type(rocksdb::DBCompressionType::Lz4);
            if let Some(n) = t.write_buffer {
                o.set_write_buffer_size(n);
            }
            match t.merge {
                Merge::None => {}
                Merge::Add => o.set_merge_operator_associative("add", crate::aggregate::state::add_merge),
                Merge::Sketch { compression } => o.set_merge_operator_associative(
                    "sketch",
                    move |_key: &[u8], existing: Option<&[u8]>, ops: &MergeOperands| {
                        Some(Sketch::merge_bytes(existing, ops.iter(), compression))
                    },
                ),
            }
            wanted.push((t.name, o));
        }
        // RocksDB must open every existing family; ones this topology does
        // not know are opened plainly (the fingerprint check decides).
        let existing = DB::list_cf(&Options::default(), path).unwrap_or_default();
        for name in existing {
            if name != "default" && !wanted.iter().any(|(n, _)| *n == name) {
                wanted.push((name, Options::default()));
            }
        }
        if read_only {
            // Nothing can be created: open what is there (a topology with
            // other families is then refused by its fingerprint, below).
            let existing = DB::list_cf(&Options::default(), path).unwrap_or_default();
            wanted.retain(|(n, _)| existing.contains(n));
        }
        let cfs = wanted.into_iter().map(|(n, o)| ColumnFamilyDescriptor::new(n, o));
        let opened = if read_only {
            DB::open_cf_descriptors_read_only(&db_opts, path, cfs, false)
        } else {
            DB::open_cf_descriptors(&db_opts, path, cfs)
        };
        let db = opened.map_err(|source| {
            if source.kind() == rocksdb::ErrorKind::Corruption {
                StoreError::WalCorrupt {
                    path: path.to_path_buf(),
                    source,
                }
            } else {
                rocks(source)
            }
        })?;
        let store = Store {
            db,
            path: path.to_path_buf(),
            durability,
            generation: std::sync::atomic::AtomicU64::new(0),
            #[cfg(test)]
            fail_after_ingest: std::sync::atomic::AtomicBool::new(false),
        };
        let meta = store.cf(META)?;
        match store.db.get_cf(meta, b"fingerprint").map_err(rocks)? {
            Some(v) => {
                let found = v.as_slice().try_into().map(u64::from_le_bytes).unwrap_or(0);
                if found != topo.fingerprint {
                    return Err(StoreError::TopologyMismatch {
                        path: path.to_path_buf(),
                        found,
                        expected: topo.fingerprint,
                    });
                }
            }
            None if read_only => {
                return Err(StoreError::Corrupt {
                    path: path.to_path_buf(),
                    what: "no topology fingerprint: the state was never written".into(),
                })
            }
            None => store
                .db
                .put_cf(meta, b"fingerprint", topo.fingerprint.to_le_bytes())
                .map_err(rocks)?,
        }
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn rocks(&self, source: rocksdb::Error) -> StoreError {
        StoreError::Rocks {
            path: self.path.clone(),
            source,
        }
    }

    pub fn cf(&self, name: &str) -> Result<&rocksdb::ColumnFamily, StoreError> {
        self.db.cf_handle(name).ok_or_else(|| StoreError::Corrupt {
            path: self.path.clone(),
            what: format!("column family `{name}` is missing"),
        })
    }

    pub fn get(&self, cf: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.db.get_cf(self.cf(cf)?, key).map_err(|e| self.rocks(e))
    }

    /// Calls `f` for each entry (in key order) until it returns false.
    pub fn for_each(&self, cf: &str, mut f: impl FnMut(&[u8], &[u8]) -> bool) -> Result<(), StoreError> {
        let cf = self.cf(cf)?;
        for item in self.db.iterator_cf(cf, IteratorMode::Start) {
            let (k, v) = item.map_err(|e| self.rocks(e))?;
            if !f(&k, &v) {
                break;
            }
        }
        Ok(())
    }

    pub fn write(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let mut opts = rocksdb::WriteOptions::default();
        opts.disable_wal(self.durability != Durability::Wal);
        self.db.write_opt(batch, &opts).map_err(|e| self.rocks(e))?;
        self.generation.fetch_add(1, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// How many write batches this process has applied; a reader that saw
    /// the same generation before and after its read saw one commit's state.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Stores positions into a batch.
    pub fn put_position(
        &self,
        batch: &mut WriteBatch,
        topic: &str,
        partition: i32,
        r: &Ranges,
    ) -> Result<(), StoreError> {
        batch.put_cf(self.cf(META)?, pos_key(topic, partition), r.to_bytes());
        Ok(())
    }

    pub fn put_watermark(&self, batch: &mut WriteBatch, agg: &str, wm: i64) -> Result<(), StoreError> {
        batch.put_cf(self.cf(META)?, wm_key(agg), wm.to_le_bytes());
        Ok(())
    }

    /// The source identity stored with the positions (see `identity.rs`).
    pub fn source_identity(&self) -> Result<Option<crate::source::identity::SourceIdentity>, StoreError> {
        Ok(self
            .get(META, b"source")?
            .and_then(|v| crate::source::identity::SourceIdentity::from_bytes(&v)))
    }

    /// Stores the source identity (written durably at once).
    pub fn put_source_identity(&self, id: &crate::source::identity::SourceIdentity) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(META)?, b"source", id.to_bytes());
        self.write(batch)?;
        if self.durability != Durability::Wal {
            self.flush()?;
        }
        Ok(())
    }

    /// Whether a batch-plan replay into this state deferred its
    /// aggregation and has not finished it (`engine/batch.rs`): the
    /// aggregate tables are then incomplete.
    pub fn aggregates_deferred(&self) -> Result<bool, StoreError> {
        Ok(self.get(META, DEFERRED_KEY)?.is_some())
    }

    /// Sets or clears the deferred-aggregation flag in a batch.
    pub fn put_deferred(&self, batch: &mut WriteBatch, on: bool) -> Result<(), StoreError> {
        let cf = self.cf(META)?;
        if on {
            batch.put_cf(cf, DEFERRED_KEY, [1]);
        } else {
            batch.delete_cf(cf, DEFERRED_KEY);
        }
        Ok(())
    }

    /// Deletes every entry of a column family (in a batch), and the
    /// watermark of `agg`: an aggregate table back to empty.
    pub fn clear_aggregate_into(&self, cf: &str, agg: &str, batch: &mut WriteBatch) -> Result<(), StoreError> {
        let handle = self.cf(cf)?;
        for item in self.db.iterator_cf(handle, IteratorMode::Start) {
            let (k, _) = item.map_err(|e| self.rocks(e))?;
            batch.delete_cf(handle, k);
        }
        batch.delete_cf(self.cf(META)?, wm_key(agg));
        Ok(())
    }

    pub fn watermark(&self, agg: &str) -> Result<Option<i64>, StoreError> {
        Ok(self
            .get(META, &wm_key(agg))?
            .and_then(|v| v.as_slice().try_into().ok().map(i64::from_le_bytes)))
    }

    /// Every stored source position.
    pub fn positions(&self) -> Result<HashMap<(String, i32), Ranges>, StoreError> {
        let mut out = HashMap::new();
        let mut bad = None;
        self.for_each(META, |k, v| {
            if let Some(rest) = k.strip_prefix(b"pos\0") {
                let parsed = (rest.len() > 5).then(|| {
                    let (topic, p) = rest.split_at(rest.len() - 5);
                    let part = i32::from_be_bytes(p[1..].try_into().unwrap());
                    (String::from_utf8_lossy(topic).into_owned(), part)
                });
                match (parsed, Ranges::from_bytes(v)) {
                    (Some(key), Some(r)) => {
                        out.insert(key, r);
                    }
                    _ => bad = Some(String::from_utf8_lossy(k).into_owned()),
                }
            }
            true
        })?;
        match bad {
            Some(k) => Err(StoreError::Corrupt {
                path: self.path.clone(),
                what: format!("bad position entry {k:?}"),
            }),
            None => Ok(out),
        }
    }

    /// Approximate on-disk size of the live data, in bytes.
    pub fn size_bytes(&self) -> u64 {
        let mut total = 0;
        for name in DB::list_cf(&Options::default(), &self.path).unwrap_or_default() {
            if let Some(cf) = self.db.cf_handle(&name) {
                total += self
                    .db
                    .property_int_value_cf(cf, "rocksdb.estimate-live-data-size")
                    .ok()
                    .flatten()
                    .unwrap_or(0);
                total += self
                    .db
                    .property_int_value_cf(cf, "rocksdb.cur-size-all-mem-tables")
                    .ok()
                    .flatten()
                    .unwrap_or(0);
            }
        }
        total
    }

    /// Writes `entries` (distinct keys, any order) into column family `cf`
    /// as one sorted SST file and ingests it: no memtable inserts, no
    /// later flush. For a batch replay's join table, whose runs hold
    /// disjoint keys of an empty table (the memtable path was a serial
    /// sort-insert-flush of every join row: about 0.7 s of a durable
    /// 1,000,000-post replay with one core idle). Durable when it returns
    /// (RocksDB syncs the file and its manifest), so a caller that needs
    /// the rows to count only with a later commit must say so first (the
    /// deferred flag, `engine/batch.rs`).
    pub fn ingest_sorted(&self, cf: &str, mut entries: Vec<(&[u8], &[u8])>) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let handle = self.cf(cf)?;
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let file = self.path.join(format!("ingest-{}-{n}.sst", std::process::id()));
        let result = (|| {
            // The table's own options where they shape the file (the
            // comparator is the default bytewise one everywhere), but not
            // compressed: LZ4 was 2.3% of a durable 1,000,000-post replay's
            // CPU for files that compactions compress anyway (alternating pairs,
            // 9 pairs: wall 0.95; the state dir 87 MB against 62 MB).
            let mut opts = Options::default();
            opts.set_compression_type(rocksdb::DBCompressionType::None);
            let mut writer = rocksdb::SstFileWriter::create(&opts);
            writer.open(&file)?;
            for (k, v) in &entries {
                writer.put(k, v)?;
            }
            writer.finish()?;
            let mut ingest = rocksdb::IngestExternalFileOptions::default();
            ingest.set_move_files(true);
            self.db.ingest_external_file_cf_opts(handle, &ingest, vec![&file])
        })();
        // Moved into the DB on success (RocksDB unlinks its name); gone
        // either way.
        let _ = std::fs::remove_file(&file);
        result.map_err(|e| self.rocks(e))?;
        self.generation.fetch_add(1, std::sync::atomic::Ordering::Release);
        #[cfg(test)]
        if self.fail_after_ingest.swap(false, std::sync::atomic::Ordering::Relaxed) {
            return Err(StoreError::Corrupt {
                path: self.path.clone(),
                what: "injected failure after an ingest".into(),
            });
        }
        Ok(())
    }

    /// Flushes every column family (atomically) to SST files.
    pub fn flush(&self) -> Result<(), StoreError> {
        let names = DB::list_cf(&Options::default(), &self.path).map_err(|e| self.rocks(e))?;
        let cfs: Vec<&rocksdb::ColumnFamily> = names.iter().filter_map(|n| self.db.cf_handle(n)).collect();
        self.db
            .flush_cfs_opt(&cfs, &rocksdb::FlushOptions::default())
            .map_err(|e| self.rocks(e))
    }

    pub fn durability(&self) -> Durability {
        self.durability
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression for linking Debian's RocksDB 7.8, which has no
    /// `rocksdb_flush_cfs` (native/rocksdb_compat.cc supplies it): state
    /// written with the WAL off reaches disk in every column family, and a
    /// reopened store sees all of it.
    #[test]
    fn flush_without_wal_persists_every_column_family() {
        let topo = crate::load_topology(crate::PINTEREST_TOPOLOGY).expect("product topology");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let names;
        {
            let store = Store::open_with(&path, &topo, Durability::Flush).unwrap();
            names = DB::list_cf(&Options::default(), &path).unwrap();
            assert!(names.len() > 3, "the product declares several tables: {names:?}");
            let mut batch = WriteBatch::default();
            for n in &names {
                batch.put_cf(store.cf(n).unwrap(), b"flush-test", n.as_bytes());
            }
            store.write(batch).unwrap();
            store.flush().unwrap();
            // Nothing may be left only in a memtable (the WAL is off).
            for n in &names {
                let cf = store.cf(n).unwrap();
                let left = store
                    .db
                    .property_int_value_cf(cf, "rocksdb.num-entries-active-mem-table")
                    .unwrap();
                assert_eq!(left, Some(0), "{n} still has entries in its memtable");
            }
        }
        let store = Store::open_with(&path, &topo, Durability::Flush).unwrap();
        for n in &names {
            assert_eq!(
                store.get(n, b"flush-test").unwrap().as_deref(),
                Some(n.as_bytes()),
                "{n}"
            );
        }
    }

    fn sst_files(path: &Path) -> Vec<String> {
        std::fs::read_dir(path)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sst"))
            .collect()
    }

    /// A temporary state is deleted with its dir: closing it writes no SST
    /// file (RocksDB flushes WAL-less memtables when it closes, a flush the
    /// end of every temporary replay waited for). A kept one still does.
    #[test]
    fn a_temporary_state_is_not_flushed_when_it_closes() {
        let topo = crate::load_topology(crate::PINTEREST_TOPOLOGY).expect("product topology");
        let dir = tempfile::tempdir().unwrap();
        for (durability, flushed) in [(Durability::Ephemeral, false), (Durability::Flush, true)] {
            let path = dir.path().join(format!("{durability:?}"));
            {
                let store = Store::open_with(&path, &topo, durability).unwrap();
                let mut batch = WriteBatch::default();
                batch.put_cf(store.cf(META).unwrap(), b"close-test", b"x");
                store.write(batch).unwrap();
            }
            assert_eq!(
                !sst_files(&path).is_empty(),
                flushed,
                "{durability:?}: {:?}",
                sst_files(&path)
            );
        }
    }
}
