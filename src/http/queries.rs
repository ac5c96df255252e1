//! `/v1/queries` and `/v1/stores`: answers and raw aggregate rows from the
//! live state.
//!
//! Every read is computed on the blocking pool under the query semaphore and
//! cached by the store generation it was computed at: if a commit landed
//! while computing, the result is returned but not cached.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value as Json_};

use super::{ApiError, AppState};
use crate::model::value::Value;
use crate::query::{self, TimeRange};

/// Parses an event-time bound: epoch seconds, `YYYY-MM-DD`,
/// `YYYY-MM-DD HH:MM:SS`, `YYYY-MM-DDTHH:MM:SS` or RFC 3339.
pub fn parse_time(s: &str) -> Option<i64> {
    if let Ok(n) = s.parse::<i64>() {
        return Some(n);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp());
    }
    for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc().timestamp());
        }
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp())
}

fn range_of(params: &HashMap<String, String>, windowed: bool, what: &str) -> Result<TimeRange, ApiError> {
    let mut range = TimeRange::default();
    for (name, slot) in [("from", &mut range.from), ("to", &mut range.to)] {
        if let Some(v) = params.get(name) {
            if !windowed {
                return Err(ApiError::bad_request(format!(
                    "{what} is not windowed: `{name}` does not apply (windowed ones are marked in /v1/queries and /v1/stores)"
                )));
            }
            *slot = Some(parse_time(v).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "`{name}={v}`: expected epoch seconds, YYYY-MM-DD, YYYY-MM-DD HH:MM:SS or RFC 3339"
                ))
            })?);
        }
    }
    if let (Some(f), Some(t)) = (range.from, range.to) {
        if f >= t {
            return Err(ApiError::bad_request("`from` must be before `to`"));
        }
    }
    Ok(range)
}

fn check_params(params: &HashMap<String, String>, allowed: &[&str]) -> Result<(), ApiError> {
    match params.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::bad_request(format!(
            "unknown parameter `{k}`; this route takes: {}",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

fn json_response(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Computes `f` on the blocking pool (one query slot), through the cache.
///
/// One computation per key at a time. While it runs, other requests get the
/// previous answer if there is one (a whole earlier commit, never half of
/// one) instead of waiting: measured, 32 connections recomputing in turn
/// after each commit put p99 at 100 ms, and waiting for one computation at
/// 13 ms. Only the first request of a key ever waits.
async fn cached(
    state: &AppState,
    key: String,
    f: impl FnOnce(&crate::state::store::Store) -> Result<Json_, ApiError> + Send + 'static,
) -> Result<Response, ApiError> {
    let inner = state.0.clone();
    let Some(store) = inner.live.store().cloned() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            503,
            "the state is not open yet; see /ready",
        ));
    };
    let poisoned = || ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, 500, "query cache poisoned");
    let slot = {
        let mut c = inner.cache.lock().map_err(|_| poisoned())?;
        if c.len() > 4096 && !c.contains_key(&key) {
            c.clear(); // bounded: distinct from/to pairs could grow it forever
        }
        c.entry(key).or_default().clone()
    };
    let current = || slot.value.lock().map(|v| v.clone()).map_err(|_| poisoned());
    let last = current()?;
    if let Some((g, body)) = &last {
        if *g == store.generation() {
            return Ok(json_response(body.clone()));
        }
    }
    let _computing = match (slot.computing.try_lock(), last) {
        (Ok(guard), _) => guard,
        (Err(_), Some((_, stale))) => return Ok(json_response(stale)),
        (Err(_), None) => {
            let guard = slot.computing.lock().await;
            if let Some((_, body)) = current()? {
                return Ok(json_response(body));
            }
            guard
        }
    };
    let _permit = inner
        .query_slots
        .acquire()
        .await
        .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, 503, "shutting down"))?;
    let (body, g0) = tokio::task::spawn_blocking(move || {
        let g0 = store.generation();
        let v = f(&store)?;
        let body = Bytes::from(serde_json::to_vec(&v).unwrap_or_default());
        // If a commit raced with the read, the answer is still one whole
        // commit's state, but it is cached as stale (generation 0 never matches after a write).
        Ok::<_, ApiError>((body, if g0 == store.generation() { g0 } else { 0 }))
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            500,
            format!("query task failed: {e}"),
        )
    })??;
    *slot.value.lock().map_err(|_| poisoned())? = Some((g0, body.clone()));
    Ok(json_response(body))
}

fn store_error(e: crate::state::store::StoreError) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, 500, format!("state: {e}"))
}

/// `GET /v1/queries`
pub async fn list(State(state): State<AppState>) -> Json<Json_> {
    let topo = &state.0.topo;
    let list: Vec<Json_> = topo
        .queries
        .iter()
        .map(|q| {
            let agg = &topo.aggregates[q.aggregate];
            json!({
                "name": q.name,
                "description": q.description,
                "kind": q.kind,
                "store": agg.name,
                "windowed": agg.window.is_some(),
                "columns": q.columns.iter().map(|(_, n)| n.clone()).collect::<Vec<_>>(),
                "answer": topo.answers.iter().any(|&i| topo.queries[i].name == q.name),
            })
        })
        .collect();
    Json(Json_::Array(list))
}

/// `GET /v1/queries/{name}?from=&to=`
pub async fn query(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let topo = state.0.topo.clone();
    let Some(qi) = topo.queries.iter().position(|q| q.name == name) else {
        let known: Vec<&str> = topo.queries.iter().map(|q| q.name.as_str()).collect();
        return Err(ApiError::not_found(format!(
            "unknown query `{name}`; known: {}",
            known.join(", ")
        )));
    };
    check_params(&params, &["from", "to"])?;
    let windowed = topo.aggregates[topo.queries[qi].aggregate].window.is_some();
    let range = range_of(&params, windowed, &format!("query `{name}`"))?;
    let key = format!("q/{name}/{:?}/{:?}", range.from, range.to);
    cached(&state, key, move |store| {
        let rows = query::run(store, &topo, &topo.queries[qi], range).map_err(store_error)?;
        Ok(query::rows_json(&rows))
    })
    .await
}

/// `GET /v1/stores`
pub async fn stores(State(state): State<AppState>) -> Json<Json_> {
    let list: Vec<Json_> = state
        .0
        .topo
        .aggregates
        .iter()
        .map(|a| {
            json!({
                "name": a.name,
                "description": a.description,
                "function": a.function,
                "group_by": a.group_by.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
                "columns": a.columns,
                "windowed": a.window.is_some(),
                "window_seconds": a.window.as_ref().map(|(_, w)| w.size),
            })
        })
        .collect();
    Json(Json_::Array(list))
}

/// `GET /v1/stores/{store}?key=a,b&q=0.5,0.9&from=&to=`
pub async fn store(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let topo = state.0.topo.clone();
    let Some(ai) = topo.aggregates.iter().position(|a| a.name == name) else {
        let known: Vec<&str> = topo.aggregates.iter().map(|a| a.name.as_str()).collect();
        return Err(ApiError::not_found(format!(
            "unknown store `{name}`; known: {}",
            known.join(", ")
        )));
    };
    check_params(&params, &["key", "q", "from", "to"])?;
    let agg = &topo.aggregates[ai];
    let range = range_of(&params, agg.window.is_some(), &format!("store `{name}`"))?;
    let quantiles = agg.function.imp().takes_quantile();
    let qs: Vec<f64> = match params.get("q") {
        Some(_) if !quantiles => {
            return Err(ApiError::bad_request(format!(
                "store `{name}` is a {:?} store: `q` applies to quantile stores only",
                agg.function
            )))
        }
        Some(list) => list
            .split(',')
            .map(|x| x.trim().parse::<f64>().ok().filter(|q| (0.0..=1.0).contains(q)))
            .collect::<Option<Vec<f64>>>()
            .filter(|v| !v.is_empty() && v.len() <= 32)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "`q={list}`: expected up to 32 numbers in [0, 1], comma-separated"
                ))
            })?,
        None => vec![0.5],
    };
    let key: Option<Vec<String>> = params.get("key").map(|k| k.split(',').map(str::to_string).collect());
    if let Some(k) = &key {
        if k.len() > agg.group_by.len() {
            return Err(ApiError::bad_request(format!(
                "`key` has {} parts but store `{name}` is grouped by {} ({})",
                k.len(),
                agg.group_by.len(),
                agg.group_by
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let cache_key = format!("s/{name}/{key:?}/{qs:?}/{:?}/{:?}", range.from, range.to);
    cached(&state, cache_key, move |store| {
        let agg = &topo.aggregates[ai];
        let rows = query::aggregate_rows_at(store, agg, range, &qs).map_err(store_error)?;
        let g = agg.group_by.len();
        let text = |v: &Value| match v {
            Value::Str(s) => s.to_string(),
            other => other.to_string(),
        };
        let mut columns: Vec<String> = agg.columns.clone();
        if quantiles {
            columns.pop();
            columns.extend(qs.iter().map(|q| format!("q{q}")));
        }
        let out: Vec<Json_> = rows
            .iter()
            .filter(|r| {
                key.as_ref()
                    .is_none_or(|k| k.iter().zip(&r[..g]).all(|(want, v)| *want == text(v)))
            })
            .map(|r| {
                let mut m = Map::new();
                for (c, v) in columns.iter().zip(r) {
                    m.insert(c.clone(), serde_json::to_value(v).unwrap_or(Json_::Null));
                }
                Json_::Object(m)
            })
            .collect();
        Ok(json!({"store": agg.name, "columns": columns, "rows": out}))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn time_bounds_parse_in_every_documented_form() {
        assert_eq!(parse_time("1598586767"), Some(1598586767));
        assert_eq!(parse_time("2020-08-28 03:52:47"), Some(1598586767));
        assert_eq!(parse_time("2020-08-28T03:52:47"), Some(1598586767));
        assert_eq!(parse_time("2020-08-28T03:52:47Z"), Some(1598586767));
        assert_eq!(parse_time("2020-08-28"), Some(1598572800));
        assert_eq!(parse_time("yesterday"), None);
    }
}
