//! Packing messages into `SendMessageBatch` requests: at most 10 entries and at most 1 MiB
//! (bodies and message attributes, as SQS counts them) per request.

use ras_aws::sqs_publisher::{message_size, MAX_BATCH_BYTES, MAX_BATCH_ENTRIES};
use ras_domain::plan::OutboxMessage;

/// The result of packing one request from a list of candidates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Packed {
    /// Candidate ids that go into this request, in candidate order.
    pub taken: Vec<usize>,
    /// Candidate ids that can never be sent: larger than a whole request on their own.
    pub oversize: Vec<usize>,
    /// Payload bytes of the request.
    pub bytes: usize,
}

/// First fit, in candidate order: take each candidate that still fits (entries and bytes);
/// skip the ones that do not (they go into a later request); stop at 10 entries.
pub fn pack<'a>(candidates: impl IntoIterator<Item = (usize, &'a OutboxMessage)>) -> Packed {
    let mut packed = Packed::default();
    for (id, message) in candidates {
        if packed.taken.len() == MAX_BATCH_ENTRIES {
            break;
        }
        let size = message_size(message);
        if size > MAX_BATCH_BYTES {
            packed.oversize.push(id);
        } else if packed.bytes + size <= MAX_BATCH_BYTES {
            packed.bytes += size;
            packed.taken.push(id);
        }
    }
    packed
}

#[cfg(test)]
mod tests {
    use super::*;
    use ras_domain::contracts::{PublishedTopic, Timestamp};
    use uuid::Uuid;

    fn msg(body_len: usize) -> OutboxMessage {
        OutboxMessage {
            event_id: Uuid::from_u128(1),
            topic: PublishedTopic::BatchResultsReady,
            ordering_key: "k".into(),
            correlation_id: Uuid::from_u128(2),
            created_at: Timestamp::from_unix_micros(0).unwrap(),
            sequence: 0,
            body: "x".repeat(body_len),
        }
    }

    #[test]
    fn at_most_ten_entries() {
        let msgs: Vec<_> = (0..25).map(|_| msg(100)).collect();
        let p = pack(msgs.iter().enumerate());
        assert_eq!(p.taken, (0..10).collect::<Vec<_>>());
        assert!(p.oversize.is_empty());
    }

    #[test]
    fn at_most_one_mebibyte_including_attributes() {
        let overhead = message_size(&msg(0));
        let big = MAX_BATCH_BYTES / 2 - overhead;
        let msgs = [msg(big), msg(big), msg(1), msg(10)];
        let p = pack(msgs.iter().enumerate());
        // The two halves fill the request exactly; the small ones wait for the next.
        assert_eq!(p.taken, vec![0, 1]);
        assert_eq!(p.bytes, MAX_BATCH_BYTES);
        let msgs = [msg(big + 1), msg(big), msg(1)];
        let p = pack(msgs.iter().enumerate());
        assert_eq!(p.taken, vec![0, 2]);
        assert!(p.bytes <= MAX_BATCH_BYTES);
    }

    #[test]
    fn a_message_larger_than_a_request_is_set_apart() {
        let msgs = [msg(MAX_BATCH_BYTES), msg(5)];
        let p = pack(msgs.iter().enumerate());
        assert_eq!(p.oversize, vec![0]);
        assert_eq!(p.taken, vec![1]);
    }
}
