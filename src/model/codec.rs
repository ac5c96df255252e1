//! The byte codecs of values, the one place each encoding is defined:
//! - rows: compact, not ordered (tag byte + payload, varint lengths), for
//!   the join table's slots (`encode_row` / `decode_row`);
//! - store keys: order-preserving tuples (`encode_key` / `decode_key`), so
//!   RocksDB iterates groups in key order and windows in time order;
//! - LEB128 varints (`put_varint` / `get_varint`).
//!
//! Round-trip and ordering tests are in `value.rs` (with the values).

use super::value::{intern, Value};

// ---------------------------------------------------------------------------
// Compact row encoding (not ordered): tag byte + payload, varint lengths.

const T_NULL: u8 = 0;
const T_FALSE: u8 = 1;
const T_TRUE: u8 = 2;
const T_INT: u8 = 3;
const T_FLOAT: u8 = 4;
const T_STR: u8 = 5;
const T_TS: u8 = 6;
const T_ARRAY: u8 = 7;
const T_OBJECT: u8 = 8;

/// LEB128 varint: the one varint codec (rows, join entries).
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a LEB128 varint, advancing `buf`; `None` if cut short or too long.
pub fn get_varint(buf: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
}

fn encode_value(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.push(T_NULL),
        Value::Bool(false) => out.push(T_FALSE),
        Value::Bool(true) => out.push(T_TRUE),
        Value::Int(i) => {
            out.push(T_INT);
            // zigzag so small negatives stay short
            put_varint(out, ((i << 1) ^ (i >> 63)) as u64);
        }
        Value::Float(f) => {
            out.push(T_FLOAT);
            out.extend_from_slice(&f.to_le_bytes());
        }
        Value::Str(s) => {
            out.push(T_STR);
            put_varint(out, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Ts(t) => {
            out.push(T_TS);
            put_varint(out, ((t << 1) ^ (t >> 63)) as u64);
        }
        Value::Array(items) => {
            out.push(T_ARRAY);
            put_varint(out, items.len() as u64);
            for i in items {
                encode_value(i, out);
            }
        }
        Value::Object(fields) => {
            out.push(T_OBJECT);
            put_varint(out, fields.len() as u64);
            for (k, v) in fields {
                put_varint(out, k.len() as u64);
                out.extend_from_slice(k.as_bytes());
                encode_value(v, out);
            }
        }
    }
}

/// A row's string bytes as text; `None` if not UTF-8 (a corrupt row).
/// Most are short and ASCII: checked inline, without the general
/// validator's call (which was a third of decoding a joined row).
#[inline]
fn text(b: &[u8]) -> Option<&str> {
    if b.is_ascii() {
        // SAFETY: ASCII is UTF-8.
        return Some(unsafe { std::str::from_utf8_unchecked(b) });
    }
    std::str::from_utf8(b).ok()
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if buf.len() < n {
        return None;
    }
    let (a, b) = buf.split_at(n);
    *buf = b;
    Some(a)
}

fn decode_value(buf: &mut &[u8]) -> Option<Value> {
    let (&tag, rest) = buf.split_first()?;
    *buf = rest;
    Some(match tag {
        T_NULL => Value::Null,
        T_FALSE => Value::Bool(false),
        T_TRUE => Value::Bool(true),
        T_INT => {
            let z = get_varint(buf)?;
            Value::Int(((z >> 1) as i64) ^ -((z & 1) as i64))
        }
        T_FLOAT => Value::Float(f64::from_le_bytes(take(buf, 8)?.try_into().ok()?)),
        T_STR => {
            let n = get_varint(buf)? as usize;
            Value::Str(text(take(buf, n)?)?.to_owned())
        }
        T_TS => {
            let z = get_varint(buf)?;
            Value::Ts(((z >> 1) as i64) ^ -((z & 1) as i64))
        }
        T_ARRAY => {
            let n = get_varint(buf)? as usize;
            let mut items = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                items.push(decode_value(buf)?);
            }
            Value::Array(items)
        }
        T_OBJECT => {
            let n = get_varint(buf)? as usize;
            let mut fields = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                let len = get_varint(buf)? as usize;
                let k = std::str::from_utf8(take(buf, len)?).ok()?;
                let name = intern(k);
                fields.push((name, decode_value(buf)?));
            }
            Value::Object(fields)
        }
        _ => return None,
    })
}

/// Advances `buf` past one value, accepting exactly what [`decode_value`]
/// accepts, without building it: a joined row skips the fields an earlier
/// input already gave, and decoding them allocated a string each only to
/// drop it.
pub fn skip_value(buf: &mut &[u8]) -> Option<()> {
    let (&tag, rest) = buf.split_first()?;
    *buf = rest;
    match tag {
        T_NULL | T_FALSE | T_TRUE => {}
        T_INT | T_TS => {
            get_varint(buf)?;
        }
        T_FLOAT => {
            take(buf, 8)?;
        }
        T_STR => {
            let n = get_varint(buf)? as usize;
            text(take(buf, n)?)?;
        }
        T_ARRAY => {
            for _ in 0..get_varint(buf)? {
                skip_value(buf)?;
            }
        }
        T_OBJECT => {
            for _ in 0..get_varint(buf)? {
                let len = get_varint(buf)? as usize;
                std::str::from_utf8(take(buf, len)?).ok()?;
                skip_value(buf)?;
            }
        }
        _ => return None,
    }
    Some(())
}

/// Encodes a list of values (a projected row) compactly.
pub fn encode_row<'a>(values: impl IntoIterator<Item = &'a Value>, out: &mut Vec<u8>) {
    for v in values {
        encode_value(v, out);
    }
}

/// Decodes a row written by [`encode_row`]; `None` if the bytes are corrupt.
/// Decodes one value of a row into `into`, advancing `buf`. A string
/// decoded over a string reuses its buffer (no allocation per row when a
/// reused record is refilled).
pub fn decode_value_into(buf: &mut &[u8], into: &mut Value) -> Option<()> {
    if let (Some(&T_STR), Value::Str(s)) = (buf.first(), &mut *into) {
        let mut rest = &buf[1..];
        let n = get_varint(&mut rest)? as usize;
        let text = text(take(&mut rest, n)?)?;
        s.clear();
        s.push_str(text);
        *buf = rest;
        return Some(());
    }
    *into = decode_value(buf)?;
    Some(())
}

pub fn decode_row(mut buf: &[u8]) -> Option<Vec<Value>> {
    let mut values = Vec::new();
    while !buf.is_empty() {
        values.push(decode_value(&mut buf)?);
    }
    Some(values)
}

// ---------------------------------------------------------------------------
// Order-preserving tuple encoding for store keys.
//
// Each component is a tag byte followed by a payload whose byte order equals
// the value order: integers and timestamps as big-endian with the sign bit
// flipped, floats with the usual IEEE-754 bit twiddle, strings with 0x00
// escaped as 0x00 0xFF and terminated by 0x00 0x00 (so a prefix sorts first).

const K_NULL: u8 = 0x01;
const K_FALSE: u8 = 0x02;
const K_TRUE: u8 = 0x03;
const K_INT: u8 = 0x04;
const K_FLOAT: u8 = 0x05;
const K_STR: u8 = 0x06;
const K_TS: u8 = 0x07;
const K_OTHER: u8 = 0x08;

/// Appends one key component.
pub fn encode_key(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.push(K_NULL),
        Value::Bool(false) => out.push(K_FALSE),
        Value::Bool(true) => out.push(K_TRUE),
        Value::Int(i) => {
            out.push(K_INT);
            out.extend_from_slice(&((*i as u64) ^ (1 << 63)).to_be_bytes());
        }
        Value::Float(f) => {
            out.push(K_FLOAT);
            let bits = f.to_bits();
            let ordered = if bits >> 63 == 1 { !bits } else { bits | (1 << 63) };
            out.extend_from_slice(&ordered.to_be_bytes());
        }
        Value::Str(s) => {
            out.push(K_STR);
            escape_bytes(s.as_bytes(), out);
        }
        Value::Ts(t) => {
            out.push(K_TS);
            out.extend_from_slice(&((*t as u64) ^ (1 << 63)).to_be_bytes());
        }
        other => {
            // Arrays and objects are rare as keys; keep them distinct and
            // decodable, ordered by their JSON text.
            out.push(K_OTHER);
            let mut raw = Vec::new();
            encode_value(other, &mut raw);
            escape_bytes(&raw, out);
        }
    }
}

fn escape_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    // Key strings are short and hold no zero byte: checked a word at a
    // time and copied in one piece (a `memchr` call per string was 7% of a
    // batch replay's final pass, mostly call overhead).
    if bytes.len() <= 64 && !has_zero(bytes) {
        out.reserve(bytes.len() + 2);
        out.extend_from_slice(bytes);
        out.extend_from_slice(&[0, 0]);
        return;
    }
    // Runs between zero bytes are copied whole (a byte loop here was 4% of
    // a replay: every aggregate key holds strings).
    let mut rest = bytes;
    while let Some(i) = memchr::memchr(0, rest) {
        out.extend_from_slice(&rest[..=i]);
        out.push(0xFF);
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
    out.extend_from_slice(&[0, 0]);
}

/// Whether `bytes` holds a zero byte (eight at a time: a word has one
/// exactly when `(w - 0x01..) & !w & 0x80..` is not zero).
#[inline]
fn has_zero(bytes: &[u8]) -> bool {
    const LOW: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let w = u64::from_le_bytes(w.try_into().expect("8 bytes"));
        if w.wrapping_sub(LOW) & !w & HIGH != 0 {
            return true;
        }
    }
    words.remainder().contains(&0)
}

fn unescape_bytes(buf: &mut &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    let b = *buf;
    loop {
        let c = *b.get(i)?;
        if c == 0 {
            let next = *b.get(i + 1)?;
            if next == 0 {
                *buf = &b[i + 2..];
                return Some(out);
            }
            out.push(0);
            i += 2;
        } else {
            out.push(c);
            i += 1;
        }
    }
}

/// Decodes one key component written by [`encode_key`].
pub fn decode_key(buf: &mut &[u8]) -> Option<Value> {
    let (&tag, rest) = buf.split_first()?;
    *buf = rest;
    Some(match tag {
        K_NULL => Value::Null,
        K_FALSE => Value::Bool(false),
        K_TRUE => Value::Bool(true),
        K_INT => Value::Int((u64::from_be_bytes(take(buf, 8)?.try_into().ok()?) ^ (1 << 63)) as i64),
        K_TS => Value::Ts((u64::from_be_bytes(take(buf, 8)?.try_into().ok()?) ^ (1 << 63)) as i64),
        K_FLOAT => {
            let o = u64::from_be_bytes(take(buf, 8)?.try_into().ok()?);
            let bits = if o >> 63 == 1 { o & !(1 << 63) } else { !o };
            Value::Float(f64::from_bits(bits))
        }
        K_STR => Value::Str(String::from_utf8(unescape_bytes(buf)?).ok()?),
        K_OTHER => {
            let raw = unescape_bytes(buf)?;
            decode_value(&mut raw.as_slice())?
        }
        _ => return None,
    })
}

/// Decodes a whole key tuple.
pub fn decode_key_tuple(mut buf: &[u8]) -> Option<Vec<Value>> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        out.push(decode_key(&mut buf)?);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On every value kind (nested ones too), on every truncation of their
    /// encoding and on bad tags and bad UTF-8, skipping accepts what
    /// decoding accepts and stops where it stops.
    #[test]
    fn skipping_a_value_agrees_with_decoding_it() {
        let values = vec![
            Value::Null,
            Value::Bool(true),
            Value::Bool(false),
            Value::Int(-300),
            Value::Int(i64::MAX),
            Value::Float(2.5),
            Value::Str(String::new()),
            Value::Str("héllo".into()),
            Value::Ts(-86_400),
            Value::Array(vec![Value::Int(1), Value::Str("a".into()), Value::Array(vec![])]),
            Value::Object(vec![(intern("k"), Value::Str("v".into())), (intern("n"), Value::Null)]),
        ];
        let mut inputs: Vec<Vec<u8>> = Vec::new();
        for v in &values {
            let mut b = Vec::new();
            encode_value(v, &mut b);
            for cut in 0..=b.len() {
                inputs.push(b[..cut].to_vec());
            }
            b.push(T_NULL);
            inputs.push(b);
        }
        inputs.push(vec![0xEE]);
        inputs.push(vec![T_STR, 2, 0xC3, 0x28]);
        inputs.push(vec![T_OBJECT, 1, 1, 0xFF, T_NULL]);
        for input in inputs {
            let (mut a, mut b) = (&input[..], &input[..]);
            let decoded = decode_value(&mut a).map(|_| ());
            let skipped = skip_value(&mut b);
            assert_eq!(decoded, skipped, "{input:?}");
            if decoded.is_some() {
                assert_eq!(a.len(), b.len(), "{input:?}");
            }
        }
    }

    /// A zero byte at every place of every length up to 80 (both sides of
    /// the word-at-a-time path and of its 64-byte limit), and bytes just
    /// above and below zero, against `contains`; the escaped key decodes
    /// back to the string and sorts as the string does.
    #[test]
    fn zero_bytes_are_found_and_escaped_at_every_place() {
        for n in 0..80usize {
            let base: Vec<u8> = (0..n).map(|i| [1u8, 0x80, 0xFF, b'a'][i % 4]).collect();
            let mut cases = vec![base.clone()];
            for at in 0..n {
                let mut b = base.clone();
                b[at] = 0;
                cases.push(b);
            }
            for b in cases {
                assert_eq!(has_zero(&b), b.contains(&0), "len {n}: {b:?}");
                let s = Value::Str(String::from_utf8_lossy(&b).into_owned());
                let mut key = Vec::new();
                encode_key(&s, &mut key);
                assert_eq!(decode_key(&mut &key[..]), Some(s.clone()), "len {n}");
                let mut more = Vec::new();
                encode_key(&Value::Str(format!("{}\u{1}", s.as_str().unwrap())), &mut more);
                assert!(key < more, "a string sorts before its extension");
            }
        }
    }
}
