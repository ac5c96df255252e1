//! Writes deliveries as a Confluent S3-sink archive (spec §5).
//!
//! Records get a random partition (producers send no key), offsets count up
//! per partition, and every `flush_size` records of a partition become one
//! object `topics/<topic>/<dirs>/<topic>+<p>+<start, 10 digits>.json[.gz]`.
//! Partial files are flushed at the end (a real connector would wait).

use std::io::Write;
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Object compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    None,
    Gzip,
    /// Alternate plain and gzip objects (to exercise both readers).
    Mixed,
}

/// Directories between `topics/<topic>/` and the object name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Layout {
    /// `partition=<p>/` (DefaultPartitioner)
    Default,
    /// `year=YYYY/month=MM/day=DD/hour=HH/` (TimeBasedPartitioner)
    Hourly,
}

#[derive(Debug, Clone)]
pub struct WriterOptions {
    pub dir: PathBuf,
    pub partitions: u32,
    pub flush_size: usize,
    pub compression: Compression,
    pub layout: Layout,
    pub seed: u64,
}

struct Part {
    next_offset: i64,
    start: i64,
    buf: Vec<u8>,
    count: usize,
}

pub struct ArchiveWriter {
    opts: WriterOptions,
    topics: Vec<String>,
    parts: Vec<Vec<Part>>,
    rng: ChaCha8Rng,
    files: u64,
    /// Synthetic wall clock for the hourly layout (seconds since epoch).
    clock: i64,
    pub records: u64,
    pub bytes: u64,
}

impl ArchiveWriter {
    pub fn new(opts: WriterOptions, topics: Vec<String>) -> std::io::Result<Self> {
        std::fs::create_dir_all(opts.dir.join("topics"))?;
        let parts = topics
            .iter()
            .map(|_| {
                (0..opts.partitions.max(1))
                    .map(|_| Part {
                        next_offset: 0,
                        start: 0,
                        buf: Vec::new(),
                        count: 0,
                    })
                    .collect()
            })
            .collect();
        Ok(ArchiveWriter {
            rng: ChaCha8Rng::seed_from_u64(opts.seed ^ 0xA5C1),
            opts,
            topics,
            parts,
            files: 0,
            clock: 1_704_459_600, // 2024-01-05T13:00:00Z
            records: 0,
            bytes: 0,
        })
    }

    /// Appends one record to topic `t` (index into the topic list).
    pub fn push(&mut self, t: usize, json: &str) -> std::io::Result<()> {
        let p = self.rng.gen_range(0..self.parts[t].len());
        self.clock += 1;
        let part = &mut self.parts[t][p];
        if part.count == 0 {
            part.start = part.next_offset;
        }
        part.buf.extend_from_slice(json.as_bytes());
        part.buf.push(b'\n');
        part.count += 1;
        part.next_offset += 1;
        self.records += 1;
        if part.count >= self.opts.flush_size.max(1) {
            self.flush(t, p)?;
        }
        Ok(())
    }

    fn flush(&mut self, t: usize, p: usize) -> std::io::Result<()> {
        let topic = self.topics[t].clone();
        let part = &mut self.parts[t][p];
        if part.count == 0 {
            return Ok(());
        }
        let gzip = match self.opts.compression {
            Compression::None => false,
            Compression::Gzip => true,
            Compression::Mixed => self.files % 2 == 1,
        };
        let mut dir = self.opts.dir.join("topics").join(&topic);
        match self.opts.layout {
            Layout::Default => dir.push(format!("partition={p}")),
            Layout::Hourly => {
                let dt = chrono::DateTime::from_timestamp(self.clock, 0).unwrap_or_default();
                dir.push(dt.format("year=%Y/month=%m/day=%d/hour=%H").to_string());
            }
        }
        std::fs::create_dir_all(&dir)?;
        let name = format!("{topic}+{p}+{:010}.json{}", part.start, if gzip { ".gz" } else { "" });
        let data = std::mem::take(&mut part.buf);
        part.count = 0;
        let path = dir.join(name);
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
        if gzip {
            let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
            gz.write_all(&data)?;
            gz.finish()?.flush()?;
        } else {
            f.write_all(&data)?;
            f.flush()?;
        }
        self.bytes += std::fs::metadata(&path)?.len();
        self.files += 1;
        Ok(())
    }

    /// Flushes every partial file; returns the number of objects written.
    pub fn finish(mut self) -> std::io::Result<u64> {
        for t in 0..self.parts.len() {
            for p in 0..self.parts[t].len() {
                self.flush(t, p)?;
            }
        }
        Ok(self.files)
    }

    pub fn dir(&self) -> &Path {
        &self.opts.dir
    }
}
