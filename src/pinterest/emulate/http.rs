//! Sends the emulator's deliveries over HTTP exactly as the seeds' scripts
//! did: `user_posting_emulation.py` POSTs one record per request to the
//! Kafka REST Proxy (`/topics/<prefix>.pin|geo|user`, Content-Type
//! `application/vnd.kafka.json.v2+json`, body `{"records": [{"value": row}]}`),
//! and `user_posting_emulation_streaming.py` PUTs one record per request to
//! the Kinesis API (`/streams/streaming-<prefix>-pin|geo|user/record`,
//! `{"StreamName", "Data": row, "PartitionKey"}`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{Emulator, TOPICS};

#[derive(Debug, thiserror::Error)]
pub enum HttpEmulateError {
    #[error("{url}: HTTP {status}: {body}")]
    Status { url: String, status: u16, body: String },
    #[error("{url}: {message} (after {attempts} attempts)")]
    Transport {
        url: String,
        message: String,
        attempts: u32,
    },
}

/// Where and how to send.
#[derive(Debug, Clone)]
pub struct HttpTarget {
    /// Base URL, e.g. `http://127.0.0.1:8082` (an API Gateway invoke URL
    /// with its stage works the same).
    pub url: String,
    /// Kinesis-style PUTs instead of REST Proxy POSTs.
    pub kinesis: bool,
    /// Bearer token, when the server requires one.
    pub token: Option<String>,
}

/// Sends deliveries at up to `rate` records/s (0 = as fast as possible) until
/// `posts` posts are out (None = forever) or `stop` is set. Returns the
/// number of records sent.
pub fn post(
    em: &Emulator,
    target: &HttpTarget,
    prefix: &str,
    posts: Option<u64>,
    rate: f64,
    resend: f64,
    stop: &AtomicBool,
) -> Result<u64, HttpEmulateError> {
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).build();
    let base = target.url.trim_end_matches('/');
    let started = Instant::now();
    let mut sent = 0u64;
    for d in em.deliveries(posts.unwrap_or(u64::MAX), resend) {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        for (t, row) in TOPICS.iter().zip([&d.pin, &d.geo, &d.user]) {
            let (method, url, content_type, body) = if target.kinesis {
                let stream = format!("streaming-{prefix}-{t}");
                let body =
                    format!("{{\"StreamName\": \"{stream}\", \"Data\": {row}, \"PartitionKey\": \"partition-1\"}}");
                (
                    "PUT",
                    format!("{base}/streams/{stream}/record"),
                    "application/json",
                    body,
                )
            } else {
                (
                    "POST",
                    format!("{base}/topics/{prefix}.{t}"),
                    "application/vnd.kafka.json.v2+json",
                    format!("{{\"records\": [{{\"value\": {row}}}]}}"),
                )
            };
            send(&agent, method, &url, content_type, target.token.as_deref(), &body)?;
            sent += 1;
        }
        if rate > 0.0 {
            let due = Duration::from_secs_f64(sent as f64 / rate);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    Ok(sent)
}

/// One request; transport errors (connection refused while the server
/// starts, a reset) are retried with backoff, HTTP errors are not.
fn send(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    content_type: &str,
    token: Option<&str>,
    body: &str,
) -> Result<(), HttpEmulateError> {
    let mut backoff = Duration::from_millis(100);
    let attempts = 8;
    for attempt in 1..=attempts {
        let mut req = agent.request(method, url).set("Content-Type", content_type);
        if let Some(t) = token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        match req.send_string(body) {
            Ok(_) => return Ok(()),
            Err(ureq::Error::Status(status, resp)) => {
                return Err(HttpEmulateError::Status {
                    url: url.to_string(),
                    status,
                    body: resp.into_string().unwrap_or_default(),
                })
            }
            Err(ureq::Error::Transport(e)) => {
                if attempt == attempts {
                    return Err(HttpEmulateError::Transport {
                        url: url.to_string(),
                        message: e.to_string(),
                        attempts,
                    });
                }
                tracing::warn!("{url}: {e}; retrying in {backoff:?}");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(3));
            }
        }
    }
    unreachable!("the last attempt returns")
}
