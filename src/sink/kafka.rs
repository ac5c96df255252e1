//! Dead letters to a Kafka topic: the raw record as the value, the reason
//! and origin in `pinstream.*` headers. The topic is created (one
//! partition) when missing and the cluster allows it.
//!
//! Invariant: [`Sink::flush`] returns only when every letter sent so far is
//! delivered; a failed delivery fails the flush, so the commit that would
//! cover its position is not made.

use std::path::PathBuf;
use std::time::Duration;

use super::{DeadLetter, Sink, SinkError};
use crate::kafka::producer::{Outgoing, Producer};
use crate::kafka::KafkaOptions;

/// Where the live daemon's dead letters go (`--dlq`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DlqTarget {
    /// A Kafka topic (created with one partition if missing and allowed).
    Topic(String),
    /// JSON lines appended to a file (for clusters where users may create
    /// only their own topics).
    File(PathBuf),
    /// Counted (metrics, summary) and not kept.
    Off,
}

impl DlqTarget {
    /// `off`, `file:PATH`, or a topic name (`topic:NAME` also accepted).
    pub fn parse(s: &str) -> DlqTarget {
        if s == "off" {
            DlqTarget::Off
        } else if let Some(p) = s.strip_prefix("file:") {
            DlqTarget::File(PathBuf::from(p))
        } else {
            DlqTarget::Topic(s.strip_prefix("topic:").unwrap_or(s).to_string())
        }
    }

    pub fn describe(&self) -> String {
        match self {
            DlqTarget::Topic(t) => format!("topic `{t}`"),
            DlqTarget::File(p) => format!("file {}", p.display()),
            DlqTarget::Off => "nowhere (counted only)".into(),
        }
    }

    /// Opens the sink of this target (creating a missing topic).
    pub fn open(&self, kafka: &KafkaOptions) -> Result<Box<super::DeadLetterSink<'static>>, SinkError> {
        Ok(match self {
            DlqTarget::Topic(t) => Box::new(KafkaDlq::open(kafka, t)?),
            DlqTarget::File(p) => Box::new(super::file::FileSink::append(p)?),
            DlqTarget::Off => Box::new(super::Discard),
        })
    }
}

pub struct KafkaDlq {
    topic: String,
    producer: Producer,
}

impl KafkaDlq {
    pub fn open(kafka: &KafkaOptions, topic: &str) -> Result<KafkaDlq, SinkError> {
        let producer = Producer::create(kafka, &[]).map_err(|source| SinkError::Kafka {
            topic: topic.into(),
            source,
        })?;
        ensure_topic(&producer, kafka, topic)?;
        Ok(KafkaDlq {
            topic: topic.into(),
            producer,
        })
    }
}

impl Sink<DeadLetter<'_>> for KafkaDlq {
    fn send(&mut self, dl: &DeadLetter<'_>) -> Result<(), SinkError> {
        let out = Outgoing {
            topic: &self.topic,
            payload: Some(dl.record),
            headers: vec![
                ("pinstream.reason", dl.reason.to_string()),
                ("pinstream.topic", dl.topic.to_string()),
                ("pinstream.partition", dl.partition.to_string()),
                ("pinstream.offset", dl.offset.to_string()),
            ],
            ..Default::default()
        };
        self.producer.send(&out).map_err(|source| SinkError::Kafka {
            topic: self.topic.clone(),
            source,
        })
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.producer
            .flush(Duration::from_secs(30))
            .map_err(|source| SinkError::Kafka {
                topic: self.topic.clone(),
                source,
            })?;
        match self.producer.failed() {
            0 => Ok(()),
            failed => Err(SinkError::Undelivered {
                topic: self.topic.clone(),
                failed,
            }),
        }
    }
}

/// Makes sure the dead-letter topic exists: creates it (one partition) when
/// missing and the cluster allows it.
fn ensure_topic(producer: &Producer, kafka: &KafkaOptions, topic: &str) -> Result<(), SinkError> {
    // Metadata of all topics: asking for one by name lets a broker with
    // auto-creation create it (a producer's request does).
    let exists = || {
        producer
            .client()
            .fetch_metadata(None, Duration::from_secs(5))
            .map(|md| {
                md.topics()
                    .iter()
                    .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
            })
            .unwrap_or(false)
    };
    if exists() {
        return Ok(());
    }
    tracing::info!("dead-letter topic `{topic}` is missing: creating it with 1 partition");
    let reason = match crate::kafka::create_topics(kafka, &[topic.to_string()], 1) {
        Ok(()) => {
            // Creation is asynchronous on some brokers: wait until it shows.
            for _ in 0..50 {
                if exists() {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            "created, but it does not show in the metadata".to_string()
        }
        Err(e) => e.to_string(),
    };
    Err(SinkError::NoTopic {
        topic: topic.into(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(DlqTarget::parse("off"), DlqTarget::Off);
        assert_eq!(
            DlqTarget::parse("file:/tmp/d.jsonl"),
            DlqTarget::File("/tmp/d.jsonl".into())
        );
        assert_eq!(DlqTarget::parse("p.dlq"), DlqTarget::Topic("p.dlq".into()));
        assert_eq!(DlqTarget::parse("topic:off"), DlqTarget::Topic("off".into()));
    }
}
