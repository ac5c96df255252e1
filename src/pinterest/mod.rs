//! Everything specific to the Pinterest pipeline, in one place. The engine
//! is generic: sources, keys, join and aggregates come from the topology
//! (`topologies/pinterest.toml` is the product), never from Rust.
//!
//! - [`TOPOLOGY`]: the product topology, compiled in (`demo`, and the
//!   default of every command that takes `--topology`);
//! - [`DEFAULT_PREFIX`]: the topic prefix of the original pipeline's
//!   account (`<prefix>.pin|geo|user`);
//! - [`stream_topic`] / [`stream_name`]: the Kinesis stream naming of the
//!   original write-ups (`streaming-<prefix>-<kind>` for topic
//!   `<prefix>.<kind>`), used by the HTTP API's Kinesis-style routes;
//! - [`emulate`]: the emulator of the seeds' posting script (synthetic and
//!   real rows, to an archive, Kafka or HTTP).

pub mod emulate;

/// The product topology (`topologies/pinterest.toml`), built into the binary.
pub const TOPOLOGY: &str = include_str!("../../topologies/pinterest.toml");

/// The topic prefix of the original pipeline (its AWS account's user id).
pub const DEFAULT_PREFIX: &str = "129a67850695";

/// `streaming-<prefix>-<kind>` → `<prefix>.<kind>`, for the topic kinds the
/// topology reads (the part of each source topic after `${prefix}.`).
pub fn stream_topic(stream: &str, kinds: &[&str]) -> Option<String> {
    let rest = stream.strip_prefix("streaming-")?;
    let (prefix, kind) = rest.rsplit_once('-')?;
    (!prefix.is_empty() && kinds.contains(&kind)).then(|| format!("{prefix}.{kind}"))
}

/// `<prefix>.<kind>` → `streaming-<prefix>-<kind>`, if `kind` is one the
/// topology reads.
pub fn stream_name(topic: &str, kinds: &[&str]) -> Option<String> {
    let (prefix, kind) = topic.rsplit_once('.')?;
    kinds.contains(&kind).then(|| format!("streaming-{prefix}-{kind}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_round_trip_for_the_topology_kinds_only() {
        let kinds = ["pin", "geo", "user"];
        assert_eq!(stream_name("p.geo", &kinds).as_deref(), Some("streaming-p-geo"));
        assert_eq!(stream_name("p.dlq", &kinds), None);
        assert_eq!(stream_topic("streaming-p-geo", &kinds).as_deref(), Some("p.geo"));
        assert_eq!(stream_topic("streaming-p-geo", &["pin"]), None);
    }
}
