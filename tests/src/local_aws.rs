//! Connecting to the local AWS-API server (moto) started by `scripts/test.sh` /
//! `infra/local/start.sh`, and small helpers over it: fresh queues, draining a queue, reading
//! a batch's outbox items.
//!
//! Tests that need the server fail (never skip) when `AWS_ENDPOINT_URL` is not set.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::Message;
use ras_aws::config::StoreConfig;
use ras_aws::dynamo::{DynamoStore, OutboxItem};
use uuid::Uuid;

pub const ENDPOINT_ENV: &str = "AWS_ENDPOINT_URL";

/// The local server's URL; panics with instructions when it is not configured.
pub fn endpoint_url() -> String {
    match std::env::var(ENDPOINT_ENV) {
        Ok(url) if !url.trim().is_empty() => url.trim().to_string(),
        _ => panic!(
            "{ENDPOINT_ENV} is not set. This test talks to the local AWS-API server (moto) with the \
             tables and queues of template.yaml. Run the tests with scripts/test.sh, or start \
             the server yourself: infra/local/setup.sh && infra/local/start.sh && source infra/local/env.sh"
        ),
    }
}

/// SDK configuration for the local server: its endpoint, static test credentials, the region
/// from `AWS_REGION` (default `us-east-1`).
pub async fn sdk_config() -> SdkConfig {
    let region = std::env::var("AWS_REGION")
        .ok()
        .filter(|r| !r.trim().is_empty())
        .unwrap_or_else(|| "us-east-1".to_string());
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint_url())
        .region(Region::new(region))
        .credentials_provider(Credentials::new("test", "test", None, None, "ras-tests"))
        .load()
        .await
}

/// A unique name: `<prefix>-<8 hex>`.
pub fn unique(prefix: &str) -> String {
    let id = Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..8])
}

/// Clients for the local server, and the tables of the environment.
#[derive(Clone, Debug)]
pub struct LocalAws {
    pub sdk: SdkConfig,
    pub dynamo: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub tables: StoreConfig,
}

impl LocalAws {
    /// Clients of one test (SDK clients are bound to the runtime that first uses them: do not
    /// share them between `#[tokio::test]`s).
    pub async fn connect() -> Self {
        let sdk = sdk_config().await;
        LocalAws {
            dynamo: aws_sdk_dynamodb::Client::new(&sdk),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            tables: StoreConfig::from_env().unwrap_or_else(|e| {
                panic!("{e}: source infra/local/env.sh (scripts/test.sh does)")
            }),
            sdk,
        }
    }

    /// The DynamoDB store on the environment's tables.
    pub fn store(&self) -> DynamoStore {
        DynamoStore::new(self.dynamo.clone(), self.tables.clone())
    }

    /// The DynamoDB store with another client (e.g. one with interceptors).
    pub fn store_with(&self, client: aws_sdk_dynamodb::Client) -> DynamoStore {
        DynamoStore::new(client, self.tables.clone())
    }

    /// A new standard queue of this test only; returns its URL.
    pub async fn create_queue(&self, prefix: &str) -> String {
        let name = unique(prefix);
        let out = self
            .sqs
            .create_queue()
            .queue_name(&name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateQueue {name}: {e:?}"));
        out.queue_url
            .unwrap_or_else(|| panic!("CreateQueue {name}: no URL"))
    }

    pub async fn delete_queue(&self, url: &str) {
        let _ = self.sqs.delete_queue().queue_url(url).send().await;
    }

    /// Receive (and delete) every message of a queue, with all message attributes.
    pub async fn drain_queue(&self, url: &str) -> Vec<Message> {
        ras_local::pipeline::drain(&self.sqs, url)
            .await
            .unwrap_or_else(|e| panic!("drain {url}: {e}"))
    }

    /// Every outbox item of a batch (a filtered scan: fine for the small local tables).
    pub async fn outbox_of_batch(&self, batch_id: &str) -> Vec<OutboxItem> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .dynamo
                .scan()
                .table_name(&self.tables.outbox_table)
                .consistent_read(true)
                .filter_expression("batch_id = :b")
                .expression_attribute_values(":b", AttributeValue::S(batch_id.to_string()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap_or_else(|e| panic!("Scan outbox: {e:?}"));
            for item in out.items.unwrap_or_default() {
                items.push(
                    OutboxItem::from_item(item).unwrap_or_else(|e| panic!("outbox item: {e}")),
                );
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        items.sort_by(|a, b| {
            (&a.created_at, a.sequence, a.event_id).cmp(&(&b.created_at, b.sequence, b.event_id))
        });
        items
    }
}

/// Counts the HTTP requests an SDK client sends, per operation (`Query`,
/// `TransactWriteItems`, …; SDK-level retries included: every transmission counts). Shared with
/// the local pipeline (`ras_local::counter`).
pub use ras_local::RequestCounter;

impl LocalAws {
    /// A DynamoDB client that counts its requests into `counter`.
    pub fn counted_dynamo(&self, counter: &RequestCounter) -> aws_sdk_dynamodb::Client {
        counter.dynamo_client(&self.sdk)
    }
}

/// Serialises the commits of the whole test process, as DynamoDB isolates transactions.
///
/// moto does not isolate concurrent `TransactWriteItems`. Two transactions conditioned on the
/// same root version can both pass their condition checks when their requests overlap
/// (measured with moto 5.2.5: 2 of 8 concurrent writers with the same expected version
/// succeeded), and a transaction deep-copies its tables while other requests modify them,
/// failing with HTTP 500 ("dictionary changed size during iteration"). DynamoDB serialises
/// conflicting transactions: one commits, the others are cancelled. One process-wide lock
/// around `commit` restores that (cargo runs test binaries one after the other); loads stay
/// concurrent, so stale reads, cancelled commits and re-plans still happen for real.
pub struct SerializedCommits<S> {
    inner: S,
}

static COMMIT_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Hold this around a commit made outside [`SerializedCommits`] (see there).
pub async fn commit_lock() -> tokio::sync::MutexGuard<'static, ()> {
    COMMIT_LOCK.lock().await
}

impl<S> SerializedCommits<S> {
    pub fn new(inner: S) -> Self {
        SerializedCommits { inner }
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: ras_domain::ports::AggregateStore> ras_domain::ports::AggregateStore
    for SerializedCommits<S>
{
    async fn load(
        &self,
        batch_id: &str,
    ) -> Result<ras_domain::model::BatchAggregate, ras_domain::ports::StoreError> {
        self.inner.load(batch_id).await
    }

    async fn load_essay(
        &self,
        batch_id: &str,
        essay_id: &str,
    ) -> Result<ras_domain::model::BatchAggregate, ras_domain::ports::StoreError> {
        self.inner.load_essay(batch_id, essay_id).await
    }

    async fn commit(
        &self,
        marker: &ras_domain::ports::IdempotencyMarker,
        plan: &ras_domain::plan::Plan,
    ) -> Result<ras_domain::ports::CommitOutcome, ras_domain::ports::StoreError> {
        let _guard = COMMIT_LOCK.lock().await;
        self.inner.commit(marker, plan).await
    }
}

impl LocalAws {
    /// Tables of this test only, with the keys and GSIs of `template.yaml`'s state and outbox
    /// tables (no stream, TTL or backups: nothing reads them here), named
    /// `<name>-t-<8 hex>` (`ras_local::resources::create_tables`). moto copies every table a
    /// transaction touches, item by item, for each of its actions: small private tables keep
    /// commits fast and a heavy test from slowing down the others. Delete them with
    /// [`LocalAws::delete_tables`].
    pub async fn create_private_tables(&self) -> StoreConfig {
        ras_local::resources::create_tables(
            &self.dynamo,
            &unique("t"),
            ras_local::resources::Streams::Off,
        )
        .await
        .unwrap_or_else(|e| panic!("private tables: {e}"))
    }

    pub async fn delete_tables(&self, tables: &StoreConfig) {
        for name in [&tables.state_table, &tables.outbox_table] {
            let _ = self.dynamo.delete_table().table_name(name).send().await;
        }
    }
}
