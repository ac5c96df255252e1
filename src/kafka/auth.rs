//! Authentication hooks for librdkafka, and the one client context that the
//! daemon's consumer and producers and the emulator share.
//!
//! MSK IAM: SASL_SSL with mechanism OAUTHBEARER; librdkafka asks
//! [`KafkaContext::generate_oauth_token`] for a token when it connects and
//! again before the token expires (librdkafka schedules the refresh at 80% of
//! its lifetime). The token is a presigned `kafka-cluster:Connect` request
//! made by `aws-msk-iam-sasl-signer` from the AWS credentials chain
//! (environment, profile, instance role, ...). Tokens are never logged.

use std::error::Error;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aws_types::region::Region;
use aws_types::sdk_config::SharedCredentialsProvider;
use rdkafka::client::OAuthToken;
use rdkafka::consumer::ConsumerContext;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::ClientContext;

/// How clients authenticate (beyond what librdkafka properties say).
#[derive(Clone, Default)]
pub enum Auth {
    /// Whatever `--kafka-config` / `client.properties` configure (PLAINTEXT,
    /// SSL, SASL PLAIN/SCRAM, ...).
    #[default]
    Properties,
    /// MSK IAM from the default AWS credentials chain.
    MskIam { region: String },
    /// MSK IAM from a given credentials provider (tests, embedding).
    MskIamWith {
        region: String,
        provider: SharedCredentialsProvider,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Properties => f.write_str("properties"),
            Auth::MskIam { region } | Auth::MskIamWith { region, .. } => write!(f, "msk-iam ({region})"),
        }
    }
}

impl Auth {
    /// librdkafka properties this auth needs (user properties may override).
    pub fn properties(&self) -> Vec<(&'static str, &'static str)> {
        match self {
            Auth::Properties => vec![],
            Auth::MskIam { .. } | Auth::MskIamWith { .. } => {
                vec![("security.protocol", "SASL_SSL"), ("sasl.mechanism", "OAUTHBEARER")]
            }
        }
    }
}

/// An MSK IAM token: (token, expiry in ms since the epoch).
pub fn msk_iam_token(auth: &Auth) -> Result<(String, i64), Box<dyn Error>> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (token, expiry) = match auth {
        Auth::MskIam { region } => rt.block_on(aws_msk_iam_sasl_signer::generate_auth_token(Region::new(
            region.clone(),
        )))?,
        Auth::MskIamWith { region, provider } => {
            rt.block_on(aws_msk_iam_sasl_signer::generate_auth_token_from_credentials_provider(
                Region::new(region.clone()),
                provider.clone(),
            ))?
        }
        Auth::Properties => return Err("OAUTHBEARER requested but no --auth msk-iam configured".into()),
    };
    Ok((token, expiry))
}

/// The client context of every pinstream Kafka client.
#[derive(Clone, Default)]
pub struct KafkaContext {
    pub auth: Auth,
    /// Producer deliveries that failed (dead letters must not be lost).
    pub failed: Arc<AtomicU64>,
    /// Where librdkafka's statistics (consumer lag per partition) go, when
    /// `statistics.interval.ms` is set.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl ClientContext for KafkaContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(&self, _config: Option<&str>) -> Result<OAuthToken, Box<dyn Error>> {
        let (token, lifetime_ms) = msk_iam_token(&self.auth)?;
        tracing::info!(
            "MSK IAM token refreshed (valid until {})",
            chrono::DateTime::from_timestamp_millis(lifetime_ms)
                .map(|d| d.to_rfc3339())
                .unwrap_or_default()
        );
        Ok(OAuthToken {
            token,
            principal_name: String::new(),
            lifetime_ms,
        })
    }

    fn stats(&self, statistics: rdkafka::Statistics) {
        let Some(m) = &self.metrics else { return };
        for (topic, t) in &statistics.topics {
            for (p, part) in &t.partitions {
                // -1 is librdkafka's internal UA partition; lag -1 = unknown.
                if *p >= 0 && part.consumer_lag >= 0 {
                    m.consumer_lag
                        .with_label_values(&[topic, &p.to_string()])
                        .set(part.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for KafkaContext {}

impl ProducerContext for KafkaContext {
    /// Where to report the delivery, if the sender waits for it
    /// (`producer::Producer::send_acked`).
    type DeliveryOpaque = Box<Option<crate::kafka::producer::Ack>>;
    fn delivery(&self, result: &DeliveryResult<'_>, ack: Self::DeliveryOpaque) {
        use rdkafka::message::Message;
        let report = match result {
            Ok(m) => Ok((m.partition(), m.offset())),
            Err((e, _)) => {
                tracing::debug!("record not delivered: {e}");
                self.failed.fetch_add(1, Ordering::Relaxed);
                Err(e.to_string())
            }
        };
        if let Some(ack) = *ack {
            let _ = ack.send(report);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;

    #[test]
    fn msk_iam_token_is_a_signed_connect_request_for_the_region() {
        let creds = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "test",
        );
        let auth = Auth::MskIamWith {
            region: "eu-west-2".into(),
            provider: SharedCredentialsProvider::new(creds),
        };
        let before = chrono::Utc::now().timestamp_millis();
        let (token, expiry) = msk_iam_token(&auth).unwrap();
        use base64::Engine;
        let url = String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&token).unwrap()).unwrap();
        let url = url::Url::parse(&url).unwrap();
        assert_eq!(url.host_str(), Some("kafka.eu-west-2.amazonaws.com"));
        let q: std::collections::HashMap<String, String> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert_eq!(q["Action"], "kafka-cluster:Connect");
        assert_eq!(q["X-Amz-Algorithm"], "AWS4-HMAC-SHA256");
        assert!(
            q["X-Amz-Credential"].starts_with("AKIDEXAMPLE/")
                && q["X-Amz-Credential"].ends_with("/eu-west-2/kafka-cluster/aws4_request"),
            "{}",
            q["X-Amz-Credential"]
        );
        assert_eq!(q["X-Amz-Expires"], "900");
        assert_eq!(q["X-Amz-SignedHeaders"], "host");
        assert_eq!(q["X-Amz-Signature"].len(), 64);
        // Expires in 15 minutes from signing.
        assert!(
            (expiry - before - 900_000).abs() < 60_000,
            "expiry {expiry} vs now {before}"
        );
        assert!(!token.contains("wJalr"), "the secret key must not be in the token");
        let _ = format!("{auth:?}"); // Debug never prints credentials
        assert!(!format!("{auth:?}").contains("AKID"));
    }
}
