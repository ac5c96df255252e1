//! Request limits: per route class, body read time, sizes, and JSON errors
//! for everything the router itself refuses.
//!
//! Routes fall into three classes. Ingest (POST/PUT) and reads (queries,
//! stores, topic and stream lists) each have their own number of requests in
//! flight; operations (`/health`, `/ready`, `/metrics`, `/openapi.json`)
//! have none, so health checks never wait behind a flood of ingest. A
//! request that cannot get a turn within [`QUEUE_WAIT`] is answered 503.
//!
//! A body must arrive whole within the body timeout (408 otherwise): a client
//! that sends headers and one byte holds one ingest turn for that long, no
//! more. A `Content-Length` over the limit is answered 413 before any body
//! is read, so `Expect: 100-continue` gets 413, not `100 Continue`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use super::ApiError;

/// How long a request may wait for its class's turn.
pub const QUEUE_WAIT: Duration = Duration::from_secs(2);
/// Longest request target accepted (414 beyond).
pub const MAX_URI: usize = 8 << 10;
/// Most header fields, and most header bytes, accepted (431 beyond).
pub const MAX_HEADERS: usize = 100;
pub const MAX_HEADER_BYTES: usize = 32 << 10;

/// The shared counters of the limits layer.
pub struct Limits {
    pub ingest: Semaphore,
    pub reads: Semaphore,
    pub per_class: usize,
    pub body_limit: usize,
    pub body_timeout: Duration,
}

impl Limits {
    pub fn new(per_class: usize, body_limit: usize, body_timeout: Duration) -> Limits {
        let per_class = per_class.max(1);
        Limits {
            ingest: Semaphore::new(per_class),
            reads: Semaphore::new(per_class),
            per_class,
            body_limit,
            body_timeout,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Operations,
    Ingest,
    Reads,
}

pub fn class_of(method: &Method, path: &str) -> Class {
    match path {
        "/health" | "/ready" | "/metrics" | "/openapi.json" => Class::Operations,
        _ if method == Method::POST || method == Method::PUT => Class::Ingest,
        _ => Class::Reads,
    }
}

/// The first query parameter named twice, if any.
pub fn duplicate_param(query: &str) -> Option<String> {
    let mut seen = std::collections::HashSet::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let name = pair.split('=').next().unwrap_or_default();
        let name = percent_decode(name);
        if !seen.insert(name.clone()) {
            return Some(name);
        }
    }
    None
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The limits middleware (outermost layer but for the request timeout).
pub async fn limit(State(limits): State<Arc<Limits>>, req: Request, next: Next) -> Response {
    if req.uri().to_string().len() > MAX_URI {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            414,
            format!("request target longer than {MAX_URI} bytes"),
        )
        .into_response();
    }
    let header_bytes: usize = req.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    if req.headers().len() > MAX_HEADERS || header_bytes > MAX_HEADER_BYTES {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            431,
            format!("more than {MAX_HEADERS} header fields or {MAX_HEADER_BYTES} header bytes"),
        )
        .into_response();
    }
    if let Some(name) = req.uri().query().and_then(duplicate_param) {
        return ApiError::bad_request(format!("query parameter `{name}` is given more than once")).into_response();
    }
    let class = class_of(req.method(), req.uri().path());
    let sem = match class {
        Class::Operations => None,
        Class::Ingest => Some(&limits.ingest),
        Class::Reads => Some(&limits.reads),
    };
    let _permit = match sem {
        None => None,
        Some(s) => match tokio::time::timeout(QUEUE_WAIT, s.acquire()).await {
            Ok(Ok(p)) => Some(p),
            _ => {
                let what = if class == Class::Ingest { "ingest" } else { "read" };
                return ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    503,
                    format!("busy: {} {what} requests in flight; retry shortly", limits.per_class),
                )
                .into_response();
            }
        },
    };
    let req = if class == Class::Ingest {
        match read_body(&limits, req).await {
            Ok(r) => r,
            Err(e) => return e.into_response(),
        }
    } else {
        req
    };
    json_errors(next.run(req).await).await
}

/// Reads the whole body within the body timeout and size limit.
async fn read_body(limits: &Limits, req: Request) -> Result<Request, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            413,
            format!("request body larger than {} bytes", limits.body_limit),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.body_limit as u64) {
        return Err(too_large());
    }
    let (parts, body) = req.into_parts();
    let read = axum::body::to_bytes(body, limits.body_limit);
    match tokio::time::timeout(limits.body_timeout, read).await {
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            408,
            format!("request body did not arrive within {:?}", limits.body_timeout),
        )),
        Ok(Err(e)) => {
            // to_bytes reports the limit as a LengthLimitError in the chain.
            let mut src: Option<&(dyn std::error::Error + 'static)> = Some(&e);
            while let Some(s) = src {
                if s.is::<http_body_util::LengthLimitError>() {
                    return Err(too_large());
                }
                src = s.source();
            }
            Err(ApiError::bad_request(format!("reading the request body: {e}")))
        }
        Ok(Ok(bytes)) => Ok(Request::from_parts(parts, Body::from(bytes))),
    }
}

/// Turns a plain-text error reply (axum's extractor rejections) into the
/// API's JSON shape; JSON replies pass unchanged.
async fn json_errors(r: Response) -> Response {
    let status = r.status();
    let is_json = r
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return r;
    }
    let text = match axum::body::to_bytes(r.into_body(), 64 << 10).await {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(_) => String::new(),
    };
    let message = if text.trim().is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text.trim().to_string()
    };
    ApiError::new(status, status.as_u16() as u32, message).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_parameters_are_found_after_decoding() {
        assert_eq!(duplicate_param("from=1&to=2"), None);
        assert_eq!(duplicate_param("from=1&from=2").as_deref(), Some("from"));
        assert_eq!(duplicate_param("q=1&%71=2").as_deref(), Some("q"));
        assert_eq!(duplicate_param("&&a=1&"), None);
        assert_eq!(duplicate_param("%zz=1&%"), None);
    }

    #[test]
    fn operations_have_no_class_limit() {
        assert_eq!(class_of(&Method::GET, "/health"), Class::Operations);
        assert_eq!(class_of(&Method::POST, "/topics/x"), Class::Ingest);
        assert_eq!(class_of(&Method::GET, "/v1/queries/x"), Class::Reads);
    }
}
