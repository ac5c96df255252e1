//! What runs: a validated, compiled topology.
//!
//! [`TopologySpec::build`] is the only way to get a [`Topology`]. It performs
//! every check (names, references, function arguments, windows, queries) and
//! returns **all** errors at once, each with its path. It also computes the
//! projection of every join input: the fields the join must keep for the
//! post-join operators and aggregates, so the join state holds a few fields
//! per key instead of whole records.
//!
//! Invariants of a built topology: every reference resolves (sources, fields
//! where the schema is known, aggregates, queries, columns); every source is
//! an input of the join; aggregate and query names are unique.

mod answering;
mod query;

use std::collections::HashSet;

use crate::dsl::{self, AggregateSpec, Function, OpSpec, QueryKind, SpecError, TopologySpec};
use crate::model::value::{intern, Name};
use crate::operator::{self, Operator};
use std::sync::Arc;

/// A compiled source.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    /// Topic template (`${prefix}` not yet replaced).
    pub topic: String,
    pub key: Name,
    pub ops: Vec<Arc<dyn Operator>>,
    /// The chain `prepare` runs on a record parsed with only `raw_fields`:
    /// `ops` pruned to what the projection and the key depend on
    /// (`operator::prepare_chain`).
    pub prepare_ops: Vec<Arc<dyn Operator>>,
    /// Fields (besides the key) that the join keeps from this source.
    pub projection: Vec<Name>,
    /// Raw top-level fields the parser must materialise for the projection
    /// and the key (`operator::raw_needs`); the others are skipped unparsed.
    pub raw_fields: Vec<Name>,
    /// Raw fields that may hold the key before the operators (the key and
    /// what is renamed into it): HTTP ingest keys records by them.
    pub raw_key: Vec<Name>,
}

impl Source {
    /// The topic name for a prefix.
    pub fn topic_for(&self, prefix: &str) -> String {
        self.topic.replace("${prefix}", prefix)
    }
}

/// The compiled join.
#[derive(Debug, Clone)]
pub struct Join {
    pub name: String,
    pub key: Name,
    /// Source indices, in input order.
    pub inputs: Vec<usize>,
    pub ops: Vec<Arc<dyn Operator>>,
    /// Per input (in input order), which of its projected columns the
    /// joined row takes: a name already taken (the key, or an earlier
    /// input's column) is skipped. Planned once here, so building a joined
    /// row never searches it by name.
    pub takes: Vec<Vec<bool>>,
}

/// See [`Join::takes`]: the first occurrence of each name wins.
fn join_takes<'a>(key: &str, projections: impl Iterator<Item = &'a [Name]>) -> Vec<Vec<bool>> {
    let mut taken: Vec<&str> = vec![key];
    projections
        .map(|cols| {
            cols.iter()
                .map(|c| {
                    let new = !taken.contains(&&**c);
                    if new {
                        taken.push(c);
                    }
                    new
                })
                .collect()
        })
        .collect()
}

/// A tumbling window, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub size: i64,
    pub retention: i64,
}

/// A compiled aggregate (state store).
#[derive(Debug, Clone)]
pub struct Aggregate {
    pub name: String,
    pub description: String,
    pub function: Function,
    pub group_by: Vec<Name>,
    /// `distinct` fields (distinct_count) or `item` fields (max_by).
    pub extra: Vec<Name>,
    /// `by` (max_by) or `value` (quantiles).
    pub measure: Option<Name>,
    pub compression: f64,
    pub window: Option<(Name, Window)>,
    /// Row columns, in order.
    pub columns: Vec<String>,
}

/// A compiled query.
#[derive(Debug, Clone)]
pub struct Query {
    pub name: String,
    pub description: String,
    pub aggregate: usize,
    pub kind: QueryKind,
    /// Indices into the aggregate's group_by.
    pub per: Vec<usize>,
    /// (column index, min, max)
    pub range: Option<(usize, Option<f64>, Option<f64>)>,
    pub q: f64,
    /// (aggregate column index, output name)
    pub columns: Vec<(usize, String)>,
}

/// A runnable topology.
#[derive(Debug, Clone)]
pub struct Topology {
    pub spec: TopologySpec,
    pub sources: Vec<Source>,
    pub join: Join,
    pub aggregates: Vec<Aggregate>,
    pub queries: Vec<Query>,
    /// Query indices of the batch answer.
    pub answers: Vec<usize>,
    /// Hash of everything that shapes state (sources, join, aggregates; not
    /// queries): a state dir written under another fingerprint is refused.
    pub fingerprint: u64,
}

impl Topology {
    /// The source reading `topic` under any prefix (the topic matches its
    /// template around `${prefix}`).
    pub fn source_of_topic(&self, topic: &str) -> Option<&Source> {
        self.sources.iter().find(|s| match s.topic.split_once("${prefix}") {
            Some((pre, post)) => {
                topic.len() > pre.len() + post.len() && topic.starts_with(pre) && topic.ends_with(post)
            }
            None => s.topic == topic,
        })
    }

    /// The topic kinds of the sources: each topic template after
    /// `${prefix}.` (`pin`, `geo`, `user` for the product).
    pub fn topic_kinds(&self) -> Vec<&str> {
        self.sources
            .iter()
            .filter_map(|s| s.topic.strip_prefix("${prefix}."))
            .collect()
    }

    /// Every table the topology's components declare: the join's, then one
    /// per aggregate (the store opens these and `meta`).
    pub fn tables(&self) -> Vec<crate::state::table::TableSpec> {
        std::iter::once(crate::state::join::table(&self.join.name))
            .chain(self.aggregates.iter().map(crate::aggregate::state::table))
            .collect()
    }
}

/// Parses `"90s"`, `"30m"`, `"1h"`, `"1d"`, `"1w"` into seconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let n: i64 = s[..split].parse().ok()?;
    let unit = match &s[split..] {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return None,
    };
    (n > 0).then_some(n * unit)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl AggregateSpec {
    /// Every post field the aggregate reads.
    pub fn fields(&self) -> Vec<String> {
        self.fields_by_key().into_iter().map(|(_, f)| f).collect()
    }

    /// Every post field the aggregate reads, with the key that names it.
    pub fn fields_by_key(&self) -> Vec<(&'static str, String)> {
        let mut f: Vec<(&'static str, String)> = self.group_by.iter().map(|g| ("group_by", g.clone())).collect();
        f.extend(self.distinct.iter().map(|x| ("distinct", x.clone())));
        f.extend(self.item.iter().map(|x| ("item", x.clone())));
        f.extend(self.by.iter().map(|x| ("by", x.clone())));
        f.extend(self.value.iter().map(|x| ("value", x.clone())));
        f.extend(self.window.iter().map(|w| ("window", w.field.clone())));
        f
    }
}

fn unique<'a>(kind: &str, names: impl Iterator<Item = (usize, &'a str)>, errors: &mut Vec<SpecError>) {
    let mut seen = HashSet::new();
    for (i, n) in names {
        if n.is_empty() {
            errors.push(SpecError::new(format!("{kind}[{i}].name"), "name is empty"));
        } else if !seen.insert(n) {
            errors.push(SpecError::new(
                format!("{kind}[{i}].name"),
                format!("duplicate {kind} name `{n}`"),
            ));
        }
    }
}

fn need_field(known: &Option<Vec<String>>, f: &str, path: &str, what: &str, errors: &mut Vec<SpecError>) {
    if let Some(k) = known {
        if !k.iter().any(|x| x == f) {
            let cands: Vec<&str> = k.iter().map(String::as_str).collect();
            let hint = dsl::did_you_mean(f, &cands, "joined rows have");
            errors.push(SpecError::new(path, format!("{what} `{f}` is not a field of the joined rows")).hint(hint));
        }
    }
}

impl TopologySpec {
    /// Validates and compiles the topology, reporting every error.
    pub fn build(&self) -> Result<Topology, Vec<SpecError>> {
        let mut errors = Vec::new();
        if self.name.trim().is_empty() {
            errors.push(SpecError::new("name", "topology name is empty"));
        }
        if self.sources.is_empty() {
            errors.push(SpecError::new("source", "no sources").hint("add a [[source]] table"));
        }
        unique(
            "source",
            self.sources.iter().enumerate().map(|(i, s)| (i, s.name.as_str())),
            &mut errors,
        );
        unique(
            "aggregate",
            self.aggregates.iter().enumerate().map(|(i, s)| (i, s.name.as_str())),
            &mut errors,
        );
        unique(
            "query",
            self.queries.iter().enumerate().map(|(i, s)| (i, s.name.as_str())),
            &mut errors,
        );

        // Sources: operators over the known field list.
        let mut schemas: Vec<Option<Vec<String>>> = Vec::new();
        for (i, s) in self.sources.iter().enumerate() {
            let path = format!("source[{i}]");
            if s.topic.trim().is_empty() {
                errors.push(
                    SpecError::new(format!("{path}.topic"), "topic is empty").hint("e.g. topic = \"${prefix}.pin\""),
                );
            }
            let mut fields = s.schema.clone();
            for (j, op) in s.ops.iter().enumerate() {
                operator::check(op, &mut fields, &format!("{path}.op[{j}]"), &mut errors);
            }
            if let Some(f) = &fields {
                if !f.contains(&s.key) {
                    errors.push(
                        SpecError::new(
                            format!("{path}.key"),
                            format!("key `{}` is not a field after the operators", s.key),
                        )
                        .hint(format!("fields after the operators: {}", f.join(", "))),
                    );
                }
            }
            schemas.push(fields);
        }

        // Join.
        let mut input_idx = Vec::new();
        let Some(join) = &self.join else {
            errors.push(SpecError::new("join", "missing [join]").hint("add [join] with name, key and inputs"));
            return Err(errors);
        };
        if join.inputs.is_empty() {
            errors.push(SpecError::new("join.inputs", "no inputs"));
        }
        for (k, name) in join.inputs.iter().enumerate() {
            match self.sources.iter().position(|s| &s.name == name) {
                Some(i) if input_idx.contains(&i) => errors.push(SpecError::new(
                    format!("join.inputs[{k}]"),
                    format!("source `{name}` listed twice"),
                )),
                Some(i) => input_idx.push(i),
                None => {
                    let cands: Vec<&str> = self.sources.iter().map(|s| s.name.as_str()).collect();
                    errors.push(
                        SpecError::new(format!("join.inputs[{k}]"), format!("unknown source `{name}`"))
                            .hint(dsl::did_you_mean(name, &cands, "sources")),
                    );
                }
            }
        }
        for (i, s) in self.sources.iter().enumerate() {
            if !input_idx.contains(&i) && join.inputs.iter().all(|n| n != &s.name) {
                errors.push(
                    SpecError::new(
                        format!("source[{i}]"),
                        format!("source `{}` is not an input of the join", s.name),
                    )
                    .hint("add it to join.inputs or remove it"),
                );
            }
        }
        // Joined row schema: key, then each input's fields in input order
        // (unknown if an input did not resolve: checks would only cascade).
        let resolved = join.inputs.iter().all(|n| self.sources.iter().any(|s| &s.name == n));
        let mut post: Option<Vec<String>> = resolved.then(|| vec![join.key.clone()]);
        for &i in &input_idx {
            match (&mut post, &schemas[i]) {
                (Some(p), Some(f)) => {
                    for x in f {
                        if x != &self.sources[i].key && !p.contains(x) {
                            p.push(x.clone());
                        }
                    }
                }
                _ => post = None,
            }
        }
        for (j, op) in join.ops.iter().enumerate() {
            if matches!(op, OpSpec::Require(_)) {
                errors.push(
                    SpecError::new(format!("join.op[{j}]"), "`require` is not allowed after the join")
                        .hint("put it in the source"),
                );
            }
            operator::check(op, &mut post, &format!("join.op[{j}]"), &mut errors);
        }

        // Aggregates.
        let mut aggregates = Vec::new();
        for (i, a) in self.aggregates.iter().enumerate() {
            let path = format!("aggregate[{i}]");
            for (key, f) in a.fields_by_key() {
                need_field(&post, &f, &format!("{path}.{key}"), "field", &mut errors);
            }
            let f = a.function.imp();
            let mut arg_err = |arg: &str, msg: &str| {
                errors.push(SpecError::new(
                    format!("{path}.{arg}"),
                    format!("{}: {msg}", a.function),
                ));
            };
            f.check(a, &mut arg_err);
            let given = crate::aggregate::args_set(a);
            let stray: Vec<&str> = given.iter().copied().filter(|g| !f.args().contains(g)).collect();
            if let Some(first) = stray.first() {
                arg_err(
                    first,
                    &format!(
                        "`{}` {} not apply to {}",
                        stray.join("`/`"),
                        if stray.len() == 1 { "does" } else { "do" },
                        a.function
                    ),
                );
            }
            let (extra, measure) = f.key_fields(a);
            let compression = a.compression.unwrap_or(200.0);
            let window = a.window.as_ref().and_then(|w| {
                let size = parse_duration(&w.size);
                let retention = parse_duration(&w.retention);
                if size.is_none() {
                    errors.push(
                        SpecError::new(format!("{path}.window.size"), format!("bad duration `{}`", w.size))
                            .hint("e.g. \"1h\", \"1d\", \"30m\""),
                    );
                }
                if retention.is_none() {
                    errors.push(
                        SpecError::new(
                            format!("{path}.window.retention"),
                            format!("bad duration `{}`", w.retention),
                        )
                        .hint("e.g. \"30d\""),
                    );
                }
                let (size, retention) = (size?, retention?);
                if retention < size {
                    errors.push(SpecError::new(
                        format!("{path}.window.retention"),
                        "retention is shorter than the window size",
                    ));
                }
                Some((intern(&w.field), Window { size, retention }))
            });
            let mut columns: Vec<String> = a.group_by.clone();
            columns.extend(f.columns(a));
            aggregates.push(Aggregate {
                name: a.name.clone(),
                description: a.description.clone(),
                function: a.function,
                group_by: a.group_by.iter().map(|s| intern(s)).collect(),
                extra: extra.iter().map(|s| intern(s)).collect(),
                measure: measure.map(|m| intern(&m)),
                compression,
                window,
                columns,
            });
        }

        // Queries.
        let queries: Vec<Query> = self
            .queries
            .iter()
            .enumerate()
            .filter_map(|(i, q)| query::build_query(i, q, self, &aggregates, &mut errors))
            .collect();
        let answers = if self.answers.is_empty() {
            (0..queries.len()).collect()
        } else {
            self.answers
                .iter()
                .enumerate()
                .filter_map(|(k, name)| {
                    let found = self.queries.iter().position(|q| &q.name == name);
                    if found.is_none() {
                        let cands: Vec<&str> = self.queries.iter().map(|q| q.name.as_str()).collect();
                        errors.push(
                            SpecError::new(format!("answers[{k}]"), format!("unknown query `{name}`")).hint(
                                dsl::suggest(name, &cands).map_or("list names of [[query]] tables".into(), |s| {
                                    format!("did you mean `{s}`?")
                                }),
                            ),
                        );
                    }
                    found
                })
                .collect()
        };

        // Projection: the fields the aggregates and post-join operators read.
        let mut needed: Vec<String> = Vec::new();
        for f in self.aggregates.iter().flat_map(|a| a.fields()).chain(
            join.ops
                .iter()
                .flat_map(|o| o.spec().reads().into_iter().map(|(_, f)| f.to_string())),
        ) {
            if !needed.contains(&f) {
                needed.push(f);
            }
        }
        let mut claimed: Vec<(String, usize)> = Vec::new();
        let mut projections = vec![Vec::new(); self.sources.len()];
        for &i in &input_idx {
            let src = &self.sources[i];
            for f in &needed {
                if f == &src.key || f == &join.key {
                    continue;
                }
                let has = schemas[i].as_ref().is_none_or(|s| s.contains(f));
                if !has {
                    continue;
                }
                if let Some((_, by)) = claimed.iter().find(|(c, _)| c == f) {
                    if schemas[i].is_some() {
                        errors.push(
                            SpecError::new(
                                format!("source[{i}]"),
                                format!(
                                    "field `{f}` comes from both `{}` and `{}`",
                                    self.sources[*by].name, src.name
                                ),
                            )
                            .hint("rename or drop it in one of the sources"),
                        );
                    }
                    continue;
                }
                if schemas[i].is_some() {
                    claimed.push((f.clone(), i));
                }
                projections[i].push(intern(f));
            }
        }

        if !errors.is_empty() {
            return Err(errors);
        }
        let sources: Vec<Source> = self
            .sources
            .iter()
            .zip(projections)
            .map(|(s, projection)| {
                let mut out: Vec<String> = projection.iter().map(|n| n.to_string()).collect();
                out.push(s.key.clone());
                let (prepare_ops, raw) = operator::prepare_chain(&s.ops, &out);
                Source {
                    name: s.name.clone(),
                    topic: s.topic.clone(),
                    key: intern(&s.key),
                    ops: s.ops.iter().map(OpSpec::build).collect(),
                    prepare_ops,
                    raw_fields: raw.iter().map(|f| intern(f)).collect(),
                    raw_key: operator::raw_key_fields(&s.ops, &s.key)
                        .iter()
                        .map(|f| intern(f))
                        .collect(),
                    projection,
                }
            })
            .collect();
        let shape = serde_json::to_string(&(&self.sources, &self.join, &self.aggregates)).unwrap_or_default();
        let takes = join_takes(&join.key, input_idx.iter().map(|&i| &sources[i].projection[..]));
        Ok(Topology {
            spec: self.clone(),
            sources,
            join: Join {
                name: join.name.clone(),
                key: intern(&join.key),
                takes,
                inputs: input_idx,
                ops: join.ops.iter().map(OpSpec::build).collect(),
            },
            aggregates,
            queries,
            answers,
            fingerprint: fnv1a(shape.as_bytes()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Some(90));
        assert_eq!(parse_duration("1d"), Some(86_400));
        assert_eq!(parse_duration("2w"), Some(1_209_600));
        assert_eq!(parse_duration("0h"), None);
        assert_eq!(parse_duration("1y"), None);
        assert_eq!(parse_duration("h"), None);
    }

    /// The joined row takes the key once and each other name from the
    /// first input that projects it.
    #[test]
    fn join_takes_first_occurrence_of_each_name() {
        let n = |v: &[&str]| v.iter().map(|s| intern(s)).collect::<Vec<Name>>();
        let (a, b, c) = (n(&["ind", "x", "y"]), n(&["ind", "y", "z"]), n(&["z", "w"]));
        let takes = join_takes("ind", [&a[..], &b[..], &c[..]].into_iter());
        assert_eq!(
            takes,
            vec![vec![false, true, true], vec![false, false, true], vec![false, true]]
        );
    }
}
