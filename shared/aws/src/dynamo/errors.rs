//! DynamoDB failures → [`StoreError`] and commit outcomes. The decisions are pure functions of
//! the error's facts, so they are unit-tested without a server.

use super::items::PAYLOAD_HASH;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::CancellationReason;
use ras_domain::ports::StoreError;

/// What went wrong with a request, reduced to what classification needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorFacts<'a> {
    pub failure: FailureKind,
    /// The service's error code (`ValidationException`, `ThrottlingException`, …).
    pub code: Option<&'a str>,
    pub message: Option<&'a str>,
    pub http_status: Option<u16>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The request could not be built (a bug on our side).
    Construction,
    /// No response in time.
    Timeout,
    /// The request could not be sent or the connection failed.
    Dispatch,
    /// A response arrived but could not be read.
    Response,
    /// The service answered with an error.
    Service,
}

impl<'a> ErrorFacts<'a> {
    pub fn of<E: ProvideErrorMetadata>(err: &'a SdkError<E>) -> Self {
        let (failure, http_status) = match err {
            SdkError::ConstructionFailure(_) => (FailureKind::Construction, None),
            SdkError::TimeoutError(_) => (FailureKind::Timeout, None),
            SdkError::DispatchFailure(_) => (FailureKind::Dispatch, None),
            SdkError::ResponseError(e) => (FailureKind::Response, Some(e.raw().status().as_u16())),
            SdkError::ServiceError(e) => (FailureKind::Service, Some(e.raw().status().as_u16())),
            _ => (FailureKind::Response, None),
        };
        ErrorFacts {
            failure,
            code: err.code(),
            message: err.message(),
            http_status,
        }
    }
}

const THROTTLING_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "Throttling",
    "TooManyRequestsException",
];

/// Not the record's fault: deployment or credentials. Retrying (and alarming) beats
/// dead-lettering every record while the configuration is broken.
const CONFIGURATION_CODES: &[&str] = &[
    "ResourceNotFoundException",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "ExpiredTokenException",
    "InvalidSignatureException",
    "IncompleteSignature",
    "MissingAuthenticationToken",
];

const SERVER_CODES: &[&str] = &[
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "TransactionInProgressException",
    "TransactionConflictException",
    "LimitExceededException",
];

/// DynamoDB's messages for an item over 400 KB.
pub fn is_item_too_large(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    message.contains("item size has exceeded")
        || message.contains("item size to update has exceeded")
}

fn validation_error(operation: &str, message: &str) -> StoreError {
    let kind = if is_item_too_large(message) {
        "item_too_large"
    } else {
        "invalid_request"
    };
    StoreError::Permanent {
        kind,
        message: format!("{operation}: {message}"),
    }
}

/// Classify a failed request: throttling, server errors, timeouts and connection failures are
/// transient; validation errors are permanent (`item_too_large` or `invalid_request`).
pub fn classify(operation: &str, facts: &ErrorFacts<'_>) -> StoreError {
    let code = facts.code.unwrap_or("");
    let message = facts.message.unwrap_or("");
    let describe = || {
        let status = facts
            .http_status
            .map(|s| format!(" (HTTP {s})"))
            .unwrap_or_default();
        format!("{operation}: {:?} {code}{status}: {message}", facts.failure)
    };
    match facts.failure {
        FailureKind::Timeout | FailureKind::Dispatch | FailureKind::Response => {
            return StoreError::Transient(describe());
        }
        FailureKind::Construction => {
            return StoreError::Permanent {
                kind: "invalid_request",
                message: describe(),
            };
        }
        FailureKind::Service => {}
    }
    if code == "ValidationException" {
        return validation_error(operation, message);
    }
    if THROTTLING_CODES.contains(&code)
        || SERVER_CODES.contains(&code)
        || CONFIGURATION_CODES.contains(&code)
    {
        return StoreError::Transient(describe());
    }
    match facts.http_status {
        Some(status) if status < 500 => StoreError::Permanent {
            kind: "invalid_request",
            message: describe(),
        },
        _ => StoreError::Transient(describe()),
    }
}

/// Classify any SDK error.
pub fn classify_sdk_error<E>(operation: &str, err: &SdkError<E>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let facts = ErrorFacts::of(err);
    let error = classify(operation, &facts);
    tracing::debug!(operation, error = %aws_sdk_dynamodb::error::DisplayErrorContext(err), "DynamoDB request failed");
    error
}

/// The role of one action of a commit transaction, to read its cancellation reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionRole {
    /// The idempotency marker (`attribute_not_exists(pk)`).
    Marker,
    /// The versioned batch root.
    Root,
    /// A versioned essay item: a per-essay record's plan may rest on an essay read apart
    /// from the root (`BatchGetItem` is not one snapshot), so the essay has a condition too.
    Essay,
    /// A record item or CJ chunk guarded by the root (no condition of its own).
    Record,
    /// An outbox item (`attribute_not_exists(event_id)`).
    Outbox,
}

/// What a cancelled commit transaction means.
#[derive(Clone, Debug, PartialEq)]
pub enum CancellationVerdict {
    /// The marker exists: the record was applied before (hash as returned with `ALL_OLD`;
    /// `None` when the old item did not come back).
    MarkerExists {
        existing_hash: Option<String>,
    },
    /// The root or an essay moved on, or an outbox item exists already: reload and re-plan.
    VersionConflict,
    Failed(StoreError),
}

fn code_of(reason: &CancellationReason) -> &str {
    reason.code().unwrap_or("None")
}

/// Read the cancellation reasons (in action order) of a commit transaction. A marker that
/// exists wins over everything (the record is done); then validation errors (permanent), then
/// failed conditions on the root or the outbox (a version conflict), then transaction
/// conflicts and throttling (transient).
pub fn classify_cancellation(
    roles: &[ActionRole],
    reasons: &[CancellationReason],
) -> CancellationVerdict {
    for (role, reason) in roles.iter().zip(reasons) {
        if *role == ActionRole::Marker && code_of(reason) == "ConditionalCheckFailed" {
            let existing_hash = reason
                .item()
                .and_then(|item| item.get(PAYLOAD_HASH))
                .and_then(|v| v.as_s().ok())
                .cloned();
            return CancellationVerdict::MarkerExists { existing_hash };
        }
    }
    let summary = || {
        reasons
            .iter()
            .enumerate()
            .filter(|(_, r)| code_of(r) != "None")
            .map(|(i, r)| format!("#{i} {}: {}", code_of(r), r.message().unwrap_or("")))
            .collect::<Vec<_>>()
            .join("; ")
    };
    if let Some(reason) = reasons.iter().find(|r| code_of(r) == "ValidationError") {
        return CancellationVerdict::Failed(validation_error(
            "TransactWriteItems",
            reason.message().unwrap_or(""),
        ));
    }
    if reasons
        .iter()
        .any(|r| code_of(r) == "ConditionalCheckFailed")
    {
        return CancellationVerdict::VersionConflict;
    }
    if reasons
        .iter()
        .any(|r| code_of(r) == "ItemCollectionSizeLimitExceeded")
    {
        return CancellationVerdict::Failed(StoreError::Permanent {
            kind: "item_collection_too_large",
            message: format!("TransactWriteItems cancelled: {}", summary()),
        });
    }
    // TransactionConflict, ProvisionedThroughputExceeded, ThrottlingError, unknown codes, or
    // no reasons at all: nothing was written, trying again is safe.
    CancellationVerdict::Failed(StoreError::Transient(format!(
        "TransactWriteItems cancelled: {}",
        summary()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue;

    fn service(code: &'static str, message: &'static str, status: u16) -> ErrorFacts<'static> {
        ErrorFacts {
            failure: FailureKind::Service,
            code: Some(code),
            message: Some(message),
            http_status: Some(status),
        }
    }

    fn reason(code: &str) -> CancellationReason {
        CancellationReason::builder().code(code).build()
    }

    #[test]
    fn throttling_server_errors_and_network_failures_are_transient() {
        for facts in [
            service("ProvisionedThroughputExceededException", "slow down", 400),
            service("ThrottlingException", "slow down", 400),
            service("RequestLimitExceeded", "quota", 400),
            service("InternalServerError", "oops", 500),
            service("TransactionInProgressException", "busy", 400),
            service("ResourceNotFoundException", "no table", 400),
            service("SomethingNew", "?", 503),
            ErrorFacts {
                failure: FailureKind::Timeout,
                code: None,
                message: None,
                http_status: None,
            },
            ErrorFacts {
                failure: FailureKind::Dispatch,
                code: None,
                message: None,
                http_status: None,
            },
            ErrorFacts {
                failure: FailureKind::Response,
                code: None,
                message: None,
                http_status: Some(200),
            },
        ] {
            assert!(classify("Op", &facts).is_retryable(), "{facts:?}");
        }
    }

    #[test]
    fn validation_errors_are_permanent() {
        let too_large = service(
            "ValidationException",
            "Item size has exceeded the maximum allowed size",
            400,
        );
        assert!(matches!(
            classify("PutItem", &too_large),
            StoreError::Permanent {
                kind: "item_too_large",
                ..
            }
        ));
        let invalid = service(
            "ValidationException",
            "One or more parameter values were invalid",
            400,
        );
        assert!(matches!(
            classify("PutItem", &invalid),
            StoreError::Permanent {
                kind: "invalid_request",
                ..
            }
        ));
        let unknown = service("SerializationException", "bad", 400);
        assert!(matches!(
            classify("PutItem", &unknown),
            StoreError::Permanent {
                kind: "invalid_request",
                ..
            }
        ));
        let construction = ErrorFacts {
            failure: FailureKind::Construction,
            code: None,
            message: None,
            http_status: None,
        };
        assert!(!classify("PutItem", &construction).is_retryable());
    }

    #[test]
    fn marker_condition_failure_is_a_duplicate_or_conflict() {
        let roles = [ActionRole::Marker, ActionRole::Root, ActionRole::Outbox];
        let marker_failed = CancellationReason::builder()
            .code("ConditionalCheckFailed")
            .item(PAYLOAD_HASH, AttributeValue::S("h1".into()))
            .build();
        // Even when the root failed too: the record was applied before.
        let verdict = classify_cancellation(
            &roles,
            &[
                marker_failed,
                reason("ConditionalCheckFailed"),
                reason("None"),
            ],
        );
        assert_eq!(
            verdict,
            CancellationVerdict::MarkerExists {
                existing_hash: Some("h1".into())
            }
        );
        let verdict = classify_cancellation(
            &roles,
            &[
                reason("ConditionalCheckFailed"),
                reason("None"),
                reason("None"),
            ],
        );
        assert_eq!(
            verdict,
            CancellationVerdict::MarkerExists {
                existing_hash: None
            }
        );
    }

    #[test]
    fn root_or_outbox_condition_failure_is_a_version_conflict() {
        let roles = [
            ActionRole::Marker,
            ActionRole::Root,
            ActionRole::Record,
            ActionRole::Outbox,
        ];
        let root = [
            reason("None"),
            reason("ConditionalCheckFailed"),
            reason("None"),
            reason("None"),
        ];
        assert_eq!(
            classify_cancellation(&roles, &root),
            CancellationVerdict::VersionConflict
        );
        let outbox = [
            reason("None"),
            reason("None"),
            reason("None"),
            reason("ConditionalCheckFailed"),
        ];
        assert_eq!(
            classify_cancellation(&roles, &outbox),
            CancellationVerdict::VersionConflict
        );
    }

    #[test]
    fn conflicts_and_throttling_are_transient_validation_permanent() {
        let roles = [ActionRole::Marker, ActionRole::Root];
        for code in [
            "TransactionConflict",
            "ProvisionedThroughputExceeded",
            "ThrottlingError",
            "Unheard",
        ] {
            let verdict = classify_cancellation(&roles, &[reason("None"), reason(code)]);
            assert!(
                matches!(
                    verdict,
                    CancellationVerdict::Failed(StoreError::Transient(_))
                ),
                "{code}"
            );
        }
        assert!(matches!(
            classify_cancellation(&roles, &[]),
            CancellationVerdict::Failed(StoreError::Transient(_))
        ));
        let too_large = CancellationReason::builder()
            .code("ValidationError")
            .message("Item size has exceeded the maximum allowed size")
            .build();
        let verdict = classify_cancellation(&roles, &[reason("None"), too_large]);
        assert!(matches!(
            verdict,
            CancellationVerdict::Failed(StoreError::Permanent {
                kind: "item_too_large",
                ..
            })
        ));
        let verdict = classify_cancellation(
            &roles,
            &[reason("None"), reason("ItemCollectionSizeLimitExceeded")],
        );
        assert!(matches!(
            verdict,
            CancellationVerdict::Failed(StoreError::Permanent {
                kind: "item_collection_too_large",
                ..
            })
        ));
    }
}
