//! Sources: where raw records come from, each with its position
//! (topic, partition, offset).
//!
//! One trait, [`Source`], with one required method ([`Source::poll`]) and
//! defaulted hooks; the driver loop (`engine::driver`) is the only caller.
//! Implementations: [`archive::ArchiveSource`] (a local archive directory in
//! the S3-sink layout) and [`kafka::KafkaSource`] (live partitions). A new
//! source is one new file here implementing the trait, as [`s3::S3Source`]
//! (an archive in a bucket) is.
//!
//! Contract:
//! - [`Source::poll`] returns batches of one topic-partition in offset
//!   order, [`Poll::Idle`] when nothing is waiting now (the driver then
//!   commits on its interval), and [`Poll::Done`] at the end (a bounded
//!   source, or a live one told to stop).
//! - Positions are state: a source never decides what was processed. It is
//!   told where the state stands ([`Source::resume`]); the driver skips
//!   every record whose position is already in the state, so a source may
//!   deliver a record twice (a broker re-serving a batch, a re-read
//!   partition) without it counting twice.
//! - [`Source::committed`] tells it what the state now holds durably
//!   (Kafka mirrors it into the consumer group's offsets, for lag tools).

use std::path::PathBuf;

use crate::model::offsets::Positions;

pub mod archive;
pub mod check;
pub mod identity;
pub mod integrity;
pub mod interrupt;
pub mod kafka;
pub mod s3;
pub mod select;

/// A raw record as a source delivers it.
#[derive(Debug, Clone)]
pub struct RawRecord {
    pub offset: i64,
    pub bytes: Vec<u8>,
    /// When the record was produced (ms since the epoch), if known: the
    /// driver measures end-to-end latency from it.
    pub produced_ms: Option<i64>,
}

/// Records not read yet: the worker that prepares the batch calls it with a
/// callback for each record (offset, bytes); it returns a read error, if
/// any (the records before it are delivered). Lets a source hand out files
/// that are read and decompressed in parallel, without copying records.
pub type LineReader = Box<dyn FnOnce(&mut dyn FnMut(i64, &[u8])) -> Option<String> + Send>;

/// A batch of raw records of one topic-partition, in offset order.
#[derive(Default)]
pub struct Batch {
    pub topic: String,
    pub partition: i32,
    /// Archive file the batch was read from, if any.
    pub file: Option<PathBuf>,
    pub records: Vec<RawRecord>,
    /// A problem reading the batch (e.g. a truncated gzip member): the
    /// records before it are still delivered.
    pub read_error: Option<String>,
    /// Input bytes the batch stands for (file size: progress).
    pub size: u64,
    /// When the source received the batch (ms since the epoch), if it is
    /// live: transit time is measured to it.
    pub polled_ms: Option<i64>,
    /// More records, read by the preparing worker (after `records`).
    pub lines: Option<LineReader>,
    /// Estimated decoded bytes (how the driver sizes its groups; 0: the
    /// records' own length).
    pub weight: u64,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("file", &self.file)
            .field("records", &self.records.len())
            .field("read_error", &self.read_error)
            .field("lazy", &self.lines.is_some())
            .finish()
    }
}

/// What a poll found.
#[derive(Debug)]
pub enum Poll {
    Batch(Batch),
    /// Nothing waiting right now.
    Idle,
    /// No more records (end of a bounded source, or told to stop).
    Done,
}

/// Why a source failed, classified for the supervisor.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Archive(#[from] archive::ArchiveError),
    #[error(transparent)]
    S3(#[from] s3::S3Error),
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error(transparent)]
    Store(#[from] crate::state::store::StoreError),
    #[error("topic `{topic}` does not exist on {brokers}: create it (e.g. with 3 partitions) or check --prefix")]
    UnknownTopic { topic: String, brokers: String },
    #[error(
        "refusing to start: the positions in state dir {state_dir} do not belong to these topics:\n{details}\n\
         To re-read every topic from its start into a fresh state, run again with --reset-positions; or use a new --state-dir"
    )]
    SourceMismatch { state_dir: PathBuf, details: String },
    /// SIGINT or SIGTERM (`interrupt.rs`).
    #[error("interrupted (SIGINT/SIGTERM) before the input was read")]
    Interrupted,
}

impl SourceError {
    /// Whether a restart may help (broker trouble) or not (bad input dir).
    pub fn is_retryable(&self) -> bool {
        match self {
            SourceError::Kafka(_) => true,
            SourceError::Store(e) => e.is_retryable(),
            SourceError::Archive(_)
            | SourceError::S3(_)
            | SourceError::UnknownTopic { .. }
            | SourceError::SourceMismatch { .. }
            | SourceError::Interrupted => false,
        }
    }
}

/// Something that yields batches of raw records with their positions.
pub trait Source: Send {
    /// The next batch, or whether there is none now or ever.
    fn poll(&mut self) -> Result<Poll, SourceError>;

    /// Where the state stands: positions already applied (called once,
    /// before the first poll).
    fn resume(&mut self, _state: &Positions) -> Result<(), SourceError> {
        Ok(())
    }

    /// Total input size in bytes, when known (progress).
    fn size_hint(&self) -> Option<u64> {
        None
    }

    /// The state now holds everything before these next offsets durably.
    fn committed(&mut self, _next: &[((String, i32), i64)]) {}
}
