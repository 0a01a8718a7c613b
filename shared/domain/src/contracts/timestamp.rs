//! Datetimes as HuleEdu puts them on the wire.
//!
//! Parsing is lenient like pydantic's lax mode: RFC 3339 with `Z` or an offset, naive ISO-8601
//! (taken as UTC), or a unix timestamp number (seconds, or milliseconds when larger than 2e10).
//! Serialising follows pydantic v2's JSON mode for aware UTC values: `Z` suffix, six fractional
//! digits when the microseconds are non-zero and none otherwise. The API uses the naive form.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, TimeZone, Timelike, Utc};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A UTC instant with microsecond precision (Python's `datetime` resolution).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    pub fn from_datetime(dt: DateTime<Utc>) -> Self {
        // Truncate to microseconds so a parse → serialise round trip is exact.
        let micros = dt.nanosecond() / 1_000 * 1_000;
        Timestamp(dt.with_nanosecond(micros).unwrap_or(dt))
    }

    pub fn now() -> Self {
        Self::from_datetime(Utc::now())
    }

    pub fn from_unix_micros(micros: i64) -> Option<Self> {
        Utc.timestamp_micros(micros).single().map(Timestamp)
    }

    pub fn from_unix_millis(millis: i64) -> Option<Self> {
        Utc.timestamp_millis_opt(millis).single().map(Timestamp)
    }

    pub fn as_datetime(&self) -> DateTime<Utc> {
        self.0
    }

    pub fn unix_micros(&self) -> i64 {
        self.0.timestamp_micros()
    }

    /// Seconds from `earlier` to `self` (negative when `earlier` is later).
    pub fn seconds_since(&self, earlier: &Timestamp) -> f64 {
        (self.0 - earlier.0).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6
    }

    /// Wire form of an aware UTC datetime: `2025-11-27T10:20:30Z` / `2025-11-27T10:20:30.123456Z`.
    pub fn to_wire(&self) -> String {
        if self.0.nanosecond() == 0 {
            self.0.to_rfc3339_opts(SecondsFormat::Secs, true)
        } else {
            self.0.to_rfc3339_opts(SecondsFormat::Micros, true)
        }
    }

    /// Naive form used by the reference HTTP API: no offset, microseconds only when non-zero.
    pub fn to_naive(&self) -> String {
        let naive = self.0.naive_utc();
        if naive.nanosecond() == 0 {
            naive.format("%Y-%m-%dT%H:%M:%S").to_string()
        } else {
            naive.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
        }
    }

    /// Parses every textual form HuleEdu producers emit; `None` when it is not a datetime.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
            return Some(Self::from_datetime(dt.with_timezone(&Utc)));
        }
        // Python isoformat allows a space separator and an offset without the colon.
        for fmt in [
            "%Y-%m-%dT%H:%M:%S%.f%z",
            "%Y-%m-%d %H:%M:%S%.f%z",
            "%Y-%m-%d %H:%M:%S%.f%:z",
        ] {
            if let Ok(dt) = DateTime::parse_from_str(text, fmt) {
                return Some(Self::from_datetime(dt.with_timezone(&Utc)));
            }
        }
        for fmt in [
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%dT%H:%M",
        ] {
            if let Ok(naive) = NaiveDateTime::parse_from_str(text, fmt) {
                return Some(Self::from_datetime(Utc.from_utc_datetime(&naive)));
            }
        }
        if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            return date
                .and_hms_opt(0, 0, 0)
                .map(|n| Self::from_datetime(Utc.from_utc_datetime(&n)));
        }
        text.parse::<f64>().ok().and_then(Self::from_unix_number)
    }

    /// pydantic: numbers above 2e10 are milliseconds, otherwise seconds.
    pub fn from_unix_number(value: f64) -> Option<Self> {
        if !value.is_finite() {
            return None;
        }
        let micros = if value.abs() > 2e10 {
            value * 1_000.0
        } else {
            value * 1_000_000.0
        };
        if micros.abs() > 9.0e15 {
            return None;
        }
        Self::from_unix_micros(micros.round() as i64)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_wire())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_wire())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TimestampVisitor;
        impl Visitor<'_> for TimestampVisitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an ISO-8601 datetime or a unix timestamp")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Timestamp::parse(v).ok_or_else(|| E::custom(format!("invalid datetime `{v}`")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
                self.visit_f64(v as f64)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
                self.visit_f64(v as f64)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Timestamp, E> {
                Timestamp::from_unix_number(v)
                    .ok_or_else(|| E::custom(format!("invalid unix timestamp {v}")))
            }
        }
        deserializer.deserialize_any(TimestampVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_accepted_form_to_the_same_instant() {
        let expected = Timestamp::parse("2025-11-27T10:20:30Z").unwrap();
        for text in [
            "2025-11-27T10:20:30Z",
            "2025-11-27T10:20:30+00:00",
            "2025-11-27T12:20:30+02:00",
            "2025-11-27T10:20:30",
            "2025-11-27 10:20:30",
            "2025-11-27T10:20:30.000000Z",
            "1764238830",
        ] {
            assert_eq!(Timestamp::parse(text), Some(expected), "{text}");
        }
        let from_number: Timestamp = serde_json::from_str("1764238830").unwrap();
        assert_eq!(from_number, expected);
        let from_millis: Timestamp = serde_json::from_str("1764238830000").unwrap();
        assert_eq!(from_millis, expected);
    }

    #[test]
    fn serialises_like_pydantic() {
        assert_eq!(
            Timestamp::parse("2025-11-27T10:20:30Z").unwrap().to_wire(),
            "2025-11-27T10:20:30Z"
        );
        assert_eq!(
            Timestamp::parse("2025-11-27T10:59:59.999Z")
                .unwrap()
                .to_wire(),
            "2025-11-27T10:59:59.999000Z"
        );
        assert_eq!(
            Timestamp::parse("2025-11-27T10:59:59.1234567Z")
                .unwrap()
                .to_wire(),
            "2025-11-27T10:59:59.123456Z"
        );
        assert_eq!(
            Timestamp::parse("2025-11-27T10:00:00Z").unwrap().to_naive(),
            "2025-11-27T10:00:00"
        );
        assert_eq!(
            Timestamp::parse("2025-11-27T10:00:00.5Z")
                .unwrap()
                .to_naive(),
            "2025-11-27T10:00:00.500000"
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(Timestamp::parse("yesterday").is_none());
        assert!(serde_json::from_str::<Timestamp>("\"2025-13-45T99:00:00Z\"").is_err());
        assert!(serde_json::from_str::<Timestamp>("true").is_err());
    }
}
