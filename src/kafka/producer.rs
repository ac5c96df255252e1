//! The one Kafka producer of pinstream: dead letters, HTTP ingest and the
//! emulator all send through [`Producer`].
//!
//! - A full librdkafka queue is back-pressure, not an error: sends wait and
//!   retry ([`Producer::send`] blocking, [`Producer::send_acked`] async).
//! - Every failed delivery is counted ([`Producer::failed`]); a caller that
//!   must not lose records (the dead-letter sink) flushes and checks the
//!   count before it lets a commit cover them.
//! - [`Producer::send_acked`] also reports each record's (partition,
//!   offset), for the REST Proxy's reply.

use std::time::Duration;

use rdkafka::client::Client;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer as _, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;

use super::{KafkaContext, KafkaOptions};

/// The header pinstream's producers stamp with the send time (ms): the
/// daemon measures end-to-end latency from it (some brokers report fetch
/// time as the record timestamp).
pub const PRODUCED_MS_HEADER: &str = "pinstream.produced_ms";

/// Where a waited-for delivery is reported: (partition, offset) or the error.
pub type Ack = tokio::sync::oneshot::Sender<Result<(i32, i64), String>>;

/// One record to send.
#[derive(Debug, Default, Clone)]
pub struct Outgoing<'a> {
    pub topic: &'a str,
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
    /// `None`: the partitioner decides.
    pub partition: Option<i32>,
    pub headers: Vec<(&'a str, String)>,
}

impl Outgoing<'_> {
    fn record(&self, ack: Option<Ack>) -> BaseRecord<'_, [u8], [u8], Box<Option<Ack>>> {
        let mut r = BaseRecord::with_opaque_to(self.topic, Box::new(ack));
        if let Some(k) = self.key {
            r = r.key(k);
        }
        if let Some(p) = self.payload {
            r = r.payload(p);
        }
        if let Some(p) = self.partition {
            r = r.partition(p);
        }
        if !self.headers.is_empty() {
            let mut h = OwnedHeaders::new_with_capacity(self.headers.len());
            for (key, value) in &self.headers {
                h = h.insert(Header {
                    key,
                    value: Some(value.as_str()),
                });
            }
            r = r.headers(h);
        }
        r
    }
}

pub struct Producer {
    inner: ThreadedProducer<KafkaContext>,
}

fn queue_full(e: &KafkaError) -> bool {
    matches!(e, KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull))
}

impl Producer {
    /// A producer with pinstream's `defaults` for this use; the user's
    /// properties still win.
    pub fn create(opts: &KafkaOptions, defaults: &[(&str, &str)]) -> Result<Producer, KafkaError> {
        Ok(Producer {
            inner: opts.client_config_with(defaults).create_with_context(opts.context())?,
        })
    }

    /// Enqueues a record, waiting while the queue is full.
    pub fn send(&self, out: &Outgoing<'_>) -> Result<(), KafkaError> {
        let mut record = out.record(None);
        loop {
            match self.inner.send(record) {
                Ok(()) => return Ok(()),
                Err((e, r)) if queue_full(&e) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(e),
            }
        }
    }

    /// Enqueues a record now (so records keep their order) and returns
    /// where its delivery will be reported; waits (async) while the queue
    /// is full.
    pub async fn send_acked(
        &self,
        out: &Outgoing<'_>,
    ) -> Result<tokio::sync::oneshot::Receiver<Result<(i32, i64), String>>, KafkaError> {
        loop {
            let (tx, rx) = tokio::sync::oneshot::channel();
            match self.inner.send(out.record(Some(tx))) {
                Ok(()) => return Ok(rx),
                Err((e, _)) if queue_full(&e) => tokio::time::sleep(Duration::from_millis(5)).await,
                Err((e, _)) => return Err(e),
            }
        }
    }

    /// Waits until every record sent so far is delivered or failed.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.inner.flush(timeout)
    }

    /// Deliveries that failed since the producer was created.
    pub fn failed(&self) -> u64 {
        self.inner.context().failed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The client (metadata).
    pub fn client(&self) -> &Client<KafkaContext> {
        self.inner.client()
    }
}
