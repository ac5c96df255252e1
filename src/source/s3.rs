//! Archives in the Confluent S3-sink layout, read straight from a bucket.
//!
//! `s3://bucket/prefix` holds `prefix/topics/<topic>/<any dirs>/<topic>+<p>+<start>.json[.gz]`,
//! as MSK Connect's S3 sink writes it. [`S3Source`] is the same
//! [`Source`] as the local [`super::archive::ArchiveSource`], fed by a
//! background pipeline:
//!
//! - **Listing** is streamed: `ListObjectsV2` one page at a time (each
//!   page `start-after` the last key of the one before, asked for while
//!   the objects of the one before are being dispatched), topic by topic,
//!   a bounded number of objects ahead of the driver, so memory does
//!   not grow with the number of objects. The topics are the common
//!   prefixes under `topics/` (one delimiter listing), known before any
//!   object is read, so the topic prefix is resolved as for a directory.
//!   Zero-padded start offsets make key order offset order per partition.
//! - **Fetching** is concurrent and bounded: at most
//!   [`S3Options::max_in_flight`] objects (up to four times that for small
//!   objects, see [`admits`]) and [`S3Options::max_bytes`]
//!   listed bytes are being downloaded or waiting, and objects are handed
//!   to the driver in listing order (decompressed by the worker that
//!   prepares them, as for local files).
//! - **Transient errors** (timeouts, connection failures, 5xx, throttling)
//!   are retried with capped exponential backoff and counted
//!   ([`S3Stats::retries`]); the SDK's own retries are off so that every
//!   retry is counted here. A request still failing after
//!   [`MAX_ATTEMPTS`], or failing for good (403, 404, no such bucket), ends
//!   the replay with an error naming the object or listing.
//! - **Resume**: an object whose whole range (its start offset up to the
//!   next object's start in the same partition) is already in the state is
//!   not downloaded again ([`S3Stats::skipped_done`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::Region;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::Client;
use futures::stream::{FuturesOrdered, StreamExt};

use super::archive::{lines, parse_name};
use super::select::{day_bounds, Excluded, Selection, AFTER_YEARS};
use super::{Batch, Poll, Source, SourceError};
use crate::model::offsets::Positions;

/// Attempts per request before a transient error ends the replay.
pub const MAX_ATTEMPTS: u32 = 8;

#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("not an S3 URL (s3://bucket/prefix): {0}")]
    Url(String),
    #[error("S3 {what}: {message}")]
    Request { what: String, message: String },
    #[error("no topics/<topic>/ directories under {0}")]
    NoTopics(String),
}

/// `s3://bucket/prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    /// Key prefix, empty or ending in `/`.
    pub prefix: String,
}

impl S3Url {
    pub fn parse(s: &str) -> Result<S3Url, S3Error> {
        let rest = s.strip_prefix("s3://").ok_or_else(|| S3Error::Url(s.into()))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() || bucket.contains(['?', '#', ' ']) {
            return Err(S3Error::Url(s.into()));
        }
        let mut prefix = prefix.trim_start_matches('/').to_string();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        Ok(S3Url {
            bucket: bucket.into(),
            prefix,
        })
    }

    pub fn is_s3(s: &str) -> bool {
        s.starts_with("s3://")
    }

    /// The archive root this URL may mean when nothing lies under
    /// `prefix/topics/`: a URL that already names the sink's `topics/`
    /// directory, or one topic's directory in it (a local directory is
    /// accepted at either level too). The root, and the one topic named.
    pub fn root_above_topics(&self) -> Option<(S3Url, Option<String>)> {
        let parts: Vec<&str> = self.prefix.trim_end_matches('/').split('/').collect();
        let at = |n: usize| S3Url {
            bucket: self.bucket.clone(),
            prefix: parts[..n].iter().map(|p| format!("{p}/")).collect(),
        };
        match parts.as_slice() {
            [.., "topics"] => Some((at(parts.len() - 1), None)),
            [.., "topics", topic] if !topic.is_empty() => Some((at(parts.len() - 2), Some(topic.to_string()))),
            _ => None,
        }
    }
}

impl std::fmt::Display for S3Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// How to reach the bucket and how much to have in flight.
#[derive(Debug, Clone)]
pub struct S3Options {
    /// An S3-compatible endpoint (path-style addressing); AWS when `None`.
    pub endpoint: Option<String>,
    /// Region; the AWS chain (env, profile, instance metadata), else us-east-1.
    pub region: Option<String>,
    pub max_in_flight: usize,
    pub max_bytes: u64,
    /// Keys per listing page (S3's maximum is 1,000).
    pub page_size: i32,
    /// First backoff; doubles per attempt, capped at 5 s.
    pub backoff: Duration,
    /// An object that cannot be downloaded (403/404 after it was listed,
    /// retries exhausted) is handed on as a batch with a read error (the
    /// driver reports and dead-letters it) instead of ending the replay
    /// (`--skip-bad-objects`). Listing failures still end it.
    pub skip_bad_objects: bool,
}

/// Objects downloaded at once by default (`--s3-in-flight`): S3-compatible
/// servers answer a GET after tens of ms, so many in flight hide that
/// (against s3s-fs, 100,000 posts took 2.95 s at 16 and 1.65 s at 64).
pub const DEFAULT_IN_FLIGHT: usize = 64;

/// Small objects may have [`SMALL_IN_FLIGHT_FACTOR`] times the in-flight
/// count while all of them together stay under this many listed bytes.
pub const SMALL_IN_FLIGHT_BYTES: u64 = 4 << 20;

/// How far small objects may exceed the in-flight count. With one record
/// per object (flush size 1) a GET's latency is all its cost, so only more
/// of them at once raise objects/s; large objects are bound by bytes and
/// CPU, where more in flight only buys memory. Measured against s3s-fs on
/// this project's machine: 19,146 objects of a few hundred bytes took
/// 20.5-24.5 s at 64 in flight and 14.0-14.5 s at 256; the 1,000,000-post
/// archive (150 KB objects) 13.7-14.3 s at 64 and 14.4-16.2 s at 256, with
/// peak RSS 170-182 against 276-293 MB.
pub const SMALL_IN_FLIGHT_FACTOR: usize = 4;

/// Whether one more object of `size` listed bytes may start downloading
/// while `count` objects of `bytes` listed bytes are in flight (pure):
/// always when nothing is; up to `max_in_flight` objects within
/// `max_bytes`; and beyond that count, up to [`SMALL_IN_FLIGHT_FACTOR`]
/// times it while they total at most [`SMALL_IN_FLIGHT_BYTES`].
pub fn admits(count: usize, bytes: u64, size: u64, max_in_flight: usize, max_bytes: u64) -> bool {
    let after = bytes.saturating_add(size);
    count == 0
        || (after <= max_bytes
            && (count < max_in_flight
                || (count < max_in_flight.saturating_mul(SMALL_IN_FLIGHT_FACTOR) && after <= SMALL_IN_FLIGHT_BYTES)))
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            endpoint: None,
            region: None,
            max_in_flight: DEFAULT_IN_FLIGHT,
            max_bytes: 256 << 20,
            page_size: 1000,
            backoff: Duration::from_millis(100),
            skip_bad_objects: false,
        }
    }
}

/// What the pipeline did (shared with the replay summary).
#[derive(Debug, Default)]
pub struct S3Stats {
    pub objects: AtomicU64,
    pub bytes: AtomicU64,
    /// Bytes of the objects listed so far that are to be downloaded (the
    /// progress bar's total; final once `listing_done`).
    pub to_read: AtomicU64,
    pub listing_done: std::sync::atomic::AtomicBool,
    pub listed: AtomicU64,
    pub pages: AtomicU64,
    pub retries: AtomicU64,
    pub skipped_done: AtomicU64,
    /// Archive objects left out by the selection (`--partitions`, `--from/--to`).
    pub not_selected: AtomicU64,
    /// Of those, objects whose path names no date (with `--from/--to`).
    pub no_date: AtomicU64,
    /// Keys that are not archive objects of their directory, with why.
    pub skipped: Mutex<Vec<String>>,
}

/// Why a request failed, as far as retrying goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Transient,
    Fatal,
}

/// Classifies a failed request: no response at all (timeout, connection
/// refused or reset, a body cut off) is transient, as are 5xx, 429 and
/// S3's throttling codes; other responses (403, 404, 400) are not.
pub fn classify(responded: bool, status: Option<u16>, code: Option<&str>) -> Failure {
    if matches!(
        code,
        Some(
            "SlowDown"
                | "Throttling"
                | "ThrottlingException"
                | "RequestTimeout"
                | "InternalError"
                | "ServiceUnavailable"
        )
    ) {
        return Failure::Transient;
    }
    match status {
        _ if !responded => Failure::Transient,
        Some(s) if s >= 500 || s == 429 || s == 408 => Failure::Transient,
        _ => Failure::Fatal,
    }
}

/// The wait before attempt `attempt + 1` (attempt counts from 1).
pub fn backoff(first: Duration, attempt: u32) -> Duration {
    let cap = Duration::from_secs(5);
    first.saturating_mul(1u32 << attempt.saturating_sub(1).min(16)).min(cap)
}

pub(crate) fn failure_of<E: ProvideErrorMetadata + std::error::Error + 'static>(
    e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> (Failure, String) {
    let (responded, status, code) = match e {
        SdkError::ServiceError(s) => (
            true,
            Some(s.raw().status().as_u16()),
            s.err().code().map(str::to_string),
        ),
        SdkError::ResponseError(r) => (true, Some(r.raw().status().as_u16()), None),
        SdkError::ConstructionFailure(_) => return (Failure::Fatal, format!("{e:?}")),
        _ => {
            let chain = error_chain(e);
            if no_credentials(&chain) {
                return (Failure::Fatal, format!("{chain}\n{NO_CREDENTIALS_HINT}"));
            }
            (false, None, None)
        }
    };
    let message = match (status, &code, e.message()) {
        (Some(s), Some(c), Some(m)) => format!("HTTP {s} {c}: {m}"),
        (Some(s), Some(c), None) => format!("HTTP {s} {c}"),
        (Some(s), None, _) => format!("HTTP {s}"),
        _ => error_chain(e),
    };
    (classify(responded, status, code.as_deref()), message)
}

/// What to do when no credential provider of the AWS chain had any.
const NO_CREDENTIALS_HINT: &str = "no AWS credentials were found: set AWS_ACCESS_KEY_ID and \
     AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (~/.aws/credentials), or run where an instance role provides them";

/// Whether a request failed before it was sent because the credentials
/// chain had nothing (its last provider, the EC2 instance metadata, says
/// why). Not transient: eight attempts only took 11 s to say the same.
fn no_credentials(chain: &str) -> bool {
    chain.contains("error occurred while loading credentials")
        || chain.contains("no providers in chain provided credentials")
}

/// The error and its causes on one line (the SDK's Display is terse).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Builds a client: the AWS credentials chain, the region, and for a
/// custom endpoint path-style addressing. Retries are ours, not the SDK's.
pub async fn client(opts: &S3Options) -> Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(r) = &opts.region {
        loader = loader.region(Region::new(r.clone()));
    }
    let shared = loader.load().await;
    let mut b = aws_sdk_s3::config::Builder::from(&shared)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(120))
                .build(),
        );
    if shared.region().is_none() {
        b = b.region(Region::new("us-east-1"));
    }
    if let Some(ep) = &opts.endpoint {
        b = b.endpoint_url(ep).force_path_style(true);
    }
    Client::from_conf(b.build())
}

/// Runs `op` until it succeeds, fails for good, or runs out of attempts.
pub(crate) async fn with_retries<T, F, Fut>(
    opts: &S3Options,
    stats: &S3Stats,
    what: &str,
    mut op: F,
) -> Result<T, S3Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, (Failure, String)>>,
{
    let mut attempt = 1;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err((Failure::Transient, m)) if attempt < MAX_ATTEMPTS => {
                stats.retries.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("S3 {what}: {m} (attempt {attempt} of {MAX_ATTEMPTS}, retrying)");
                tokio::time::sleep(backoff(opts.backoff, attempt)).await;
                attempt += 1;
            }
            Err((_, message)) => {
                let message = if attempt > 1 {
                    format!("{message} (after {attempt} attempts)")
                } else {
                    message
                };
                return Err(S3Error::Request {
                    what: what.into(),
                    message,
                });
            }
        }
    }
}

/// The topics of an archive: `prefix/topics/<topic>/` common prefixes.
pub async fn list_topics(
    client: &Client,
    url: &S3Url,
    opts: &S3Options,
    stats: &S3Stats,
) -> Result<Vec<String>, S3Error> {
    let base = format!("{}topics/", url.prefix);
    let mut topics = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let what = format!("listing s3://{}/{base}", url.bucket);
        let page = with_retries(opts, stats, &what, || {
            let req = client
                .list_objects_v2()
                .bucket(&url.bucket)
                .prefix(&base)
                .delimiter("/")
                .set_continuation_token(token.clone());
            async move { req.send().await.map_err(|e| failure_of(&e)) }
        })
        .await?;
        for cp in page.common_prefixes() {
            if let Some(t) = cp
                .prefix()
                .and_then(|p| p.strip_prefix(&base))
                .map(|t| t.trim_end_matches('/'))
            {
                if !t.is_empty() {
                    topics.push(t.to_string());
                }
            }
        }
        match page.next_continuation_token() {
            Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
            _ => break,
        }
    }
    if topics.is_empty() {
        return Err(S3Error::NoTopics(url.to_string()));
    }
    topics.sort();
    Ok(topics)
}

/// One archive object of the listing.
#[derive(Debug, Clone)]
struct Object {
    key: String,
    topic: String,
    partition: i32,
    start: i64,
    gzip: bool,
    size: u64,
}

/// A downloaded object, or why it could not be.
/// A downloaded object; or, under [`S3Options::skip_bad_objects`], one the
/// store would not serve, with why (delivered as a batch with a read error).
type Fetched = Result<(Object, Vec<u8>, Option<String>), S3Error>;

/// A download in flight.
type Download = std::pin::Pin<Box<dyn std::future::Future<Output = Fetched> + Send>>;

/// Decides, one listed object at a time, which objects to download: an
/// object is held back until the next object of its partition (or the end
/// of the listing) says where its range ends, so that one whose whole
/// range is already in the state is skipped (a resumed replay).
#[derive(Default)]
struct ResumeFilter {
    done: HashMap<(String, i32), Vec<(i64, i64)>>,
    held: HashMap<(String, i32), Object>,
}

impl ResumeFilter {
    fn covered(&self, o: &Object, end: Option<i64>) -> bool {
        let (Some(end), Some(r)) = (end, self.done.get(&(o.topic.clone(), o.partition))) else {
            return false;
        };
        end > o.start && r.iter().any(|&(a, b)| a <= o.start && end <= b)
    }

    /// Takes the next listed object; returns the objects now decided:
    /// `(object, already done)`.
    fn push(&mut self, o: Object) -> Vec<(Object, bool)> {
        if self.done.is_empty() {
            return vec![(o, false)];
        }
        let k = (o.topic.clone(), o.partition);
        let prev = self.held.insert(k, o.clone());
        match prev {
            Some(p) => {
                let done = self.covered(&p, Some(o.start));
                vec![(p, done)]
            }
            None => Vec::new(),
        }
    }

    /// The objects still held at the end of the listing (never covered:
    /// their end is unknown).
    fn finish(&mut self) -> Vec<(Object, bool)> {
        let mut rest: Vec<Object> = self.held.drain().map(|(_, o)| o).collect();
        rest.sort_by(|a, b| a.key.cmp(&b.key));
        rest.into_iter().map(|o| (o, false)).collect()
    }
}

/// A [`Source`] over an S3 archive. The pipeline starts at
/// [`Source::resume`] (it needs the state's positions).
pub struct S3Source {
    rt: tokio::runtime::Runtime,
    client: Client,
    url: S3Url,
    topics: Vec<String>,
    opts: S3Options,
    pub stats: Arc<S3Stats>,
    select: Selection,
    rx: Option<tokio::sync::mpsc::Receiver<Fetched>>,
}

impl S3Source {
    /// Connects and lists the topics (`topics/<topic>/`).
    pub fn open(url: S3Url, opts: S3Options) -> Result<(S3Source, Vec<String>), S3Error> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("pinstream-s3")
            .enable_all()
            .build()
            .map_err(|e| S3Error::Request {
                what: "starting the S3 runtime".into(),
                message: e.to_string(),
            })?;
        let stats = Arc::new(S3Stats::default());
        let client = rt.block_on(client(&opts));
        let (url, topics) = match rt.block_on(list_topics(&client, &url, &opts, &stats)) {
            Err(S3Error::NoTopics(shown)) => {
                // `s3://bucket/topics` or `s3://bucket/topics/<topic>`: the
                // archive is the directory above.
                let Some((root, one)) = url.root_above_topics() else {
                    return Err(S3Error::NoTopics(shown));
                };
                let mut topics = rt
                    .block_on(list_topics(&client, &root, &opts, &stats))
                    .map_err(|_| S3Error::NoTopics(shown.clone()))?;
                if let Some(t) = one {
                    topics.retain(|x| *x == t);
                    if topics.is_empty() {
                        return Err(S3Error::NoTopics(shown));
                    }
                }
                (root, topics)
            }
            other => (url, other?),
        };
        Ok((
            S3Source {
                rt,
                client,
                url,
                topics: topics.clone(),
                opts,
                stats,
                select: Selection::default(),
                rx: None,
            },
            topics,
        ))
    }

    /// Reads only these topics (the ones the topology has a source for).
    pub fn keep_topics(&mut self, keep: impl Fn(&str) -> bool) {
        self.topics.retain(|t| keep(t));
    }

    /// Reads only the objects `select` admits.
    pub fn select(&mut self, select: Selection) {
        self.select = select;
    }

    fn start(&mut self, positions: &Positions) {
        let mut filter = ResumeFilter::default();
        for ((t, p), r) in positions.all() {
            if self.topics.contains(t) {
                filter.done.insert((t.clone(), *p), r.ranges().to_vec());
            }
        }
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let job = Pump {
            client: self.client.clone(),
            url: self.url.clone(),
            topics: self.topics.clone(),
            opts: self.opts.clone(),
            stats: self.stats.clone(),
            select: self.select.clone(),
            filter,
        };
        self.rt.spawn(job.run(tx));
        self.rx = Some(rx);
    }
}

/// The listing and fetching task.
struct Pump {
    client: Client,
    url: S3Url,
    topics: Vec<String>,
    opts: S3Options,
    stats: Arc<S3Stats>,
    select: Selection,
    filter: ResumeFilter,
}

impl Pump {
    async fn run(mut self, tx: tokio::sync::mpsc::Sender<Fetched>) {
        if let Err(e) = self.list_and_fetch(&tx).await {
            let _ = tx.send(Err(e)).await;
        }
    }

    async fn list_and_fetch(&mut self, tx: &tokio::sync::mpsc::Sender<Fetched>) -> Result<(), S3Error> {
        let mut inflight = FuturesOrdered::new();
        let mut inflight_bytes = 0u64;
        for topic in self.topics.clone() {
            let base = format!("{}topics/{topic}/", self.url.prefix);
            // Pages continue after the last key seen (`start-after`), not by
            // continuation token: a retried or resumed page needs nothing but
            // the key, which cannot expire.
            let mut after: Option<String> = None;
            // A time range over the TimeBasedPartitioner layout lists only
            // the days it meets (a daily job over a years-deep bucket lists
            // one day, not every key): the first key shows the layout.
            let mut stop_at: Option<String> = None;
            if self.select.has_range() {
                let first = self.list_page(&base, None, 1).await?;
                let rel = first
                    .contents()
                    .first()
                    .and_then(|o| o.key())
                    .and_then(|k| k.strip_prefix(&base));
                if let Some((from, to)) = rel.and_then(|r| day_bounds(r, self.select.from, self.select.to)) {
                    after = from.map(|d| format!("{base}{d}"));
                    stop_at = to.map(|d| format!("{base}{d}"));
                }
            }
            // The page after this one, asked for while this one's objects
            // are dispatched (listing and downloading overlap: one page
            // was listed only once the one before was all in flight).
            let mut listed_ahead = None;
            loop {
                let page = match listed_ahead.take() {
                    Some(page) => page,
                    None => self.list_page(&base, after.clone(), self.opts.page_size).await?,
                };
                let mut decided = Vec::new();
                let mut jump = false;
                for obj in page.contents() {
                    let Some(key) = obj.key() else { continue };
                    if stop_at.as_deref().is_some_and(|s| key >= s) {
                        // Past the last day of the range: what follows the
                        // dated keys (another layout) is still listed.
                        jump = true;
                        break;
                    }
                    self.stats.listed.fetch_add(1, Ordering::Relaxed);
                    let name = key.rsplit('/').next().unwrap_or(key);
                    match parse_name(name) {
                        Some((_, partition, start, _)) if self.excluded(partition, start, key) => {}
                        Some((t, partition, start, gzip)) if t == topic => decided.extend(self.filter.push(Object {
                            key: key.to_string(),
                            topic: t,
                            partition,
                            start,
                            gzip,
                            size: obj.size().unwrap_or(0).max(0) as u64,
                        })),
                        Some((t, ..)) => self.skip(format!(
                            "s3://{}/{key}: names topic `{t}` but lies under topics/{topic}/",
                            self.url.bucket
                        )),
                        None if key.ends_with('/') => {} // a "directory" marker
                        None => self.skip(format!(
                            "s3://{}/{key}: name does not match <topic>+<partition>+<startOffset>.json[.gz]",
                            self.url.bucket
                        )),
                    }
                }
                // Where the next page starts (none: the topic is listed).
                let next = if jump {
                    let past = format!("{base}{AFTER_YEARS}");
                    stop_at = None;
                    (after.as_deref() < Some(past.as_str())).then_some(past)
                } else {
                    match page.contents().last().and_then(|o| o.key()) {
                        Some(last) if page.is_truncated() == Some(true) => Some(last.to_string()),
                        _ => None,
                    }
                };
                let dispatched = async {
                    for (o, done) in decided {
                        self.dispatch(o, done, &mut inflight, &mut inflight_bytes, tx).await?;
                    }
                    Ok::<(), S3Error>(())
                };
                let Some(next) = next else {
                    dispatched.await?;
                    break;
                };
                let (ahead, dispatched) = tokio::join!(
                    self.list_page(&base, Some(next.clone()), self.opts.page_size),
                    dispatched
                );
                dispatched?;
                listed_ahead = Some(ahead?);
                after = Some(next);
            }
        }
        for (o, done) in self.filter.finish() {
            self.dispatch(o, done, &mut inflight, &mut inflight_bytes, tx).await?;
        }
        self.stats.listing_done.store(true, Ordering::Relaxed);
        while let Some(r) = inflight.next().await {
            Self::deliver(r, &mut inflight_bytes, tx).await?;
        }
        Ok(())
    }

    /// One page of keys under `base` after `after` (retried; counted).
    async fn list_page(
        &self,
        base: &str,
        after: Option<String>,
        max_keys: i32,
    ) -> Result<aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output, S3Error> {
        let what = format!("listing s3://{}/{base}", self.url.bucket);
        let page = with_retries(&self.opts, &self.stats, &what, || {
            let req = self
                .client
                .list_objects_v2()
                .bucket(&self.url.bucket)
                .prefix(base)
                .max_keys(max_keys)
                .set_start_after(after.clone());
            async move { req.send().await.map_err(|e| failure_of(&e)) }
        })
        .await?;
        self.stats.pages.fetch_add(1, Ordering::Relaxed);
        Ok(page)
    }

    /// Counts and leaves out an object the selection does not admit.
    fn excluded(&self, partition: i32, start: i64, key: &str) -> bool {
        match self.select.admits(partition, start, key) {
            Ok(()) => false,
            Err(why) => {
                self.stats.not_selected.fetch_add(1, Ordering::Relaxed);
                if why == Excluded::NoDate {
                    self.stats.no_date.fetch_add(1, Ordering::Relaxed);
                }
                true
            }
        }
    }

    fn skip(&self, why: String) {
        if let Ok(mut v) = self.stats.skipped.lock() {
            v.push(why);
        }
    }

    async fn dispatch(
        &self,
        o: Object,
        done: bool,
        inflight: &mut FuturesOrdered<Download>,
        inflight_bytes: &mut u64,
        tx: &tokio::sync::mpsc::Sender<Fetched>,
    ) -> Result<(), S3Error> {
        if done {
            self.stats.skipped_done.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        while !admits(
            inflight.len(),
            *inflight_bytes,
            o.size,
            self.opts.max_in_flight,
            self.opts.max_bytes,
        ) {
            if let Some(r) = inflight.next().await {
                Self::deliver(r, inflight_bytes, tx).await?;
            }
        }
        *inflight_bytes += o.size;
        self.stats.to_read.fetch_add(o.size, Ordering::Relaxed);
        let (client, bucket, opts, stats) = (
            self.client.clone(),
            self.url.bucket.clone(),
            self.opts.clone(),
            self.stats.clone(),
        );
        inflight.push_back(Box::pin(async move {
            let what = format!("reading s3://{bucket}/{}", o.key);
            let got = with_retries(&opts, &stats, &what, || {
                let req = client.get_object().bucket(&bucket).key(&o.key);
                async move {
                    let mut resp = req.send().await.map_err(|e| failure_of(&e))?;
                    // Streamed into one buffer of the listed size: one copy
                    // of each byte, no growth (collecting the body and
                    // flattening it copied every object twice, into fresh
                    // memory each time). A body cut off mid-way is
                    // transient: the whole object is requested again.
                    let mut data = Vec::with_capacity(usize::try_from(o.size.min(opts.max_bytes)).unwrap_or(0));
                    while let Some(chunk) = resp.body.next().await {
                        let chunk = chunk.map_err(|e| (Failure::Transient, error_chain(&e)))?;
                        data.extend_from_slice(&chunk);
                    }
                    Ok(data)
                }
            })
            .await;
            match got {
                Ok(data) => Ok((o, data, None)),
                Err(e) if opts.skip_bad_objects => Ok((o, Vec::new(), Some(e.to_string()))),
                Err(e) => Err(e),
            }
        }));
        Ok(())
    }

    /// Hands a finished download to the driver, in listing order. A failed
    /// one ends the pipeline with its error.
    async fn deliver(
        r: Fetched,
        inflight_bytes: &mut u64,
        tx: &tokio::sync::mpsc::Sender<Fetched>,
    ) -> Result<(), S3Error> {
        let (o, data, err) = r?;
        *inflight_bytes = inflight_bytes.saturating_sub(o.size);
        if tx.send(Ok((o, data, err))).await.is_err() {
            // The driver stopped reading (an error elsewhere): stop too.
            return Err(S3Error::Request {
                what: "pipeline".into(),
                message: "the replay stopped".into(),
            });
        }
        Ok(())
    }
}

/// Decompresses an object's bytes (gzip: every member) into `buf`; on a
/// corrupt or cut gzip stream `buf` keeps the whole lines before it.
fn decode(o: &Object, data: &[u8], bucket: &str, buf: &mut Vec<u8>) -> Option<String> {
    buf.clear();
    if !o.gzip {
        buf.extend_from_slice(data);
        return None;
    }
    use std::io::Read;
    buf.reserve(data.len() * 5);
    match flate2::read::MultiGzDecoder::new(data).read_to_end(buf) {
        Ok(_) => None,
        Err(e) => {
            let keep = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            buf.truncate(keep);
            Some(format!("reading s3://{bucket}/{}: {e}", o.key))
        }
    }
}

impl Source for S3Source {
    fn resume(&mut self, state: &Positions) -> Result<(), SourceError> {
        self.start(state);
        Ok(())
    }

    fn poll(&mut self) -> Result<Poll, SourceError> {
        if self.rx.is_none() {
            self.start(&Positions::default());
        }
        let Some(rx) = self.rx.as_mut() else {
            return Ok(Poll::Done);
        };
        match rx.blocking_recv() {
            None => Ok(Poll::Done),
            Some(Err(e)) => Err(SourceError::S3(e)),
            Some(Ok((o, _, Some(why)))) => Ok(Poll::Batch(Batch {
                topic: o.topic.clone(),
                partition: o.partition,
                file: Some(format!("s3://{}/{}", self.url.bucket, o.key).into()),
                read_error: Some(why),
                ..Default::default()
            })),
            Some(Ok((o, data, None))) => {
                self.stats.objects.fetch_add(1, Ordering::Relaxed);
                self.stats.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                let bucket = self.url.bucket.clone();
                let size = data.len() as u64;
                Ok(Poll::Batch(Batch {
                    topic: o.topic.clone(),
                    partition: o.partition,
                    file: Some(format!("s3://{bucket}/{}", o.key).into()),
                    size,
                    weight: if o.gzip { size * 5 } else { size },
                    lines: Some(Box::new(move |each| {
                        if !o.gzip {
                            // Plain JSON lines: read where they were downloaded.
                            for (offset, bytes) in lines(&data, o.start) {
                                each(offset, bytes);
                            }
                            return None;
                        }
                        // The preparing thread's buffer, as for local files.
                        super::archive::BUF.with(|cell| {
                            let mut buf = cell.borrow_mut();
                            let err = decode(&o, &data, &bucket, &mut buf);
                            for (offset, bytes) in lines(&buf, o.start) {
                                each(offset, bytes);
                            }
                            if buf.capacity() > 256 << 20 {
                                *buf = Vec::new();
                            }
                            err
                        })
                    })),
                    ..Default::default()
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Objects in flight until the next one waits, filling from empty with
    /// objects of one size.
    fn in_flight_of(size: u64, max_in_flight: usize, max_bytes: u64) -> usize {
        let mut count = 0;
        while admits(count, count as u64 * size, size, max_in_flight, max_bytes) && count < 100_000 {
            count += 1;
        }
        count
    }

    #[test]
    fn small_objects_get_more_in_flight_and_large_ones_do_not() {
        let max = 256 << 20;
        // Flush size 1 (a record of a few hundred bytes): four times the count.
        assert_eq!(in_flight_of(400, 64, max), 256);
        // The S3 sink's usual objects (flush size 500, ~150 KB): the count.
        assert_eq!(in_flight_of(150_000, 64, max), 64);
        // Between them, the small-bytes bound decides where it stops.
        assert_eq!(in_flight_of(32 << 10, 64, max), 128);
        // The byte bound still binds large objects below the count,
        assert_eq!(in_flight_of(64 << 20, 64, max), 4);
        // but one object is always admitted, however large.
        assert_eq!(in_flight_of(1 << 30, 64, max), 1);
        // `--s3-in-flight 1`: one object at a time once 4 MB are in flight.
        assert_eq!(in_flight_of(150_000, 1, max), 4);
        assert_eq!(in_flight_of(3 << 20, 1, max), 1);
    }

    /// A URL that names the sink's `topics/` directory or one topic in it
    /// means the archive above (as a local directory does).
    #[test]
    fn a_url_at_the_topics_level_points_above_it() {
        let root = |u: &str| {
            S3Url::parse(u)
                .unwrap()
                .root_above_topics()
                .map(|(r, t)| (r.to_string(), t))
        };
        assert_eq!(root("s3://b/topics"), Some(("s3://b/".into(), None)));
        assert_eq!(root("s3://b/x/y/topics/"), Some(("s3://b/x/y/".into(), None)));
        assert_eq!(
            root("s3://b/x/topics/p.pin"),
            Some(("s3://b/x/".into(), Some("p.pin".into())))
        );
        assert_eq!(root("s3://b/x"), None);
        assert_eq!(root("s3://b"), None);
        assert_eq!(root("s3://b/topics/p.pin/partition=0"), None);
    }

    #[test]
    fn urls_parse() {
        let u = S3Url::parse("s3://bucket/some/prefix").unwrap();
        assert_eq!((u.bucket.as_str(), u.prefix.as_str()), ("bucket", "some/prefix/"));
        let u = S3Url::parse("s3://bucket").unwrap();
        assert_eq!((u.bucket.as_str(), u.prefix.as_str()), ("bucket", ""));
        assert_eq!(S3Url::parse("s3://b/p/").unwrap().prefix, "p/");
        assert!(S3Url::parse("s3:///p").is_err());
        assert!(S3Url::parse("/local/dir").is_err());
        assert_eq!(S3Url::parse("s3://b/p").unwrap().to_string(), "s3://b/p/");
    }

    #[test]
    fn transient_failures_are_retried_and_client_errors_are_not() {
        assert_eq!(classify(false, None, None), Failure::Transient); // timeout, reset
        assert_eq!(classify(true, Some(503), Some("SlowDown")), Failure::Transient);
        assert_eq!(classify(true, Some(500), None), Failure::Transient);
        assert_eq!(classify(true, Some(429), None), Failure::Transient);
        assert_eq!(classify(true, Some(400), Some("RequestTimeout")), Failure::Transient);
        assert_eq!(classify(true, Some(403), Some("AccessDenied")), Failure::Fatal);
        assert_eq!(classify(true, Some(404), Some("NoSuchKey")), Failure::Fatal);
        assert_eq!(classify(true, Some(404), Some("NoSuchBucket")), Failure::Fatal);
    }

    /// Regression: with no credentials anywhere, a command retried the
    /// request eight times (11 s) before saying so. The chain as the SDK
    /// printed it then, and a timeout that is still transient.
    #[test]
    fn missing_credentials_are_not_retried() {
        assert!(no_credentials(
            "dispatch failure: other: an error occurred while loading credentials: failed to load IMDS session \
             token: service error: request forbidden: IMDS is disabled or the caller has insufficient permissions."
        ));
        assert!(!no_credentials(
            "dispatch failure: timeout: error trying to connect: deadline has elapsed"
        ));
        assert!(!no_credentials(
            "dispatch failure: io: Connection refused (os error 111)"
        ));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let f = Duration::from_millis(100);
        assert_eq!(backoff(f, 1), Duration::from_millis(100));
        assert_eq!(backoff(f, 2), Duration::from_millis(200));
        assert_eq!(backoff(f, 4), Duration::from_millis(800));
        assert_eq!(backoff(f, 30), Duration::from_secs(5));
    }

    fn obj(p: i32, start: i64) -> Object {
        Object {
            key: format!("topics/t/partition={p}/t+{p}+{start:010}.json"),
            topic: "t".into(),
            partition: p,
            start,
            gzip: false,
            size: 1,
        }
    }

    #[test]
    fn resume_skips_only_objects_whose_whole_range_is_in_the_state() {
        let mut f = ResumeFilter::default();
        f.done.insert(("t".into(), 0), vec![(0, 1000)]);
        let mut out = Vec::new();
        for o in [obj(0, 0), obj(1, 0), obj(0, 500), obj(0, 1000), obj(0, 1500)] {
            out.extend(f.push(o));
        }
        out.extend(f.finish());
        let got: Vec<(i32, i64, bool)> = out.iter().map(|(o, d)| (o.partition, o.start, *d)).collect();
        assert_eq!(
            got,
            [
                (0, 0, true),
                (0, 500, true),
                (0, 1000, false),
                (0, 1500, false),
                (1, 0, false)
            ]
        );
    }

    #[test]
    fn without_positions_objects_pass_straight_through() {
        let mut f = ResumeFilter::default();
        assert_eq!(f.push(obj(0, 0)).len(), 1);
        assert!(f.finish().is_empty());
    }

    #[test]
    fn a_cut_gzip_object_keeps_its_whole_lines_and_names_itself() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, "{\"a\":1}\n".repeat(5000).as_bytes()).unwrap();
        let bytes = gz.finish().unwrap();
        let mut o = obj(0, 0);
        o.gzip = true;
        let mut buf = Vec::new();
        let err = decode(&o, &bytes[..bytes.len() / 2], "b", &mut buf).unwrap();
        assert!(err.contains("s3://b/topics/t/partition=0/"), "{err}");
        assert!(!buf.is_empty() && buf.ends_with(b"\n"));
        assert!(lines(&buf, 0).all(|(_, l)| l == b"{\"a\":1}"));
    }
}
