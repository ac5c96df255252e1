//! Which Kafka cluster and topics a state dir's positions belong to.
//!
//! Positions are offsets, and an offset means something only on the topic
//! partition that issued it. A state dir pointed at another cluster, or at
//! a topic that was deleted and recreated, would take new records at old
//! offsets for records it already applied and silently drop them. So the
//! state keeps what identifies the source (the cluster id, each topic's
//! partition count) and the daemon compares it with what the brokers say
//! before it reads anything.
//!
//! [`check`] is the decision, a pure function of what was stored and what is
//! observed: it lists every mismatch at once. Without topic ids (librdkafka's
//! metadata does not carry them), a recreated topic is recognised by its
//! facts: fewer partitions than before, or a partition whose high watermark
//! is below the offset the state has already applied.

use std::collections::BTreeMap;

/// What identifies the source of a state's positions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceIdentity {
    /// The cluster id the brokers report (`None` if they report none).
    pub cluster_id: Option<String>,
    /// Partition count per topic.
    pub partitions: BTreeMap<String, i32>,
}

impl SourceIdentity {
    /// Stored form: `cluster_id\n` then `topic\tpartitions\n` lines.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = format!("{}\n", self.cluster_id.as_deref().unwrap_or(""));
        for (t, n) in &self.partitions {
            s.push_str(&format!("{t}\t{n}\n"));
        }
        s.into_bytes()
    }

    pub fn from_bytes(b: &[u8]) -> Option<SourceIdentity> {
        let s = std::str::from_utf8(b).ok()?;
        let mut lines = s.lines();
        let cluster = lines.next()?;
        let mut partitions = BTreeMap::new();
        for l in lines {
            let (t, n) = l.split_once('\t')?;
            partitions.insert(t.to_string(), n.parse().ok()?);
        }
        Some(SourceIdentity {
            cluster_id: (!cluster.is_empty()).then(|| cluster.to_string()),
            partitions,
        })
    }
}

/// What the brokers say now about one partition the state has positions for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionSeen {
    pub topic: String,
    pub partition: i32,
    /// Next offset the state would read (end of its applied ranges).
    pub applied_end: i64,
    /// The partition's high watermark now; `None` if the partition is gone.
    pub high: Option<i64>,
}

/// One reason the state's positions do not belong to this source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    Cluster {
        stored: String,
        now: String,
    },
    FewerPartitions {
        topic: String,
        stored: i32,
        now: i32,
    },
    BehindState {
        topic: String,
        partition: i32,
        applied_end: i64,
        high: i64,
    },
    PartitionGone {
        topic: String,
        partition: i32,
    },
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mismatch::Cluster { stored, now } => write!(
                f,
                "the state was written from Kafka cluster `{stored}`, the brokers now are cluster `{now}`"
            ),
            Mismatch::FewerPartitions { topic, stored, now } => write!(
                f,
                "topic `{topic}` had {stored} partitions, now {now}: it was deleted and recreated"
            ),
            Mismatch::BehindState {
                topic,
                partition,
                applied_end,
                high,
            } => write!(
                f,
                "{topic}/{partition} ends at offset {high}, but the state has already applied offsets up to {applied_end}: \
                 the topic was recreated or this is another cluster"
            ),
            Mismatch::PartitionGone { topic, partition } => {
                write!(f, "{topic}/{partition} holds positions in the state but no longer exists")
            }
        }
    }
}

/// Compares the stored identity and positions with what the brokers say.
/// An empty result means the positions can be trusted. A state without a
/// stored identity (fresh, or written before identities were kept) is
/// checked by its positions only.
pub fn check(stored: Option<&SourceIdentity>, now: &SourceIdentity, seen: &[PartitionSeen]) -> Vec<Mismatch> {
    let mut out = Vec::new();
    if let Some(s) = stored {
        if let (Some(a), Some(b)) = (&s.cluster_id, &now.cluster_id) {
            if a != b {
                out.push(Mismatch::Cluster {
                    stored: a.clone(),
                    now: b.clone(),
                });
            }
        }
        for (topic, &n) in &s.partitions {
            match now.partitions.get(topic) {
                Some(&m) if m < n => out.push(Mismatch::FewerPartitions {
                    topic: topic.clone(),
                    stored: n,
                    now: m,
                }),
                _ => {}
            }
        }
    }
    for p in seen {
        match p.high {
            Some(high) if high < p.applied_end => out.push(Mismatch::BehindState {
                topic: p.topic.clone(),
                partition: p.partition,
                applied_end: p.applied_end,
                high,
            }),
            Some(_) => {}
            None => {
                // A whole missing topic is reported by the partition count.
                if !out
                    .iter()
                    .any(|m| matches!(m, Mismatch::FewerPartitions { topic, .. } if *topic == p.topic))
                {
                    out.push(Mismatch::PartitionGone {
                        topic: p.topic.clone(),
                        partition: p.partition,
                    })
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ident(cluster: Option<&str>, parts: &[(&str, i32)]) -> SourceIdentity {
        SourceIdentity {
            cluster_id: cluster.map(str::to_string),
            partitions: parts.iter().map(|(t, n)| (t.to_string(), *n)).collect(),
        }
    }

    fn seen(topic: &str, partition: i32, applied_end: i64, high: Option<i64>) -> PartitionSeen {
        PartitionSeen {
            topic: topic.into(),
            partition,
            applied_end,
            high,
        }
    }

    #[test]
    fn same_source_with_more_records_and_partitions_is_trusted() {
        let s = ident(Some("c1"), &[("p.pin", 3)]);
        let now = ident(Some("c1"), &[("p.pin", 4)]);
        assert!(check(
            Some(&s),
            &now,
            &[seen("p.pin", 0, 10, Some(25)), seen("p.pin", 1, 7, Some(7))]
        )
        .is_empty());
    }

    #[test]
    fn regression_state_dir_reused_against_a_fresh_cluster_is_refused() {
        // demo restarted on a used --state-dir: a new broker, offsets from 0.
        let s = ident(Some("c1"), &[("p.pin", 3)]);
        let now = ident(Some("c2"), &[("p.pin", 3)]);
        let got = check(Some(&s), &now, &[seen("p.pin", 0, 10, Some(4))]);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].to_string().contains("cluster `c1`"));
        assert!(got[1].to_string().contains("ends at offset 4"));
    }

    #[test]
    fn recreated_topic_is_recognised_without_a_cluster_id() {
        let s = ident(None, &[("p.geo", 3)]);
        let now = ident(None, &[("p.geo", 1)]);
        let got = check(
            Some(&s),
            &now,
            &[seen("p.geo", 0, 5, Some(0)), seen("p.geo", 2, 5, None)],
        );
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(matches!(got[0], Mismatch::FewerPartitions { .. }));
        // Legacy state (no identity stored): positions alone still decide.
        assert_eq!(check(None, &now, &[seen("p.geo", 0, 5, Some(0))]).len(), 1);
    }

    #[test]
    fn identity_round_trips() {
        let a = ident(Some("abc"), &[("x.pin", 3), ("x.geo", 1)]);
        assert_eq!(SourceIdentity::from_bytes(&a.to_bytes()), Some(a));
        let b = ident(None, &[]);
        assert_eq!(SourceIdentity::from_bytes(&b.to_bytes()), Some(b));
    }
}
