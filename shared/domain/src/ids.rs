//! Deterministic identities. Every event we publish has an id fixed by *what* it is (batch,
//! CJ job), so re-processing a record can never mint a second copy, and an idempotency key for
//! every consumed record, also when the producer sent no `event_id`.

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Namespace for our UUIDv5 ids (a random v4, fixed forever).
pub const RAS_NAMESPACE: Uuid = Uuid::from_u128(0x6c1f_4d2e_9a3b_4c7d_8e5f_0a1b_2c3d_4e5f);

pub fn results_ready_event_id(batch_id: &str) -> Uuid {
    Uuid::new_v5(
        &RAS_NAMESPACE,
        format!("huleedu.ras.batch.results.ready.v1|{batch_id}").as_bytes(),
    )
}

pub fn assessment_completed_event_id(batch_id: &str, cj_assessment_job_id: &str) -> Uuid {
    Uuid::new_v5(
        &RAS_NAMESPACE,
        format!("huleedu.ras.batch.assessment.completed.v1|{batch_id}|{cj_assessment_job_id}")
            .as_bytes(),
    )
}

/// The teacher notification projected from a domain event.
pub fn notification_event_id(domain_event_id: Uuid) -> Uuid {
    Uuid::new_v5(
        &RAS_NAMESPACE,
        format!("huleedu.notification.teacher.requested.v1|{domain_event_id}").as_bytes(),
    )
}

/// Stand-in correlation id for a record whose envelope has none (the reference mints a random
/// one, which makes replays diverge).
pub fn fallback_correlation_id(event_key: &str) -> Uuid {
    Uuid::new_v5(
        &RAS_NAMESPACE,
        format!("correlation|{event_key}").as_bytes(),
    )
}

/// SHA-256 of the raw record value, hex: the payload hash kept on idempotency markers.
pub fn payload_hash(value: &[u8]) -> String {
    hex::encode(Sha256::digest(value))
}

/// The idempotency key of a consumed record: `event:<uuid>` when the envelope carries an
/// `event_id`, otherwise `sha256:<hash of topic and value bytes>`.
pub fn event_key(event_id: Option<Uuid>, topic: &str, value: &[u8]) -> String {
    match event_id {
        Some(id) => format!("event:{id}"),
        None => {
            let mut hasher = Sha256::new();
            hasher.update(topic.as_bytes());
            hasher.update([0u8]);
            hasher.update(value);
            format!("sha256:{}", hex::encode(hasher.finalize()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        assert_eq!(results_ready_event_id("b1"), results_ready_event_id("b1"));
        assert_ne!(results_ready_event_id("b1"), results_ready_event_id("b2"));
        assert_ne!(
            assessment_completed_event_id("b1", "1"),
            assessment_completed_event_id("b1", "2")
        );
        let id = results_ready_event_id("b1");
        assert_ne!(notification_event_id(id), id);
        assert_eq!(event_key(None, "t", b"x"), event_key(None, "t", b"x"));
        assert_ne!(event_key(None, "t", b"x"), event_key(None, "u", b"x"));
        assert!(event_key(Some(id), "t", b"x").starts_with("event:"));
    }
}
