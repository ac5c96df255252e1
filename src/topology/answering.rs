//! The topology of a replay whose only output is the answer.
//!
//! A replay into a temporary state prints the answer queries and throws the
//! state away, so an aggregate no answer query reads is work nobody sees:
//! the product topology's three windowed `live_*` aggregates (for the
//! daemon's dashboards) took about 2% of a 1,000,000-post replay's CPU.
//! [`answering_spec`] keeps the answer queries and the aggregates they read;
//! building it recomputes the projections, so a field only a dropped
//! aggregate read is no longer parsed or joined either.
//!
//! Only for state that is thrown away: a kept state (`--state-dir`) and the
//! daemon run the whole topology, whose fingerprint the state records.

use crate::dsl::{SpecError, TopologySpec};

use super::Topology;

/// `spec` cut down to its answer queries (all queries when `answers` is
/// empty) and the aggregates they read, in their original order.
pub fn answering_spec(spec: &TopologySpec) -> TopologySpec {
    let mut out = spec.clone();
    if !spec.answers.is_empty() {
        out.queries.retain(|q| spec.answers.contains(&q.name));
    }
    out.aggregates.retain(|a| out.queries.iter().any(|q| q.from == a.name));
    out
}

impl Topology {
    /// This topology as [`answering_spec`] cuts it down. A part of a valid
    /// topology is valid, so this fails only if that reasoning is wrong; the
    /// errors say where.
    pub fn answering_only(&self) -> Result<Topology, Vec<SpecError>> {
        answering_spec(&self.spec).build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names<T>(v: &[T], f: impl Fn(&T) -> &str) -> Vec<String> {
        v.iter().map(|x| f(x).to_string()).collect()
    }

    /// The product topology: the windowed aggregates and their queries go,
    /// the answer stays in its order, and what is left still builds.
    #[test]
    fn answer_queries_and_the_aggregates_they_read_are_kept() {
        let topo = crate::load_topology(crate::PINTEREST_TOPOLOGY).unwrap();
        let cut = topo.answering_only().unwrap();
        let answers = |t: &Topology| t.answers.iter().map(|&i| t.queries[i].name.clone()).collect::<Vec<_>>();
        assert_eq!(answers(&cut), answers(&topo));
        assert_eq!(cut.queries.len(), topo.answers.len());
        let kept = names(&cut.aggregates, |a| &a.name);
        assert!(kept.len() < topo.aggregates.len(), "{kept:?}");
        assert!(kept.iter().all(|a| !a.starts_with("live_")), "{kept:?}");
        for q in &cut.spec.queries {
            assert!(kept.contains(&q.from), "query {} reads {}", q.name, q.from);
        }
        let order: Vec<String> = names(&topo.aggregates, |a| &a.name)
            .into_iter()
            .filter(|a| kept.contains(a))
            .collect();
        assert_eq!(kept, order);
    }

    /// No `answers` list means every query is in the answer: only
    /// aggregates no query reads are dropped.
    #[test]
    fn without_an_answer_list_every_query_is_kept() {
        let mut spec = crate::load_topology(crate::PINTEREST_TOPOLOGY).unwrap().spec;
        spec.answers.clear();
        spec.queries.retain(|q| q.name != "live_category_by_year");
        let cut = answering_spec(&spec);
        assert_eq!(cut.queries, spec.queries);
        let dropped: Vec<&str> = spec
            .aggregates
            .iter()
            .filter(|a| !cut.aggregates.contains(a))
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(dropped, ["live_category_by_year"]);
        cut.build().unwrap();
    }
}
