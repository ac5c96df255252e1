//! The fast path of parsing a record: a strict JSON scanner that walks one
//! top-level object and materialises only the fields asked for.
//!
//! Most of a record's bytes are fields no aggregate reads (a pin's title,
//! description, image URL, tag list). The serde path still builds a
//! visitor call per value and decodes every skipped string; this scanner
//! only *validates* what it skips, byte by byte, and copies out the few
//! kept values.
//!
//! Invariant (tested against serde_json in `tests` below and by
//! `prepare::tests`): [`scan_keeping`] either returns exactly the record
//! `Record::from_json_keeping` would return for the same bytes, or `None`
//! ("not sure"), and then the caller runs the serde path, which decides
//! (and writes the error message). It says `None` for every input that is
//! not valid JSON, and for what it does not decode itself: kept strings
//! and keys (kept or not: serde checks every key) that are not UTF-8,
//! escaped keys, `\u` surrogates, nesting deeper than
//! [`MAX_DEPTH`]. Kept values other than plain strings, small integers and
//! literals (floats, big integers, escaped strings, arrays, objects) are
//! cut out of the input and handed to serde_json, so they decode exactly as
//! the serde path decodes them.

use super::value::{same_name, value_from_json, Name, Record, Value};

/// Nesting the scanner follows before it leaves the record to serde_json
/// (whose own limit is 128).
pub const MAX_DEPTH: usize = 100;

/// Scans one JSON object (`bytes` trimmed of surrounding whitespace) and
/// returns its fields named in `keep`, in input order; `None` when the
/// serde path must decide (see the module doc).
pub fn scan_keeping(bytes: &[u8], keep: &[Name]) -> Option<Record> {
    let mut fields = Vec::with_capacity(keep.len());
    scan_keeping_into(bytes, keep, &mut fields, &mut Shape::default()).then_some(Record { fields })
}

/// [`scan_keeping`] into `fields` (cleared first), so a parsing thread
/// reuses one record's field list for every record (a fresh list, grown
/// again by `select`, was an allocation and a copy per record); false for
/// "not sure" (then `fields` holds anything). `shape` is the key layout of
/// the last record accepted with it ([`Shape`]): one per source.
///
/// The fields already in the list are overwritten in place, and a kept
/// string read over a string there reuses its buffer: a parsing thread
/// allocates for a record only where the last one had no string.
pub fn scan_keeping_into(bytes: &[u8], keep: &[Name], fields: &mut Vec<(Name, Value)>, shape: &mut Shape) -> bool {
    match scan_fields(bytes, keep, fields, shape) {
        Some(len) => {
            fields.truncate(len);
            true
        }
        None => false,
    }
}

/// Kept-field index of a key no field keeps.
const NOT_KEPT: u8 = u8::MAX;

/// Readable bytes from the start of every pattern in [`Shape::patterns`]
/// (the match compares 32 bytes at once).
const PATTERN_ROOM: usize = 32;

/// The key layout of the last record a source's scanner accepted.
///
/// A producer writes every record of a topic with the same keys in the
/// same order, so a key is most often exactly the bytes `"name":` at the
/// place the last record had it. Comparing those bytes at once (and
/// knowing the key's place in `keep` from the last time) replaces finding
/// the key's end, checking it and matching it against `keep`: that was
/// about half of the scanner's cost per field. A key that is not the one
/// predicted (another order, whitespace before the colon, an escape) is
/// scanned the general way from there on, and an accepted record whose
/// layout differed becomes the next prediction. The bytes compared are a
/// plain, UTF-8 key followed by a colon, so a match reads exactly what the
/// general path would have read.
#[derive(Debug, Default)]
pub struct Shape {
    /// The `keep` list this layout indexes.
    keep: Vec<Name>,
    /// Per field in order: its pattern's start in `patterns`, the
    /// pattern's length, its index in `keep` (or [`NOT_KEPT`]).
    fields: Vec<(u32, u32, u8)>,
    /// `"name":` of every field, each with [`PATTERN_ROOM`] bytes from its start.
    patterns: Vec<u8>,
    /// The record being scanned, from the first field the layout did not
    /// predict: each key's span in the input, and its index in `keep`.
    seen: Vec<(u32, u32, u8)>,
}

impl Shape {
    /// Learns the layout of the record just accepted: its first `predicted`
    /// fields as the layout had them, then `seen` (in `bytes`).
    fn learn(&mut self, bytes: &[u8], predicted: usize) {
        let (fields, patterns) = (std::mem::take(&mut self.fields), std::mem::take(&mut self.patterns));
        for &(at, len, kept) in &fields[..predicted] {
            let (at, len) = (at as usize, len as usize);
            self.push(&patterns[at..at + len], kept);
        }
        for k in 0..self.seen.len() {
            let (start, end, kept) = self.seen[k];
            let mut pattern = Vec::with_capacity(end as usize - start as usize + 4);
            // After the first field the pattern starts at the comma that
            // ends the value before it: one compare takes the separator
            // and the key.
            if predicted + k > 0 {
                pattern.push(b',');
            }
            pattern.push(b'"');
            pattern.extend_from_slice(&bytes[start as usize..end as usize]);
            pattern.extend_from_slice(b"\":");
            self.push(&pattern, kept);
        }
    }

    /// Appends one field's pattern (padded to [`PATTERN_ROOM`]).
    fn push(&mut self, pattern: &[u8], kept: u8) {
        let at = self.patterns.len();
        self.patterns.extend_from_slice(pattern);
        self.patterns.resize(at + pattern.len().max(PATTERN_ROOM), 0);
        self.fields.push((at as u32, pattern.len() as u32, kept));
    }

    /// Whether field `j`'s predicted pattern is at `b[i..]`; its length and
    /// kept index if so.
    #[inline]
    fn predicts(&self, j: usize, b: &[u8], i: usize) -> Option<(usize, u8)> {
        let &(at, len, kept) = self.fields.get(j)?;
        let (at, len) = (at as usize, len as usize);
        let pattern = &self.patterns[at..at + PATTERN_ROOM.max(len)];
        #[cfg(target_arch = "x86_64")]
        if len <= PATTERN_ROOM && i + PATTERN_ROOM <= b.len() {
            // SAFETY: SSE2 is part of x86_64; both loads read 32 bytes that
            // the condition (input) and `PATTERN_ROOM` (pattern) keep in bounds.
            let equal = unsafe { equal_mask32(b.as_ptr().add(i), pattern.as_ptr()) };
            let need = if len == 32 { u32::MAX } else { (1u32 << len) - 1 };
            return (equal & need == need).then_some((len, kept));
        }
        (b.get(i..i + len)? == &pattern[..len]).then_some((len, kept))
    }
}

/// Bit `k` set where byte `k` of the 32 at `a` equals byte `k` at `p`.
///
/// # Safety
/// `a` and `p` must each point to 32 readable bytes.
#[cfg(target_arch = "x86_64")]
#[inline]
unsafe fn equal_mask32(a: *const u8, p: *const u8) -> u32 {
    use std::arch::x86_64::*;
    let lo = _mm_cmpeq_epi8(
        _mm_loadu_si128(a as *const __m128i),
        _mm_loadu_si128(p as *const __m128i),
    );
    let hi = _mm_cmpeq_epi8(
        _mm_loadu_si128(a.add(16) as *const __m128i),
        _mm_loadu_si128(p.add(16) as *const __m128i),
    );
    (_mm_movemask_epi8(lo) as u32 & 0xFFFF) | ((_mm_movemask_epi8(hi) as u32) << 16)
}

/// The scan itself: the record's fields are `fields[..len]`, `len` returned.
fn scan_fields(bytes: &[u8], keep: &[Name], fields: &mut Vec<(Name, Value)>, shape: &mut Shape) -> Option<usize> {
    // Kept strings are checked for UTF-8 where they are decoded; skipped
    // ones are not, as serde_json does not check the strings it ignores
    // (outside strings, a byte past ASCII is a syntax error either way).
    // Names compare by address first: one compare per name per record.
    if shape.keep.len() != keep.len() || !shape.keep.iter().zip(keep).all(|(a, b)| same_name(a, b)) {
        *shape = Shape {
            keep: keep.to_vec(),
            ..Shape::default()
        };
    }
    // Kept indices fit in a byte and in the mask of fields already set;
    // key spans fit the `u32`s of `Shape::seen`.
    let indexed = keep.len() < 64 && bytes.len() <= u32::MAX as usize;
    shape.seen.clear();
    let mut set: u64 = 0;
    let mut len = 0;
    let mut diverged = !indexed;
    // Fields read, and how many of the first ones the layout predicted.
    let (mut j, mut predicted) = (0, 0);
    let mut s = Scanner { b: bytes, i: 0 };
    s.ws();
    s.eat(b'{')?;
    s.ws();
    if s.peek()? == b'}' {
        s.i += 1;
    } else {
        // Fields read so far.
        j = 0;
        loop {
            // Right after the `{` (and whitespace) for the first field,
            // right after the value before it for the others.
            let prediction = if diverged { None } else { shape.predicts(j, bytes, s.i) };
            // The key's index in `keep`, if kept.
            let kept: Option<usize> = match prediction {
                Some((len, kept)) => {
                    predicted = j + 1;
                    s.i += len;
                    (kept != NOT_KEPT).then_some(kept as usize)
                }
                None => {
                    if j > 0 {
                        // The separator the prediction would have taken.
                        s.ws();
                        match s.next()? {
                            b',' => s.ws(),
                            b'}' => break,
                            _ => return None,
                        }
                    }
                    diverged = true;
                    let (key, ascii) = s.plain_string_ascii()?;
                    // serde checks every key for UTF-8 (skipped string values not).
                    if !ascii {
                        std::str::from_utf8(key).ok()?;
                    }
                    s.ws();
                    s.eat(b':')?;
                    // Length and first byte reject most names before a compare.
                    let kept = keep.iter().position(|n| {
                        let n = n.as_bytes();
                        n.len() == key.len() && n.first() == key.first() && n == key
                    });
                    if indexed {
                        let start = key.as_ptr() as usize - bytes.as_ptr() as usize;
                        let k = kept.map_or(NOT_KEPT, |k| k as u8);
                        shape.seen.push((start as u32, (start + key.len()) as u32, k));
                    }
                    kept
                }
            };
            s.ws();
            if let Some(kept) = kept {
                let name = &keep[kept];
                let bit = 1u64 << (kept & 63);
                if indexed && set & bit == 0 {
                    set |= bit;
                    match fields.get_mut(len) {
                        Some(slot) => {
                            s.value_into(&mut slot.1)?;
                            if !same_name(&slot.0, name) {
                                slot.0 = name.clone();
                            }
                        }
                        None => fields.push((name.clone(), s.value()?)),
                    }
                    len += 1;
                } else {
                    // A repeated key keeps the last value at its first
                    // place, as the serde path does.
                    let value = s.value()?;
                    match fields[..len].iter_mut().find(|(n, _)| n == name) {
                        Some(slot) => slot.1 = value,
                        None => {
                            match fields.get_mut(len) {
                                Some(slot) => *slot = (name.clone(), value),
                                None => fields.push((name.clone(), value)),
                            }
                            len += 1;
                        }
                    }
                }
            } else {
                s.skip(0)?;
            }
            j += 1;
            // The separator is taken by the next field's prediction, or by
            // the general path above when there is none.
        }
    }
    s.ws();
    if s.i != bytes.len() {
        return None;
    }
    if indexed && (diverged || j != shape.fields.len()) {
        shape.learn(bytes, predicted);
    }
    Some(len)
}

/// The first byte of `b` that ends a string's plain run: a quote, a
/// backslash or a control character (which JSON forbids inside strings).
/// Skipping the long strings no aggregate reads (titles, descriptions,
/// URLs) is most of a record's scan, so this looks at 16 bytes at a time.
#[inline]
fn find_special(b: &[u8]) -> Option<usize> {
    find_special_ascii(b).map(|(at, _)| at)
}

/// [`find_special`], and whether every byte before it is ASCII (then the
/// run is UTF-8 without a check; the vector compare gives it for free).
#[inline]
fn find_special_ascii(b: &[u8]) -> Option<(usize, bool)> {
    #[cfg(target_arch = "x86_64")]
    {
        let mut i = 0;
        let mut high = 0u32;
        while i + 16 <= b.len() {
            // SAFETY: SSE2 is part of x86_64; the load reads the 16 bytes
            // b[i..i + 16], which the loop condition keeps in bounds.
            let (mask, hi) = unsafe { special_mask16(b.as_ptr().add(i)) };
            if mask != 0 {
                let at = mask.trailing_zeros();
                let before = hi & ((1u32 << at) - 1);
                return Some((i + at as usize, high == 0 && before == 0));
            }
            high |= hi;
            i += 16;
        }
        let at = i + b[i..].iter().position(|&c| is_special(c))?;
        Some((at, high == 0 && b[i..at].is_ascii()))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let at = b.iter().position(|&c| is_special(c))?;
        Some((at, b[..at].is_ascii()))
    }
}

#[inline]
fn is_special(c: u8) -> bool {
    c == b'"' || c == b'\\' || c < 0x20
}

/// Bit `k` set where byte `k` of the 16 at `p` is special ([`is_special`]),
/// and where it is not ASCII (its high bit).
///
/// # Safety
/// `p` must point to 16 readable bytes.
#[cfg(target_arch = "x86_64")]
#[inline]
unsafe fn special_mask16(p: *const u8) -> (u32, u32) {
    use std::arch::x86_64::*;
    let v = _mm_loadu_si128(p as *const __m128i);
    let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
    let slash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
    // Unsigned c <= 0x1F exactly when min(c, 0x1F) == c.
    let ctrl = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1F)), v);
    let special = _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, slash), ctrl)) as u32;
    (special, _mm_movemask_epi8(v) as u32)
}

/// The value of an integer the grammar accepted (`-?[0-9]+`, at most 18
/// digits, so it fits an i64).
fn small_int(lex: &[u8]) -> i64 {
    let (neg, digits) = match lex.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, lex),
    };
    let n = digits.iter().fold(0i64, |n, &d| n * 10 + i64::from(d - b'0'));
    if neg {
        -n
    } else {
        n
    }
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    #[inline]
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.i += 1;
        }
    }

    /// A string without escapes (a key, or a kept value's fast case): its
    /// bytes between the quotes, and whether they are all ASCII. `None` on
    /// an escape (left to serde).
    fn plain_string_ascii(&mut self) -> Option<(&'a [u8], bool)> {
        self.eat(b'"')?;
        let start = self.i;
        let (at, ascii) = find_special_ascii(&self.b[start..])?;
        let end = start + at;
        if self.b[end] != b'"' {
            return None;
        }
        self.i = end + 1;
        Some((&self.b[start..end], ascii))
    }

    /// Validates a string (at its opening quote) without decoding it.
    fn skip_string(&mut self) -> Option<()> {
        self.eat(b'"')?;
        loop {
            let rest = &self.b[self.i..];
            let at = find_special(rest)?;
            self.i += at + 1;
            match rest[at] {
                b'"' => return Some(()),
                b'\\' => match self.next()? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                    b'u' => {
                        let hex = self.b.get(self.i..self.i + 4)?;
                        if !hex.iter().all(u8::is_ascii_hexdigit) {
                            return None;
                        }
                        let code = u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                        // Surrogates: serde's call (pairs, lone halves).
                        if (0xD800..0xE000).contains(&code) {
                            return None;
                        }
                        self.i += 4;
                    }
                    _ => return None,
                },
                _ => return None, // a control character
            }
        }
    }

    /// Validates a number by the JSON grammar; true if it is an integer.
    fn skip_number(&mut self) -> Option<bool> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.next()? {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.digit()?;
            self.digits();
            integer = false;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            self.digit()?;
            self.digits();
            integer = false;
        }
        Some(integer)
    }

    fn digit(&mut self) -> Option<()> {
        self.next()?.is_ascii_digit().then_some(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    /// Validates any value.
    fn skip(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'"' => self.skip_string(),
            b'-' | b'0'..=b'9' => self.skip_number().map(|_| ()),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            open @ (b'[' | b'{') => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                let close = if open == b'[' { b']' } else { b'}' };
                self.i += 1;
                self.ws();
                if self.peek()? == close {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    if open == b'{' {
                        self.skip_string()?;
                        self.ws();
                        self.eat(b':')?;
                        self.ws();
                    }
                    self.skip(depth + 1)?;
                    self.ws();
                    match self.next()? {
                        b',' => self.ws(),
                        c if c == close => return Some(()),
                        _ => return None,
                    }
                }
            }
            _ => None,
        }
    }

    /// [`Scanner::value`] into `into`: a plain string over a string reuses
    /// its buffer.
    #[inline]
    fn value_into(&mut self, into: &mut Value) -> Option<()> {
        if let (Some(b'"'), Value::Str(buf)) = (self.peek(), &mut *into) {
            let start = self.i;
            if let Some((s, ascii)) = self.plain_string_ascii() {
                let text = if ascii {
                    // SAFETY: every byte is ASCII (checked by the scan).
                    unsafe { std::str::from_utf8_unchecked(s) }
                } else {
                    std::str::from_utf8(s).ok()?
                };
                if buf.capacity() < text.len() {
                    // A fresh buffer: growing this one would copy its old
                    // bytes first (a realloc), only to overwrite them.
                    *buf = String::with_capacity(text.len());
                } else {
                    buf.clear();
                }
                buf.push_str(text);
                return Some(());
            }
            self.i = start;
        }
        *into = self.value()?;
        Some(())
    }

    /// Decodes a kept value.
    fn value(&mut self) -> Option<Value> {
        let start = self.i;
        match self.peek()? {
            b'"' => {
                if let Some((s, ascii)) = self.plain_string_ascii() {
                    let text = if ascii {
                        // SAFETY: every byte is ASCII (checked by the scan).
                        unsafe { std::str::from_utf8_unchecked(s) }
                    } else {
                        // Not UTF-8: serde's call (it rejects the record).
                        std::str::from_utf8(s).ok()?
                    };
                    return Some(Value::Str(text.to_owned()));
                }
                self.i = start;
                self.skip_string()?;
            }
            b'-' | b'0'..=b'9' => {
                let integer = self.skip_number()?;
                let lex = &self.b[start..self.i];
                // Up to 18 digits always fits an i64; `-0` is a float in
                // serde_json, so it goes the general way.
                if integer && lex.len() <= 18 && !lex.starts_with(b"-0") {
                    return Some(Value::Int(small_int(lex)));
                }
            }
            b't' => return self.literal(b"true").map(|_| Value::Bool(true)),
            b'f' => return self.literal(b"false").map(|_| Value::Bool(false)),
            b'n' => return self.literal(b"null").map(|_| Value::Null),
            _ => self.skip(0)?,
        }
        value_from_json(&self.b[start..self.i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::value::intern;

    fn keep(names: &[&str]) -> Vec<Name> {
        names.iter().map(|n| intern(n)).collect()
    }

    /// Either the scanner's record equals serde's, or it says "not sure".
    fn agrees(input: &str, names: &[&str]) -> Option<Record> {
        let k = keep(names);
        let serde = Record::from_json_keeping_serde(input.as_bytes(), Some(&k));
        let fast = scan_keeping(input.as_bytes(), &k);
        if let Some(f) = &fast {
            assert_eq!(
                Ok(f),
                serde.as_ref(),
                "scanner accepted what serde did not, or differs: {input}"
            );
        }
        fast
    }

    #[test]
    fn keeps_only_named_fields_in_input_order() {
        let r = agrees(
            r#"{"a": "x", "skip": {"n": [1, 2.5e3, "q\"\u00e9"]}, "b": -17, "c": true, "d": null}"#,
            &["d", "b", "a", "c"],
        )
        .unwrap();
        let names: Vec<&str> = r.fields.iter().map(|(n, _)| &**n).collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
        assert_eq!(r.get("b"), Some(&Value::Int(-17)));
    }

    #[test]
    fn kept_values_decode_as_serde_decodes_them() {
        for v in [
            r#""plain""#,
            r#""esc\n\"aped\u00e9""#,
            "1.5",
            "-0",
            "0",
            "12345678901234567890",
            "-9223372036854775809",
            "[1, {\"x\": null}]",
            "{}",
            "\"h\u{e9}llo\"",
        ] {
            let input = format!("{{\"k\": {v}, \"z\": 1}}");
            // Scalars and nested values alike: exact, never "not sure".
            assert!(agrees(&input, &["k"]).is_some(), "{input}");
        }
        // Out of f64's range: serde rejects the record, so the scanner
        // must not accept it.
        assert!(agrees(r#"{"k": 1e400}"#, &["k"]).is_none());
        assert!(Record::from_json_keeping(br#"{"k": 1e400}"#, Some(&keep(&["k"]))).is_err());
    }

    #[test]
    fn repeated_keys_keep_the_last_value_at_the_first_place() {
        let r = agrees(r#"{"a": 1, "b": 2, "a": 3}"#, &["a", "b"]).unwrap();
        assert_eq!(r.fields[0], (intern("a"), Value::Int(3)));
    }

    /// Records of one source through one [`Shape`]: whatever layout the
    /// last record left (same keys, reordered, spaced, escaped, missing,
    /// repeated, extra, a prefix of a predicted key), each record reads as
    /// serde reads it, and a changed layout becomes the next prediction.
    #[test]
    fn predicted_key_layouts_read_as_serde_reads() {
        let k = keep(&["b", "d"]);
        let lines = [
            r#"{"a":1,"b":"x","c":[1,2],"d":4}"#,
            r#"{"a":2,"b":"y","c":[],"d":5}"#,
            r#"{"a":3,"b":"z","c":[],"d":6}"#,
            r#"{"b":"r","a":3,"d":7,"c":0}"#,
            r#"{"b":"r","a":3,"d":8,"c":0}"#,
            r#"{"b" : "s", "a": 3,"d" :9,"c":0}"#,
            r#"{"b":"t","a":3}"#,
            r#"{"b":"t","a":3,"d":1,"c":0,"e":2}"#,
            r#"{"b":"t","a":3,"d":1,"c":0,"e":2}"#,
            r#"{"bb":"u","a":3,"d":1,"c":0,"e":2}"#,
            r#"{"b":"u","a":3,"d":1,"c":0,"b":"v"}"#,
            r#"{"b":"u","a":3,"d":1,"c":0,"b":"w"}"#,
            r#"{"\u0062":"e","a":3,"d":1}"#,
            r#"{"b":"f","a":3,"d":1,"c":0,"e":2,"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa":1}"#,
            r#"{"b":"g","a":3,"d":1,"c":0,"e":2,"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa":2}"#,
            r#"{"b":"g","a":3,"d":1,"c":0,"e":2,"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab":2}"#,
            r#"{}"#,
            r#"{"b":"h","a":3,"d":1,"c":0,"e":2}"#,
            r#"{"b":"h","a":3,"d":1,"c":0,"e":2,}"#,
            r#"{"b":"i","a":3,"d":1,"c":0,"e":2}"#,
            // Whitespace before a separator, then the layout again.
            r#"{"b":"j","a":3 ,"d":1,"c":0,"e":2}"#,
            r#"{"b":"k","a":3,"d":1,"c":0 , "e":2}"#,
            r#"{"b":"l","a":3,"d":1,"c":0,"e":2 }"#,
            r#"{"b":"m","a":3,"d":1,"c":0,"e":2,"f":1}"#,
            r#"{"b":"n","a":3,"d":1,"c":0,"e":2}"#,
            r#"{"b":"o","a":3,"d":1,"c":0,"e":2}"#,
        ];
        let mut shape = Shape::default();
        let mut fields = Vec::new();
        let mut accepted = 0;
        for line in lines {
            let serde = Record::from_json_keeping_serde(line.as_bytes(), Some(&k));
            if scan_keeping_into(line.as_bytes(), &k, &mut fields, &mut shape) {
                assert_eq!(Ok(&Record { fields: fields.clone() }), serde.as_ref(), "{line}");
                accepted += 1;
            }
        }
        assert!(accepted >= 23, "{accepted}");
        // The layout of the last accepted record is the prediction, and
        // the predicted path took the record after the trailing comma.
        assert_eq!(shape.fields.len(), 5);
        assert!(shape.predicts(0, br#""b":"j"}"#.as_slice(), 0).is_some());
    }

    /// A shape learned with one keep list is not used with another one,
    /// even of the same length (its kept indices would name other fields).
    #[test]
    fn a_shape_follows_its_keep_list() {
        let mut shape = Shape::default();
        let mut fields = Vec::new();
        let line = br#"{"a":1,"b":2}"#;
        assert!(scan_keeping_into(line, &keep(&["a"]), &mut fields, &mut shape));
        assert!(scan_keeping_into(line, &keep(&["b"]), &mut fields, &mut shape));
        assert_eq!(fields, vec![(intern("b"), Value::Int(2))]);
    }

    /// Regression (found by `mutated_records_agree_with_serde`): serde
    /// rejects a key that is not UTF-8, even one no field keeps, while a
    /// skipped string value that is not UTF-8 passes; the scanner accepted
    /// the first.
    #[test]
    fn a_key_that_is_not_utf8_is_rejected_even_when_skipped() {
        let k = keep(&["a"]);
        let bad_key = b"{\"a\": 1, \"b\xc3x\": 2}";
        assert!(Record::from_json_keeping_serde(bad_key, Some(&k)).is_err());
        assert!(scan_keeping(bad_key, &k).is_none());
        let bad_value = b"{\"a\": 1, \"b\": \"\xc3x\"}";
        assert_eq!(
            scan_keeping(bad_value, &k).as_ref(),
            Record::from_json_keeping_serde(bad_value, Some(&k)).ok().as_ref()
        );
    }

    /// Emulated records of every topic with bytes replaced, inserted and
    /// removed at random: the scanner never accepts what serde rejects, nor
    /// differs from it (this found the unchecked keys above).
    #[test]
    fn mutated_records_agree_with_serde() {
        use crate::pinterest::emulate::Emulator;
        let em = Emulator::new(7);
        let ind = Emulator::ind_of;
        let topics: [(Vec<String>, Vec<Name>); 3] = [
            (
                (0..100)
                    .map(|k| serde_json::to_string(&em.pin(ind(k))).unwrap())
                    .collect(),
                keep(&["index", "poster_name", "follower_count", "category", "downloaded"]),
            ),
            (
                (0..100)
                    .map(|k| serde_json::to_string(&em.geo(ind(k), k % 2 == 0)).unwrap())
                    .collect(),
                keep(&["ind", "timestamp", "country", "latitude"]),
            ),
            (
                (0..100)
                    .map(|k| serde_json::to_string(&em.user(ind(k), k % 2 == 1)).unwrap())
                    .collect(),
                keep(&["ind", "first_name", "last_name", "age", "date_joined"]),
            ),
        ];
        let alphabet = b"\"\\:,{}[] 0-1.eEtnulfa\x01\xc3\xa9x";
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        let (mut checked, mut accepted) = (0, 0);
        for (lines, k) in &topics {
            // One layout per topic, learned from the records before (the
            // predicted keys are compared on mutated bytes too).
            let mut shape = Shape::default();
            let mut fields = Vec::new();
            for line in lines {
                for _ in 0..30 {
                    let mut b = line.as_bytes().to_vec();
                    for _ in 0..1 + next(3) {
                        let at = next(b.len());
                        let c = alphabet[next(alphabet.len())];
                        match next(3) {
                            0 => b[at] = c,
                            1 => b.insert(at, c),
                            _ => {
                                b.remove(at);
                            }
                        }
                        if b.is_empty() {
                            b.push(b'{');
                        }
                    }
                    let fast = scan_keeping(&b, k);
                    let shaped = scan_keeping_into(&b, k, &mut fields, &mut shape);
                    assert_eq!(fast.is_some(), shaped, "{}", String::from_utf8_lossy(&b));
                    if let Some(f) = &fast {
                        assert_eq!(f.fields, fields, "{}", String::from_utf8_lossy(&b));
                        let serde = Record::from_json_keeping_serde(&b, Some(k));
                        assert_eq!(Ok(f), serde.as_ref(), "{}", String::from_utf8_lossy(&b));
                        accepted += 1;
                    }
                    checked += 1;
                }
            }
        }
        // Most mutations land inside long strings and keep the record valid.
        assert!(checked == 9000 && accepted > 1000, "{checked} {accepted}");
    }

    /// Invalid JSON anywhere (kept or skipped) is never accepted.
    #[test]
    fn invalid_json_is_left_to_serde() {
        for bad in [
            r#"{"a": 1,}"#,
            r#"{"a": 1 "b": 2}"#,
            r#"{"a": 01}"#,
            r#"{"a": 1.}"#,
            r#"{"a": 1e}"#,
            r#"{"a": -}"#,
            r#"{"a": tru}"#,
            r#"{"a": [1, 2,]}"#,
            r#"{"a": "x\q"}"#,
            r#"{"a": "x\u12G4"}"#,
            "{\"a\": \"tab\there\"}",
            r#"{"a": "unterminated}"#,
            r#"{"a": 1} x"#,
            r#"{"a": {"b": 1}"#,
            r#"{"a" 1}"#,
            r#"[1]"#,
            "",
            r#"{"a": "\ud800"}"#,
            r#"{"a\n": 1}"#,
        ] {
            assert!(scan_keeping(bad.as_bytes(), &keep(&["a"])).is_none(), "{bad}");
            assert!(scan_keeping(bad.as_bytes(), &keep(&["zz"])).is_none(), "{bad}");
        }
        let deep = format!("{{\"a\": {}{}}}", "[".repeat(120), "]".repeat(120));
        assert!(scan_keeping(deep.as_bytes(), &keep(&["b"])).is_none());
        assert!(scan_keeping(b"{\"a\": \"\xff\"}", &keep(&["a"])).is_none());
        // A skipped string is not checked for UTF-8, as serde does not.
        let skipped = scan_keeping(b"{\"b\": \"\xff\", \"a\": 1}", &keep(&["a"])).unwrap();
        let serde = Record::from_json_keeping_serde(b"{\"b\": \"\xff\", \"a\": 1}", Some(&keep(&["a"])));
        assert_eq!(Ok(skipped), serde);
    }

    /// The 16-byte search finds the same first special byte as a byte loop,
    /// wherever it lies (in the vector part, the tail, or nowhere).
    #[test]
    fn special_bytes_are_found_at_every_position() {
        for len in 0..40 {
            for at in 0..=len {
                for special in [b'"', b'\\', 0x00, 0x1F, b'\n'] {
                    let mut b: Vec<u8> = (0..len).map(|i| b"az~\x7f\x80\xff 0"[i % 8]).collect();
                    if at < len {
                        b[at] = special;
                    }
                    let want = b.iter().position(|&c| is_special(c));
                    assert_eq!(find_special(&b), want, "len {len} at {at} byte {special:#x}");
                    if let Some(w) = want {
                        let ascii = b[..w].is_ascii();
                        assert_eq!(find_special_ascii(&b), Some((w, ascii)), "len {len} at {at}");
                    }
                    // Pure ASCII before the special byte, wherever it is.
                    let clean: Vec<u8> = b.iter().map(|&c| if c >= 0x80 { b'x' } else { c }).collect();
                    if let Some(w) = clean.iter().position(|&c| is_special(c)) {
                        assert_eq!(find_special_ascii(&clean), Some((w, true)));
                    }
                }
            }
        }
    }

    #[test]
    fn small_integers_parse_as_std_parses_them() {
        for n in [
            0i64,
            7,
            -7,
            10,
            99_999,
            -123_456_789,
            999_999_999_999_999_999,
            -99_999_999_999_999_999,
        ] {
            let lex = n.to_string();
            assert_eq!(small_int(lex.as_bytes()), lex.parse::<i64>().unwrap(), "{lex}");
        }
    }

    #[test]
    fn empty_object_and_whitespace() {
        assert_eq!(agrees("{ }", &["a"]).unwrap().fields.len(), 0);
        assert_eq!(agrees("{\r\n\t\"a\" :\t2 \n}", &["a"]).unwrap().fields.len(), 1);
    }
}
