//! `/openapi.json`: the API as OpenAPI 3.0, built from [`super::ROUTES`] so
//! it cannot drift from the router (a test checks every documented route is
//! served and every served route documented).

use serde_json::{json, Map, Value};

use super::ROUTES;

/// Query parameters per route.
fn query_params(path: &str) -> Vec<Value> {
    let p = |name: &str, desc: &str| json!({"name": name, "in": "query", "required": false, "description": desc, "schema": {"type": "string"}});
    let time = "event time: epoch seconds, YYYY-MM-DD, YYYY-MM-DD HH:MM:SS or RFC 3339 (windowed stores only)";
    match path {
        "/v1/queries/{name}" => vec![p("from", time), p("to", time)],
        "/streams" => vec![
            p("ExclusiveStartStreamName", "list the streams after this one (paging)"),
            p("Limit", "most streams to list, 1 to 10000 (default 100)"),
        ],
        "/v1/stores/{store}" => vec![
            p(
                "key",
                "group values, comma-separated, matched as text (a prefix of the group columns)",
            ),
            p(
                "q",
                "quantiles, comma-separated numbers in [0, 1] (quantile stores only; default 0.5)",
            ),
            p("from", time),
            p("to", time),
        ],
        _ => vec![],
    }
}

fn body(path: &str) -> Option<Value> {
    match path {
        "/topics/{topic}" => Some(json!({
            "required": true,
            "content": {"application/vnd.kafka.json.v2+json": {"schema": {
                "type": "object", "required": ["records"],
                "properties": {"records": {"type": "array", "items": {"type": "object", "required": ["value"],
                    "properties": {"value": {}, "key": {}, "partition": {"type": "integer"}}}}}
            }}}
        })),
        "/streams/{stream}/record" | "/streams/{stream}/record#post" => Some(json!({
            "required": true,
            "content": {"application/json": {"schema": {
                "type": "object", "required": ["Data", "PartitionKey"],
                "properties": {"StreamName": {"type": "string"}, "Data": {}, "PartitionKey": {"type": "string"}}
            }}}
        })),
        "/streams/{stream}/records" => Some(json!({
            "required": true,
            "content": {"application/json": {"schema": {
                "type": "object",
                "properties": {"records": {"type": "array", "items": {"type": "object",
                    "properties": {"data": {}, "partition-key": {"type": "string"}}}}}
            }}}
        })),
        _ => None,
    }
}

/// The document; `token` says whether the server requires its bearer token
/// (then the guarded routes say so; without one, nothing is protected).
pub fn document(token: bool) -> Value {
    let mut paths = Map::new();
    for r in ROUTES {
        let mut params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        params.extend(query_params(r.path));
        let error = json!({"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
        let mut op = json!({
            "summary": r.summary,
            "parameters": params,
            "responses": {"200": {"description": "OK"}, "4XX": error.clone(), "503": error.clone()},
        });
        if r.guarded && token {
            op["security"] = json!([{"bearer": []}]);
            op["responses"]["401"] = error.clone();
        }
        if let Some(b) = body(r.path) {
            op["requestBody"] = b;
        }
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        entry[r.method.to_ascii_lowercase()] = op;
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "pinstream", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Live answers of the Pinterest pipeline, REST Proxy v2 and Kinesis-style ingest, operations"},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "properties": {"error_code": {"type": "integer"}, "message": {"type": "string"}}}}
        }
    })
}
