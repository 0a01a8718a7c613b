//! Test support (feature `test-util`): a scripted fault-injecting wrapper around any
//! publisher, and Lambda stream events built from outbox items. The in-memory publisher and
//! parking queue are the domain's (`ras_domain::testing`).

use aws_lambda_events::dynamodb::Event;
use ras_aws::dynamo::OutboxItem;
use ras_domain::plan::OutboxMessage;
use ras_domain::ports::{Destination, MessagePublisher, PublishError, SendResult};
use ras_domain::testing::PublishCall;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// Failures to inject, by call number (1-based, counting every call the wrapper sees) or by
/// event id.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// These calls fail as a whole (nothing reaches the inner publisher).
    pub fail_calls: HashSet<usize>,
    /// The first `n` calls fail as a whole.
    pub fail_first_calls: usize,
    /// Every call fails as a whole (SQS down).
    pub fail_all_calls: bool,
    /// Entries with these event ids fail (retryably, `SenderFault=false`) the given number of
    /// times; the other entries of the call go through.
    pub fail_entries: HashMap<String, usize>,
    /// In these calls, the entry at this index fails.
    pub fail_entry_at: HashMap<usize, usize>,
    /// Entries with these event ids are refused for the sender's fault (`SenderFault=true`,
    /// `InvalidParameterValue`): every time, as SQS refuses what it can never accept.
    pub refuse_entries: HashSet<String>,
}

/// Wraps a publisher and injects [`Faults`]: whole-call errors and per-entry failures (what
/// an HTTP 200 with `Failed` entries looks like). Healthy entries go to the inner publisher.
#[derive(Debug)]
pub struct FaultyPublisher<P> {
    inner: P,
    state: Mutex<FaultState>,
}

#[derive(Debug, Default)]
struct FaultState {
    faults: Faults,
    calls: usize,
    attempts: Vec<PublishCall>,
}

impl<P> FaultyPublisher<P> {
    pub fn new(inner: P, faults: Faults) -> Self {
        FaultyPublisher {
            inner,
            state: Mutex::new(FaultState {
                faults,
                ..FaultState::default()
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FaultState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// Replace the faults (e.g. heal the queue) and keep counting calls.
    pub fn set_faults(&self, faults: Faults) {
        self.lock().faults = faults;
    }

    /// Calls seen so far.
    pub fn calls(&self) -> usize {
        self.lock().calls
    }

    /// Every call seen, with all its messages (failed or not).
    pub fn attempts(&self) -> Vec<PublishCall> {
        self.lock().attempts.clone()
    }
}

impl<P: MessagePublisher> MessagePublisher for FaultyPublisher<P> {
    async fn send_batch(
        &self,
        destination: Destination,
        messages: &[OutboxMessage],
    ) -> Result<Vec<SendResult>, PublishError> {
        let (whole_call_fails, failing, refused) = {
            let mut st = self.lock();
            st.calls += 1;
            let n = st.calls;
            st.attempts.push(PublishCall {
                destination,
                messages: messages.to_vec(),
            });
            let whole = st.faults.fail_all_calls
                || n <= st.faults.fail_first_calls
                || st.faults.fail_calls.contains(&n);
            let mut failing = vec![false; messages.len()];
            let refused: Vec<bool> = messages
                .iter()
                .map(|m| st.faults.refuse_entries.contains(&m.event_id.to_string()))
                .collect();
            if !whole {
                if let Some(&at) = st.faults.fail_entry_at.get(&n) {
                    if let Some(f) = failing.get_mut(at) {
                        *f = true;
                    }
                }
                for (i, m) in messages.iter().enumerate() {
                    if let Some(left) = st.faults.fail_entries.get_mut(&m.event_id.to_string()) {
                        if *left > 0 {
                            *left -= 1;
                            failing[i] = true;
                        }
                    }
                }
            }
            (whole, failing, refused)
        };
        if whole_call_fails {
            return Err(PublishError::Transient(
                "injected: SendMessageBatch failed (HTTP 503)".into(),
            ));
        }
        let not_sent: Vec<bool> = failing
            .iter()
            .zip(&refused)
            .map(|(f, r)| *f || *r)
            .collect();
        let mut results =
            send_failing_entries(&self.inner, destination, messages, &not_sent).await?;
        for (result, refused) in results.iter_mut().zip(refused) {
            if refused {
                *result = SendResult::Failed {
                    retryable: false,
                    code: "InvalidParameterValue".into(),
                    message: "injected: refused for the sender's fault".into(),
                };
            }
        }
        Ok(results)
    }
}

/// Send `messages` through `inner` except those marked in `failing`, which come back as
/// retryable per-entry failures (as SQS reports them), results in the order of `messages`.
pub async fn send_failing_entries<P: MessagePublisher>(
    inner: &P,
    destination: Destination,
    messages: &[OutboxMessage],
    failing: &[bool],
) -> Result<Vec<SendResult>, PublishError> {
    let healthy: Vec<OutboxMessage> = messages
        .iter()
        .zip(failing)
        .filter(|(_, f)| !**f)
        .map(|(m, _)| m.clone())
        .collect();
    let mut inner_results = if healthy.is_empty() {
        Vec::new()
    } else {
        inner.send_batch(destination, &healthy).await?
    }
    .into_iter();
    Ok(failing
        .iter()
        .map(|f| {
            if *f {
                SendResult::Failed {
                    retryable: true,
                    code: "InternalError".into(),
                    message: "injected per-entry failure".into(),
                }
            } else {
                inner_results.next().unwrap_or(SendResult::Failed {
                    retryable: true,
                    code: "NoResult".into(),
                    message: "inner publisher returned too few results".into(),
                })
            }
        })
        .collect())
}

/// A Lambda DynamoDB stream event with one `INSERT` per item, sequence numbers from
/// `first_sequence` on (as Lambda delivers the outbox stream).
pub fn stream_event(items: &[OutboxItem], first_sequence: u64) -> Event {
    let records: Vec<Value> = items
        .iter()
        .enumerate()
        .map(|(i, item)| insert_record(item, &(first_sequence + i as u64).to_string()))
        .collect();
    event_from_records(records)
}

/// The Lambda JSON of one `INSERT` record of `item`.
pub fn insert_record(item: &OutboxItem, sequence_number: &str) -> Value {
    let image = item
        .to_image::<serde_dynamo::Item>()
        .ok()
        .and_then(|i| serde_json::to_value(i).ok())
        .unwrap_or(Value::Null);
    json!({
        "eventID": format!("{:032x}", sequence_number.parse::<u128>().unwrap_or(0)),
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/ras-outbox/stream/2025-11-27T00:00:00.000",
        "dynamodb": {
            "ApproximateCreationDateTime": 1764238830,
            "Keys": {
                "ordering_key": {"S": item.ordering_key.clone()},
                "position": {"S": item.position.clone()},
            },
            "NewImage": image,
            "SequenceNumber": sequence_number,
            "SizeBytes": item.body.len() + 300,
            "StreamViewType": "NEW_IMAGE"
        }
    })
}

/// `{"Records": [...]}` → the typed event (panics on a malformed record: test data).
pub fn event_from_records(records: Vec<Value>) -> Event {
    serde_json::from_value(json!({ "Records": records })).expect("valid DynamoDB stream event")
}

/// The records of `event` from the one with `sequence_number` on: what Lambda re-delivers
/// after a partial batch response naming it (plus, in reality, possibly newer records).
pub fn retry_from(event: &Event, sequence_number: &str) -> Event {
    let start = event
        .records
        .iter()
        .position(|r| r.change.sequence_number.as_deref() == Some(sequence_number))
        .unwrap_or(event.records.len());
    let mut retry = event.clone();
    retry.records = event.records[start..].to_vec();
    retry
}
