//! Query parameters of `GET /internal/v1/batches/user/{user_id}`: `limit` (default 20),
//! `offset` (default 0), `status` (an internal `BatchStatus` value). Unlike the reference,
//! which silently used the defaults for non-integers and answered 500 for negative values or an
//! unknown status, anything invalid is a 400 (SPEC §3.10), and `limit` is at most 100.

use crate::errors::ApiError;
use ras_domain::contracts::BatchStatus;

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListQuery {
    pub limit: u32,
    pub offset: u32,
    pub status: Option<BatchStatus>,
}

/// Parse the raw query string. The first occurrence of a parameter counts (as Quart's
/// `request.args.get`); unknown parameters are ignored.
pub fn parse_list_query(raw: Option<&str>) -> Result<ListQuery, ApiError> {
    let (mut limit, mut offset, mut status) = (None, None, None);
    for (key, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        let slot = match key.as_ref() {
            "limit" => &mut limit,
            "offset" => &mut offset,
            "status" => &mut status,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(value.into_owned());
        }
    }
    let limit = match limit {
        None => DEFAULT_LIMIT,
        Some(text) => parse_integer(&text)
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or(ApiError::InvalidLimit)?,
    };
    let offset = match offset {
        None => 0,
        Some(text) => parse_integer(&text).ok_or(ApiError::InvalidOffset)?,
    };
    let status = match status {
        None => None,
        Some(text) => Some(BatchStatus::parse(text.trim()).ok_or(ApiError::InvalidStatus)?),
    };
    Ok(ListQuery {
        limit,
        offset,
        status,
    })
}

/// A non-negative decimal integer (surrounding blanks and a `+` sign allowed, like Python's
/// `int()`).
fn parse_integer(text: &str) -> Option<u32> {
    let digits = text.trim();
    let digits = digits.strip_prefix('+').unwrap_or(digits);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Result<ListQuery, String> {
        parse_list_query(Some(q)).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_values() {
        let q = parse_list_query(None).unwrap();
        assert_eq!(
            q,
            ListQuery {
                limit: 20,
                offset: 0,
                status: None
            }
        );
        assert_eq!(
            parse("limit=5&offset=10").unwrap(),
            ListQuery {
                limit: 5,
                offset: 10,
                status: None
            }
        );
        assert_eq!(
            parse("limit=100&offset=0&status=completed_successfully")
                .unwrap()
                .status,
            Some(BatchStatus::CompletedSuccessfully)
        );
        assert_eq!(parse("limit=+7&other=x").unwrap().limit, 7);
        assert_eq!(parse("limit=3&limit=50").unwrap().limit, 3);
        assert_eq!(
            parse("status=processing_pipelines").unwrap().status,
            Some(BatchStatus::ProcessingPipelines)
        );
    }

    #[test]
    fn invalid_values_are_400() {
        for q in [
            "limit=0",
            "limit=101",
            "limit=-1",
            "limit=abc",
            "limit=",
            "limit=1.5",
            "limit=99999999999",
        ] {
            assert_eq!(parse(q), Err("Invalid limit".into()), "{q}");
        }
        for q in [
            "offset=-1",
            "offset=x",
            "offset=",
            "offset=1e3",
            "offset=4294967296",
        ] {
            assert_eq!(parse(q), Err("Invalid offset".into()), "{q}");
        }
        // Client statuses are not internal values.
        for q in [
            "status=processing",
            "status=pending_content",
            "status=",
            "status=COMPLETED_SUCCESSFULLY",
        ] {
            assert_eq!(parse(q), Err("Invalid status".into()), "{q}");
        }
    }
}
