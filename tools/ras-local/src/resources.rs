//! Private copies of the project's tables and queues (those of `template.yaml`, compiled in:
//! [`crate::template`]), so a run can share a local AWS-API server with others without seeing
//! their items or messages: the state and outbox tables (keys, GSIs and — optionally — the
//! stream of the template) and the queues a function finds by an environment variable (events,
//! notifications, ingest dead letters, relay parking), named `<name>-<suffix>` (FIFO queues keep
//! their `.fifo` ending).

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
};
use aws_sdk_sqs::types::QueueAttributeName;
use ras_aws::config::{StoreConfig, DEFAULT_OUTBOX_TABLE, DEFAULT_STATE_TABLE};
use ras_aws::sqs_publisher::{QueueUrls, EVENTS_QUEUE_URL_ENV, NOTIFICATIONS_QUEUE_URL_ENV};
use serde_yaml::Value;

use crate::template::{self, TemplateError};

/// The ingest dead-letter queue's variable.
pub const INGEST_DLQ_URL_ENV: &str = "RAS_INGEST_DLQ_URL";

#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error("template.yaml: {0}")]
    Definition(String),
    #[error("{operation} {name}: {message}")]
    Aws {
        operation: &'static str,
        name: String,
        message: String,
    },
}

impl From<TemplateError> for ResourceError {
    fn from(e: TemplateError) -> Self {
        ResourceError::Definition(e.0)
    }
}

fn aws_error(operation: &'static str, name: &str, err: impl std::error::Error) -> ResourceError {
    ResourceError::Aws {
        operation,
        name: name.to_string(),
        message: format!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(err)),
    }
}

/// The entries of a list property (none when absent).
fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_sequence)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// A plain string property.
fn text<'a>(v: &'a Value, key: &str, what: &str) -> Result<&'a str, ResourceError> {
    match v.get(key) {
        Some(Value::String(s)) => Ok(s),
        other => Err(ResourceError::Definition(format!(
            "{what}: {key} must be a string, got {other:?}"
        ))),
    }
}

/// A `KeySchema` of the template as the SDK's.
fn key_schema(v: &Value, what: &str) -> Result<Vec<KeySchemaElement>, ResourceError> {
    list(v, "KeySchema")
        .iter()
        .map(|k| {
            KeySchemaElement::builder()
                .attribute_name(text(k, "AttributeName", what)?)
                .key_type(KeyType::from(text(k, "KeyType", what)?))
                .build()
                .map_err(|e| ResourceError::Definition(format!("{what}: {e}")))
        })
        .collect()
}

/// A boolean property, literal (`true`) or quoted (`"true"`).
fn flag(v: &Value, key: &str) -> bool {
    match v.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    }
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
    let template = template::template()?;
    let tables = template::named_resources(&template, template::TABLE)?;
    let mut names = Vec::new();
    for base in [DEFAULT_STATE_TABLE, DEFAULT_OUTBOX_TABLE] {
        let table = tables
            .get(base)
            .ok_or_else(|| ResourceError::Definition(format!("no table {base}")))?;
        let p = table.properties;
        let name = format!("{base}-{suffix}");
        let mut request = dynamo
            .create_table()
            .table_name(&name)
            .billing_mode(BillingMode::PayPerRequest)
            .set_key_schema(Some(key_schema(p, base)?));
        for a in list(p, "AttributeDefinitions") {
            request = request.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(text(a, "AttributeName", base)?)
                    .attribute_type(ScalarAttributeType::from(text(a, "AttributeType", base)?))
                    .build()
                    .map_err(|e| ResourceError::Definition(format!("{base}: {e}")))?,
            );
        }
        for index in list(p, "GlobalSecondaryIndexes") {
            let index_name = text(index, "IndexName", base)?;
            let what = format!("{base}.{index_name}");
            let projection = index
                .get("Projection")
                .map(|pr| text(pr, "ProjectionType", &what))
                .transpose()?
                .unwrap_or("ALL");
            request = request.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(index_name)
                    .set_key_schema(Some(key_schema(index, &what)?))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::from(projection))
                            .build(),
                    )
                    .build()
                    .map_err(|e| ResourceError::Definition(format!("{what}: {e}")))?,
            );
        }
        if let (Streams::AsDefined, Some(stream)) = (streams, p.get("StreamSpecification")) {
            request = request.stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::from(text(stream, "StreamViewType", base)?))
                    .build()
                    .map_err(|e| ResourceError::Definition(format!("{base} stream: {e}")))?,
            );
        }
        request
            .send()
            .await
            .map_err(|e| aws_error("CreateTable", &name, e))?;
        names.push(name);
    }
    let outbox = names.pop().unwrap_or_default();
    let state = names.pop().unwrap_or_default();
    Ok(StoreConfig::new(state, outbox))
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
/// `<name>-<suffix>`, with the FIFO settings and visibility timeout of the template (their
/// redrive policies are left out).
pub async fn create_queues(
    sqs: &aws_sdk_sqs::Client,
    suffix: &str,
) -> Result<PrivateQueues, ResourceError> {
    let template = template::template()?;
    let queues = template::named_resources(&template, template::QUEUE)?;
    let mut urls = std::collections::HashMap::new();
    for (env_var, id) in template::resource_variables(&template)? {
        let Some(queue) = queues.values().find(|q| q.id == id) else {
            continue; // a table
        };
        let p = queue.properties;
        let name = match queue.name.strip_suffix(".fifo") {
            Some(stem) => format!("{stem}-{suffix}.fifo"),
            None => format!("{}-{suffix}", queue.name),
        };
        let mut request = sqs.create_queue().queue_name(&name);
        if flag(p, "FifoQueue") {
            request = request
                .attributes(QueueAttributeName::FifoQueue, "true")
                .attributes(
                    QueueAttributeName::ContentBasedDeduplication,
                    flag(p, "ContentBasedDeduplication").to_string(),
                );
        }
        if let Some(seconds) = p.get("VisibilityTimeout").and_then(Value::as_u64) {
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
        urls.insert(env_var, url);
    }
    let mut take = |var: &str| {
        urls.remove(var)
            .ok_or_else(|| ResourceError::Definition(format!("no function gets a queue as {var}")))
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
