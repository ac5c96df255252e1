//! Where the live daemon's dead letters go: a Kafka topic (created when
//! missing and the cluster allows it), a JSON-lines file, or nowhere
//! (counted only).
//!
//! Invariant: [`DlqSink::flush`] returns only when every letter sent so far
//! is durable in its target; the daemon calls it before the commit that
//! covers the letters' positions, so a committed position never loses its
//! letter.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};

use crate::kafka::{KafkaContext, KafkaOptions};
use crate::live::{LiveError, LiveOptions};

/// Where the live daemon's dead letters go.
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
}

/// The open dead-letter output of a run.
pub(crate) enum DlqSink {
    Topic {
        topic: String,
        producer: ThreadedProducer<KafkaContext>,
        failed: Arc<std::sync::atomic::AtomicU64>,
    },
    File {
        path: PathBuf,
        out: crate::pipeline::FileDeadLetters,
    },
    Off,
}

impl DlqSink {
    pub(crate) fn open(opts: &LiveOptions) -> Result<DlqSink, LiveError> {
        Ok(match &opts.dlq {
            DlqTarget::Topic(topic) => {
                let ctx = opts.kafka.context();
                let failed = ctx.failed.clone();
                DlqSink::Topic {
                    topic: topic.clone(),
                    producer: opts.kafka.client_config().create_with_context(ctx)?,
                    failed,
                }
            }
            DlqTarget::File(path) => DlqSink::File {
                path: path.clone(),
                out: crate::pipeline::FileDeadLetters::append(path).map_err(|source| LiveError::DeadLetterFile {
                    path: path.clone(),
                    source,
                })?,
            },
            DlqTarget::Off => DlqSink::Off,
        })
    }

    pub(crate) fn send(
        &mut self,
        reason: &str,
        topic: &str,
        partition: i32,
        offset: i64,
        payload: &[u8],
    ) -> Result<(), LiveError> {
        match self {
            DlqSink::Topic {
                topic: dlq, producer, ..
            } => {
                let (ps, os) = (partition.to_string(), offset.to_string());
                let headers = OwnedHeaders::new()
                    .insert(Header {
                        key: "pinstream.reason",
                        value: Some(reason),
                    })
                    .insert(Header {
                        key: "pinstream.topic",
                        value: Some(topic),
                    })
                    .insert(Header {
                        key: "pinstream.partition",
                        value: Some(ps.as_str()),
                    })
                    .insert(Header {
                        key: "pinstream.offset",
                        value: Some(os.as_str()),
                    });
                let record: BaseRecord<'_, (), [u8], ()> = BaseRecord::to(dlq).payload(payload).headers(headers);
                crate::kafka::send_retrying(producer, record)?;
            }
            DlqSink::File { path, out } => {
                use crate::pipeline::DeadLetterSink;
                let dl = crate::pipeline::DeadLetter {
                    reason: reason.to_string(),
                    origin: crate::pipeline::Origin {
                        topic: topic.to_string(),
                        partition,
                        offset,
                        file: None,
                    },
                    record: String::from_utf8_lossy(payload).into_owned(),
                };
                out.send(&dl).map_err(|source| LiveError::DeadLetterFile {
                    path: path.clone(),
                    source,
                })?;
            }
            DlqSink::Off => {}
        }
        Ok(())
    }

    /// Makes every dead letter sent so far durable (before the commit that
    /// covers their positions).
    pub(crate) fn flush(&mut self) -> Result<(), LiveError> {
        match self {
            DlqSink::Topic {
                topic,
                producer,
                failed,
            } => {
                producer.flush(Duration::from_secs(30))?;
                let f = failed.load(Ordering::Relaxed);
                if f > 0 {
                    return Err(LiveError::DeadLetters {
                        topic: topic.clone(),
                        failed: f,
                    });
                }
            }
            DlqSink::File { path, out } => {
                use crate::pipeline::DeadLetterSink;
                out.flush().map_err(|source| LiveError::DeadLetterFile {
                    path: path.clone(),
                    source,
                })?;
            }
            DlqSink::Off => {}
        }
        Ok(())
    }
}

/// Makes sure the dead-letter topic exists: creates it (one partition) when
/// missing and the cluster allows it.
pub(crate) fn ensure_dlq_topic(
    consumer: &BaseConsumer<KafkaContext>,
    kafka: &KafkaOptions,
    topic: &str,
) -> Result<(), LiveError> {
    let exists = |c: &BaseConsumer<KafkaContext>| {
        c.fetch_metadata(Some(topic), Duration::from_secs(5))
            .map(|md| {
                md.topics()
                    .iter()
                    .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
            })
            .unwrap_or(false)
    };
    if exists(consumer) {
        return Ok(());
    }
    tracing::info!("dead-letter topic `{topic}` is missing: creating it with 1 partition");
    match crate::kafka::create_topics(kafka, &[topic.to_string()], 1) {
        Ok(()) => {
            // Creation is asynchronous on some brokers: wait until it shows.
            for _ in 0..50 {
                if exists(consumer) {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(LiveError::NoDlqTopic {
                topic: topic.into(),
                reason: "created, but it does not show in the metadata".into(),
            })
        }
        Err(e) => Err(LiveError::NoDlqTopic {
            topic: topic.into(),
            reason: e.to_string(),
        }),
    }
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
