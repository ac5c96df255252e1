//! The HTTP API of `run` and `demo` (axum): interactive queries over the live
//! state, Kafka REST Proxy v2 and Kinesis-style ingest, `/metrics`,
//! `/health`, `/ready`, `/openapi.json`.
//!
//! Invariants:
//! - every client mistake is a 4xx with a JSON body
//!   `{"error_code": N, "message": "..."}` (the REST Proxy's shape, used by
//!   every route), never a 5xx or a panic; unknown routes and methods too;
//! - queries read committed state only (RocksDB iterators see whole write
//!   batches), run on the blocking pool behind a small semaphore so they
//!   cannot take the cores the live loop needs, and are cached per store
//!   generation (a cached answer is served only while no commit happened);
//! - a bearer token, when configured, guards every route that writes
//!   (POST/PUT) and `/metrics`; reads of answers stay open, like a dashboard.
//!
//! The route table ([`ROUTES`]) is the single list the router, the OpenAPI
//! document and its test are built from.

pub mod ingest;
pub mod limits;
pub mod openapi;
pub mod queries;
pub mod serve;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put, MethodRouter};
use axum::{Json, Router};
use serde_json::json;

use crate::live_handle::LiveHandle;
use crate::topology::Topology;

pub use ingest::Ingest;

/// Settings of the HTTP server.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub addr: SocketAddr,
    /// Bearer token required on write routes and `/metrics` (None: open).
    pub token: Option<String>,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// A request taking longer is answered 503.
    pub timeout: Duration,
    /// Requests in flight at once per class (ingest; reads); more wait
    /// briefly, then get 503. Operations routes are not limited.
    pub concurrency: usize,
    /// Connections one client address may hold at once.
    pub per_client: usize,
    /// Time allowed for a request's headers, and for its body.
    pub read_timeout: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            addr: SocketAddr::from(([127, 0, 0, 1], 8082)),
            token: None,
            body_limit: 4 << 20,
            timeout: Duration::from_secs(30),
            concurrency: 256,
            per_client: 64,
            read_timeout: Duration::from_secs(10),
        }
    }
}

/// A JSON error reply.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: u32,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: u32, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::BAD_REQUEST, 400, message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::NOT_FOUND, 404, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({"error_code": self.code, "message": self.message}));
        let mut r = (self.status, body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

/// Maps a body-reading failure (size limit, broken stream) to a JSON error.
pub fn body_error(e: axum::extract::rejection::BytesRejection) -> ApiError {
    let status = e.status();
    let code = status.as_u16() as u32;
    ApiError::new(status, code, e.body_text())
}

pub(crate) struct Inner {
    pub topo: Arc<Topology>,
    pub live: Arc<LiveHandle>,
    pub ingest: Option<Ingest>,
    pub token: Option<String>,
    /// Query computations in flight at once (the rest wait their turn).
    pub query_slots: tokio::sync::Semaphore,
    /// Cached query answers per request key (see `queries::cached`).
    pub cache: Mutex<HashMap<String, CacheSlot>>,
}

/// One cached answer: (store generation, JSON body), and the lock held
/// while it is being recomputed.
#[derive(Default)]
pub(crate) struct Slot {
    pub value: Mutex<Option<(u64, axum::body::Bytes)>>,
    pub computing: tokio::sync::Mutex<()>,
}

pub(crate) type CacheSlot = Arc<Slot>;

#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Inner>);

/// A route: method, axum path, whether the token guards it, summary, and
/// its handler (the router is built from this table, as is `/openapi.json`).
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub guarded: bool,
    pub summary: &'static str,
    pub handler: fn() -> MethodRouter<AppState>,
}

/// Every route of the API (the router and the OpenAPI document use this).
pub const ROUTES: &[Route] = &[
    Route {
        method: "GET",
        path: "/health",
        guarded: false,
        summary: "Process is alive",
        handler: || get(health),
    },
    Route {
        method: "GET",
        path: "/ready",
        guarded: false,
        summary: "State opened and consuming (503 until then)",
        handler: || get(ready),
    },
    Route {
        method: "GET",
        path: "/openapi.json",
        guarded: false,
        summary: "This API, as OpenAPI 3.0",
        handler: || get(openapi_json),
    },
    Route {
        method: "GET",
        path: "/metrics",
        guarded: true,
        summary: "Prometheus metrics (text format)",
        handler: || get(metrics),
    },
    Route {
        method: "GET",
        path: "/v1/queries",
        guarded: false,
        summary: "The named queries of the topology",
        handler: || get(queries::list),
    },
    Route {
        method: "GET",
        path: "/v1/queries/{name}",
        guarded: false,
        summary: "Rows of a query from the live state (same JSON as replay); windowed queries take from/to",
        handler: || get(queries::query),
    },
    Route {
        method: "GET",
        path: "/v1/stores",
        guarded: false,
        summary: "The aggregate stores",
        handler: || get(queries::stores),
    },
    Route {
        method: "GET",
        path: "/v1/stores/{store}",
        guarded: false,
        summary: "Raw rows of a store; key filters the group, q picks quantiles",
        handler: || get(queries::store),
    },
    Route {
        method: "GET",
        path: "/topics",
        guarded: false,
        summary: "Kafka topics (REST Proxy v2)",
        handler: || get(ingest::topics),
    },
    Route {
        method: "POST",
        path: "/topics/{topic}",
        guarded: true,
        summary: "Produce records to a topic (REST Proxy v2, JSON embedded format)",
        handler: || post(ingest::produce),
    },
    Route {
        method: "GET",
        path: "/streams",
        guarded: false,
        summary: "Kinesis-style streams (streaming-<prefix>-<kind> for each source topic <prefix>.<kind>)",
        handler: || get(ingest::streams),
    },
    Route {
        method: "GET",
        path: "/streams/{stream}",
        guarded: false,
        summary: "Describe a stream (Kinesis DescribeStream through API Gateway)",
        handler: || get(ingest::describe_stream),
    },
    Route {
        method: "POST",
        path: "/streams/{stream}/record",
        guarded: true,
        summary: "Put one record (as PUT; some emulators POST)",
        handler: || post(ingest::put_record),
    },
    Route {
        method: "POST",
        path: "/streams/{stream}/records",
        guarded: true,
        summary: "Put records (as PUT; some emulators POST)",
        handler: || post(ingest::put_records),
    },
    Route {
        method: "PUT",
        path: "/streams/{stream}/record",
        guarded: true,
        summary: "Put one record (Kinesis PutRecord through API Gateway)",
        handler: || put(ingest::put_record),
    },
    Route {
        method: "PUT",
        path: "/streams/{stream}/records",
        guarded: true,
        summary: "Put records (Kinesis PutRecords through API Gateway)",
        handler: || put(ingest::put_records),
    },
];

/// Builds the router. `ingest` is None where there is no Kafka to produce to
/// (the ingest routes then answer 404 saying so).
pub fn router(topo: Arc<Topology>, live: Arc<LiveHandle>, ingest: Option<Ingest>, opts: &HttpOptions) -> Router {
    let slots = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .saturating_sub(1)
        .max(1);
    let state = AppState(Arc::new(Inner {
        topo,
        live,
        ingest,
        token: opts.token.clone(),
        query_slots: tokio::sync::Semaphore::new(slots),
        cache: Mutex::new(HashMap::new()),
    }));
    let timeout = opts.timeout;
    // Two sub-routers from the one table; the token is a layer on the
    // guarded one, so a route is guarded by where it is, not by a lookup.
    let (mut open, mut guarded) = (Router::new(), Router::new());
    for r in ROUTES {
        if r.guarded {
            guarded = guarded.route(r.path, (r.handler)());
        } else {
            open = open.route(r.path, (r.handler)());
        }
    }
    if state.0.token.is_some() {
        guarded = guarded.route_layer(axum::middleware::from_fn_with_state(state.clone(), require_token));
    }
    open.merge(guarded)
        .fallback(|method: Method, uri: axum::http::Uri| async move {
            ApiError::not_found(format!("no route {method} {}; see /openapi.json", uri.path()))
        })
        .method_not_allowed_fallback(|method: Method, uri: axum::http::Uri| async move {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                405,
                format!("{method} is not allowed on {}; see /openapi.json", uri.path()),
            )
        })
        .layer(axum::extract::DefaultBodyLimit::max(opts.body_limit))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(limits::Limits::new(
                opts.concurrency,
                opts.body_limit,
                opts.read_timeout,
            )),
            limits::limit,
        ))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .layer(axum::middleware::from_fn(move |req: Request, next: Next| async move {
            match tokio::time::timeout(timeout, next.run(req)).await {
                Ok(r) => r,
                Err(_) => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    503,
                    format!("request took longer than {timeout:?}"),
                )
                .into_response(),
            }
        }))
        .with_state(state)
}

/// The bearer token, on the guarded sub-router.
async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match &state.0.token {
        Some(token) if !authorized(req.headers(), token) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            401,
            "this route needs `Authorization: Bearer <token>` (the daemon's --http-token)",
        )
        .into_response(),
        _ => next.run(req).await,
    }
}

/// Per-route metrics (bounded labels: the matched route, not the path).
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_string();
    let method = match *req.method() {
        Method::GET | Method::POST | Method::PUT | Method::DELETE | Method::HEAD => req.method().as_str().to_string(),
        _ => "other".to_string(),
    };
    let response = next.run(req).await;
    let m = &state.0.live.metrics;
    m.http_requests
        .with_label_values(&[&route, &method, response.status().as_str()])
        .inc();
    m.http_seconds
        .with_label_values(&[&route])
        .observe(started.elapsed().as_secs_f64());
    response
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn openapi_json(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(openapi::document(state.0.token.is_some()))
}

/// Constant-time comparison of the presented bearer token.
fn authorized(headers: &axum::http::HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            // The scheme is case-insensitive (RFC 7235): "bearer x" too.
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim_start())
        })
    else {
        return false;
    };
    let (a, b) = (given.as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn ready(State(state): State<AppState>) -> Response {
    let live = &state.0.live;
    if live.is_ready() {
        Json(json!({"ready": true})).into_response()
    } else {
        let reason = if live.store().is_none() {
            "state not open yet"
        } else {
            "not consuming (starting, or stopping)"
        };
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"ready": false, "reason": reason})),
        )
            .into_response()
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let live = state.0.live.clone();
    // Measured at scrape time, off the live loop (it reads RocksDB's
    // properties of every column family).
    if let Some(store) = live.store().cloned() {
        let bytes = tokio::task::spawn_blocking(move || store.size_bytes())
            .await
            .unwrap_or(0);
        live.metrics.state_bytes.set(bytes as i64);
    }
    let text = live.metrics.render();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], Body::from(text)).into_response()
}

/// A server running on its own runtime thread.
pub struct Server {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Binds `opts.addr` and serves `app` on a 2-worker runtime; returns once
    /// bound, so a taken port is reported before the daemon starts.
    pub fn start(app: Router, opts: &HttpOptions) -> std::io::Result<Server> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("pinstream-http")
            .enable_all()
            .build()?;
        let listener = rt.block_on(tokio::net::TcpListener::bind(opts.addr))?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let limits = serve::ConnLimits {
            header_timeout: opts.read_timeout,
            per_client: opts.per_client,
        };
        let thread = std::thread::Builder::new()
            .name("pinstream-http".into())
            .spawn(move || {
                let shutdown = async {
                    let _ = rx.await;
                };
                rt.block_on(serve::serve(listener, app, limits, shutdown, Duration::from_secs(2)));
                rt.shutdown_timeout(Duration::from_secs(2));
            })?;
        Ok(Server {
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets requests in flight finish (bounded), joins.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.halt();
    }
}
