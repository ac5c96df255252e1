//! The archiver: raw consumed records written in the Confluent S3-sink
//! layout that `replay` reads (MSK Connect's role in the seeds).
//!
//! `topics/<topic>/partition=<p>/<topic>+<p>+<start:010>.json[.gz]`
//! (DefaultPartitioner) or `topics/<topic>/year=YYYY/month=MM/day=DD/hour=HH/…`
//! (hourly, by each record's Kafka timestamp), in a local directory or a
//! bucket. Invariants:
//!
//! - **Written before the commit that covers them.** [`Sink::flush`] (the
//!   driver calls it before every state commit) writes every object that
//!   gained records since the last flush, whole, under its final name; an
//!   object still open is written again, longer, under the same name at the
//!   next flush (an S3 PUT and a local rename both replace atomically). So a
//!   committed position never lacks its archived record.
//! - **Names from start offsets.** An object holds consecutive offsets
//!   only (a jump in offsets starts a new object), so record `i` of
//!   `<start>` is offset `start + i`, as replay assumes. After a crash the
//!   records after the last commit are consumed again and archived into an
//!   object named by the first of them: nothing is lost; an object written
//!   after that commit but before the crash overlaps the new one, and a
//!   replay counts the repeated records once (`archive check` reports it).
//! - **Rotation.** An object is closed at `flush_size` records, when the
//!   hour of the hourly layout changes, and at the first flush after it has
//!   been open for `rotate` (wall clock), so a quiet partition's last
//!   records do not wait for the next one (the Confluent sink's known
//!   annoyance).

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Sink, SinkError};
use crate::source::s3::{self, S3Options, S3Stats, S3Url};

/// A consumed record, as the archiver receives it.
#[derive(Debug, Clone, Copy)]
pub struct Consumed<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    /// The record's Kafka timestamp (ms), for the hourly layout.
    pub time_ms: Option<i64>,
    pub bytes: &'a [u8],
}

/// The archiver as the driver holds it.
pub type ArchiveSink<'s> = dyn for<'a> Sink<Consumed<'a>> + 's;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveLayout {
    /// `partition=<p>/` (DefaultPartitioner).
    Default,
    /// `year=YYYY/month=MM/day=DD/hour=HH/` by record time (TimeBasedPartitioner).
    Hourly,
}

#[derive(Debug, Clone)]
pub struct ArchiveOptions {
    /// Records per object (the connector's `flush.size`).
    pub flush_size: usize,
    /// Longest an object stays open (wall clock).
    pub rotate: Duration,
    pub gzip: bool,
    pub layout: ArchiveLayout,
    /// How to reach an `s3://` target.
    pub s3: S3Options,
}

/// Where objects go.
enum Target {
    Dir(PathBuf),
    S3(Box<S3Target>),
}

struct S3Target {
    rt: tokio::runtime::Runtime,
    client: aws_sdk_s3::Client,
    url: S3Url,
    opts: S3Options,
    stats: Arc<S3Stats>,
}

/// An object being filled.
struct Open {
    start: i64,
    dir: String,
    buf: Vec<u8>,
    records: usize,
    /// Records added since it was last written.
    dirty: bool,
    opened: Instant,
}

/// The archiver.
pub struct Archiver {
    target: Target,
    opts: ArchiveOptions,
    open: HashMap<(String, i32), Open>,
    /// Objects written (each write of an open object counts).
    pub writes: u64,
}

impl Archiver {
    /// An archiver into a directory or `s3://bucket/prefix`.
    pub fn open(to: &str, opts: ArchiveOptions) -> Result<Archiver, SinkError> {
        let target = if S3Url::is_s3(to) {
            let err = |message: String| SinkError::Archive {
                target: to.to_string(),
                message,
            };
            let url = S3Url::parse(to).map_err(|e| err(e.to_string()))?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| err(e.to_string()))?;
            let client = rt.block_on(s3::client(&opts.s3));
            Target::S3(Box::new(S3Target {
                rt,
                client,
                url,
                opts: opts.s3.clone(),
                stats: Arc::new(S3Stats::default()),
            }))
        } else {
            let dir = PathBuf::from(to);
            std::fs::create_dir_all(&dir).map_err(|e| SinkError::Archive {
                target: to.to_string(),
                message: e.to_string(),
            })?;
            Target::Dir(dir)
        };
        Ok(Archiver {
            target,
            opts,
            open: HashMap::new(),
            writes: 0,
        })
    }

    fn dir_of(&self, topic: &str, partition: i32, time_ms: Option<i64>) -> String {
        match self.opts.layout {
            ArchiveLayout::Default => format!("topics/{topic}/partition={partition}"),
            ArchiveLayout::Hourly => {
                let ms = time_ms.unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
                let t = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
                format!("topics/{topic}/{}", t.format("year=%Y/month=%m/day=%d/hour=%H"))
            }
        }
    }

    /// Writes one object whole under its final name.
    fn write(&mut self, topic: &str, partition: i32, o: &Open) -> Result<(), SinkError> {
        let name = format!(
            "{}/{topic}+{partition}+{:010}.json{}",
            o.dir,
            o.start,
            if self.opts.gzip { ".gz" } else { "" }
        );
        let body = if self.opts.gzip {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&o.buf)
                .and_then(|_| gz.finish())
                .map_err(|e| self.error(&name, e.to_string()))?
        } else {
            o.buf.clone()
        };
        match &self.target {
            Target::Dir(root) => {
                let path = root.join(&name);
                let tmp = path.with_extension("tmp");
                let done = (|| {
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    let mut f = std::fs::File::create(&tmp)?;
                    f.write_all(&body)?;
                    f.sync_all()?;
                    std::fs::rename(&tmp, &path)
                })();
                done.map_err(|e| self.error(&name, e.to_string()))?;
            }
            Target::S3(t) => {
                let S3Target {
                    rt,
                    client,
                    url,
                    opts,
                    stats,
                } = t.as_ref();
                let key = format!("{}{name}", url.prefix);
                let what = format!("writing s3://{}/{key}", url.bucket);
                rt.block_on(s3::with_retries(opts, stats, &what, || {
                    let req = client
                        .put_object()
                        .bucket(&url.bucket)
                        .key(&key)
                        .body(aws_sdk_s3::primitives::ByteStream::from(body.clone()));
                    async move { req.send().await.map(|_| ()).map_err(|e| s3::failure_of(&e)) }
                }))
                .map_err(|e| self.error(&name, e.to_string()))?;
            }
        }
        self.writes += 1;
        Ok(())
    }

    fn error(&self, name: &str, message: String) -> SinkError {
        let target = match &self.target {
            Target::Dir(d) => d.join(name).display().to_string(),
            Target::S3(t) => format!("s3://{}/{}{name}", t.url.bucket, t.url.prefix),
        };
        SinkError::Archive { target, message }
    }

    /// Writes and forgets the open object of a partition.
    fn close(&mut self, key: &(String, i32)) -> Result<(), SinkError> {
        if let Some(o) = self.open.remove(key) {
            if o.dirty {
                self.write(&key.0, key.1, &o)?;
            }
        }
        Ok(())
    }
}

impl<'a> Sink<Consumed<'a>> for Archiver {
    fn send(&mut self, r: &Consumed<'a>) -> Result<(), SinkError> {
        let key = (r.topic.to_string(), r.partition);
        let dir = self.dir_of(r.topic, r.partition, r.time_ms);
        if let Some(o) = self.open.get(&key) {
            if o.dir != dir || o.start + o.records as i64 != r.offset {
                self.close(&key)?;
            }
        }
        let o = self.open.entry(key.clone()).or_insert_with(|| Open {
            start: r.offset,
            dir,
            buf: Vec::new(),
            records: 0,
            dirty: false,
            opened: Instant::now(),
        });
        o.buf.extend_from_slice(r.bytes);
        o.buf.push(b'\n');
        o.records += 1;
        o.dirty = true;
        if o.records >= self.opts.flush_size.max(1) {
            self.close(&key)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        let keys: Vec<(String, i32)> = self.open.keys().cloned().collect();
        for key in keys {
            let Some(o) = self.open.remove(&key) else { continue };
            if o.dirty {
                self.write(&key.0, key.1, &o)?;
            }
            if o.opened.elapsed() < self.opts.rotate {
                self.open.insert(key, Open { dirty: false, ..o });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(partition: i32, offset: i64, bytes: &[u8]) -> Consumed<'_> {
        Consumed {
            topic: "p.pin",
            partition,
            offset,
            time_ms: Some(1_704_459_600_000), // 2024-01-05T13:00Z
            bytes,
        }
    }

    fn opts(flush_size: usize, layout: ArchiveLayout) -> ArchiveOptions {
        ArchiveOptions {
            flush_size,
            rotate: Duration::from_secs(3600),
            gzip: false,
            layout,
            s3: S3Options::default(),
        }
    }

    fn files(dir: &std::path::Path) -> Vec<(String, String)> {
        let scan = crate::source::archive::scan(dir).unwrap();
        scan.files
            .iter()
            .map(|f| {
                let rel = f.path.strip_prefix(dir).unwrap().display().to_string();
                (rel, std::fs::read_to_string(&f.path).unwrap())
            })
            .collect()
    }

    #[test]
    fn objects_rotate_at_flush_size_and_on_offset_jumps_and_are_written_at_flush() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = Archiver::open(&dir.path().display().to_string(), opts(2, ArchiveLayout::Default)).unwrap();
        for (o, b) in [(0, "a"), (1, "b"), (2, "c"), (5, "f")] {
            a.send(&rec(0, o, b.as_bytes())).unwrap();
        }
        // 0,1 closed at flush size; 2 closed by the jump to 5; 5 still open.
        assert_eq!(files(dir.path()).len(), 2);
        a.flush().unwrap();
        let got = files(dir.path());
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "topics/p.pin/partition=0/p.pin+0+0000000000.json",
                "topics/p.pin/partition=0/p.pin+0+0000000002.json",
                "topics/p.pin/partition=0/p.pin+0+0000000005.json"
            ]
        );
        assert_eq!(got[0].1, "a\nb\n");
        // The open object grows under the same name at the next flush.
        a.send(&rec(0, 6, b"g")).unwrap();
        a.flush().unwrap();
        let got = files(dir.path());
        assert_eq!(got.len(), 3);
        assert_eq!(got[2].1, "f\ng\n");
    }

    #[test]
    fn the_hourly_layout_names_the_records_hour_and_rotation_closes_quiet_objects() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = opts(100, ArchiveLayout::Hourly);
        o.rotate = Duration::ZERO;
        let mut a = Archiver::open(&dir.path().display().to_string(), o).unwrap();
        a.send(&rec(1, 10, b"x")).unwrap();
        a.flush().unwrap();
        a.send(&rec(1, 11, b"y")).unwrap();
        a.flush().unwrap();
        let got = files(dir.path());
        assert_eq!(
            got.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            [
                "topics/p.pin/year=2024/month=01/day=05/hour=13/p.pin+1+0000000010.json",
                "topics/p.pin/year=2024/month=01/day=05/hour=13/p.pin+1+0000000011.json"
            ]
        );
    }
}
