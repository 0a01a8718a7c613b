//! rskafka 0.6 publisher for the comparison: TLS (rustls, ring) + SASL/OAUTHBEARER, Kafka's
//! default (murmur2) partitioner for keyed records, acks=all (rskafka always sends acks=-1).
use std::{collections::BTreeMap, collections::HashMap, error::Error, sync::Arc, time::Duration};

use rskafka::{
    client::{
        partition::{Compression, PartitionClient, UnknownTopicHandling},
        Client, ClientBuilder, OauthBearerCredentials, SaslConfig,
    },
    record::Record,
    BackoffConfig,
};
use tokio::sync::Mutex;

pub type BoxError = Box<dyn Error + Send + Sync>;

/// What the function builds at init: no network.
pub struct Settings {
    pub bootstrap: Vec<String>,
    pub tls: Option<TlsSetting>,
    pub sasl: Option<SaslConfig>,
    pub timeout: Duration,
}

pub enum TlsSetting {
    Ready(Arc<rustls::ClientConfig>),
    Lazy,
}

impl Settings {
    /// `KAFKA_BOOTSTRAP` (comma list), `KAFKA_SECURITY` = `sasl_ssl` (default, MSK IAM: TLS +
    /// OAUTHBEARER) or `plaintext`. `lazy_tls`: build the rustls config (reads the system CA
    /// bundle) on first connect instead of at init.
    pub fn from_env(lazy_tls: bool) -> Result<Self, BoxError> {
        let bootstrap = std::env::var("KAFKA_BOOTSTRAP")
            .unwrap_or_else(|_| "b-1.bench.kafka.eu-north-1.amazonaws.com:9098".into())
            .split(',')
            .map(str::to_owned)
            .collect();
        let secure = std::env::var("KAFKA_SECURITY").unwrap_or_else(|_| "sasl_ssl".into()) != "plaintext";
        let (tls, sasl) = if secure {
            let tls = if lazy_tls { TlsSetting::Lazy } else { TlsSetting::Ready(Arc::new(tls_config()?)) };
            let callback: rskafka::client::OauthCallback =
                Arc::new(|| Box::pin(async { Ok::<String, BoxError>(msk_token()) }));
            (
                Some(tls),
                Some(SaslConfig::Oauthbearer(OauthBearerCredentials {
                    callback,
                    authz_id: None,
                    bearer_kvs: vec![],
                })),
            )
        } else {
            (None, None)
        };
        Ok(Self { bootstrap, tls, sasl, timeout: Duration::from_secs(5) })
    }
}

/// Stand-in for the MSK IAM token (a SigV4-presigned `kafka-cluster:Connect` URL, base64url):
/// the signer (aws-sigv4) would be the same code for either client, so it is left out.
pub fn msk_token() -> String {
    std::env::var("KAFKA_TOKEN").unwrap_or_else(|_| "placeholder-token".into())
}

pub fn tls_config() -> Result<rustls::ClientConfig, BoxError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    #[cfg(feature = "awslc")]
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    #[cfg(not(feature = "awslc"))]
    #[allow(deprecated)] // rustls 0.23.48: ring provider lacks post-quantum key exchange
    let provider = rustls::crypto::ring::default_provider();
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Kafka's murmur2 (Java client `Utils.murmur2`), as in ras_aws::kafka_publisher.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = SEED ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let t = chunks.remainder();
    if t.len() == 3 {
        h ^= u32::from(t[2]) << 16;
    }
    if t.len() >= 2 {
        h ^= u32::from(t[1]) << 8;
    }
    if !t.is_empty() {
        h ^= u32::from(t[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

pub fn partition_for(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions
}

pub struct Publisher {
    client: Client,
    timeout: Duration,
    partitions: Mutex<HashMap<String, i32>>,
    clients: Mutex<HashMap<(String, i32), Arc<PartitionClient>>>,
}

impl Publisher {
    pub async fn connect(settings: &Settings) -> Result<Self, BoxError> {
        let mut builder = ClientBuilder::new(settings.bootstrap.clone()).backoff_config(BackoffConfig {
            deadline: Some(settings.timeout),
            ..BackoffConfig::default()
        });
        match &settings.tls {
            Some(TlsSetting::Ready(cfg)) => builder = builder.tls_config(Arc::clone(cfg)),
            Some(TlsSetting::Lazy) => builder = builder.tls_config(Arc::new(tls_config()?)),
            None => {}
        }
        if let Some(sasl) = &settings.sasl {
            builder = builder.sasl_config(sasl.clone());
        }
        let client = tokio::time::timeout(settings.timeout, builder.build()).await??;
        Ok(Self {
            client,
            timeout: settings.timeout,
            partitions: Mutex::new(HashMap::new()),
            clients: Mutex::new(HashMap::new()),
        })
    }

    /// Produces one keyed record, acks=all; returns (partition, offset).
    pub async fn produce(&self, topic: &str, key: &[u8], value: &[u8]) -> Result<(i32, i64), BoxError> {
        let n = {
            let mut parts = self.partitions.lock().await;
            match parts.get(topic) {
                Some(n) => *n,
                None => {
                    let topics = tokio::time::timeout(self.timeout, self.client.list_topics()).await??;
                    let n = topics
                        .iter()
                        .find(|t| t.name == topic)
                        .map(|t| t.partitions.len() as i32)
                        .ok_or_else(|| format!("UnknownTopicOrPartition: {topic}"))?;
                    parts.insert(topic.to_owned(), n);
                    n
                }
            }
        };
        let partition = partition_for(key, n);
        let pc = {
            let mut clients = self.clients.lock().await;
            match clients.get(&(topic.to_owned(), partition)) {
                Some(pc) => Arc::clone(pc),
                None => {
                    let pc = Arc::new(
                        tokio::time::timeout(
                            self.timeout,
                            self.client.partition_client(topic, partition, UnknownTopicHandling::Error),
                        )
                        .await??,
                    );
                    clients.insert((topic.to_owned(), partition), Arc::clone(&pc));
                    pc
                }
            }
        };
        let record = Record {
            key: Some(key.to_vec()),
            value: Some(value.to_vec()),
            headers: BTreeMap::new(),
            timestamp: chrono::Utc::now(),
        };
        let offsets =
            tokio::time::timeout(self.timeout, pc.produce(vec![record], Compression::NoCompression)).await??;
        Ok((partition, offsets[0]))
    }
}
