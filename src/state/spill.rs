//! Sequential spill of a batch replay's join input (a grace hash join).
//!
//! A temporary replay whose join table outgrows memory does not fall back
//! to random RocksDB reads (one per record): it appends every further
//! input row, and the table it had so far, to one of [`PARTITIONS`] files
//! by the hash of its join key, and at the end builds the join one
//! partition at a time. All rows of a key land in the same partition in
//! the order they arrived, so "a later record replaces its slot" holds per
//! partition exactly as in one table; memory is bounded by one partition
//! per core, and every byte is written and read once, sequentially.
//!
//! File format, per row: `varint(slot << 1 | restored)`, `varint(key len)`,
//! key, `varint(row len)`, row. `restored` marks rows of the table that was
//! in memory when the spill began (their joins were already counted).

use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::model::value::{get_varint, put_varint};

/// Files the input is split into: at 10,000,000 posts (39 M records,
/// ~2.3 GB of projected rows) a partition is ~18 MB; memory grows with the
/// archive past that (two partitions' tables at a time).
pub const PARTITIONS: usize = 128;

/// Bytes a partition buffers before they are written to its file.
const BUFFER: usize = 128 << 10;

/// The partition files being written.
pub struct Spill {
    paths: Vec<PathBuf>,
    files: Vec<File>,
    /// Per partition, rows not yet written. A row is encoded straight into
    /// its partition's buffer (a scratch row copied into a `BufWriter` was
    /// two copies of every spilled byte).
    buffers: Vec<Vec<u8>>,
    /// Bytes written so far.
    pub bytes: u64,
    /// Rows written so far.
    pub rows: u64,
}

/// The partition of a join key (the same for every run: fixed hasher).
pub fn partition_of(key: &[u8]) -> usize {
    let mut h = rustc_hash::FxBuildHasher.build_hasher();
    h.write(key);
    // Fx's low bits are weak; the high ones pick the partition.
    (h.finish() >> 40) as usize % PARTITIONS
}

impl Spill {
    /// Creates the partition files in `dir` (a temporary state dir).
    pub fn create(dir: &Path) -> std::io::Result<Spill> {
        let dir = dir.join("spill");
        std::fs::create_dir_all(&dir)?;
        let mut paths = Vec::with_capacity(PARTITIONS);
        let mut files = Vec::with_capacity(PARTITIONS);
        for p in 0..PARTITIONS {
            let path = dir.join(format!("part-{p:02}"));
            files.push(File::create(&path)?);
            paths.push(path);
        }
        Ok(Spill {
            paths,
            files,
            buffers: (0..PARTITIONS).map(|_| Vec::new()).collect(),
            bytes: 0,
            rows: 0,
        })
    }

    /// Appends one row of input `slot` for `key`.
    pub fn push(&mut self, slot: usize, restored: bool, key: &[u8], row: &[u8]) -> std::io::Result<()> {
        let p = partition_of(key);
        let s = &mut self.buffers[p];
        if s.capacity() == 0 {
            s.reserve_exact(BUFFER);
        }
        let before = s.len();
        put_varint(s, (slot as u64) << 1 | u64::from(restored));
        put_varint(s, key.len() as u64);
        s.extend_from_slice(key);
        put_varint(s, row.len() as u64);
        s.extend_from_slice(row);
        self.bytes += (s.len() - before) as u64;
        self.rows += 1;
        if s.len() >= BUFFER - 1024 {
            self.files[p].write_all(s)?;
            s.clear();
        }
        Ok(())
    }

    /// Writes what is buffered and closes the files; returns their paths.
    pub fn finish(self) -> std::io::Result<Vec<PathBuf>> {
        // No fsync: the files are read back by this process and deleted.
        for (mut f, b) in self.files.into_iter().zip(self.buffers) {
            f.write_all(&b)?;
        }
        Ok(self.paths)
    }
}

/// One spilled row.
pub struct SpilledRow<'a> {
    pub slot: usize,
    pub restored: bool,
    pub key: &'a [u8],
    pub row: &'a [u8],
}

/// Reads one partition file whole into `data` (replacing its contents).
pub fn load(path: &Path, data: &mut Vec<u8>) -> std::io::Result<()> {
    data.clear();
    File::open(path)?.read_to_end(data)?;
    Ok(())
}

/// The rows of a loaded partition, in the order written; an error (and the
/// end) where the data is cut short. Rows borrow from `data`, so a
/// partition's join needs no allocation per row.
pub fn rows<'d>(data: &'d [u8], path: &'d Path) -> impl Iterator<Item = std::io::Result<SpilledRow<'d>>> + 'd {
    let mut b = data;
    std::iter::from_fn(move || {
        if b.is_empty() {
            return None;
        }
        let row = next_row(&mut b);
        if row.is_none() {
            b = &[];
        }
        Some(row.ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: cut short", path.display()),
            )
        }))
    })
}

fn next_row<'d>(b: &mut &'d [u8]) -> Option<SpilledRow<'d>> {
    let tag = get_varint(b)?;
    let klen = get_varint(b)? as usize;
    let key = b.get(..klen)?;
    *b = &b[klen..];
    let rlen = get_varint(b)? as usize;
    let row = b.get(..rlen)?;
    *b = &b[rlen..];
    Some(SpilledRow {
        slot: (tag >> 1) as usize,
        restored: tag & 1 == 1,
        key,
        row,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads one partition file whole and calls `f` with each row in the
    /// order written; an error if the file is cut short. (The engine reads
    /// partitions with [`load`] and [`rows`] into a reused buffer.)
    fn read_partition(path: &Path, mut f: impl FnMut(SpilledRow<'_>)) -> std::io::Result<()> {
        let mut data = Vec::new();
        load(path, &mut data)?;
        for row in rows(&data, path) {
            f(row?);
        }
        Ok(())
    }

    #[test]
    fn rows_come_back_per_partition_in_the_order_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spill::create(dir.path()).unwrap();
        let keys: Vec<Vec<u8>> = (0u32..500).map(|i| i.to_be_bytes().to_vec()).collect();
        for round in 0..3u8 {
            for (i, k) in keys.iter().enumerate() {
                s.push(i % 3, round == 0, k, &[round, i as u8]).unwrap();
            }
        }
        let paths = s.finish().unwrap();
        let mut seen = std::collections::HashMap::<Vec<u8>, Vec<u8>>::new();
        let mut used = 0;
        for (p, path) in paths.iter().enumerate() {
            let mut n = 0;
            read_partition(path, |r| {
                assert_eq!(partition_of(r.key), p);
                assert_eq!(r.restored, r.row[0] == 0);
                let i = u32::from_be_bytes(r.key.try_into().unwrap()) as usize;
                assert_eq!(r.slot, i % 3);
                // Rounds of one key arrive in order.
                let rounds = seen.entry(r.key.to_vec()).or_default();
                assert_eq!(rounds.len(), r.row[0] as usize);
                rounds.push(r.row[0]);
                n += 1;
            })
            .unwrap();
            used += usize::from(n > 0);
        }
        assert_eq!(seen.len(), 500);
        assert!(used > PARTITIONS / 2, "keys spread over partitions: {used}");
        std::fs::write(&paths[0], [2, 5, 1]).unwrap();
        assert!(read_partition(&paths[0], |_| {}).is_err());
    }
}
