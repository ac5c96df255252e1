//! A topology built in code (no DSL file), run through the engine API with a
//! restart midway, including tumbling windows, retention and event-time
//! ranges. Expected values are worked out by hand in the comments.

use std::sync::Arc;

use pinstream::dsl::*;
use pinstream::engine::prepare::prepare;
use pinstream::engine::Engine;
use pinstream::model::value::Value;
use pinstream::operator::{cast, null_if, parse_count, parse_timestamp};
use pinstream::query::{self, TimeRange};
use pinstream::state::store::Durability;

fn spec() -> TopologySpec {
    let op = |o: OpSpec| o;
    TopologySpec {
        name: "orders".into(),
        answers: vec!["orders_per_region".into(), "biggest".into(), "buyers".into()],
        sources: vec![
            SourceSpec {
                name: "order".into(),
                topic: "${prefix}.orders".into(),
                format: Format::Json,
                key: "id".into(),
                schema: Some(vec!["id".into(), "amount".into(), "at".into(), "buyer".into()]),
                ops: vec![
                    op(OpSpec::Cast(cast::Spec {
                        field: "id".into(),
                        to: CastType::Int,
                        on_error: OnError::Reject,
                    })),
                    op(OpSpec::ParseCount(parse_count::Spec {
                        field: "amount".into(),
                        to: None,
                    })),
                    op(OpSpec::ParseTimestamp(parse_timestamp::Spec {
                        field: "at".into(),
                        formats: vec![],
                    })),
                ],
            },
            SourceSpec {
                name: "ship".into(),
                topic: "${prefix}.shipments".into(),
                format: Format::Json,
                key: "id".into(),
                schema: Some(vec!["id".into(), "region".into()]),
                ops: vec![op(OpSpec::NullIf(null_if::Spec {
                    fields: FieldSet::All("*".into()),
                    values: vec!["".into()],
                }))],
            },
        ],
        join: Some(JoinSpec {
            name: "orders".into(),
            key: "id".into(),
            inputs: vec!["order".into(), "ship".into()],
            ops: vec![],
        }),
        aggregates: vec![
            AggregateSpec::new("per_region", Function::Count, &["region"]),
            AggregateSpec {
                by: Some("amount".into()),
                item: vec!["id".into()],
                ..AggregateSpec::new("biggest_order", Function::MaxBy, &["region"])
            },
            AggregateSpec {
                distinct: vec!["buyer".into()],
                ..AggregateSpec::new("buyers_per_region", Function::DistinctCount, &["region"])
            },
            AggregateSpec {
                window: Some(WindowSpec {
                    field: "at".into(),
                    size: "1h".into(),
                    retention: "2h".into(),
                }),
                ..AggregateSpec::new("hourly", Function::Count, &["region"])
            },
        ],
        queries: vec![
            QuerySpec::new("orders_per_region", "per_region", &["region", "count as orders"]),
            QuerySpec {
                kind: QueryKind::Top,
                ..QuerySpec::new("biggest", "biggest_order", &["region", "id", "amount"])
            },
            QuerySpec::new("buyers", "buyers_per_region", &["region", "count as buyers"]),
            QuerySpec::new("hourly", "hourly", &["region", "count"]),
        ],
    }
}

/// (source, record) in delivery order.
fn input() -> Vec<(usize, &'static str)> {
    vec![
        (
            0,
            r#"{"id": 1, "amount": "2k", "at": "2024-01-01 10:05:00", "buyer": "ann"}"#,
        ),
        (1, r#"{"id": 1, "region": "north"}"#),
        (
            0,
            r#"{"id": 2, "amount": "500", "at": "2024-01-01 10:40:00", "buyer": "bob"}"#,
        ),
        (
            0,
            r#"{"id": 3, "amount": "2k", "at": "2024-01-01 11:10:00", "buyer": "ann"}"#,
        ),
        (1, r#"{"id": 2, "region": "north"}"#),
        (1, r#"{"id": 1, "region": "north"}"#), // re-delivery: no change
        // ---- restart here ----
        (1, r#"{"id": 3, "region": "south"}"#),
        (
            0,
            r#"{"id": 4, "amount": "1.5k", "at": "2024-01-01T12:30:00", "buyer": "cy"}"#,
        ),
        (1, r#"{"id": 4, "region": "south"}"#),
        (1, r#"{"id": 5, "region": ""}"#), // no order for 5; region null anyway
        (
            0,
            r#"{"id": 6, "amount": "9k", "at": "2024-01-01 08:00:00", "buyer": "dee"}"#,
        ), // late for the window
        (1, r#"{"id": 6, "region": "north"}"#),
    ]
}

fn rows(engine: &Engine, name: &str, range: TimeRange) -> Vec<Vec<(String, Value)>> {
    let topo = engine.topology();
    let q = topo.queries.iter().find(|q| q.name == name).unwrap();
    query::run(engine.store(), topo, q, range).unwrap()
}

fn cell(s: &str) -> Value {
    s.parse::<i64>()
        .map(Value::Int)
        .unwrap_or_else(|_| Value::Str(s.into()))
}

fn table(cols: &[&str], rows: &[&[&str]]) -> Vec<Vec<(String, Value)>> {
    rows.iter()
        .map(|r| {
            cols.iter()
                .zip(r.iter())
                .map(|(c, v)| (c.to_string(), cell(v)))
                .collect()
        })
        .collect()
}

#[test]
fn built_in_code_restarted_midway_windows_and_ranges() {
    let topo = Arc::new(spec().build().expect("valid"));
    let dir = tempfile::tempdir().unwrap();
    let feed = |engine: &mut Engine, items: &[(usize, &str)], first_offset: i64| {
        for (i, (src, raw)) in items.iter().enumerate() {
            let offset = first_offset + i as i64;
            let p = prepare(engine.topology(), *src, raw.as_bytes()).unwrap();
            engine.process(*src, &p.key, p.row).unwrap();
            engine.mark("t", 0, offset);
        }
    };
    let all = input();
    {
        let mut engine = Engine::open(topo.clone(), dir.path(), 1000, Durability::Wal).unwrap();
        feed(&mut engine, &all[..6], 0);
        engine.sync().unwrap();
    } // dropped: a restart
    let mut engine = Engine::open(topo.clone(), dir.path(), 1000, Durability::Wal).unwrap();
    assert!(engine.is_done("t", 0, 5) && !engine.is_done("t", 0, 6));
    feed(&mut engine, &all[6..], 6);
    engine.sync().unwrap();

    // Joined: 1 north 2k, 2 north 500, 3 south 2k, 4 south 1500, 6 north 9k.
    let all_time = TimeRange::default();
    assert_eq!(
        rows(&engine, "orders_per_region", all_time),
        table(&["region", "orders"], &[&["north", "3"], &["south", "2"]])
    );
    // max_by with top over regions: 6 north 9000.
    assert_eq!(
        rows(&engine, "biggest", all_time),
        table(&["region", "id", "amount"], &[&["north", "6", "9000"]])
    );
    // north: ann, bob, dee; south: ann, cy.
    assert_eq!(
        rows(&engine, "buyers", all_time),
        table(&["region", "buyers"], &[&["north", "3"], &["south", "2"]])
    );

    // Hourly windows, retention 2 h behind the newest event (12:30): windows
    // starting 10:00, 11:00, 12:00 are kept; order 6 (08:00) came after the
    // watermark passed 10:30 and is dropped as late.
    let h = |hh: u32| {
        chrono::NaiveDate::from_ymd_opt(2024, 1, 1)
            .unwrap()
            .and_hms_opt(hh, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp()
    };
    assert_eq!(
        rows(&engine, "hourly", all_time),
        table(&["region", "count"], &[&["north", "2"], &["south", "2"]])
    );
    let range = |from: u32, to: u32| TimeRange {
        from: Some(h(from)),
        to: Some(h(to)),
    };
    assert_eq!(
        rows(&engine, "hourly", range(10, 11)),
        table(&["region", "count"], &[&["north", "2"]])
    );
    assert_eq!(
        rows(&engine, "hourly", range(11, 13)),
        table(&["region", "count"], &[&["south", "2"]])
    );
    assert_eq!(rows(&engine, "hourly", range(13, 14)), table(&["region", "count"], &[]));
    assert!(engine.stats.agg.late >= 1);
}

#[test]
fn builder_reports_every_error_at_once() {
    let mut s = spec();
    s.aggregates[0].group_by = vec!["regoin".into()];
    s.queries[1].from = "nope".into();
    s.join.as_mut().unwrap().inputs.push("order".into());
    s.aggregates[3].window.as_mut().unwrap().size = "1y".into();
    let errors = s.build().unwrap_err();
    let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    // Four mistakes, plus the query that reads the misspelt group column.
    assert_eq!(errors.len(), 5, "{text:#?}");
    assert!(text
        .iter()
        .any(|e| e.contains("query[0].columns") && e.contains("`region` is not a column")));
    assert!(text
        .iter()
        .any(|e| e.contains("aggregate[0].group_by") && e.contains("did you mean `region`?")));
    assert!(text
        .iter()
        .any(|e| e.contains("query[1].from") && e.contains("unknown aggregate `nope`")));
    assert!(text
        .iter()
        .any(|e| e.contains("join.inputs[2]") && e.contains("listed twice")));
    assert!(text.iter().any(|e| e.contains("aggregate[3].window.size")));
}

/// Regression (issue 8, defect 1): one record dated 9999-12-31 used to move
/// the retention watermark to year 9999 and delete every window, for good.
#[test]
fn regression_far_future_event_time_does_not_empty_live_windows() {
    let topo = Arc::new(spec().build().expect("valid"));
    let dir = tempfile::tempdir().unwrap();
    // The wall clock stands at 2024-01-01 13:00 for this test.
    let now = chrono::NaiveDate::from_ymd_opt(2024, 1, 1)
        .unwrap()
        .and_hms_opt(13, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp();
    let hostile = [
        (
            0,
            r#"{"id": 7, "amount": "1", "at": "9999-12-31 23:59:59", "buyer": "eve"}"#,
        ),
        (1, r#"{"id": 7, "region": "north"}"#),
        // 20 minutes ahead with a 5-minute skew: also too far.
        (
            0,
            r#"{"id": 8, "amount": "1", "at": "2024-01-01 13:20:00", "buyer": "eve"}"#,
        ),
        (1, r#"{"id": 8, "region": "south"}"#),
    ];
    let mut items = input();
    items.splice(3..3, hostile.iter().copied());
    let feed = |engine: &mut Engine, items: &[(usize, &str)], first: i64| {
        for (i, (src, raw)) in items.iter().enumerate() {
            let p = prepare(engine.topology(), *src, raw.as_bytes()).unwrap();
            engine.process(*src, &p.key, p.row).unwrap();
            engine.mark("t", 0, first + i as i64);
        }
    };
    let open = || {
        let mut e = Engine::open(topo.clone(), dir.path(), 1000, Durability::Wal).unwrap();
        e.set_max_future_skew(300);
        e.set_clock(now);
        e
    };
    {
        let mut engine = open();
        feed(&mut engine, &items[..8], 0);
        engine.sync().unwrap();
        assert!(engine.stats.agg.future >= 2, "{:?}", engine.stats.agg);
    }
    let mut engine = open();
    feed(&mut engine, &items[8..], 8);
    engine.sync().unwrap();
    let all_time = TimeRange::default();
    // The windows are as without the hostile records (see the test above).
    assert_eq!(
        rows(&engine, "hourly", all_time),
        table(&["region", "count"], &[&["north", "2"], &["south", "2"]])
    );
    // All-time aggregates take them like any other record.
    assert_eq!(
        rows(&engine, "orders_per_region", all_time),
        table(&["region", "orders"], &[&["north", "4"], &["south", "3"]])
    );
    // A changed record for the far-future key retracts nothing from windows.
    let p = prepare(
        engine.topology(),
        0,
        br#"{"id": 7, "amount": "2", "at": "2024-01-01 12:10:00", "buyer": "eve"}"#,
    )
    .unwrap();
    engine.process(0, &p.key, p.row).unwrap();
    engine.sync().unwrap();
    assert_eq!(
        rows(&engine, "hourly", all_time),
        table(&["region", "count"], &[&["north", "3"], &["south", "2"]])
    );
}
