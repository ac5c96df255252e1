//! The stateless per-record stage: parse, clean, project.
//!
//! [`prepare`] turns one raw record into what the engine needs (encoded key
//! and projected row) or a rejection. It is a pure function of the bytes and
//! the topology, so the driver runs it on many threads.

use crate::model::scan::Shape;
use crate::model::value::{encode_key, encode_row, Record, Value};
use crate::topology::Topology;

/// A record ready for the engine.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub key: Vec<u8>,
    pub row: Box<[u8]>,
}

/// Parses and cleans one raw record of source `src` (full record, every
/// field; used by `clean` and tests).
pub fn clean(topo: &Topology, src: usize, bytes: &[u8]) -> Result<Record, String> {
    let text = non_empty(bytes)?;
    let mut rec = Record::from_json_keeping(text, None)?;
    clean_parsed(topo, src, &mut rec, false)?;
    Ok(rec)
}

fn non_empty(bytes: &[u8]) -> Result<&[u8], String> {
    let text = trim_ascii(bytes);
    if text.is_empty() {
        return Err("empty record".into());
    }
    Ok(text)
}

/// Runs operators over a parsed record and checks its key: all of source
/// `src`'s for a whole record, or its pruned chain for one parsed with only
/// its raw fields (`pruned`).
fn clean_parsed(topo: &Topology, src: usize, rec: &mut Record, pruned: bool) -> Result<(), String> {
    let source = &topo.sources[src];
    let ops = if pruned { &source.prepare_ops } else { &source.ops };
    for op in ops {
        op.apply(rec)?;
    }
    match rec.get(&source.key) {
        None => Err(format!("missing key field `{}`", source.key)),
        Some(Value::Null) => Err(format!("key field `{}` is null", source.key)),
        Some(_) => Ok(()),
    }
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

/// Parses, cleans and projects one raw record for the engine. Only the raw
/// fields the projection depends on are materialised (`Source::raw_fields`).
pub fn prepare(topo: &Topology, src: usize, bytes: &[u8]) -> Result<Prepared, String> {
    let mut buf = Vec::with_capacity(80);
    let key_len = prepare_into(topo, src, bytes, &mut buf)?;
    let row = buf.split_off(key_len);
    Ok(Prepared {
        key: buf,
        row: row.into_boxed_slice(),
    })
}

/// [`prepare`] appending the encoded key, then the row, to `out`; returns
/// the key's length (the row is the rest). On a rejection `out` is as it
/// was. The driver prepares a whole batch into one buffer this way, so a
/// record costs no allocation of its own on its way to the engine.
pub fn prepare_into(topo: &Topology, src: usize, bytes: &[u8], out: &mut Vec<u8>) -> Result<usize, String> {
    let source = &topo.sources[src];
    let text = non_empty(bytes)?;
    RECORD.with(|cell| {
        let (rec, shapes) = &mut *cell.borrow_mut();
        if shapes.len() <= src {
            shapes.resize_with(src + 1, Shape::default);
        }
        rec.parse_keeping_into(text, &source.raw_fields, &mut shapes[src])?;
        clean_parsed(topo, src, rec, true)?;
        let start = out.len();
        // Each field is looked for first right after the one before: a
        // chain that ends in a `select` leaves the key and the projection
        // in that order, so a lookup is one name check instead of a walk.
        let null = Value::Null;
        let mut hint = 0;
        let value =
            |name: &str, hint: &mut usize| rec.position_hinted(name, hint).map_or(&null, |at| &rec.fields[at].1);
        encode_key(value(&source.key, &mut hint), out);
        let key_len = out.len() - start;
        encode_row(
            source.projection.iter().map(|f| {
                hint += 1;
                value(f, &mut hint)
            }),
            out,
        );
        Ok(key_len)
    })
}

thread_local! {
    /// The record each parsing thread reuses ([`Record::parse_keeping_into`]),
    /// and the key layout of each source's last record there.
    static RECORD: std::cell::RefCell<(Record, Vec<Shape>)> = std::cell::RefCell::new((
        Record {
            fields: Vec::with_capacity(32),
        },
        Vec::new(),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `prepare` parses only `raw_fields`; it must agree with cleaning the
    /// whole record and projecting afterwards, for accepted and rejected
    /// records alike.
    #[test]
    fn pruned_parsing_agrees_with_full_cleaning() {
        let topo = crate::load_topology(crate::PINTEREST_TOPOLOGY).unwrap();
        let sample = include_str!("../../tests/fixtures/pin_sample.jsonl");
        let edge = [
            r#"{"ind": 5, "category": "art"}"#,
            r#"{"index": 6, "ind": 9, "category": "art", "follower_count": "3k"}"#,
            r#"{"index": "x", "category": "art"}"#,
            r#"{"index": 7, "title": {"nested": [1, 2]}, "category": ""}"#,
            r#"{"index": 8, "description": "bad \u00e9 escape", "poster_name": "User Info Error"}"#,
            r#"{"index": 8, "description": tru}"#,
            r#"{"ind": 1, "timestamp": "2020-08-28T03:52:47", "country": "Chad", "latitude": "x"}"#,
            r#"{"ind": 2, "first_name": "A", "last_name": null, "age": "41", "date_joined": "2016-01-01 00:00:00"}"#,
            "[]",
            "",
        ];
        let mut checked = 0;
        for (src, _) in topo.sources.iter().enumerate() {
            for line in sample.lines().chain(edge) {
                let full = clean(&topo, src, line.as_bytes()).map(|rec| {
                    let source = &topo.sources[src];
                    let mut key = Vec::new();
                    encode_key(rec.get(&source.key).unwrap(), &mut key);
                    let mut row = Vec::new();
                    encode_row(
                        source.projection.iter().map(|f| rec.get(f).unwrap_or(&Value::Null)),
                        &mut row,
                    );
                    (key, row)
                });
                let pruned = prepare(&topo, src, line.as_bytes()).map(|p| (p.key, p.row.to_vec()));
                assert_eq!(full.is_ok(), pruned.is_ok(), "source {src}: {line}");
                if let (Ok(a), Ok(b)) = (&full, &pruned) {
                    assert_eq!(a, b, "source {src}: {line}");
                }
                checked += 1;
            }
        }
        assert!(checked > 600);
    }

    /// The pruned chains are shorter (what the agreement above checks is
    /// then not the whole chain run twice): geo's array of the unkept
    /// coordinates and pin's null_ifs of unkept text fields are left out.
    #[test]
    fn prepare_chains_leave_out_operators_of_unkept_fields() {
        let topo = crate::load_topology(crate::PINTEREST_TOPOLOGY).unwrap();
        for name in ["pin", "geo"] {
            let s = topo.sources.iter().find(|s| s.name == name).unwrap();
            assert!(s.prepare_ops.len() < s.ops.len(), "{name}: {:?}", s.prepare_ops);
        }
        let at = topo.sources.iter().position(|s| s.name == "pin").unwrap();
        let pin = &topo.sources[at];
        let mut rec = Record::from_json(br#"{"index": 3, "category": "art", "title": ""}"#).unwrap();
        clean_parsed(&topo, at, &mut rec, true).unwrap();
        let kept: Vec<&str> = rec.fields.iter().map(|(n, _)| &**n).collect();
        assert!(kept.len() <= pin.projection.len() + 1, "{kept:?}");
    }
}
