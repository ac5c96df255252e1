//! Kafka client settings shared by the daemon, the emulator and the demo,
//! the one producer ([`producer`]) and the client context ([`auth`]: MSK
//! IAM tokens, delivery accounting, consumer-lag statistics).
//!
//! Any librdkafka property can be passed through: from a Java-style
//! `client.properties` file (as the seeds' EC2 client uses) and from
//! `--kafka-config key=value` flags, the flags winning. Values of keys that
//! look secret (passwords, JAAS configs, keys, tokens) never reach a log line:
//! [`KafkaOptions::describe`] prints them as `***`.

use std::path::Path;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

pub mod auth;
pub mod producer;

pub use auth::{Auth, KafkaContext};

#[derive(Debug, Clone, Default)]
pub struct KafkaOptions {
    /// `host:port[,host:port...]`
    pub brokers: String,
    /// librdkafka properties, applied in order (later wins).
    pub properties: Vec<(String, String)>,
    /// MSK IAM or plain properties.
    pub auth: Auth,
}

/// Whether a property's value must not be logged.
pub fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "jaas",
        "token",
        "key.pem",
        "keystore",
        "credential",
    ]
    .iter()
    .any(|s| k.contains(s))
        || k.ends_with(".key")
}

/// Parses `key=value` lines (`#`/`!` comments, blank lines ignored).
pub fn parse_properties(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        match line.split_once('=').or_else(|| line.split_once(':')) {
            Some((k, v)) if !k.trim().is_empty() => out.push((k.trim().to_string(), v.trim().to_string())),
            _ => return Err(format!("line {}: expected key=value", n + 1)),
        }
    }
    Ok(out)
}

impl KafkaOptions {
    /// The shared client context (OAUTHBEARER tokens, delivery failures).
    pub fn context(&self) -> KafkaContext {
        KafkaContext {
            auth: self.auth.clone(),
            ..Default::default()
        }
    }

    /// Adds the properties of a `client.properties` file.
    pub fn load_properties_file(&mut self, path: &Path) -> Result<(), String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let props = parse_properties(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        self.properties.extend(props);
        Ok(())
    }

    /// Adds a `key=value` flag.
    pub fn add_flag(&mut self, kv: &str) -> Result<(), String> {
        match kv.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                self.properties.push((k.trim().to_string(), v.to_string()));
                Ok(())
            }
            _ => Err(format!("--kafka-config `{kv}`: expected key=value")),
        }
    }

    pub fn client_config(&self) -> ClientConfig {
        self.client_config_with(&[])
    }

    /// Like [`Self::client_config`], with pinstream's own defaults for this
    /// client applied first, so the user's properties still win.
    pub fn client_config_with(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut c = ClientConfig::new();
        for (k, v) in defaults {
            c.set(*k, *v);
        }
        c.set("bootstrap.servers", &self.brokers);
        for (k, v) in self.auth.properties() {
            c.set(k, v);
        }
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c
    }

    /// The settings for a log line, secrets masked.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("bootstrap.servers={} auth={:?}", self.brokers, self.auth)];
        for (k, v) in &self.properties {
            parts.push(format!("{k}={}", if is_secret(k) { "***" } else { v }));
        }
        parts.join(" ")
    }
}

/// Creates topics that do not exist yet (others are left alone).
pub fn create_topics(opts: &KafkaOptions, topics: &[String], partitions: i32) -> Result<(), KafkaError> {
    let admin: AdminClient<KafkaContext> = opts.client_config().create_with_context(opts.context())?;
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1)))
        .collect();
    let results = futures::executor::block_on(admin.create_topics(
        &new,
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
    ))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, code)) => {
                tracing::error!("creating topic {t}: {code}");
                return Err(KafkaError::AdminOp(code));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_files_parse_like_java_ones() {
        let p = parse_properties("# EC2 client\nsecurity.protocol = SASL_SSL\nsasl.mechanism=AWS_MSK_IAM\n\n! bang comment\nsasl.jaas.config=software.amazon.msk.auth.iam.IAMLoginModule required;\n").unwrap();
        assert_eq!(p[0], ("security.protocol".into(), "SASL_SSL".into()));
        assert_eq!(p.len(), 3);
        assert!(parse_properties("novalue\n").is_err());
    }

    #[test]
    fn secrets_are_masked() {
        let o = KafkaOptions {
            auth: Auth::Properties,
            brokers: "b:9092".into(),
            properties: vec![
                ("sasl.password".into(), "hunter2".into()),
                ("sasl.username".into(), "ann".into()),
                ("ssl.key.pem".into(), "PEM".into()),
            ],
        };
        let d = o.describe();
        assert!(!d.contains("hunter2") && !d.contains("PEM"), "{d}");
        assert!(d.contains("sasl.username=ann") && d.contains("sasl.password=***"));
    }
}
