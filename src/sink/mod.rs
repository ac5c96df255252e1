//! Sinks: where records leave pinstream besides the state.
//!
//! One trait, [`Sink`], with one required method ([`Sink::send`]) and a
//! [`Sink::flush`] that the driver calls before every commit: when `flush`
//! returns, everything sent so far is durable in the sink's target, so a
//! committed source position never loses what its records sent. Sinks
//! carry dead letters ([`DeadLetter`]) and, in the archiver
//! ([`archive::Archiver`]), the raw consumed records (to a directory or S3).
//!
//! Implementations: [`file::FileSink`] (JSON lines), [`kafka::KafkaDlq`] (a
//! topic, reason and origin in headers), [`Discard`] (counted only).

use std::path::PathBuf;

use serde::Serialize;

pub mod archive;
pub mod file;
pub mod kafka;

/// A record that could not be used, with the reason and where it came from.
#[derive(Debug, Clone, Copy)]
pub struct DeadLetter<'a> {
    pub reason: &'a str,
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    /// Archive file, for replay.
    pub file: Option<&'a str>,
    /// The raw record.
    pub record: &'a [u8],
}

/// The JSON-lines form of a dead letter:
/// `{"reason","topic","partition","offset","file","record"}`.
#[derive(Serialize)]
struct DeadLetterLine<'a> {
    reason: &'a str,
    topic: &'a str,
    partition: i32,
    offset: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<&'a str>,
    /// The raw record, as text (lossy if it was not UTF-8).
    record: std::borrow::Cow<'a, str>,
}

impl DeadLetter<'_> {
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(&DeadLetterLine {
            reason: self.reason,
            topic: self.topic,
            partition: self.partition,
            offset: self.offset,
            file: self.file,
            record: String::from_utf8_lossy(self.record),
        })
        .unwrap_or_default()
    }
}

/// Why a sink failed. Every kind is worth a retry (the commit was not
/// made, so nothing is lost), but the supervisor decides.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("dead letters could not be written to {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("dead letters could not be written to `{topic}`: {source}")]
    Kafka {
        topic: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    #[error(
        "dead letters could not be written to `{topic}`: {failed} failed deliveries; state not committed past them"
    )]
    Undelivered { topic: String, failed: u64 },
    #[error(
        "the dead-letter topic `{topic}` does not exist and could not be created ({reason}); \
         create it, or pass --dlq file:PATH (JSON lines) or --dlq off (count only)"
    )]
    NoTopic { topic: String, reason: String },
    #[error("archiving to {target} failed: {message}; state not committed past it")]
    Archive { target: String, message: String },
}

impl SinkError {
    pub fn is_retryable(&self) -> bool {
        !matches!(self, SinkError::NoTopic { .. })
    }
}

/// Where records of kind `T` go.
pub trait Sink<T: ?Sized>: Send {
    fn send(&mut self, item: &T) -> Result<(), SinkError>;

    /// Makes everything sent so far durable (called before each commit).
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Keeps nothing (the driver counts); dead letters without a target.
pub struct Discard;

impl<T: ?Sized> Sink<T> for Discard {
    fn send(&mut self, _item: &T) -> Result<(), SinkError> {
        Ok(())
    }
}

/// The dead-letter sink.
pub type DeadLetterSink<'s> = dyn for<'a> Sink<DeadLetter<'a>> + 's;
