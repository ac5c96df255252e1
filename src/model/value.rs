//! Values and records: the data model every operator, store and sink shares.
//!
//! A [`Record`] is a small ordered list of `(name, value)` pairs. Records are
//! schemaless on purpose (the topology decides what fields mean), field names
//! are interned `Arc<str>` so that millions of records share one allocation
//! per name, and field order is kept because the cleaned output of a source
//! has a documented column order.
//!
//! Timestamps are a value kind of their own ([`Value::Ts`], UTC seconds since
//! the epoch): the inputs carry second precision, and a distinct kind lets
//! `year` and windows reject a field that was never parsed.
//!
//! Two encodings live here because they must agree with [`Value`]:
//! - [`encode_row`]/[`decode_row`]: compact, non-ordered encoding of a list of
//!   values (join-table rows in RocksDB and in the join cache);
//! - [`encode_key`]/[`decode_key`]: order-preserving tuple encoding for store
//!   keys (see `store.rs` for the key layout), so a RocksDB iterator yields
//!   rows sorted by their key columns.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserializer, Serialize, Serializer};

/// An interned field name. Names the interner holds are leaked
/// `&'static str`s (bounded: [`MAX_INTERNED`] names of at most
/// [`MAX_INTERNED_LEN`] bytes per process), so cloning one is a pointer
/// copy: with `Arc<str>`, every clone and drop was an atomic operation on a
/// counter that all parsing threads share (a cache line moving between
/// cores for every field of every record). Past the bounds a name is a
/// shared allocation of its own.
#[derive(Clone)]
pub enum Name {
    Static(&'static str),
    Shared(Arc<str>),
}

impl std::ops::Deref for Name {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        match self {
            Name::Static(s) => s,
            Name::Shared(s) => s,
        }
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        self
    }
}

impl std::borrow::Borrow<str> for Name {
    fn borrow(&self) -> &str {
        self
    }
}

impl PartialEq for Name {
    #[inline]
    fn eq(&self, other: &Name) -> bool {
        same_name(self, other)
    }
}

impl Eq for Name {}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        same_name(self, other)
    }
}

impl std::hash::Hash for Name {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        (**self).hash(h)
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Name) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Name) -> Ordering {
        (**self).cmp(&**other)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Name {
        intern(s)
    }
}

impl Serialize for Name {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self)
    }
}

/// One field value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// UTC timestamp, seconds since the Unix epoch.
    Ts(i64),
    Array(Vec<Value>),
    Object(Vec<(Name, Value)>),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Numeric view (ints, floats); used by buckets, quantiles and max-by.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// Short name of the kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Ts(_) => "timestamp",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Int(_) | Value::Float(_) => 2,
            Value::Str(_) => 3,
            Value::Ts(_) => 4,
            Value::Array(_) => 5,
            Value::Object(_) => 6,
        }
    }

    /// Total order used for sorting rows and breaking ties: by kind, then
    /// numerically (ints and floats compare with each other), strings
    /// byte-wise (so "alphabetically smallest" is the spec's tie rule).
    pub fn total_cmp(&self, other: &Value) -> Ordering {
        match (self, other) {
            (Value::Int(a), Value::Int(b)) => a.cmp(b),
            (Value::Str(a), Value::Str(b)) => a.as_bytes().cmp(b.as_bytes()),
            (Value::Ts(a), Value::Ts(b)) => a.cmp(b),
            (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
            (a, b) if a.rank() == 2 && b.rank() == 2 => a.as_f64().unwrap().total_cmp(&b.as_f64().unwrap()),
            (Value::Array(a), Value::Array(b)) => cmp_slices(a, b),
            (a, b) => a.rank().cmp(&b.rank()),
        }
    }
}

/// Lexicographic comparison of value tuples with [`Value::total_cmp`].
pub fn cmp_slices(a: &[Value], b: &[Value]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let o = x.total_cmp(y);
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

/// Formats a timestamp as ISO 8601 UTC (`2020-08-28T03:52:47Z`).
pub fn format_ts(secs: i64) -> String {
    match chrono::DateTime::from_timestamp(secs, 0) {
        Some(dt) => dt.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => secs.to_string(),
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(f) => s.serialize_f64(*f),
            Value::Str(v) => s.serialize_str(v),
            Value::Ts(t) => s.serialize_str(&format_ts(*t)),
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(i)?;
                }
                seq.end()
            }
            Value::Object(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(&**k, v)?;
                }
                map.end()
            }
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Str(s) => f.write_str(s),
            Value::Ts(t) => f.write_str(&format_ts(*t)),
            other => f.write_str(&serde_json::to_string(other).unwrap_or_default()),
        }
    }
}

/// The process's interned names (see [`Name`]).
static NAMES: std::sync::Mutex<Option<HashSet<&'static str, rustc_hash::FxBuildHasher>>> = std::sync::Mutex::new(None);

/// Upper bounds of the interner: records with random keys must not grow it
/// without limit; past them names are allocated as they come.
pub const MAX_INTERNED: usize = 4096;
pub const MAX_INTERNED_LEN: usize = 128;

/// Returns the interned name for a field name. Called when a topology is
/// built and when a record brings a name the topology does not know (the
/// full parse of `clean`, nested objects); never per field on the hot path,
/// which uses the topology's names.
pub fn intern(name: &str) -> Name {
    let mut guard = NAMES.lock().unwrap_or_else(|p| p.into_inner());
    let set = guard.get_or_insert_with(HashSet::default);
    if let Some(n) = set.get(name) {
        return Name::Static(n);
    }
    if set.len() < MAX_INTERNED && name.len() <= MAX_INTERNED_LEN {
        let leaked: &'static str = Box::leak(name.into());
        set.insert(leaked);
        return Name::Static(leaked);
    }
    Name::Shared(Arc::from(name))
}

/// Whether two field names are equal. Names are interned, so the two are
/// usually the very same allocation (compared by address); otherwise the
/// first byte rejects most mismatches before a byte compare. This is the
/// hot path of parsing and cleaning (a memcmp per field per record was 16%
/// of a replay's CPU).
#[inline]
pub fn same_name(a: &str, b: &str) -> bool {
    a.len() == b.len() && (a.as_ptr() == b.as_ptr() || (a.as_bytes().first() == b.as_bytes().first() && a == b))
}

/// Where an operator last found a field (see [`Record::find`]). Shared by
/// the threads that run the operator; relaxed, as it is only a guess that
/// the name check confirms.
#[derive(Debug, Default)]
pub struct Hint(std::sync::atomic::AtomicU32);

/// A record: ordered fields.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Record {
    pub fields: Vec<(Name, Value)>,
}

impl Record {
    pub fn new() -> Self {
        Record { fields: Vec::new() }
    }

    /// Index of a field (see [`same_name`]).
    fn position(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|(n, _)| same_name(n, name))
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.position(name).map(|i| &self.fields[i].1)
    }

    /// Index of a field, trying `*hint` first and leaving the index found
    /// there: rows of one layout (joined rows) find each field at once
    /// instead of comparing names from the start.
    #[inline]
    pub fn position_hinted(&self, name: &str, hint: &mut usize) -> Option<usize> {
        if let Some((n, _)) = self.fields.get(*hint) {
            if same_name(n, name) {
                return Some(*hint);
            }
        }
        let i = self.position(name)?;
        *hint = i;
        Some(i)
    }

    /// Index of a field, trying where an operator found it last: the
    /// records an operator sees share a layout, so its lookups cost one
    /// name check instead of a scan from the first field (the post-join
    /// operators' lookups were 15% of a batch replay's final pass).
    #[inline]
    pub fn find(&self, name: &str, hint: &Hint) -> Option<usize> {
        let was = hint.0.load(std::sync::atomic::Ordering::Relaxed) as usize;
        let mut at = was;
        let i = self.position_hinted(name, &mut at)?;
        if at != was {
            hint.0.store(at as u32, std::sync::atomic::Ordering::Relaxed);
        }
        Some(i)
    }

    /// [`Record::get`] through a [`Hint`].
    #[inline]
    pub fn get_hinted(&self, name: &str, hint: &Hint) -> Option<&Value> {
        self.find(name, hint).map(|i| &self.fields[i].1)
    }

    /// [`Record::get_mut`] through a [`Hint`].
    #[inline]
    pub fn get_mut_hinted(&mut self, name: &str, hint: &Hint) -> Option<&mut Value> {
        self.find(name, hint).map(move |i| &mut self.fields[i].1)
    }

    /// [`Record::set_name`] through a [`Hint`] (an appended field's index
    /// becomes the hint).
    #[inline]
    pub fn set_hinted(&mut self, name: &Name, value: Value, hint: &Hint) {
        match self.find(name, hint) {
            Some(i) => self.fields[i].1 = value,
            None => {
                hint.0
                    .store(self.fields.len() as u32, std::sync::atomic::Ordering::Relaxed);
                self.fields.push((name.clone(), value));
            }
        }
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Value> {
        self.position(name).map(move |i| &mut self.fields[i].1)
    }

    /// Sets a field, replacing it in place or appending it.
    pub fn set(&mut self, name: &str, value: Value) {
        match self.get_mut(name) {
            Some(v) => *v = value,
            None => self.fields.push((intern(name), value)),
        }
    }

    /// [`Record::set`] with a name already interned (an operator's target):
    /// appending shares that allocation instead of interning again, so
    /// later lookups by the topology's names match by address.
    pub fn set_name(&mut self, name: &Name, value: Value) {
        match self.get_mut(name) {
            Some(v) => *v = value,
            None => self.fields.push((name.clone(), value)),
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<Value> {
        let pos = self.position(name)?;
        Some(self.fields.remove(pos).1)
    }

    /// Parses one JSON object into a record.
    pub fn from_json(bytes: &[u8]) -> Result<Record, String> {
        Self::from_json_keeping(bytes, None)
    }

    /// Parses one JSON object, materialising only the top-level fields in
    /// `keep` (all if `None`). Skipped fields are still checked for JSON
    /// syntax, so a malformed record is rejected either way.
    ///
    /// With `keep`, the scanner of `scan.rs` does the work when it can (it
    /// validates skipped values without decoding them) and leaves every
    /// case it is not sure of to serde_json, so the result is the same.
    pub fn from_json_keeping(bytes: &[u8], keep: Option<&[Name]>) -> Result<Record, String> {
        if let Some(k) = keep {
            if let Some(rec) = super::scan::scan_keeping(bytes, k) {
                return Ok(rec);
            }
        }
        Self::from_json_keeping_serde(bytes, keep)
    }

    /// [`Record::from_json_keeping`] into `self` (its field list reused),
    /// with the key layout of the source's last record (`scan::Shape`).
    pub fn parse_keeping_into(
        &mut self,
        bytes: &[u8],
        keep: &[Name],
        shape: &mut super::scan::Shape,
    ) -> Result<(), String> {
        if !super::scan::scan_keeping_into(bytes, keep, &mut self.fields, shape) {
            *self = Self::from_json_keeping_serde(bytes, Some(keep))?;
        }
        Ok(())
    }

    /// [`Record::from_json_keeping`] by serde_json alone (the reference
    /// the scanner is tested against, and its fallback).
    pub fn from_json_keeping_serde(bytes: &[u8], keep: Option<&[Name]>) -> Result<Record, String> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let rec = RecordSeed { keep }
            .deserialize(&mut de)
            .map_err(|e| format!("invalid JSON: {e}"))?;
        de.end().map_err(|e| format!("invalid JSON: {e}"))?;
        Ok(rec)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(&Value::Object(self.fields.clone())).unwrap_or_default()
    }
}

/// Deserializes a top-level JSON object into a [`Record`] without building a
/// `serde_json::Value` first (one pass, names interned).
struct RecordSeed<'k> {
    keep: Option<&'k [Name]>,
}

impl<'de> DeserializeSeed<'de> for RecordSeed<'_> {
    type Value = Record;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Record, D::Error> {
        struct V<'k>(Option<&'k [Name]>);
        impl<'de> Visitor<'de> for V<'_> {
            type Value = Record;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Record, A::Error> {
                Ok(Record {
                    fields: read_fields(map, self.0)?,
                })
            }
        }
        d.deserialize_map(V(self.keep))
    }
}

fn read_fields<'de, A: MapAccess<'de>>(mut map: A, keep: Option<&[Name]>) -> Result<Vec<(Name, Value)>, A::Error> {
    let mut fields = Vec::with_capacity(keep.map_or(12, <[Name]>::len));
    while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
        let name = match keep {
            Some(k) => match k.iter().find(|n| same_name(n, &key)) {
                Some(n) => n.clone(),
                None => {
                    map.next_value::<de::IgnoredAny>()?;
                    continue;
                }
            },
            None => intern(&key),
        };
        let value = map.next_value_seed(ValueSeed)?;
        // A repeated key keeps the last value, as serde_json::Value does.
        if let Some(slot) = fields.iter_mut().find(|(n, _): &&mut (Name, Value)| *n == name) {
            slot.1 = value;
        } else {
            fields.push((name, value));
        }
    }
    Ok(fields)
}

/// Decodes one JSON value exactly as a record's field would decode (the
/// scanner hands kept values it does not decode itself to this).
pub(crate) fn value_from_json(bytes: &[u8]) -> Option<Value> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = ValueSeed.deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(v)
}

struct ValueSeed;

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(ValueSeed)? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        Ok(Value::Object(read_fields(map, None)?))
    }
}

// The byte codecs of values (rows, store keys, varints) live in codec.rs.
pub use super::codec::*;

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Value> {
        vec![
            Value::Null,
            Value::Bool(false),
            Value::Bool(true),
            Value::Int(i64::MIN),
            Value::Int(-5),
            Value::Int(0),
            Value::Int(7),
            Value::Int(i64::MAX),
            Value::Float(-2.5),
            Value::Float(0.0),
            Value::Float(3.25),
            Value::Str(String::new()),
            Value::Str("a".into()),
            Value::Str("a\0b".into()),
            Value::Str("ab".into()),
            Value::Str("b".into()),
            Value::Ts(-10),
            Value::Ts(1_600_000_000),
            Value::Array(vec![Value::Int(1), Value::Str("x".into())]),
        ]
    }

    #[test]
    fn row_encoding_round_trips() {
        let vals = samples();
        let mut buf = Vec::new();
        encode_row(&vals, &mut buf);
        assert_eq!(decode_row(&buf).unwrap(), vals);
    }

    #[test]
    fn key_encoding_round_trips_and_preserves_order_within_a_kind() {
        for v in samples() {
            let mut buf = Vec::new();
            encode_key(&v, &mut buf);
            assert_eq!(decode_key_tuple(&buf).unwrap(), vec![v.clone()]);
        }
        let ints = [i64::MIN, -5, -1, 0, 1, 300, i64::MAX];
        let strs = ["", "a", "a\0", "a\0b", "ab", "b"];
        let enc = |v: Value| {
            let mut b = Vec::new();
            encode_key(&v, &mut b);
            b
        };
        for w in ints.windows(2) {
            assert!(enc(Value::Int(w[0])) < enc(Value::Int(w[1])), "{w:?}");
        }
        for w in strs.windows(2) {
            let (a, b) = (enc(Value::Str(w[0].into())), enc(Value::Str(w[1].into())));
            assert!(a < b, "{w:?}");
        }
        for w in [-1e9, -2.5, -0.0, 0.5, 1e12].windows(2) {
            assert!(enc(Value::Float(w[0])) < enc(Value::Float(w[1])), "{w:?}");
        }
    }

    #[test]
    fn tuple_prefix_sorts_before_longer_tuple() {
        let mut a = Vec::new();
        encode_key(&Value::Str("ab".into()), &mut a);
        let mut b = Vec::new();
        encode_key(&Value::Str("a".into()), &mut b);
        encode_key(&Value::Str("zz".into()), &mut b);
        assert!(b < a);
    }

    #[test]
    fn json_parsing_keeps_order_and_kinds() {
        let r = Record::from_json(br#"{"b": 1, "a": "x", "c": [1.5, null], "d": {"e": true}}"#).unwrap();
        let names: Vec<&str> = r.fields.iter().map(|(n, _)| &**n).collect();
        assert_eq!(names, ["b", "a", "c", "d"]);
        assert_eq!(r.get("b"), Some(&Value::Int(1)));
        assert_eq!(r.get("c"), Some(&Value::Array(vec![Value::Float(1.5), Value::Null])));
        assert!(Record::from_json(b"[1,2]").unwrap_err().contains("JSON object"));
        assert!(Record::from_json(b"{\"a\":1} x").is_err());
        assert!(Record::from_json(b"{\"a\":").is_err());
    }

    /// Regression (performance issue): lookups compare addresses first;
    /// equal names in different allocations, and names that differ only
    /// after the first byte, must still be told apart correctly.
    #[test]
    fn same_name_by_address_or_bytes() {
        let a = intern("title");
        let other_alloc: String = "title".into();
        assert!(same_name(&a, &a));
        assert!(same_name(&a, &other_alloc));
        assert!(!same_name(&a, "tiTle"));
        assert!(!same_name(&a, "titles"));
        assert!(!same_name("", "x"));
        assert!(same_name("", ""));
        let mut r = Record::new();
        r.set_name(&a, Value::Int(1));
        r.set("title", Value::Int(2));
        assert_eq!(r.fields.len(), 1);
        assert_eq!(r.get(&other_alloc), Some(&Value::Int(2)));
        assert_eq!(r.get("titl"), None);
    }

    /// A hint is only a first guess: a stale or out-of-range one still
    /// finds the field (and is moved to it), a missing field is missing.
    #[test]
    fn hinted_positions_fall_back_to_the_names() {
        let mut r = Record::new();
        r.set("a", Value::Int(1));
        r.set("b", Value::Int(2));
        r.set("c", Value::Int(3));
        let mut hint = 7;
        assert_eq!(r.position_hinted("b", &mut hint), Some(1));
        assert_eq!(hint, 1);
        assert_eq!(r.position_hinted("b", &mut hint), Some(1));
        assert_eq!(r.position_hinted("c", &mut hint), Some(2));
        assert_eq!(hint, 2);
        assert_eq!(r.position_hinted("d", &mut hint), None);
        assert_eq!(hint, 2);
    }

    #[test]
    fn total_order_compares_ints_with_floats() {
        assert_eq!(Value::Int(2).total_cmp(&Value::Float(2.5)), Ordering::Less);
        assert_eq!(
            Value::Str("a".into()).total_cmp(&Value::Str("b".into())),
            Ordering::Less
        );
    }
}
