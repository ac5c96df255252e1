//! The daemon's config file (`pinstream run --config FILE`, or
//! `PINSTREAM_CONFIG`), and how it combines with flags and environment.
//!
//! Precedence, per setting: command-line flag, then environment variable,
//! then this file, then the built-in default. Kafka properties are combined
//! in the same order of strength: the file's `[kafka]` table, then a
//! `client.properties` file, then `--kafka-config` flags (later wins).
//!
//! ```toml
//! brokers = "b-1.example:9098,b-2.example:9098"
//! prefix = "129a67850695"
//! state_dir = "/var/lib/pinstream/state"
//! group = "pinstream"
//! commit_interval_ms = 1000
//! auth = "msk-iam"
//! aws_region = "us-east-1"
//! http = "127.0.0.1:8082"      # or "off"
//! http_token = "s3cret"        # bearer token for write routes and /metrics
//!
//! [kafka]
//! "client.id" = "pinstream-1"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Everything `run` can take from a file. Every field is optional.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// Kafka bootstrap servers, `host:port[,host:port]`.
    pub brokers: Option<String>,
    /// Topic prefix: `<prefix>.pin`, `<prefix>.geo`, `<prefix>.user`.
    pub prefix: Option<String>,
    /// RocksDB state dir.
    pub state_dir: Option<PathBuf>,
    /// Topology file (default: the built-in one).
    pub topology: Option<PathBuf>,
    /// Consumer group for lag tools.
    pub group: Option<String>,
    /// Commit interval in milliseconds.
    pub commit_interval_ms: Option<u64>,
    /// Dead letters: a topic name, `file:PATH` or `off` (default `<prefix>.dlq`).
    #[serde(alias = "dlq_topic")]
    pub dlq: Option<String>,
    /// `properties` or `msk-iam`.
    pub auth: Option<String>,
    /// AWS region, for `msk-iam`.
    pub aws_region: Option<String>,
    /// A Java-style `client.properties` file.
    pub client_properties: Option<PathBuf>,
    /// HTTP API address `ADDR:PORT`, or `off` (default 127.0.0.1:8082).
    pub http: Option<String>,
    /// Bearer token required on the HTTP write routes and /metrics.
    pub http_token: Option<String>,
    /// Largest HTTP request body, in bytes (default 4 MiB).
    pub http_body_limit: Option<usize>,
    /// HTTP request timeout in milliseconds (default 30000).
    pub http_timeout_ms: Option<u64>,
    /// HTTP requests in flight at once (default 512).
    pub http_concurrency: Option<usize>,
    /// Connections one client address may hold at once.
    pub http_max_conns_per_client: Option<usize>,
    /// Time allowed for a request's headers, and for its body, in milliseconds.
    pub http_read_timeout_ms: Option<u64>,
    /// librdkafka properties.
    #[serde(default)]
    pub kafka: BTreeMap<String, String>,
}

impl DaemonConfig {
    pub fn load(path: &Path) -> Result<DaemonConfig, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.to_string().trim()))
    }
}

/// The stronger of a flag/environment value and the file's value.
pub fn pick<T>(flag_or_env: Option<T>, file: Option<T>) -> Option<T> {
    flag_or_env.or(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_parses_and_rejects_unknown_keys() {
        let c: DaemonConfig =
            toml::from_str("brokers = \"b:9092\"\ncommit_interval_ms = 500\n[kafka]\n\"client.id\" = \"x\"\n").unwrap();
        assert_eq!(c.brokers.as_deref(), Some("b:9092"));
        assert_eq!(c.commit_interval_ms, Some(500));
        assert_eq!(c.kafka["client.id"], "x");
        let e = toml::from_str::<DaemonConfig>("brokerz = \"b\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("brokerz"), "{e}");
    }

    #[test]
    fn flags_and_environment_win_over_the_file() {
        assert_eq!(pick(Some(1), Some(2)), Some(1));
        assert_eq!(pick(None, Some(2)), Some(2));
        assert_eq!(pick::<u8>(None, None), None);
    }
}
