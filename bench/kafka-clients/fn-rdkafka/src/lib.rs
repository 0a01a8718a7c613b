//! rdkafka (librdkafka) publisher for the comparison: SASL_SSL + OAUTHBEARER via a token
//! callback, idempotent producer, acks=all, murmur2_random partitioner (Java default).
use std::{error::Error, time::Duration};

use rdkafka::{
    client::OAuthToken,
    config::ClientConfig,
    producer::{FutureProducer, FutureRecord},
    ClientContext,
};

pub type BoxError = Box<dyn Error + Send + Sync>;

/// Token callback: librdkafka calls it (on its poll thread) before the first SASL handshake
/// and again at 80 % of the returned lifetime.
pub struct MskContext;

impl ClientContext for MskContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(&self, _config: Option<&str>) -> Result<OAuthToken, Box<dyn Error>> {
        // Stand-in for the MSK IAM token (SigV4-presigned URL, base64url); same signer for
        // either client, so it is left out of the comparison.
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis() as i64;
        Ok(OAuthToken {
            token: std::env::var("KAFKA_TOKEN").unwrap_or_else(|_| "placeholder-token".into()),
            principal_name: "ras-relay".into(),
            lifetime_ms: now_ms + 15 * 60 * 1000,
        })
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.into())
}

/// What the function builds at init: a key/value map, no network, no librdkafka handle yet.
pub fn settings() -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", env_or("KAFKA_BOOTSTRAP", "b-1.bench.kafka.eu-north-1.amazonaws.com:9098"))
        .set("acks", "all")
        .set("enable.idempotence", env_or("KAFKA_IDEMPOTENCE", "true"))
        .set("partitioner", "murmur2_random")
        .set("linger.ms", env_or("KAFKA_LINGER_MS", "5"))
        .set("message.timeout.ms", "5000")
        .set("compression.type", "none");
    if env_or("KAFKA_SECURITY", "sasl_ssl") == "plaintext" {
        c.set("security.protocol", "plaintext");
    } else {
        c.set("security.protocol", "sasl_ssl")
            .set("sasl.mechanism", "OAUTHBEARER")
            // OpenSSL is linked statically: probe the usual CA bundle paths
            // (/etc/pki/tls/certs/ca-bundle.crt on Amazon Linux).
            .set("ssl.ca.location", "probe");
    }
    c
}

/// Creates the librdkafka handle (threads, SSL context; starts connecting to the bootstrap
/// brokers in the background).
pub fn connect(config: &ClientConfig) -> Result<FutureProducer<MskContext>, BoxError> {
    Ok(config.create_with_context(MskContext)?)
}

pub async fn produce(
    p: &FutureProducer<MskContext>,
    topic: &str,
    key: &[u8],
    value: &[u8],
) -> Result<(i32, i64), BoxError> {
    match p.send(FutureRecord::to(topic).key(key).payload(value), Duration::from_secs(5)).await {
        Ok(d) => Ok((d.partition, d.offset)),
        Err((e, _msg)) => Err(Box::new(e)),
    }
}
