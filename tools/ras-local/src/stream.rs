//! The outbox table's DynamoDB stream, read with the DynamoDB Streams API the way Lambda's event
//! source mapping does, and its records wrapped as the Lambda DynamoDB stream event.
//!
//! [`OutboxStream::open`] remembers the end of every shard, so only records written afterwards
//! are returned. Every poll re-acquires its shard iterator (`AFTER_SEQUENCE_NUMBER` of the last
//! record read): moto's iterators stop seeing new records after a failed transaction.

use aws_lambda_events::dynamodb::Event;
use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use serde_json::{json, Value};
use std::collections::HashMap;

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("{operation}: {message}")]
    Aws {
        operation: &'static str,
        message: String,
    },
    #[error("table {0} has no stream")]
    NoStream(String),
    #[error("stream record to Lambda event: {0}")]
    Convert(String),
}

fn aws(operation: &'static str, err: impl std::error::Error) -> StreamError {
    StreamError::Aws {
        operation,
        message: format!(
            "{}",
            aws_sdk_dynamodbstreams::error::DisplayErrorContext(err)
        ),
    }
}

/// The records of one shard, in stream order.
#[derive(Clone, Debug)]
pub struct ShardRecords {
    pub shard_id: String,
    pub records: Vec<Record>,
}

pub struct OutboxStream {
    client: aws_sdk_dynamodbstreams::Client,
    pub stream_arn: String,
    /// Per shard: the sequence number of the last record read (`None`: nothing read yet).
    positions: HashMap<String, Option<String>>,
}

impl OutboxStream {
    /// Open the stream of `table` at its current end.
    pub async fn open(
        dynamo: &aws_sdk_dynamodb::Client,
        streams: aws_sdk_dynamodbstreams::Client,
        table: &str,
    ) -> Result<Self, StreamError> {
        let described = dynamo
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| aws("DescribeTable", e))?;
        let stream_arn = described
            .table()
            .and_then(|t| t.latest_stream_arn())
            .ok_or_else(|| StreamError::NoStream(table.to_string()))?
            .to_string();
        let mut stream = OutboxStream {
            client: streams,
            stream_arn,
            positions: HashMap::new(),
        };
        stream.read_new_by_shard().await?;
        Ok(stream)
    }

    async fn shard_ids(&self) -> Result<Vec<String>, StreamError> {
        let mut ids = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let out = self
                .client
                .describe_stream()
                .stream_arn(&self.stream_arn)
                .set_exclusive_start_shard_id(start.clone())
                .send()
                .await
                .map_err(|e| aws("DescribeStream", e))?;
            let Some(desc) = out.stream_description else {
                break;
            };
            ids.extend(
                desc.shards()
                    .iter()
                    .filter_map(|s| s.shard_id().map(str::to_string)),
            );
            start = desc.last_evaluated_shard_id;
            if start.is_none() {
                break;
            }
        }
        Ok(ids)
    }

    /// Every record written since the last read, per shard in stream order.
    pub async fn read_new_by_shard(&mut self) -> Result<Vec<ShardRecords>, StreamError> {
        let mut all = Vec::new();
        for shard in self.shard_ids().await? {
            let mut records_of_shard = Vec::new();
            loop {
                let last = self.positions.get(&shard).cloned().flatten();
                let mut request = self
                    .client
                    .get_shard_iterator()
                    .stream_arn(&self.stream_arn)
                    .shard_id(&shard);
                request = match &last {
                    Some(seq) => request
                        .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                        .sequence_number(seq),
                    None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
                };
                let Some(iterator) = request
                    .send()
                    .await
                    .map_err(|e| aws("GetShardIterator", e))?
                    .shard_iterator
                else {
                    // A closed shard read to its end.
                    break;
                };
                let out = self
                    .client
                    .get_records()
                    .shard_iterator(iterator)
                    .limit(1000)
                    .send()
                    .await
                    .map_err(|e| aws("GetRecords", e))?;
                let records = out.records.unwrap_or_default();
                if records.is_empty() {
                    self.positions.entry(shard.clone()).or_insert(last);
                    break;
                }
                let newest = records.last().map(sequence_number);
                self.positions.insert(shard.clone(), newest);
                records_of_shard.extend(records);
            }
            if !records_of_shard.is_empty() {
                all.push(ShardRecords {
                    shard_id: shard,
                    records: records_of_shard,
                });
            }
        }
        Ok(all)
    }

    /// Every record written since the last read, shards one after the other.
    pub async fn read_new(&mut self) -> Result<Vec<Record>, StreamError> {
        Ok(self
            .read_new_by_shard()
            .await?
            .into_iter()
            .flat_map(|s| s.records)
            .collect())
    }
}

pub fn is_insert(record: &Record) -> bool {
    record.event_name().map(|n| n.as_str()) == Some("INSERT")
}

/// The `event_id` of a stream record (from its new image).
pub fn record_event_id(record: &Record) -> Option<String> {
    record
        .dynamodb()
        .and_then(|d| d.new_image())
        .and_then(|k| k.get("event_id"))
        .and_then(|v| v.as_s().ok())
        .cloned()
}

pub fn sequence_number(record: &Record) -> String {
    record
        .dynamodb()
        .and_then(|d| d.sequence_number())
        .unwrap_or_default()
        .to_string()
}

/// A Streams API record as the Lambda event carries it. `ApproximateCreationDateTime` is
/// truncated to whole seconds (`aws_lambda_events` misreads fractions).
pub fn try_lambda_record(record: &Record, stream_arn: &str) -> Result<Value, StreamError> {
    let change = record.dynamodb();
    let image =
        |map: Option<&HashMap<String, AttributeValue>>| -> Result<Option<Value>, StreamError> {
            map.map(|m| {
                serde_json::to_value(serde_dynamo::Item::from(m.clone()))
                    .map_err(|e| StreamError::Convert(format!("image to JSON: {e}")))
            })
            .transpose()
        };
    let mut dynamodb = json!({
        "ApproximateCreationDateTime": change
            .and_then(|c| c.approximate_creation_date_time())
            .map(|t| t.secs())
            .unwrap_or(0),
        "SequenceNumber": change.and_then(|c| c.sequence_number()),
        "SizeBytes": change.and_then(|c| c.size_bytes()).unwrap_or(0),
        "StreamViewType": change.and_then(|c| c.stream_view_type()).map(|v| v.as_str().to_string()),
    });
    if let Some(keys) = image(change.and_then(|c| c.keys()))? {
        dynamodb["Keys"] = keys;
    }
    if let Some(new_image) = image(change.and_then(|c| c.new_image()))? {
        dynamodb["NewImage"] = new_image;
    }
    if let Some(old_image) = image(change.and_then(|c| c.old_image()))? {
        dynamodb["OldImage"] = old_image;
    }
    Ok(json!({
        "eventID": record.event_id(),
        "eventName": record.event_name().map(|n| n.as_str().to_string()),
        "eventVersion": record.event_version(),
        "eventSource": record.event_source(),
        "awsRegion": record.aws_region(),
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    }))
}

/// The Lambda DynamoDB stream event of `records` (as the event source mapping delivers them).
pub fn try_lambda_event(records: &[Record], stream_arn: &str) -> Result<Event, StreamError> {
    let records = records
        .iter()
        .map(|r| try_lambda_record(r, stream_arn))
        .collect::<Result<Vec<Value>, _>>()?;
    serde_json::from_value(json!({ "Records": records }))
        .map_err(|e| StreamError::Convert(format!("Lambda DynamoDB event: {e}")))
}

/// [`try_lambda_record`] for tests: panics on failure.
pub fn lambda_record(record: &Record, stream_arn: &str) -> Value {
    try_lambda_record(record, stream_arn).unwrap_or_else(|e| panic!("{e}"))
}

/// [`try_lambda_event`] for tests: panics on failure.
pub fn lambda_event(records: &[Record], stream_arn: &str) -> Event {
    try_lambda_event(records, stream_arn).unwrap_or_else(|e| panic!("{e}"))
}
