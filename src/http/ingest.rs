//! Ingest routes: the Kafka REST Proxy v2 (`POST /topics/{topic}`, JSON
//! embedded format) and the seeds' API Gateway front of Kinesis
//! (`PUT /streams/{stream}/record|records`), both produced to Kafka.
//!
//! Keys: a record without a key is keyed by its join key as the topology
//! says: the source reading the topic names its key field and the raw
//! fields renamed into it (`Source::raw_key`: `ind`, or pin's `index`), so
//! one key's records land on the same partition number of every topic
//! (co-partitioned; murmur2 like Java clients). Kinesis records are keyed
//! the same way (the seeds send one constant PartitionKey, which would put
//! everything on one partition); the PartitionKey is used only when the
//! data has no key field. Stream names come from `pinterest::stream_topic`.
//!
//! Replies follow Confluent's REST Proxy (offsets; `{"error_code","message"}`
//! with 40401 unknown topic, 40402 unknown partition, 415, 42201 bad record,
//! 413 too large) and Kinesis (`SequenceNumber` = offset, `ShardId` =
//! partition).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use base64::Engine as _;
use serde_json::{json, Value as J};

use super::{body_error, ApiError, AppState};
use crate::kafka::producer::{self, Producer};
use crate::kafka::KafkaOptions;

/// The ingest producer's linger (overridable with --kafka-config linger.ms=N).
/// A request waits for its acks, so the linger adds to every request (the
/// seeds' script sends one record per request, in sequence); some linger
/// lets concurrent requests share produce batches. Measured against tansu,
/// 100-record requests over 32 connections: 620 req/s with 0 ms, 1,817 with
/// 1 ms, 1,838 with 5 ms.
const LINGER_MS: &str = "1";

/// The Kafka side of the ingest routes.
pub struct Ingest {
    opts: KafkaOptions,
    /// Created on the first ingest request: an idle producer costs the live
    /// loop's host about 13 MB and some broker traffic (measured).
    producer: OnceLock<Arc<Producer>>,
    /// Topic -> partition count, from the last metadata fetch.
    topics: Mutex<(Option<Instant>, HashMap<String, i32>)>,
}

impl Ingest {
    /// Checks the producer settings now (a bad property fails at start), but
    /// creates the producer only when ingest is used.
    pub fn new(opts: &KafkaOptions) -> Result<Ingest, rdkafka::error::KafkaError> {
        drop(Self::create(opts)?);
        Ok(Ingest {
            opts: opts.clone(),
            producer: OnceLock::new(),
            topics: Mutex::new((None, HashMap::new())),
        })
    }

    fn create(opts: &KafkaOptions) -> Result<Producer, rdkafka::error::KafkaError> {
        Producer::create(
            opts,
            &[
                // As Java clients (and so the REST Proxy) place keyed records.
                ("partitioner", "murmur2_random"),
                ("linger.ms", LINGER_MS),
            ],
        )
    }

    fn producer(&self) -> Result<&Arc<Producer>, ApiError> {
        if let Some(p) = self.producer.get() {
            return Ok(p);
        }
        let p = Self::create(&self.opts).map_err(|e| unavailable(&format!("Kafka producer: {e}")))?;
        Ok(self.producer.get_or_init(|| Arc::new(p)))
    }

    /// Fetches topic metadata at most once a second.
    async fn refresh(&self, force: bool) -> Result<HashMap<String, i32>, ApiError> {
        {
            let t = self.topics.lock().map_err(|_| unavailable("topic cache poisoned"))?;
            let fresh = t.0.is_some_and(|at| at.elapsed() < Duration::from_secs(1));
            if fresh || (!force && t.0.is_some()) {
                return Ok(t.1.clone());
            }
        }
        let producer = self.producer()?.clone();
        let md = tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(None, Duration::from_secs(5))
                .map(|md| {
                    md.topics()
                        .iter()
                        .filter(|t| t.error().is_none() && !t.name().starts_with("__"))
                        .map(|t| (t.name().to_string(), t.partitions().len() as i32))
                        .collect::<HashMap<String, i32>>()
                })
        })
        .await
        .map_err(|e| unavailable(&format!("metadata task: {e}")))?
        .map_err(|e| unavailable(&format!("Kafka metadata: {e}")))?;
        let mut t = self.topics.lock().map_err(|_| unavailable("topic cache poisoned"))?;
        *t = (Some(Instant::now()), md.clone());
        Ok(md)
    }

    /// Partition count of `topic`, or 404 40401.
    async fn partitions(&self, topic: &str) -> Result<i32, ApiError> {
        if let Some(&n) = self.refresh(false).await?.get(topic) {
            return Ok(n);
        }
        self.refresh(true)
            .await?
            .get(topic)
            .copied()
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, 40401, format!("Topic not found: {topic}")))
    }

    /// Produces records in order; the reply per record is (partition, offset)
    /// or the delivery error.
    async fn produce(&self, topic: &str, records: Vec<Outgoing>) -> Vec<Result<(i32, i64), String>> {
        let producer = match self.producer() {
            Ok(p) => p,
            Err(e) => return records.iter().map(|_| Err(e.message.clone())).collect(),
        };
        let now = chrono::Utc::now().timestamp_millis().to_string();
        let mut futures = Vec::with_capacity(records.len());
        for r in &records {
            let out = producer::Outgoing {
                topic,
                key: r.key.as_deref(),
                payload: r.payload.as_deref(),
                partition: r.partition,
                headers: vec![(producer::PRODUCED_MS_HEADER, now.clone())],
            };
            // Enqueued now, so the order of records is kept.
            futures.push(producer.send_acked(&out).await.map_err(|e| e.to_string()));
        }
        let mut out = Vec::with_capacity(futures.len());
        for f in futures {
            out.push(match f {
                Ok(f) => match f.await {
                    Ok(delivered) => delivered,
                    Err(_) => Err("producer closed".to_string()),
                },
                Err(e) => Err(e),
            });
        }
        out
    }
}

fn unavailable(what: &str) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, 503, what.to_string())
}

struct Outgoing {
    payload: Option<Vec<u8>>,
    key: Option<Vec<u8>>,
    partition: Option<i32>,
}

fn ingest(state: &AppState) -> Result<&Ingest, ApiError> {
    state
        .0
        .ingest
        .as_ref()
        .ok_or_else(|| ApiError::not_found("ingest is not enabled: this process has no Kafka producer"))
}

fn media_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
}

/// The join key of a record value: the first of `fields` (the source's
/// raw key fields) that holds a number or a string, as key bytes.
fn key_of(value: &J, fields: &[crate::model::value::Name]) -> Option<Vec<u8>> {
    let key = fields.iter().find_map(|f| value.get(&**f))?;
    match key {
        J::Number(_) | J::String(_) => serde_json::to_vec(key).ok(),
        _ => None,
    }
}

/// The raw key fields of the source reading `topic` (none: not a source).
fn key_fields(state: &AppState, topic: &str) -> Vec<crate::model::value::Name> {
    state
        .0
        .topo
        .source_of_topic(topic)
        .map(|s| s.raw_key.clone())
        .unwrap_or_default()
}

fn parse_json(body: &[u8]) -> Result<J, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("body is not valid JSON: {e}")))
}

/// `GET /topics`
pub async fn topics(State(state): State<AppState>) -> Result<Json<J>, ApiError> {
    let mut names: Vec<String> = ingest(&state)?.refresh(true).await?.into_keys().collect();
    names.sort();
    Ok(Json(json!(names)))
}

/// `POST /topics/{topic}`
pub async fn produce(
    State(state): State<AppState>,
    Path(topic): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<J>, ApiError> {
    let ing = ingest(&state)?;
    match media_type(&headers).as_deref() {
        Some("application/vnd.kafka.json.v2+json" | "application/json") => {}
        other => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                415,
                format!(
                    "HTTP 415 Unsupported Media Type: {}; use application/vnd.kafka.json.v2+json (the JSON embedded format)",
                    other.unwrap_or("no Content-Type")
                ),
            ))
        }
    }
    let body = body.map_err(body_error)?;
    let partitions = ing.partitions(&topic).await?;
    let doc = parse_json(&body)?;
    let bad = |m: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, 42201, m);
    let Some(records) = doc.get("records").and_then(J::as_array) else {
        return Err(bad("expected {\"records\": [{\"value\": ...}, ...]}".into()));
    };
    if records.is_empty() {
        return Err(bad("`records` is empty".into()));
    }
    if let Some(k) = doc.as_object().and_then(|o| o.keys().find(|k| *k != "records")) {
        return Err(bad(format!(
            "unrecognized field `{k}` (schemas are not supported: JSON embedded format only)"
        )));
    }
    let keys = key_fields(&state, &topic);
    let mut out = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        let Some(obj) = r.as_object() else {
            return Err(bad(format!("records[{i}] is not an object")));
        };
        if let Some(k) = obj
            .keys()
            .find(|k| !matches!(k.as_str(), "value" | "key" | "partition"))
        {
            return Err(bad(format!("records[{i}]: unrecognized field `{k}`")));
        }
        let Some(value) = obj.get("value") else {
            return Err(bad(format!("records[{i}] has no `value`")));
        };
        let partition = match obj.get("partition") {
            None | Some(J::Null) => None,
            Some(p) => match p.as_i64() {
                Some(p) if (0..partitions as i64).contains(&p) => Some(p as i32),
                Some(p) => {
                    return Err(ApiError::new(
                        StatusCode::NOT_FOUND,
                        40402,
                        format!(
                            "Partition not found: {topic} has partitions 0..{}, records[{i}] asks for {p}",
                            partitions - 1
                        ),
                    ))
                }
                None => return Err(bad(format!("records[{i}].partition is not an integer"))),
            },
        };
        let key = match obj.get("key") {
            None | Some(J::Null) => key_of(value, &keys),
            Some(k) => serde_json::to_vec(k).ok(),
        };
        let payload = (!value.is_null()).then(|| serde_json::to_vec(value).unwrap_or_default());
        out.push(Outgoing {
            payload,
            key,
            partition,
        });
    }
    let results = ing.produce(&topic, out).await;
    let ok = results.iter().filter(|r| r.is_ok()).count() as u64;
    state.0.live.metrics.ingested.with_label_values(&["rest"]).inc_by(ok);
    let offsets: Vec<J> = results
        .into_iter()
        .map(|r| match r {
            Ok((p, o)) => json!({"partition": p, "offset": o, "error_code": null, "error": null}),
            // Confluent's per-record codes: 1 retriable, 2 not; a delivery
            // that failed after librdkafka's own retries may work later.
            Err(e) => json!({"partition": null, "offset": null, "error_code": 1, "error": e}),
        })
        .collect();
    Ok(Json(
        json!({"offsets": offsets, "key_schema_id": null, "value_schema_id": null}),
    ))
}

/// The topic of a Kinesis-style stream name, for the topology's kinds.
fn stream_topic(state: &AppState, stream: &str) -> Option<String> {
    crate::pinterest::stream_topic(stream, &state.0.topo.topic_kinds())
}

/// `GET /streams` (Kinesis ListStreams shape).
pub async fn streams(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<J>, ApiError> {
    if let Some(bad) = params
        .keys()
        .find(|k| !matches!(k.as_str(), "ExclusiveStartStreamName" | "Limit"))
    {
        return Err(ApiError::bad_request(format!(
            "unknown parameter `{bad}`; expected ExclusiveStartStreamName, Limit"
        )));
    }
    let limit = match params.get("Limit") {
        None => 100,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=10_000).contains(&n) => n,
            _ => return Err(ApiError::bad_request(format!("Limit `{l}`: expected 1 to 10000"))),
        },
    };
    let topics = ingest(&state)?.refresh(true).await?;
    let names = stream_names(&state, topics.keys());
    let after = params.get("ExclusiveStartStreamName").map(String::as_str);
    let (page, more) = page_after(&names, after, limit);
    Ok(Json(json!({"StreamNames": page, "HasMoreStreams": more})))
}

/// The Kinesis-style stream names of the source topics, sorted.
fn stream_names<'a>(state: &AppState, topics: impl Iterator<Item = &'a String>) -> Vec<String> {
    let kinds = state.0.topo.topic_kinds();
    let mut names: Vec<String> = topics
        .filter_map(|t| crate::pinterest::stream_name(t, &kinds))
        .collect();
    names.sort();
    names
}

/// ListStreams paging: the names after `after` (exclusive), at most `limit`.
fn page_after(names: &[String], after: Option<&str>, limit: usize) -> (Vec<String>, bool) {
    let rest: Vec<&String> = names.iter().filter(|n| after.is_none_or(|a| n.as_str() > a)).collect();
    let more = rest.len() > limit;
    (rest.into_iter().take(limit).cloned().collect(), more)
}

/// `GET /streams/{stream}`: DescribeStream, one shard per partition.
pub async fn describe_stream(State(state): State<AppState>, Path(stream): Path<String>) -> Result<Json<J>, ApiError> {
    let not_found = || {
        ApiError::not_found(format!(
            "stream `{stream}` not found: streams are named streaming-<prefix>-{}",
            state.0.topo.topic_kinds().join("|")
        ))
    };
    let topic = stream_topic(&state, &stream).ok_or_else(not_found)?;
    let n = ingest(&state)?.partitions(&topic).await.map_err(|_| not_found())?;
    let shards: Vec<J> = (0..n)
        .map(|p| {
            json!({
                "ShardId": shard(p),
                "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": "340282366920938463463374607431768211455"},
                "SequenceNumberRange": {"StartingSequenceNumber": "0"}
            })
        })
        .collect();
    Ok(Json(json!({"StreamDescription": {
        "StreamName": stream,
        "StreamARN": format!("arn:aws:kinesis:local:000000000000:stream/{stream}"),
        "StreamStatus": "ACTIVE",
        "StreamModeDetails": {"StreamMode": "PROVISIONED"},
        "Shards": shards,
        "HasMoreShards": false,
        "RetentionPeriodHours": 24,
        "EncryptionType": "NONE",
        "KafkaTopic": topic,
    }})))
}

fn kinesis_checks(
    state: &AppState,
    headers: &HeaderMap,
    stream: &str,
    body: Result<Bytes, BytesRejection>,
) -> Result<(String, J), ApiError> {
    match media_type(headers).as_deref() {
        None | Some("application/json" | "application/x-amz-json-1.1") => {}
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                415,
                format!("unsupported Content-Type {other}; send application/json"),
            ))
        }
    }
    let body = body.map_err(body_error)?;
    let topic = stream_topic(state, stream).ok_or_else(|| {
        ApiError::not_found(format!(
            "stream `{stream}` not found: streams are named streaming-<prefix>-{}",
            state.0.topo.topic_kinds().join("|")
        ))
    })?;
    let doc = parse_json(&body)?;
    if !doc.is_object() {
        return Err(ApiError::bad_request("body must be a JSON object"));
    }
    if let Some(name) = doc.get("StreamName") {
        if name.as_str() != Some(stream) {
            return Err(ApiError::bad_request(format!(
                "StreamName {name} does not match the path's stream `{stream}`"
            )));
        }
    }
    Ok((topic, doc))
}

/// One Kinesis record's Data (the JSON row, or base64 of it) and key.
fn kinesis_record(
    data: Option<&J>,
    pkey: Option<&J>,
    keys: &[crate::model::value::Name],
    what: &str,
) -> Result<Outgoing, ApiError> {
    let Some(data) = data.filter(|d| !d.is_null()) else {
        return Err(ApiError::bad_request(format!("{what}: `Data` is required")));
    };
    let Some(pkey) = pkey.and_then(J::as_str).filter(|k| !k.is_empty() && k.len() <= 256) else {
        return Err(ApiError::bad_request(format!(
            "{what}: `PartitionKey` is required (a string of 1 to 256 characters)"
        )));
    };
    let (payload, row) = match data {
        J::String(s) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|_| ApiError::bad_request(format!("{what}: `Data` is a string but not base64")))?;
            let row = serde_json::from_slice::<J>(&bytes).ok();
            (bytes, row)
        }
        other => (serde_json::to_vec(other).unwrap_or_default(), Some(other.clone())),
    };
    let key = row
        .as_ref()
        .and_then(|r| key_of(r, keys))
        .unwrap_or_else(|| pkey.as_bytes().to_vec());
    Ok(Outgoing {
        payload: Some(payload),
        key: Some(key),
        partition: None,
    })
}

fn shard(p: i32) -> String {
    format!("shardId-{p:012}")
}

/// `PUT /streams/{stream}/record`
pub async fn put_record(
    State(state): State<AppState>,
    Path(stream): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<J>, ApiError> {
    let ing = ingest(&state)?;
    let (topic, doc) = kinesis_checks(&state, &headers, &stream, body)?;
    let keys = key_fields(&state, &topic);
    let rec = kinesis_record(doc.get("Data"), doc.get("PartitionKey"), &keys, "record")?;
    ing.partitions(&topic).await?;
    match ing.produce(&topic, vec![rec]).await.pop() {
        Some(Ok((p, o))) => {
            state.0.live.metrics.ingested.with_label_values(&["kinesis"]).inc();
            Ok(Json(json!({"SequenceNumber": o.to_string(), "ShardId": shard(p)})))
        }
        Some(Err(e)) => Err(unavailable(&format!("record not delivered to Kafka: {e}"))),
        None => Err(unavailable("record not delivered to Kafka")),
    }
}

/// `PUT /streams/{stream}/records`: `{"records":[{"data","partition-key"}]}`
/// as the seeds' API Gateway took it, or Kinesis' own
/// `{"Records":[{"Data","PartitionKey"}]}`.
pub async fn put_records(
    State(state): State<AppState>,
    Path(stream): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<J>, ApiError> {
    let ing = ingest(&state)?;
    let (topic, doc) = kinesis_checks(&state, &headers, &stream, body)?;
    let (list, data, pkey) = match (doc.get("records"), doc.get("Records")) {
        (Some(l), None) => (l, "data", "partition-key"),
        (None, Some(l)) => (l, "Data", "PartitionKey"),
        _ => {
            return Err(ApiError::bad_request(
                "expected `records` (or Kinesis' `Records`), an array",
            ))
        }
    };
    let Some(list) = list.as_array().filter(|l| !l.is_empty() && l.len() <= 500) else {
        return Err(ApiError::bad_request("records must be an array of 1 to 500 records"));
    };
    let keys = key_fields(&state, &topic);
    let mut out = Vec::with_capacity(list.len());
    for (i, r) in list.iter().enumerate() {
        out.push(kinesis_record(
            r.get(data),
            r.get(pkey),
            &keys,
            &format!("records[{i}]"),
        )?);
    }
    ing.partitions(&topic).await?;
    let results = ing.produce(&topic, out).await;
    let failed = results.iter().filter(|r| r.is_err()).count();
    state
        .0
        .live
        .metrics
        .ingested
        .with_label_values(&["kinesis"])
        .inc_by((results.len() - failed) as u64);
    let records: Vec<J> = results
        .into_iter()
        .map(|r| match r {
            Ok((p, o)) => json!({"SequenceNumber": o.to_string(), "ShardId": shard(p)}),
            Err(e) => json!({"ErrorCode": "InternalFailure", "ErrorMessage": e}),
        })
        .collect();
    Ok(Json(json!({"FailedRecordCount": failed, "Records": records})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_map_to_topics() {
        let kinds = ["pin", "geo", "user"];
        let stream_topic = |s: &str| crate::pinterest::stream_topic(s, &kinds);
        assert_eq!(
            stream_topic("streaming-129a67850695-pin").as_deref(),
            Some("129a67850695.pin")
        );
        assert_eq!(stream_topic("streaming-a-b-user").as_deref(), Some("a-b.user"));
        assert_eq!(stream_topic("streaming--pin"), None);
        assert_eq!(stream_topic("streaming-x-dlq"), None);
        assert_eq!(stream_topic("x-pin"), None);
    }

    #[test]
    fn list_streams_pages_after_the_exclusive_start() {
        let names: Vec<String> = ["streaming-a-geo", "streaming-a-pin", "streaming-a-user"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(page_after(&names, None, 2), (names[..2].to_vec(), true));
        assert_eq!(
            page_after(&names, Some("streaming-a-pin"), 2),
            (names[2..].to_vec(), false)
        );
        assert_eq!(page_after(&names, Some("zzz"), 5), (vec![], false));
    }

    #[test]
    fn records_are_keyed_by_ind_or_index() {
        // The key fields come from the product topology's pin source.
        let topo = crate::load_topology(crate::PINTEREST_TOPOLOGY).unwrap();
        let keys = topo.source_of_topic("p.pin").unwrap().raw_key.clone();
        let ind_key = |v: &J| key_of(v, &keys);
        assert_eq!(ind_key(&json!({"ind": 7})), Some(b"7".to_vec()));
        assert_eq!(ind_key(&json!({"index": 7528, "title": "t"})), Some(b"7528".to_vec()));
        assert_eq!(ind_key(&json!({"title": "t"})), None);
        assert_eq!(ind_key(&json!({"ind": {"x": 1}})), None);
    }
}
