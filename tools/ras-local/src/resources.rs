//! Private copies of the project's tables and queues (`infra/resources.json`, compiled in), so a
//! run can share a local AWS-API server with others without seeing their items or messages:
//! the state and outbox tables (keys, GSIs and — optionally — the stream of the definition) and
//! the queues that carry an `env_var` (events, notifications, ingest dead letters), named
//! `<name>-<suffix>` (FIFO queues keep their `.fifo` ending).

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
};
use aws_sdk_sqs::types::QueueAttributeName;
use ras_aws::config::{StoreConfig, DEFAULT_OUTBOX_TABLE, DEFAULT_STATE_TABLE};
use ras_aws::sqs_publisher::{QueueUrls, EVENTS_QUEUE_URL_ENV, NOTIFICATIONS_QUEUE_URL_ENV};
use serde_json::Value;

/// `infra/resources.json`.
pub const RESOURCES_JSON: &str = include_str!("../../../infra/resources.json");

/// The ingest dead-letter queue's variable.
pub const INGEST_DLQ_URL_ENV: &str = "RAS_INGEST_DLQ_URL";

#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error("infra/resources.json: {0}")]
    Definition(String),
    #[error("{operation} {name}: {message}")]
    Aws {
        operation: &'static str,
        name: String,
        message: String,
    },
}

fn aws_error(operation: &'static str, name: &str, err: impl std::error::Error) -> ResourceError {
    ResourceError::Aws {
        operation,
        name: name.to_string(),
        message: format!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(err)),
    }
}

fn definition() -> Result<Value, ResourceError> {
    serde_json::from_str(RESOURCES_JSON).map_err(|e| ResourceError::Definition(e.to_string()))
}

fn section(spec: &Value, name: &str) -> Vec<Value> {
    spec[name].as_array().cloned().unwrap_or_default()
}

/// Whether the private tables get the stream of their definition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Streams {
    /// As defined (the outbox table's `NEW_IMAGE` stream): the relay can read it.
    AsDefined,
    /// None: cheaper writes on moto when nothing reads the stream.
    Off,
}

/// Create the state and outbox tables as `<name>-<suffix>`.
pub async fn create_tables(
    dynamo: &aws_sdk_dynamodb::Client,
    suffix: &str,
    streams: Streams,
) -> Result<StoreConfig, ResourceError> {
    let spec = definition()?;
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(|e| ResourceError::Definition(format!("key {name}: {e}")))
    };
    let keys = |pk: &Value, sk: &Value| -> Result<Vec<KeySchemaElement>, ResourceError> {
        let pk = pk
            .as_str()
            .ok_or_else(|| ResourceError::Definition("partition key missing".into()))?;
        let mut schema = vec![key(pk, KeyType::Hash)?];
        if let Some(sk) = sk.as_str() {
            schema.push(key(sk, KeyType::Range)?);
        }
        Ok(schema)
    };
    let mut state = None;
    let mut outbox = None;
    for table in section(&spec, "tables") {
        let base = table["name"].as_str().unwrap_or_default().to_string();
        if base != DEFAULT_STATE_TABLE && base != DEFAULT_OUTBOX_TABLE {
            continue;
        }
        let name = format!("{base}-{suffix}");
        let mut request = dynamo
            .create_table()
            .table_name(&name)
            .billing_mode(BillingMode::PayPerRequest)
            .set_key_schema(Some(keys(
                &table["key_schema"]["partition_key"],
                &table["key_schema"]["sort_key"],
            )?));
        for (attribute, kind) in table["attribute_definitions"]
            .as_object()
            .into_iter()
            .flatten()
        {
            let kind = ScalarAttributeType::from(kind.as_str().unwrap_or("S"));
            request = request.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(attribute)
                    .attribute_type(kind)
                    .build()
                    .map_err(|e| ResourceError::Definition(format!("{attribute}: {e}")))?,
            );
        }
        for index in table["global_secondary_indexes"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let projection = match index["projection"].as_str().unwrap_or("ALL") {
                "KEYS_ONLY" => ProjectionType::KeysOnly,
                "INCLUDE" => ProjectionType::Include,
                _ => ProjectionType::All,
            };
            let index_name = index["name"].as_str().unwrap_or_default();
            request = request.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(index_name)
                    .set_key_schema(Some(keys(&index["partition_key"], &index["sort_key"])?))
                    .projection(Projection::builder().projection_type(projection).build())
                    .build()
                    .map_err(|e| ResourceError::Definition(format!("{index_name}: {e}")))?,
            );
        }
        if let (Streams::AsDefined, Some(view)) = (streams, table["stream_view_type"].as_str()) {
            request = request.stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::from(view))
                    .build()
                    .map_err(|e| ResourceError::Definition(format!("{base} stream: {e}")))?,
            );
        }
        request
            .send()
            .await
            .map_err(|e| aws_error("CreateTable", &name, e))?;
        if base == DEFAULT_STATE_TABLE {
            state = Some(name);
        } else {
            outbox = Some(name);
        }
    }
    match (state, outbox) {
        (Some(state), Some(outbox)) => Ok(StoreConfig::new(state, outbox)),
        _ => Err(ResourceError::Definition(format!(
            "tables {DEFAULT_STATE_TABLE} and {DEFAULT_OUTBOX_TABLE} must both be defined"
        ))),
    }
}

pub async fn delete_tables(dynamo: &aws_sdk_dynamodb::Client, tables: &StoreConfig) {
    for name in [&tables.state_table, &tables.outbox_table] {
        let _ = dynamo.delete_table().table_name(name).send().await;
    }
}

/// The private queues of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrivateQueues {
    pub queues: QueueUrls,
    pub ingest_dead_letters: String,
    /// The relay's parking queue.
    pub relay_parked: String,
}

impl PrivateQueues {
    pub fn urls(&self) -> [&str; 4] {
        [
            &self.queues.events,
            &self.queues.notifications,
            &self.ingest_dead_letters,
            &self.relay_parked,
        ]
    }
}

/// Create the events, notifications, ingest dead-letter and relay parking queues as
/// `<name>-<suffix>`, with
/// the FIFO settings of their definitions (their redrive policies are left out).
pub async fn create_queues(
    sqs: &aws_sdk_sqs::Client,
    suffix: &str,
) -> Result<PrivateQueues, ResourceError> {
    let spec = definition()?;
    let mut urls = std::collections::HashMap::new();
    for queue in section(&spec, "queues") {
        let Some(env_var) = queue["env_var"].as_str() else {
            continue;
        };
        let base = queue["name"].as_str().unwrap_or_default();
        let fifo = queue["fifo"].as_bool().unwrap_or(false);
        let name = match base.strip_suffix(".fifo") {
            Some(stem) => format!("{stem}-{suffix}.fifo"),
            None => format!("{base}-{suffix}"),
        };
        let mut request = sqs.create_queue().queue_name(&name);
        if fifo {
            let content_dedup = queue["content_based_deduplication"]
                .as_bool()
                .unwrap_or(false);
            request = request
                .attributes(QueueAttributeName::FifoQueue, "true")
                .attributes(
                    QueueAttributeName::ContentBasedDeduplication,
                    content_dedup.to_string(),
                );
        }
        if let Some(seconds) = queue["visibility_timeout_seconds"].as_u64() {
            request =
                request.attributes(QueueAttributeName::VisibilityTimeout, seconds.to_string());
        }
        let url = request
            .send()
            .await
            .map_err(|e| aws_error("CreateQueue", &name, e))?
            .queue_url
            .ok_or_else(|| ResourceError::Aws {
                operation: "CreateQueue",
                name: name.clone(),
                message: "no queue URL in the answer".into(),
            })?;
        urls.insert(env_var.to_string(), url);
    }
    let mut take = |var: &str| {
        urls.remove(var)
            .ok_or_else(|| ResourceError::Definition(format!("no queue with env_var {var}")))
    };
    Ok(PrivateQueues {
        queues: QueueUrls {
            events: take(EVENTS_QUEUE_URL_ENV)?,
            notifications: take(NOTIFICATIONS_QUEUE_URL_ENV)?,
        },
        ingest_dead_letters: take(INGEST_DLQ_URL_ENV)?,
        relay_parked: take(ras_aws::parking::PARKED_QUEUE_URL_ENV)?,
    })
}

pub async fn delete_queues(sqs: &aws_sdk_sqs::Client, queues: &PrivateQueues) {
    for url in queues.urls() {
        let _ = sqs.delete_queue().queue_url(url).send().await;
    }
}

/// A short random suffix (`<prefix>-<8 hex>`).
pub fn unique_suffix(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..8])
}
