//! Component traits and the stateless per-record stage.
//!
//! - [`Source`]: yields batches of raw records with their positions
//!   (archive files now; Kafka partitions later).
//! - [`crate::ops::Operator`]: per-record cleaning (in `ops.rs`).
//! - [`DeadLetterSink`]: where rejected records go, with the reason.
//!
//! [`prepare`] turns one raw record into what the engine needs (encoded key
//! and projected row) or a rejection. It is a pure function of the bytes and
//! the topology, so drivers run it on many threads.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::ops::Operator;
use crate::topology::Topology;
use crate::value::{encode_key, encode_row, Record, Value};

/// Where a raw record came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// Archive file, for replay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// A raw record as a source delivers it.
#[derive(Debug, Clone)]
pub struct RawRecord {
    pub offset: i64,
    pub bytes: Vec<u8>,
}

/// A batch of raw records of one topic-partition, in offset order.
#[derive(Debug, Clone)]
pub struct Batch {
    pub topic: String,
    pub partition: i32,
    /// Archive file the batch was read from, if any.
    pub file: Option<PathBuf>,
    pub records: Vec<RawRecord>,
    /// A problem reading the batch (e.g. a truncated gzip member): the
    /// records before it are still delivered.
    pub read_error: Option<String>,
}

/// Something that yields batches. One required method; `Ok(None)` = done.
pub trait Source: Send {
    type Error: std::error::Error + Send + Sync + 'static;
    fn next_batch(&mut self) -> Result<Option<Batch>, Self::Error>;
    /// Total input size in bytes, when known (for progress).
    fn size_hint(&self) -> Option<u64> {
        None
    }
}

/// A rejected record.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    pub reason: String,
    #[serde(flatten)]
    pub origin: Origin,
    /// The raw record, as text (lossy if it was not UTF-8).
    pub record: String,
}

/// Where dead letters go. One required method.
pub trait DeadLetterSink: Send {
    fn send(&mut self, dl: &DeadLetter) -> std::io::Result<()>;
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Keeps only the count (the caller counts); used without `--dead-letter`.
pub struct DiscardDeadLetters;

impl DeadLetterSink for DiscardDeadLetters {
    fn send(&mut self, _dl: &DeadLetter) -> std::io::Result<()> {
        Ok(())
    }
}

/// JSON lines: `{"reason","topic","partition","offset","file","record"}`.
pub struct FileDeadLetters {
    out: std::io::BufWriter<std::fs::File>,
}

impl FileDeadLetters {
    pub fn create(path: &Path) -> std::io::Result<Self> {
        Ok(FileDeadLetters {
            out: std::io::BufWriter::new(std::fs::File::create(path)?),
        })
    }

    /// Appends to the file (the live daemon keeps it across restarts).
    pub fn append(path: &Path) -> std::io::Result<Self> {
        let f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(FileDeadLetters {
            out: std::io::BufWriter::new(f),
        })
    }
}

impl DeadLetterSink for FileDeadLetters {
    fn send(&mut self, dl: &DeadLetter) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, dl)?;
        self.out.write_all(b"\n")
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// A record ready for the engine.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub key: Vec<u8>,
    pub row: Box<[u8]>,
}

/// Parses and cleans one raw record of source `src` (full record, every
/// field; used by `clean` and tests).
pub fn clean(topo: &Topology, src: usize, bytes: &[u8]) -> Result<Record, String> {
    clean_keeping(topo, src, bytes, None)
}

fn clean_keeping(
    topo: &Topology,
    src: usize,
    bytes: &[u8],
    keep: Option<&[crate::value::Name]>,
) -> Result<Record, String> {
    let text = trim_ascii(bytes);
    if text.is_empty() {
        return Err("empty record".into());
    }
    let mut rec = Record::from_json_keeping(text, keep)?;
    let source = &topo.sources[src];
    for op in &source.ops {
        op.apply(&mut rec)?;
    }
    match rec.get(&source.key) {
        None => Err(format!("missing key field `{}`", source.key)),
        Some(Value::Null) => Err(format!("key field `{}` is null", source.key)),
        Some(_) => Ok(rec),
    }
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

/// Parses, cleans and projects one raw record for the engine. Only the raw
/// fields the projection depends on are materialised (`Source::raw_fields`).
pub fn prepare(topo: &Topology, src: usize, bytes: &[u8]) -> Result<Prepared, String> {
    let source = &topo.sources[src];
    let rec = clean_keeping(topo, src, bytes, Some(&source.raw_fields))?;
    let mut key = Vec::with_capacity(16);
    encode_key(rec.get(&source.key).unwrap_or(&Value::Null), &mut key);
    let mut row = Vec::with_capacity(64);
    let null = Value::Null;
    encode_row(source.projection.iter().map(|f| rec.get(f).unwrap_or(&null)), &mut row);
    Ok(Prepared {
        key,
        row: row.into_boxed_slice(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `prepare` parses only `raw_fields`; it must agree with cleaning the
    /// whole record and projecting afterwards, for accepted and rejected
    /// records alike.
    #[test]
    fn pruned_parsing_agrees_with_full_cleaning() {
        let topo = crate::load_topology(crate::PINTEREST_TOPOLOGY).unwrap();
        let sample = include_str!("../tests/fixtures/pin_sample.jsonl");
        let edge = [
            r#"{"ind": 5, "category": "art"}"#,
            r#"{"index": 6, "ind": 9, "category": "art", "follower_count": "3k"}"#,
            r#"{"index": "x", "category": "art"}"#,
            r#"{"index": 7, "title": {"nested": [1, 2]}, "category": ""}"#,
            r#"{"index": 8, "description": "bad \u00e9 escape", "poster_name": "User Info Error"}"#,
            r#"{"index": 8, "description": tru}"#,
            r#"{"ind": 1, "timestamp": "2020-08-28T03:52:47", "country": "Chad", "latitude": "x"}"#,
            r#"{"ind": 2, "first_name": "A", "last_name": null, "age": "41", "date_joined": "2016-01-01 00:00:00"}"#,
            "[]",
            "",
        ];
        let mut checked = 0;
        for (src, _) in topo.sources.iter().enumerate() {
            for line in sample.lines().chain(edge) {
                let full = clean(&topo, src, line.as_bytes()).map(|rec| {
                    let source = &topo.sources[src];
                    let mut key = Vec::new();
                    encode_key(rec.get(&source.key).unwrap(), &mut key);
                    let mut row = Vec::new();
                    encode_row(
                        source.projection.iter().map(|f| rec.get(f).unwrap_or(&Value::Null)),
                        &mut row,
                    );
                    (key, row)
                });
                let pruned = prepare(&topo, src, line.as_bytes()).map(|p| (p.key, p.row.to_vec()));
                assert_eq!(full.is_ok(), pruned.is_ok(), "source {src}: {line}");
                if let (Ok(a), Ok(b)) = (&full, &pruned) {
                    assert_eq!(a, b, "source {src}: {line}");
                }
                checked += 1;
            }
        }
        assert!(checked > 600);
    }
}
