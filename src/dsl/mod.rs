//! The topology DSL: TOML in, [`TopologySpec`] out, every error with a place.
//!
//! Parsing is done element by element (each source, operator, aggregate and
//! query on its own) so that one bad element does not hide the others: the
//! caller gets the whole list of problems, each with a path such as
//! `source[0].op[3]` and the line it is on. Semantic checks (unknown fields,
//! bad references) happen later in `TopologySpec::build`, whose errors use the
//! same paths; [`Spans::locate`] turns those paths into line numbers.

pub mod spec;

use std::fmt;

use serde::de::DeserializeOwned;
pub use spec::*;

/// One problem in a topology: where, what, and how to fix it.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecError {
    /// Path inside the topology, e.g. `aggregate[2].group_by`.
    pub path: String,
    /// 1-based line in the file, when the topology came from a file.
    pub line: Option<usize>,
    pub message: String,
    pub hint: Option<String>,
}

impl SpecError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        SpecError {
            path: path.into(),
            line: None,
            message: message.into(),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " (hint: {h})")?;
        }
        Ok(())
    }
}

/// Maps paths like `source[1].op[2].field` to line numbers of a TOML text.
pub struct Spans {
    text: String,
    doc: Option<toml_edit::ImDocument<String>>,
}

impl Spans {
    fn line_of(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())].matches('\n').count() + 1
    }

    /// Line of the deepest element of `path` found in the document.
    pub fn locate(&self, path: &str) -> Option<usize> {
        let doc = self.doc.as_ref()?;
        let mut table: &dyn toml_edit::TableLike = doc.as_table();
        let mut best = None;
        for seg in path.split('.').filter(|s| !s.is_empty()) {
            let (key, index) = match seg.find('[') {
                Some(i) => (&seg[..i], seg[i + 1..seg.len() - 1].parse::<usize>().ok()),
                None => (seg, None),
            };
            let Some((k, item)) = table.get_key_value(key) else {
                break;
            };
            best = k.span().or(item.span()).map(|s| s.start).or(best);
            match (index, item) {
                (Some(i), toml_edit::Item::ArrayOfTables(aot)) => {
                    let t = aot.get(i)?;
                    best = t.span().map(|s| s.start).or(best);
                    table = t;
                }
                (Some(i), toml_edit::Item::Value(toml_edit::Value::Array(arr))) => {
                    best = arr.get(i).and_then(|v| v.span()).map(|s| s.start).or(best);
                    break;
                }
                (None, item) => match item.as_table_like() {
                    Some(t) => table = t,
                    None => break,
                },
                _ => break,
            }
        }
        best.map(|o| self.line_of(o))
    }

    /// Fills in the line of every error that has a path.
    pub fn annotate(&self, errors: &mut [SpecError]) {
        for e in errors {
            if e.line.is_none() {
                e.line = self.locate(&e.path);
            }
        }
    }
}

/// A parsed topology file: the spec (if every element parsed) and the errors.
pub struct Parsed {
    pub spec: Option<TopologySpec>,
    pub errors: Vec<SpecError>,
    pub spans: Spans,
    /// The elements that did parse, for checking the rest when some did
    /// not: a source with a broken operator has its schema forgotten (so its
    /// field checks cannot cascade), and `broken` names the elements left
    /// out so that references to them are not reported again.
    pub partial: Option<TopologySpec>,
    pub broken: Vec<String>,
    /// Maps the partial spec's element indices back to the file's.
    pub kept: Kept,
}

/// Parses a TOML topology, collecting every structural error.
pub fn parse(text: &str) -> Parsed {
    let doc = toml_edit::ImDocument::parse(text.to_owned()).ok();
    let spans = Spans {
        text: text.to_owned(),
        doc,
    };
    let table: toml::Table = match text.parse() {
        Ok(t) => t,
        Err(e) => {
            let line = e.span().map(|s| spans.line_of(s.start));
            return Parsed {
                spec: None,
                errors: vec![SpecError {
                    path: String::new(),
                    line,
                    message: format!("TOML syntax error: {}", e.message()),
                    hint: None,
                }],
                spans,
                partial: None,
                broken: Vec::new(),
                kept: Kept::default(),
            };
        }
    };
    let mut errors = Vec::new();
    let mut kept = Kept::default();
    let mut spec = TopologySpec::default();
    let mut name = None;
    for (key, value) in &table {
        match key.as_str() {
            "name" => name = de::<String>("name", value, &mut errors),
            "answers" => spec.answers = de("answers", value, &mut errors).unwrap_or_default(),
            "source" => spec.sources = sources(value, &mut errors, &mut kept),
            "join" => spec.join = join(value, &mut errors, &mut kept),
            "aggregate" => spec.aggregates = each("aggregate", value, &mut errors, &mut kept),
            "query" => spec.queries = each("query", value, &mut errors, &mut kept),
            other => errors.push(
                SpecError::new(other, format!("unknown top-level key `{other}`")).hint(
                    suggest(other, &["name", "answers", "source", "join", "aggregate", "query"])
                        .map(|s| format!("did you mean `{s}`?"))
                        .unwrap_or_else(|| {
                            "top-level keys are name, answers, [[source]], [join], [[aggregate]], [[query]]".into()
                        }),
                ),
            ),
        }
    }
    match name {
        Some(n) => spec.name = n,
        None if !errors.iter().any(|e| e.path == "name") => {
            errors.push(SpecError::new("", "missing `name`").hint("add `name = \"...\"` at the top"))
        }
        None => {}
    }
    spans.annotate(&mut errors);
    let broken = broken_names(&table, &errors);
    let ok = errors.is_empty();
    Parsed {
        spec: ok.then(|| spec.clone()),
        partial: (!ok).then_some(spec),
        errors,
        spans,
        broken,
        kept,
    }
}

/// Names of the elements (sources, aggregates, queries) that failed to
/// parse, read from their raw tables.
fn broken_names(table: &toml::Table, errors: &[SpecError]) -> Vec<String> {
    let mut out = Vec::new();
    for kind in ["source", "aggregate", "query"] {
        let Some(items) = table.get(kind).and_then(|v| v.as_array()) else {
            continue;
        };
        for (i, item) in items.iter().enumerate() {
            let path = format!("{kind}[{i}]");
            if errors
                .iter()
                .any(|e| e.path == path || e.path.starts_with(&format!("{path}.")))
            {
                if let Some(n) = item.get("name").and_then(|n| n.as_str()) {
                    out.push(n.to_string());
                }
            }
        }
    }
    out
}

fn de<T: DeserializeOwned>(path: &str, value: &toml::Value, errors: &mut Vec<SpecError>) -> Option<T> {
    match T::deserialize(value.clone()) {
        Ok(v) => Some(v),
        Err(e) => {
            let message = e.message().trim().to_string();
            // Point at the offending key when serde names it.
            let key = ["unknown field `", "invalid type: "]
                .iter()
                .find_map(|p| message.strip_prefix(p))
                .and_then(|rest| rest.split('`').next())
                .filter(|k| value.get(k).is_some());
            let path = match key {
                Some(k) => format!("{path}.{k}"),
                None => path.to_string(),
            };
            errors.push(SpecError::new(path, message));
            None
        }
    }
}

fn elements<'a>(path: &str, value: &'a toml::Value, errors: &mut Vec<SpecError>) -> &'a [toml::Value] {
    match value.as_array() {
        Some(a) => a,
        None => {
            errors.push(
                SpecError::new(path, "expected an array of tables").hint(format!("write each element as [[{path}]]")),
            );
            &[]
        }
    }
}

fn each<T: DeserializeOwned>(path: &str, value: &toml::Value, errors: &mut Vec<SpecError>, kept: &mut Kept) -> Vec<T> {
    let mut idx = Vec::new();
    let out = elements(path, value, errors)
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            let parsed = de(&format!("{path}[{i}]"), v, errors);
            if parsed.is_some() {
                idx.push(i);
            }
            parsed
        })
        .collect();
    kept.0.insert(path.to_string(), idx);
    out
}

/// Which elements of each array parsed, by their index in the file: an
/// element that did not parse is left out of the spec, so the spec's
/// `aggregate[2]` may be the file's `aggregate[3]`. [`Kept::to_file_path`]
/// maps a spec path back, so errors found later point at the right line.
/// Regression: bad_window_size_is_reported_at_its_own_aggregate.
#[derive(Debug, Default, Clone)]
pub struct Kept(std::collections::HashMap<String, Vec<usize>>);

impl Kept {
    /// `aggregate[2].window.size` (spec) → `aggregate[3].window.size` (file).
    pub fn to_file_path(&self, path: &str) -> String {
        let mut out = String::new();
        for seg in path.split('.') {
            let mapped = match seg.find('[') {
                Some(i) if seg.ends_with(']') => {
                    let (name, idx) = (&seg[..i], seg[i + 1..seg.len() - 1].parse::<usize>().ok());
                    let array = if out.is_empty() {
                        name.to_string()
                    } else {
                        format!("{out}.{name}")
                    };
                    match (idx, self.0.get(&array)) {
                        (Some(n), Some(kept)) => format!("{name}[{}]", kept.get(n).copied().unwrap_or(n)),
                        _ => seg.to_string(),
                    }
                }
                _ => seg.to_string(),
            };
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&mapped);
        }
        out
    }
}

/// Deserializes a table that has a nested `op` array, parsing each op alone.
fn with_ops<T: DeserializeOwned>(
    path: &str,
    value: &toml::Value,
    errors: &mut Vec<SpecError>,
    kept: &mut Kept,
    set_ops: impl FnOnce(&mut T, Vec<OpSpec>),
) -> Option<T> {
    let mut table = value.as_table()?.clone();
    let ops_value = table.remove("op");
    let mut out: Option<T> = de(path, &toml::Value::Table(table), errors);
    let ops = ops_value
        .map(|v| each::<OpSpec>(&format!("{path}.op"), &v, errors, kept))
        .unwrap_or_default();
    if let Some(o) = out.as_mut() {
        set_ops(o, ops);
    }
    out
}

fn sources(value: &toml::Value, errors: &mut Vec<SpecError>, kept: &mut Kept) -> Vec<SourceSpec> {
    let mut idx = Vec::new();
    let out = elements("source", value, errors)
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            let path = format!("source[{i}]");
            if !v.is_table() {
                errors.push(SpecError::new(&path, "expected a table"));
                return None;
            }
            let before = errors.len();
            let raw_ops = v.get("op").and_then(|o| o.as_array()).map_or(&[][..], Vec::as_slice);
            let mut src = with_ops(&path, v, errors, kept, |s: &mut SourceSpec, ops| s.ops = ops)?;
            idx.push(i);
            if errors.len() > before && src.ops.len() < raw_ops.len() {
                // An operator did not parse, so it is missing from the list:
                // the fields it would have made (its `to`) are taken as known,
                // so later field checks of this source still run without
                // reporting those fields again.
                // Regression: unknown_op_does_not_hide_a_later_bad_field.
                if let Some(schema) = src.schema.as_mut() {
                    for op in raw_ops.iter().enumerate().filter_map(|(j, op)| {
                        let p = format!("{path}.op[{j}]");
                        errors
                            .iter()
                            .any(|e| e.path == p || e.path.starts_with(&format!("{p}.")))
                            .then_some(op)
                    }) {
                        if let Some(to) = op.get("to").and_then(|t| t.as_str()) {
                            schema.push(to.to_string());
                        }
                    }
                }
            }
            Some(src)
        })
        .collect();
    kept.0.insert("source".into(), idx);
    out
}

fn join(value: &toml::Value, errors: &mut Vec<SpecError>, kept: &mut Kept) -> Option<JoinSpec> {
    if !value.is_table() {
        errors.push(SpecError::new("join", "expected a table").hint("write it as [join]"));
        return None;
    }
    with_ops("join", value, errors, kept, |j: &mut JoinSpec, ops| j.ops = ops)
}

/// The hint for a name that is not one of `candidates`: "did you mean
/// `x`?" when one is close, else "`<what>`: a, b, c". The one place this
/// hint is built.
pub fn did_you_mean(word: &str, candidates: &[&str], what: &str) -> String {
    match suggest(word, candidates) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!("{what}: {}", candidates.join(", ")),
    }
}

/// Closest candidate by edit distance, if it is close enough to be a typo.
pub fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_structural_error_with_lines() {
        let text = r#"name = "t"
colour = 1

[[source]]
name = "a"
topic = "x"
key = "ind"

[[source.op]]
op = "rename"
form = "a"
to = "b"

[[source.op]]
op = "frobnicate"

[[aggregate]]
name = "c"
function = "count"
group_by = "notalist"
"#;
        let p = parse(text);
        assert!(p.spec.is_none());
        let lines: Vec<(Option<usize>, String)> = p.errors.iter().map(|e| (e.line, e.path.clone())).collect();
        assert_eq!(p.errors.len(), 4, "{:#?}", p.errors);
        assert!(lines.contains(&(Some(2), "colour".into())), "{lines:?}");
        assert!(lines.contains(&(Some(11), "source[0].op[0].form".into())), "{lines:?}");
        assert!(lines.contains(&(Some(14), "source[0].op[1]".into())), "{lines:?}");
        assert!(lines.contains(&(Some(17), "aggregate[0]".into())), "{lines:?}");
        assert!(p.errors[0].to_string().contains("line"));
    }

    #[test]
    fn syntax_error_has_a_line() {
        let p = parse("name = \"t\"\n[[source]\n");
        assert_eq!(p.errors.len(), 1);
        assert_eq!(p.errors[0].line, Some(2));
    }

    #[test]
    fn suggests_close_names() {
        assert_eq!(suggest("contry", &["country", "category"]), Some("country"));
        assert_eq!(suggest("zzz", &["country"]), None);
    }
}
