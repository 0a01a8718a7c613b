//! [`KafkaPublisher`]: a Kafka adapter of the domain's [`MessagePublisher`] port (issue 13,
//! groundwork; `docs/kafka.md`). Feature `kafka` of `ras-aws`.
//!
//! What it produces is what the reference service's producer produced (ras-behaviour §1.3, §5):
//!
//! * topic = the message's topic name (`huleedu.ras.batch.results.ready.v1`,
//!   `huleedu.ras.batch.assessment.completed.v1`, `huleedu.notification.teacher.requested.v1`);
//!   the [`Destination`] argument only exists for SQS and is not used,
//! * key = the ordering key's UTF-8 bytes (batch id for domain events, teacher id for
//!   notifications), value = the outbox body byte for byte, no headers, no compression,
//! * `acks=all` (rskafka always sends `acks = -1`),
//! * partition = Kafka's default partitioner for keyed records, [`partition_for`]:
//!   `toPositive(murmur2(key)) % partitions`, the mapping of the Java client and of aiokafka's
//!   default partitioner, so HuleEdu's consumers see each key on the partition they always did.
//!
//! **Per-key order.** The messages of one key are produced one after the other, each only after
//! the broker acknowledged the previous one; the key stops at its first failure and its later
//! messages in the call are reported `Failed { retryable: true, code: "KeyStopped" }` without
//! being produced. Different keys are produced concurrently.
//!
//! **Results.** One [`SendResult`] per message, in order:
//!
//! * refused for good, for the message's content — larger than `max_message_bytes` (checked
//!   before sending) or the broker's `MessageTooLarge` / `RecordListTooLarge` / `InvalidRecord` /
//!   `CorruptMessage` — or for its topic — not in the cluster's metadata, or the broker's
//!   `UnknownTopicOrPartition` / `InvalidTopicException` / `TopicAuthorizationFailed` after
//!   rskafka's own retries within `timeout` — is `Failed { retryable: false }` with that code:
//!   the relay parks it and acknowledges its record, so it never holds the shard (issue 13;
//!   `ras-ops republish --parked` sends it once the topic or its ACL is fixed, and the parked
//!   alarm fires on the first);
//! * refused for the whole connection (`ClusterAuthorizationFailed`, `SaslAuthenticationFailed`:
//!   the relay's identity cannot use the cluster at all, so nothing could be published) is
//!   `Failed { retryable: true }` with that code: the key is held and the breaker opens, as for
//!   an SQS outage, rather than parking every message;
//! * everything else (connection, timeouts, leader changes after rskafka's own retries) is
//!   `Failed { retryable: true }`.
//!
//! `Err` only when the topic metadata cannot be read at all (nothing was produced).
//!
//! **Connection.** [`KafkaPublisher::new`] does no I/O (Lambda init stays short): the rskafka
//! client is built by the first call that needs it, within `timeout`; a failed attempt makes
//! that call `Err(Transient)` and the next call tries again. The client (its broker
//! connections) and the partition clients are then reused by every call of the sandbox.
//!
//! **Security** ([`KafkaSecurity`], `RAS_KAFKA_SECURITY`): `plaintext` for the local broker;
//! `iam` (the default) for Amazon MSK's IAM listener: TLS with rustls on the aws-lc-rs provider
//! and Mozilla's roots ([`tls_config`]), SASL/OAUTHBEARER with the MSK IAM token of
//! [`crate::msk_iam`] for every new broker connection.

use crate::config::{ConfigError, Env};
use crate::msk_iam::MskTokenProvider;
use aws_credential_types::provider::SharedCredentialsProvider;
use ras_domain::plan::OutboxMessage;
use ras_domain::ports::{Destination, MessagePublisher, PublishError, SendResult};
use rskafka::client::error::{Error as KafkaError, ProtocolError};
use rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder, OauthBearerCredentials, OauthCallback, SaslConfig};
use rskafka::record::Record;
use rskafka::BackoffConfig;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Comma-separated `host:port` bootstrap brokers.
pub const BOOTSTRAP_ENV: &str = "RAS_KAFKA_BOOTSTRAP";
/// `plaintext` (a local broker) or `iam` (TLS + SASL/OAUTHBEARER with the MSK IAM token; the
/// default).
pub const SECURITY_ENV: &str = "RAS_KAFKA_SECURITY";
/// The region the MSK IAM token is signed for.
pub const REGION_ENV: &str = "AWS_REGION";
/// Kafka's default `max.message.bytes` of a topic (MSK's default too): 1 MiB + 12.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1_048_588;
/// Default bound of one produce (rskafka's retries included) and of connecting.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Code of a message not produced because an earlier message of its key failed in the call.
pub const KEY_STOPPED: &str = "KeyStopped";

/// Kafka's `murmur2` (`org.apache.kafka.common.utils.Utils.murmur2`), bit for bit: seed
/// `0x9747b28c`, little-endian 4-byte blocks, Java's wrapping `int` arithmetic.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len();
    let mut h: u32 = SEED ^ (length as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() == 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's `Utils.toPositive`: clears the sign bit (not `abs`).
pub fn to_positive(n: i32) -> i32 {
    n & 0x7fff_ffff
}

/// The partition Kafka's default partitioner (Java client, aiokafka's `DefaultPartitioner`)
/// picks for a keyed record: `toPositive(murmur2(key)) % partitions`.
pub fn partition_for(key: &[u8], partitions: i32) -> i32 {
    assert!(partitions > 0, "a topic has at least one partition");
    to_positive(murmur2(key)) % partitions
}

/// How a Kafka error is handled (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// The broker refuses this message for good (its content, or its topic: missing, invalid,
    /// not authorized): parked by the relay.
    Refused,
    /// The relay's identity may not use the cluster at all: held (nothing could be published).
    Misconfigured,
    /// Anything else: retried later.
    Transient,
}

/// The class of a protocol error code.
pub fn classify_protocol(error: &ProtocolError) -> ErrorClass {
    match error {
        ProtocolError::MessageTooLarge
        | ProtocolError::RecordListTooLarge
        | ProtocolError::InvalidRecord
        | ProtocolError::CorruptMessage
        | ProtocolError::UnknownTopicOrPartition
        | ProtocolError::InvalidTopicException
        | ProtocolError::TopicAuthorizationFailed => ErrorClass::Refused,
        ProtocolError::ClusterAuthorizationFailed | ProtocolError::SaslAuthenticationFailed => {
            ErrorClass::Misconfigured
        }
        _ => ErrorClass::Transient,
    }
}

/// Stable code and class of an rskafka error.
pub fn classify(error: &KafkaError) -> (String, ErrorClass) {
    match error {
        KafkaError::ServerError { protocol_error, .. } => (
            format!("{protocol_error:?}"),
            classify_protocol(protocol_error),
        ),
        KafkaError::Connection(_) => ("Connection".into(), ErrorClass::Transient),
        KafkaError::Request(_) => ("Request".into(), ErrorClass::Transient),
        KafkaError::InvalidResponse(_) => ("InvalidResponse".into(), ErrorClass::Transient),
        KafkaError::RetryFailed(_) => ("RetryFailed".into(), ErrorClass::Transient),
        KafkaError::Timeout => ("Timeout".into(), ErrorClass::Transient),
        _ => ("KafkaError".into(), ErrorClass::Transient),
    }
}

fn failed(class: ErrorClass, code: String, message: String) -> SendResult {
    SendResult::Failed {
        retryable: class != ErrorClass::Refused,
        code,
        message,
    }
}

/// How the publisher reaches the brokers (`RAS_KAFKA_SECURITY`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KafkaSecurity {
    /// `plaintext`: no TLS, no SASL (the local broker).
    Plaintext,
    /// `iam` (the default): TLS (rustls on aws-lc-rs, Mozilla's roots) and SASL/OAUTHBEARER with
    /// the MSK IAM token ([`crate::msk_iam`]) signed for `region` (`AWS_REGION`): Amazon MSK's
    /// IAM listener, port 9098.
    Iam { region: String },
}

/// Settings of a [`KafkaPublisher`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaSettings {
    /// `host:port` of the bootstrap brokers.
    pub bootstrap: Vec<String>,
    /// Bound of connecting and of one produce, rskafka's retries included.
    pub timeout: Duration,
    /// Larger bodies (plus key) are refused without being sent ([`ErrorClass::Refused`]).
    pub max_message_bytes: usize,
    /// Kafka `client.id`.
    pub client_id: String,
    /// Plaintext or TLS + MSK IAM.
    pub security: KafkaSecurity,
    /// Certificates (PEM) trusted for TLS in addition to the compiled-in roots. Never read from
    /// the environment: for tests against a broker with a self-signed certificate.
    pub extra_root_certificates_pem: Option<String>,
}

impl KafkaSettings {
    /// Plaintext to `bootstrap` (a local broker) with the default limits.
    pub fn new(bootstrap: Vec<String>) -> Self {
        KafkaSettings {
            bootstrap,
            timeout: DEFAULT_TIMEOUT,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            client_id: "ras-relay".into(),
            security: KafkaSecurity::Plaintext,
            extra_root_certificates_pem: None,
        }
    }

    /// `RAS_KAFKA_BOOTSTRAP` (required; comma-separated `host:port`), `RAS_KAFKA_SECURITY`
    /// (`plaintext` or `iam`, default `iam`) and, for `iam`, `AWS_REGION` (required). Every
    /// error names its variable.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let text = env.required(BOOTSTRAP_ENV)?;
        let bootstrap = parse_bootstrap(&text).map_err(|reason| ConfigError::Invalid {
            name: BOOTSTRAP_ENV,
            value: text.clone(),
            reason,
        })?;
        let security = match env.get(SECURITY_ENV).as_deref() {
            None | Some("iam") => KafkaSecurity::Iam {
                region: region(env)?,
            },
            Some("plaintext") => KafkaSecurity::Plaintext,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: SECURITY_ENV,
                    value: other.to_string(),
                    reason: "expected plaintext or iam".into(),
                })
            }
        };
        Ok(KafkaSettings {
            security,
            ..KafkaSettings::new(bootstrap)
        })
    }
}

/// `AWS_REGION`, required for signing, a plain region name (it becomes part of a host name).
fn region<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<String, ConfigError> {
    let value = env.required(REGION_ENV)?;
    let valid = value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if valid {
        Ok(value)
    } else {
        Err(ConfigError::Invalid {
            name: REGION_ENV,
            value,
            reason: "expected a region name such as eu-north-1".into(),
        })
    }
}

/// Comma-separated `host:port` list; blanks around entries are ignored, an empty entry,
/// a missing host or a port outside 1..=65535 is an error.
fn parse_bootstrap(text: &str) -> Result<Vec<String>, String> {
    text.split(',')
        .map(str::trim)
        .map(|entry| {
            let (host, port) = entry
                .rsplit_once(':')
                .ok_or_else(|| format!("{entry:?} is not host:port"))?;
            if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
                return Err(format!("{entry:?} has no valid host"));
            }
            match port.parse::<u16>() {
                Ok(p) if p > 0 => Ok(entry.to_string()),
                _ => Err(format!("{entry:?} has no valid port")),
            }
        })
        .collect()
}

/// The rustls client configuration of the `iam` transport: the **aws-lc-rs** provider named
/// explicitly (rskafka's `transport-tls` compiles rustls' `ring` provider in as well, so rustls
/// has no process default and `ClientConfig::builder()` would panic), TLS 1.2 and 1.3, Mozilla's
/// roots from `webpki-roots` (Amazon Trust Services, which signs MSK's broker certificates, is
/// among them) plus `extra_pem`.
pub fn tls_config(extra_pem: Option<&str>) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(pem) = extra_pem {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|e| format!("extra root certificate: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("extra root certificate: {e}"))?;
            added += 1;
        }
        if added == 0 {
            return Err("extra root certificates: no certificate in the PEM text".into());
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The SASL configuration of the `iam` transport: OAUTHBEARER with a token from `tokens` for
/// every new broker connection (rskafka calls the callback per connection; the provider caches).
fn oauthbearer(tokens: Arc<MskTokenProvider>) -> SaslConfig {
    let callback: OauthCallback = Arc::new(move || {
        let tokens = Arc::clone(&tokens);
        Box::pin(async move {
            tokens
                .token()
                .await
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
        })
    });
    SaslConfig::Oauthbearer(OauthBearerCredentials {
        callback,
        authz_id: None,
        bearer_kvs: Vec::new(),
    })
}

/// Publishes outbox messages to their Kafka topics (module documentation).
pub struct KafkaPublisher {
    settings: KafkaSettings,
    /// The MSK IAM tokens (`iam` only).
    tokens: Option<Arc<MskTokenProvider>>,
    /// Built by the first call that needs it ([`KafkaPublisher::client`]), then reused by every
    /// call of the sandbox; empty again only if building it failed.
    client: tokio::sync::OnceCell<Client>,
    /// Partition count per topic, read once (a topic whose partitions are added later is
    /// re-read only when the sandbox starts again; Kafka's producers do the same per metadata
    /// refresh, and adding partitions moves keys in any case).
    partitions: Mutex<HashMap<String, i32>>,
    producers: Mutex<HashMap<(String, i32), Arc<PartitionClient>>>,
}

impl std::fmt::Debug for KafkaPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaPublisher")
            .field("settings", &self.settings)
            .field("connected", &self.client.initialized())
            .finish_non_exhaustive()
    }
}

impl KafkaPublisher {
    /// A publisher that connects on its first call (no I/O here). For `iam` the credentials come
    /// from `aws-config`'s default chain, loaded when the first token is signed.
    pub fn new(settings: KafkaSettings) -> Self {
        let tokens = match &settings.security {
            KafkaSecurity::Plaintext => None,
            KafkaSecurity::Iam { region } => {
                Some(Arc::new(MskTokenProvider::default_chain(region.clone())))
            }
        };
        Self::build(settings, tokens)
    }

    /// [`KafkaPublisher::new`] with the `iam` tokens signed with credentials from `provider`
    /// (the function's `SdkConfig::credentials_provider()`, fixed credentials in tests); ignored
    /// for `plaintext`.
    pub fn with_credentials(settings: KafkaSettings, provider: SharedCredentialsProvider) -> Self {
        let tokens = match &settings.security {
            KafkaSecurity::Plaintext => None,
            KafkaSecurity::Iam { region } => Some(Arc::new(MskTokenProvider::with_credentials(
                region.clone(),
                provider,
            ))),
        };
        Self::build(settings, tokens)
    }

    fn build(settings: KafkaSettings, tokens: Option<Arc<MskTokenProvider>>) -> Self {
        KafkaPublisher {
            settings,
            tokens,
            client: tokio::sync::OnceCell::new(),
            partitions: Mutex::new(HashMap::new()),
            producers: Mutex::new(HashMap::new()),
        }
    }

    /// [`KafkaPublisher::new`] and connect at once (tests, tools).
    pub async fn connect(settings: KafkaSettings) -> Result<Self, PublishError> {
        let publisher = Self::new(settings);
        publisher.client().await?;
        Ok(publisher)
    }

    pub fn settings(&self) -> &KafkaSettings {
        &self.settings
    }

    /// The rskafka client, connecting first if no call has (tests read the topics back with
    /// it). A failed attempt leaves the publisher unconnected: the next call tries again.
    pub async fn client(&self) -> Result<&Client, PublishError> {
        self.client
            .get_or_try_init(|| async {
                let settings = &self.settings;
                tokio::time::timeout(settings.timeout, self.build_client())
                    .await
                    .map_err(|_| {
                        PublishError::Transient(format!(
                            "connecting to {:?} took longer than {:?}",
                            settings.bootstrap, settings.timeout
                        ))
                    })?
            })
            .await
    }

    async fn build_client(&self) -> Result<Client, PublishError> {
        let settings = &self.settings;
        let backoff = BackoffConfig {
            deadline: Some(settings.timeout),
            ..BackoffConfig::default()
        };
        let mut builder = ClientBuilder::new(settings.bootstrap.clone())
            .client_id(settings.client_id.clone())
            .backoff_config(backoff);
        if let Some(tokens) = &self.tokens {
            let tls = tls_config(settings.extra_root_certificates_pem.as_deref())
                .map_err(PublishError::Transient)?;
            builder = builder
                .tls_config(tls)
                .sasl_config(oauthbearer(Arc::clone(tokens)));
        }
        builder.build().await.map_err(|e| {
            tracing::warn!(bootstrap = ?settings.bootstrap, error = %e, "connecting to Kafka failed");
            PublishError::Transient(format!("connecting to Kafka: {e}"))
        })
    }

    /// Partition count of `topic`: `Ok(None)` when the cluster does not have it.
    async fn partition_count(
        &self,
        client: &Client,
        topic: &str,
    ) -> Result<Option<i32>, PublishError> {
        if let Some(n) = self.partitions.lock().expect("lock").get(topic) {
            return Ok(Some(*n));
        }
        let topics = tokio::time::timeout(self.settings.timeout, client.list_topics())
            .await
            .map_err(|_| PublishError::Transient("reading the topic metadata timed out".into()))?
            .map_err(|e| PublishError::Transient(format!("reading the topic metadata: {e}")))?;
        let mut known = self.partitions.lock().expect("lock");
        for t in topics {
            if !t.partitions.is_empty() {
                known.insert(t.name, t.partitions.len() as i32);
            }
        }
        Ok(known.get(topic).copied())
    }

    async fn producer(
        &self,
        client: &Client,
        topic: &str,
        partition: i32,
    ) -> Result<Arc<PartitionClient>, KafkaError> {
        let key = (topic.to_string(), partition);
        if let Some(p) = self.producers.lock().expect("lock").get(&key) {
            return Ok(Arc::clone(p));
        }
        let created = Arc::new(
            client
                .partition_client(topic, partition, UnknownTopicHandling::Error)
                .await?,
        );
        Ok(Arc::clone(
            self.producers
                .lock()
                .expect("lock")
                .entry(key)
                .or_insert(created),
        ))
    }

    /// Produces one message and waits for its acknowledgement (`acks=all`).
    async fn produce_one(
        &self,
        client: &Client,
        message: &OutboxMessage,
        partitions: i32,
    ) -> SendResult {
        let key = message.ordering_key.as_bytes();
        let size = key.len() + message.body.len();
        if size > self.settings.max_message_bytes {
            return failed(
                ErrorClass::Refused,
                "MessageTooLarge".into(),
                format!(
                    "key and value are {size} bytes; the limit is {}",
                    self.settings.max_message_bytes
                ),
            );
        }
        let topic = message.topic.name();
        let partition = partition_for(key, partitions);
        let record = Record {
            key: Some(key.to_vec()),
            value: Some(message.body.as_bytes().to_vec()),
            headers: BTreeMap::new(),
            // Send time, as aiokafka sets it when no timestamp is given (the reference). Not
            // `created_at`: a message re-published days later would carry an old CreateTime,
            // which time-based retention counts from.
            timestamp: chrono::Utc::now(),
        };
        let produce = async {
            let producer = self.producer(client, topic, partition).await?;
            producer
                .produce(vec![record], Compression::NoCompression)
                .await
        };
        match tokio::time::timeout(self.settings.timeout, produce).await {
            Ok(Ok(_offsets)) => SendResult::Sent,
            Ok(Err(e)) => {
                let (code, class) = classify(&e);
                tracing::warn!(event_id = %message.event_id, topic, partition, %code, ?class, error = %e, "Kafka produce failed");
                failed(class, code, e.to_string())
            }
            Err(_) => failed(
                ErrorClass::Transient,
                "Timeout".into(),
                format!(
                    "no acknowledgement within {:?} (the message may still have been written)",
                    self.settings.timeout
                ),
            ),
        }
    }
}

impl MessagePublisher for KafkaPublisher {
    async fn send_batch(
        &self,
        _destination: Destination,
        messages: &[OutboxMessage],
    ) -> Result<Vec<SendResult>, PublishError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        // The connection (built by the first call, reused after), then the partition counts:
        // nothing is produced if either fails.
        let client = self.client().await?;
        let mut counts: HashMap<&'static str, Option<i32>> = HashMap::new();
        for m in messages {
            let topic = m.topic.name();
            if !counts.contains_key(topic) {
                counts.insert(topic, self.partition_count(client, topic).await?);
            }
        }
        // Messages by key, in call order.
        let mut keys: Vec<(&str, Vec<usize>)> = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            match keys.iter_mut().find(|(k, _)| *k == m.ordering_key) {
                Some((_, members)) => members.push(i),
                None => keys.push((&m.ordering_key, vec![i])),
            }
        }
        let per_key = keys.iter().map(|(_, members)| {
            let counts = &counts;
            async move {
                let mut out = Vec::with_capacity(members.len());
                let mut stopped: Option<String> = None;
                for &i in members {
                    let m = &messages[i];
                    let result = if let Some(first) = &stopped {
                        SendResult::Failed {
                            retryable: true,
                            code: KEY_STOPPED.into(),
                            message: format!(
                                "not produced: an earlier message of its key failed ({first})"
                            ),
                        }
                    } else {
                        match counts.get(m.topic.name()).copied().flatten() {
                            Some(n) => self.produce_one(client, m, n).await,
                            None => failed(
                                ErrorClass::Refused,
                                "UnknownTopicOrPartition".into(),
                                format!("topic {} does not exist", m.topic.name()),
                            ),
                        }
                    };
                    if stopped.is_none() {
                        if let SendResult::Failed { code, .. } = &result {
                            stopped = Some(format!("{} {code}", m.event_id));
                        }
                    }
                    out.push((i, result));
                }
                out
            }
        });
        let mut results: Vec<Option<SendResult>> = vec![None; messages.len()];
        for (i, r) in futures::future::join_all(per_key)
            .await
            .into_iter()
            .flatten()
        {
            results[i] = Some(r);
        }
        Ok(results
            .into_iter()
            .map(|r| r.expect("every message has a result"))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&'static str, &'static str)]) -> Env<impl Fn(&str) -> Option<String>> {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        Env::new(move |name| map.get(name).map(|v| v.to_string()))
    }

    fn invalid_name(err: &ConfigError) -> &'static str {
        match err {
            ConfigError::Invalid { name, .. } => name,
            ConfigError::Missing(name) => name,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn settings_default_to_iam_with_the_region() {
        let s = KafkaSettings::from_env(&env(&[
            (
                BOOTSTRAP_ENV,
                " b-1.msk.example:9098, b-2.msk.example:9098 ",
            ),
            (REGION_ENV, "eu-north-1"),
        ]))
        .expect("settings");
        assert_eq!(
            s.bootstrap,
            ["b-1.msk.example:9098", "b-2.msk.example:9098"]
        );
        assert_eq!(
            s.security,
            KafkaSecurity::Iam {
                region: "eu-north-1".into()
            }
        );
        assert_eq!(s.timeout, DEFAULT_TIMEOUT);
        assert_eq!(s.max_message_bytes, DEFAULT_MAX_MESSAGE_BYTES);
        assert_eq!(s.extra_root_certificates_pem, None);
        let explicit = KafkaSettings::from_env(&env(&[
            (BOOTSTRAP_ENV, "b-1.msk.example:9098"),
            (SECURITY_ENV, "iam"),
            (REGION_ENV, "us-east-1"),
        ]))
        .expect("settings");
        assert_eq!(
            explicit.security,
            KafkaSecurity::Iam {
                region: "us-east-1".into()
            }
        );
    }

    #[test]
    fn plaintext_needs_no_region() {
        let s = KafkaSettings::from_env(&env(&[
            (BOOTSTRAP_ENV, "127.0.0.1:9092"),
            (SECURITY_ENV, " plaintext "),
        ]))
        .expect("settings");
        assert_eq!(s, KafkaSettings::new(vec!["127.0.0.1:9092".into()]));
    }

    #[test]
    fn each_settings_error_names_its_variable() {
        let cases: [(&[(&'static str, &'static str)], &str); 12] = [
            (&[], BOOTSTRAP_ENV),
            (&[(BOOTSTRAP_ENV, " ")], BOOTSTRAP_ENV),
            (&[(BOOTSTRAP_ENV, "localhost")], BOOTSTRAP_ENV),
            (&[(BOOTSTRAP_ENV, "localhost:0")], BOOTSTRAP_ENV),
            (&[(BOOTSTRAP_ENV, "localhost:70000")], BOOTSTRAP_ENV),
            (&[(BOOTSTRAP_ENV, ":9092")], BOOTSTRAP_ENV),
            (&[(BOOTSTRAP_ENV, "a:9092,,b:9092")], BOOTSTRAP_ENV),
            (
                &[(BOOTSTRAP_ENV, "a:9092"), (SECURITY_ENV, "tls")],
                SECURITY_ENV,
            ),
            (
                &[(BOOTSTRAP_ENV, "a:9092"), (SECURITY_ENV, "IAM ")],
                SECURITY_ENV,
            ),
            (&[(BOOTSTRAP_ENV, "a:9098")], REGION_ENV),
            (
                &[(BOOTSTRAP_ENV, "a:9098"), (SECURITY_ENV, "iam")],
                REGION_ENV,
            ),
            (
                &[(BOOTSTRAP_ENV, "a:9098"), (REGION_ENV, "eu-north-1/x")],
                REGION_ENV,
            ),
        ];
        for (pairs, variable) in cases {
            let err = KafkaSettings::from_env(&env(pairs)).unwrap_err();
            assert_eq!(invalid_name(&err), variable, "{pairs:?}: {err}");
            assert!(err.to_string().contains(variable), "{err}");
        }
    }

    #[test]
    fn tls_configuration_uses_aws_lc_rs_and_checks_extra_roots() {
        let config = tls_config(None).expect("config");
        // The provider named explicitly, not a process default (none is installed here).
        assert!(rustls::crypto::CryptoProvider::get_default().is_none());
        assert!(config
            .crypto_provider()
            .cipher_suites
            .iter()
            .any(|s| s.suite() == rustls::CipherSuite::TLS13_AES_128_GCM_SHA256));
        assert!(tls_config(Some("not a certificate")).is_err());
        assert!(tls_config(Some(
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
        ))
        .is_err());
    }

    #[tokio::test]
    async fn the_oauthbearer_callback_hands_out_the_msk_token() {
        let creds = aws_credential_types::Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "secret",
            None,
            None,
            "test",
        );
        let tokens = Arc::new(MskTokenProvider::with_credentials(
            "eu-north-1",
            SharedCredentialsProvider::new(creds),
        ));
        let SaslConfig::Oauthbearer(bearer) = oauthbearer(tokens) else {
            panic!("OAUTHBEARER expected");
        };
        assert_eq!(bearer.authz_id, None);
        let first = (bearer.callback)().await.expect("token");
        let second = (bearer.callback)().await.expect("token");
        assert_eq!(first, second, "cached");
        use base64::Engine as _;
        let url = String::from_utf8(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&first)
                .expect("base64url"),
        )
        .expect("utf-8");
        assert!(
            url.starts_with(
                "https://kafka.eu-north-1.amazonaws.com/?Action=kafka-cluster%3AConnect&"
            ),
            "{url}"
        );
        assert!(
            url.contains("X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F"),
            "{url}"
        );
    }

    /// rskafka's `transport-tls` compiles rustls' `ring` provider in next to the SDK's
    /// `aws-lc-rs`, so rustls has no process default; the SDK's HTTPS client names its provider
    /// and still starts a TLS handshake (here to a listener that hangs up) without panicking.
    #[tokio::test]
    async fn the_sdks_https_client_still_works_with_both_providers_compiled_in() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                drop(socket);
            }
        });
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-north-1"))
            .credentials_provider(aws_credential_types::Credentials::new(
                "AKIAIOSFODNN7EXAMPLE",
                "secret",
                None,
                None,
                "test",
            ))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .endpoint_url(format!("https://{addr}"))
            .load()
            .await;
        let result = aws_sdk_sqs::Client::new(&sdk).list_queues().send().await;
        assert!(result.is_err(), "{result:?}");
        assert!(rustls::crypto::CryptoProvider::get_default().is_none());
        server.abort();
    }

    /// `new` does no I/O; the first call connects and, failing, is `Err(Transient)`; the next
    /// call tries again (a listener that accepts and hangs up counts the attempts).
    #[tokio::test]
    async fn connects_on_the_first_call_and_retries_after_a_failure() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        let server = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                drop(socket);
            }
        });
        let mut settings = KafkaSettings::new(vec![addr.to_string()]);
        settings.timeout = Duration::from_millis(300);
        let publisher = KafkaPublisher::new(settings);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            accepted.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "no I/O in new"
        );
        let message = OutboxMessage {
            event_id: uuid::Uuid::nil(),
            topic: ras_domain::contracts::PublishedTopic::BatchResultsReady,
            ordering_key: "batch-1".into(),
            correlation_id: uuid::Uuid::nil(),
            created_at: ras_domain::contracts::Timestamp::from_unix_micros(1_780_000_000_000_000)
                .expect("timestamp"),
            sequence: 1,
            body: "{}".into(),
        };
        let first = publisher
            .send_batch(Destination::Events, std::slice::from_ref(&message))
            .await;
        assert!(
            matches!(first, Err(PublishError::Transient(_))),
            "{first:?}"
        );
        let after_first = accepted.load(std::sync::atomic::Ordering::SeqCst);
        assert!(after_first >= 1);
        assert!(!publisher.client.initialized());
        let second = publisher
            .send_batch(Destination::Events, std::slice::from_ref(&message))
            .await;
        assert!(
            matches!(second, Err(PublishError::Transient(_))),
            "{second:?}"
        );
        assert!(accepted.load(std::sync::atomic::Ordering::SeqCst) > after_first);
        server.abort();
    }

    /// `UtilsTest.testMurmur2` of Apache Kafka (clients/src/test/java/org/apache/kafka/common/utils).
    #[test]
    fn murmur2_matches_kafka() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            (b"abc", 479470107),
        ];
        for (data, expected) in cases {
            assert_eq!(murmur2(data), expected, "{}", String::from_utf8_lossy(data));
        }
    }

    /// Akka's `Murmur2Spec` (values from Kafka's Java implementation), one per tail length.
    /// (kafkajs' *legacy* partitioner test vectors differ: that partitioner is not
    /// Java-compatible, which is why it is not used here.)
    #[test]
    fn murmur2_matches_akkas_java_derived_vectors() {
        let cases: [(&str, i32); 5] = [
            ("1", -1993445489),
            ("12", 126087238),
            ("123", -267702483),
            ("1234", -1614185708),
            ("12345", -1188365604),
        ];
        for (data, expected) in cases {
            assert_eq!(murmur2(data.as_bytes()), expected, "{data}");
        }
    }

    /// kafka-python's `test_murmur2_java_compatibility` (partitions of 1000, computed with
    /// Kafka's Java partitioner), including the empty key and a key with a NUL byte.
    #[test]
    fn partitions_match_the_java_partitioner() {
        let cases: [(&[u8], i32); 6] = [
            (b"", 681),
            (b"a", 524),
            (b"ab", 434),
            (b"abc", 107),
            (b"123456789", 566),
            (b"\x00 ", 742),
        ];
        for (key, expected) in cases {
            assert_eq!(partition_for(key, 1000), expected, "{key:?}");
        }
    }

    #[test]
    fn to_positive_clears_the_sign_bit() {
        assert_eq!(to_positive(-1), i32::MAX);
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(5), 5);
    }

    #[test]
    fn classification() {
        assert_eq!(
            classify_protocol(&ProtocolError::MessageTooLarge),
            ErrorClass::Refused
        );
        assert_eq!(
            classify_protocol(&ProtocolError::RecordListTooLarge),
            ErrorClass::Refused
        );
        assert_eq!(
            classify_protocol(&ProtocolError::UnknownTopicOrPartition),
            ErrorClass::Refused
        );
        assert_eq!(
            classify_protocol(&ProtocolError::TopicAuthorizationFailed),
            ErrorClass::Refused
        );
        assert_eq!(
            classify_protocol(&ProtocolError::SaslAuthenticationFailed),
            ErrorClass::Misconfigured
        );
        assert_eq!(
            classify_protocol(&ProtocolError::ClusterAuthorizationFailed),
            ErrorClass::Misconfigured
        );
        assert_eq!(
            classify_protocol(&ProtocolError::NotLeaderOrFollower),
            ErrorClass::Transient
        );
        assert_eq!(classify(&KafkaError::Timeout).1, ErrorClass::Transient);
        let refused = failed(ErrorClass::Refused, "MessageTooLarge".into(), String::new());
        assert!(matches!(
            refused,
            SendResult::Failed {
                retryable: false,
                ..
            }
        ));
        let denied = failed(
            ErrorClass::Misconfigured,
            "ClusterAuthorizationFailed".into(),
            String::new(),
        );
        assert!(matches!(
            denied,
            SendResult::Failed {
                retryable: true,
                ..
            }
        ));
    }
}
