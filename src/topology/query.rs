//! Building one `[[query]]`: resolve its aggregate, `per` and `range`
//! columns, `q` and output columns against the built aggregates, reporting
//! every error with its path.

use super::{Aggregate, Query};
use crate::dsl::{self, QueryKind, QuerySpec, SpecError, TopologySpec};

pub(super) fn build_query(
    i: usize,
    q: &QuerySpec,
    spec: &TopologySpec,
    aggregates: &[Aggregate],
    errors: &mut Vec<SpecError>,
) -> Option<Query> {
    let path = format!("query[{i}]");
    let Some(a_idx) = spec.aggregates.iter().position(|a| a.name == q.from) else {
        let cands: Vec<&str> = spec.aggregates.iter().map(|a| a.name.as_str()).collect();
        errors.push(
            SpecError::new(format!("{path}.from"), format!("unknown aggregate `{}`", q.from)).hint(dsl::did_you_mean(
                &q.from,
                &cands,
                "aggregates",
            )),
        );
        return None;
    };
    let agg = aggregates.get(a_idx)?;
    let col = |name: &str, what: &str, errors: &mut Vec<SpecError>| -> Option<usize> {
        let found = agg.columns.iter().position(|c| c == name);
        if found.is_none() {
            let cands: Vec<&str> = agg.columns.iter().map(String::as_str).collect();
            errors.push(
                SpecError::new(
                    format!("{path}.{what}"),
                    format!("`{name}` is not a column of aggregate `{}`", agg.name),
                )
                .hint(dsl::did_you_mean(name, &cands, "columns")),
            );
        }
        found
    };
    let mut ok = true;
    let mut per = Vec::new();
    for p in &q.per {
        match agg.group_by.iter().position(|g| &**g == p) {
            Some(k) => per.push(k),
            None => {
                ok = false;
                errors.push(
                    SpecError::new(
                        format!("{path}.per"),
                        format!("`{p}` is not a group_by field of `{}`", agg.name),
                    )
                    .hint(format!(
                        "group_by: {}",
                        agg.group_by.iter().map(|g| &**g).collect::<Vec<_>>().join(", ")
                    )),
                );
            }
        }
    }
    if q.kind == QueryKind::Rows && !q.per.is_empty() {
        errors.push(SpecError::new(
            format!("{path}.per"),
            "`per` only applies to kind = \"top\"",
        ));
    }
    let range = match &q.range {
        Some(r) => match col(&r.field, "range.field", errors) {
            Some(c) => Some((c, r.min, r.max)),
            None => {
                ok = false;
                None
            }
        },
        None => None,
    };
    if q.q.is_some() && !agg.function.imp().takes_quantile() {
        errors.push(SpecError::new(
            format!("{path}.q"),
            "`q` only applies to quantiles aggregates",
        ));
    }
    let qv = q.q.unwrap_or(0.5);
    if !(0.0..=1.0).contains(&qv) {
        errors.push(SpecError::new(
            format!("{path}.q"),
            format!("q = {qv} is outside [0, 1]"),
        ));
    }
    if q.columns.is_empty() {
        errors.push(SpecError::new(format!("{path}.columns"), "no columns").hint(format!(
            "columns of `{}`: {}",
            agg.name,
            agg.columns.join(", ")
        )));
    }
    let mut columns = Vec::new();
    for c in &q.columns {
        let (src, out) = match c.split_once(" as ") {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (c.trim(), c.trim()),
        };
        match col(src, "columns", errors) {
            Some(k) => columns.push((k, out.to_string())),
            None => ok = false,
        }
    }
    ok.then(|| Query {
        name: q.name.clone(),
        description: q.description.clone(),
        aggregate: a_idx,
        kind: q.kind,
        per,
        range,
        q: qv,
        columns,
    })
}
