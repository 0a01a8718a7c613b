//! Committed offsets of a Kafka consumer group: the three requests the MSK event-source
//! emulator needs and `rskafka` 0.6 does not have (it has no consumer groups), written
//! directly on the Kafka protocol over TCP (no TLS, no SASL: the local broker).
//!
//! | request | API key | version | why this version |
//! |---|---|---|---|
//! | `FindCoordinator` | 10 | 1 | the lowest Kafka 4 still accepts (KIP-896); `key_type` 0 = group |
//! | `OffsetCommit` | 8 | 2 | idem; `generation_id` -1 and an empty `member_id`: a "simple" commit |
//! | `OffsetFetch` | 9 | 1 | idem; offsets of named partitions |
//!
//! All three are non-flexible versions: request header v1 (`api_key`, `api_version`,
//! `correlation_id`, `client_id`), response header v0 (`correlation_id`). tansu 0.6.0 offers
//! versions 0–9 / 0–9 / 0–6 of them (`ApiVersions`).
//!
//! **A simple consumer group.** The emulator commits with generation -1 and no member id, as a
//! consumer that assigns partitions to itself does (Java's `assign()` + `commitSync()`): Kafka
//! accepts such commits while the group has no active members (state `Empty`) and answers
//! `UNKNOWN_MEMBER_ID` / `ILLEGAL_GENERATION` once a member has joined. AWS's MSK event source
//! is a real group member (JoinGroup / SyncGroup / Heartbeat; its pollers split the
//! partitions, a rebalance re-reads from the committed offsets); the emulator is one poller
//! that owns every partition, so the offsets it commits and resumes from are the same, and
//! what it does not model is a rebalance between several pollers (the kit's
//! `EventSource::rewind` models its effect). Do not point a second consumer at the same group
//! while the emulator runs.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const FIND_COORDINATOR: i16 = 10;
const OFFSET_COMMIT: i16 = 8;
const OFFSET_FETCH: i16 = 9;
const CLIENT_ID: &str = "ras-local-msk-emulator";
/// Largest response accepted (a guard against reading garbage as a length).
const MAX_RESPONSE: usize = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("{request} to {addr}: {source}")]
    Io {
        request: &'static str,
        addr: String,
        source: std::io::Error,
    },
    #[error("{request} to {addr}: no answer within {timeout:?}")]
    Timeout {
        request: &'static str,
        addr: String,
        timeout: Duration,
    },
    #[error("{request}: malformed response: {message}")]
    Malformed {
        request: &'static str,
        message: String,
    },
    #[error("{request}: Kafka error code {code}{}", detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Kafka {
        request: &'static str,
        code: i16,
        detail: Option<String>,
    },
}

/// A consumer group's committed offsets on one broker (its coordinator).
#[derive(Debug)]
pub struct GroupClient {
    group_id: String,
    coordinator: String,
    timeout: Duration,
    correlation: i32,
}

impl GroupClient {
    /// Find the group's coordinator through `bootstrap` (`host:port`).
    pub async fn connect(
        bootstrap: &str,
        group_id: &str,
        timeout: Duration,
    ) -> Result<Self, GroupError> {
        let mut client = GroupClient {
            group_id: group_id.to_string(),
            coordinator: bootstrap.to_string(),
            timeout,
            correlation: 0,
        };
        let mut body = Vec::new();
        put_string(&mut body, group_id);
        body.push(0); // key_type: group
        let response = client
            .request("FindCoordinator", FIND_COORDINATOR, 1, &body)
            .await?;
        let mut r = Reader::new("FindCoordinator", &response);
        let _throttle = r.i32()?;
        let code = r.i16()?;
        let message = r.nullable_string()?;
        let _node = r.i32()?;
        let host = r.string()?;
        let port = r.i32()?;
        if code != 0 {
            return Err(GroupError::Kafka {
                request: "FindCoordinator",
                code,
                detail: message,
            });
        }
        client.coordinator = format!("{host}:{port}");
        Ok(client)
    }

    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    pub fn coordinator(&self) -> &str {
        &self.coordinator
    }

    /// The committed offset of each `(topic, partition)` (`None`: nothing committed).
    pub async fn fetch(
        &mut self,
        partitions: &[(String, i32)],
    ) -> Result<Vec<((String, i32), Option<i64>)>, GroupError> {
        let topics = by_topic(partitions);
        let mut body = Vec::new();
        put_string(&mut body, &self.group_id);
        put_i32(&mut body, topics.len() as i32);
        for (topic, indexes) in &topics {
            put_string(&mut body, topic);
            put_i32(&mut body, indexes.len() as i32);
            for (index, _) in indexes {
                put_i32(&mut body, *index);
            }
        }
        let response = self.request("OffsetFetch", OFFSET_FETCH, 1, &body).await?;
        let mut r = Reader::new("OffsetFetch", &response);
        let mut out = Vec::new();
        for _ in 0..r.len()? {
            let topic = r.string()?;
            for _ in 0..r.len()? {
                let index = r.i32()?;
                let offset = r.i64()?;
                let _metadata = r.nullable_string()?;
                let code = r.i16()?;
                if code != 0 {
                    return Err(GroupError::Kafka {
                        request: "OffsetFetch",
                        code,
                        detail: Some(format!("{topic}-{index}")),
                    });
                }
                out.push(((topic.clone(), index), (offset >= 0).then_some(offset)));
            }
        }
        Ok(out)
    }

    /// Commit `offset` (the next record to read) for each `(topic, partition)`.
    pub async fn commit(&mut self, offsets: &[((String, i32), i64)]) -> Result<(), GroupError> {
        let partitions: Vec<(String, i32)> = offsets.iter().map(|(p, _)| p.clone()).collect();
        let topics = by_topic(&partitions);
        let mut body = Vec::new();
        put_string(&mut body, &self.group_id);
        put_i32(&mut body, -1); // generation_id: not a member
        put_string(&mut body, ""); // member_id
        put_i64(&mut body, -1); // retention_time_ms: the broker's
        put_i32(&mut body, topics.len() as i32);
        for (topic, indexes) in &topics {
            put_string(&mut body, topic);
            put_i32(&mut body, indexes.len() as i32);
            for (index, i) in indexes {
                put_i32(&mut body, *index);
                put_i64(&mut body, offsets[*i].1);
                put_i16(&mut body, -1); // committed_metadata: null
            }
        }
        let response = self
            .request("OffsetCommit", OFFSET_COMMIT, 2, &body)
            .await?;
        let mut r = Reader::new("OffsetCommit", &response);
        for _ in 0..r.len()? {
            let topic = r.string()?;
            for _ in 0..r.len()? {
                let index = r.i32()?;
                let code = r.i16()?;
                if code != 0 {
                    return Err(GroupError::Kafka {
                        request: "OffsetCommit",
                        code,
                        detail: Some(format!("{topic}-{index}")),
                    });
                }
            }
        }
        Ok(())
    }

    /// One request on a connection of its own; returns the response body.
    async fn request(
        &mut self,
        name: &'static str,
        api_key: i16,
        version: i16,
        body: &[u8],
    ) -> Result<Vec<u8>, GroupError> {
        self.correlation = self.correlation.wrapping_add(1);
        let correlation = self.correlation;
        let addr = self.coordinator.clone();
        let exchange = async {
            let mut stream =
                TcpStream::connect(&addr)
                    .await
                    .map_err(|source| GroupError::Connect {
                        addr: addr.clone(),
                        source,
                    })?;
            let io = |source| GroupError::Io {
                request: name,
                addr: addr.clone(),
                source,
            };
            let mut frame = Vec::with_capacity(body.len() + 32);
            put_i16(&mut frame, api_key);
            put_i16(&mut frame, version);
            put_i32(&mut frame, correlation);
            put_string(&mut frame, CLIENT_ID);
            frame.extend_from_slice(body);
            let mut message = Vec::with_capacity(frame.len() + 4);
            put_i32(&mut message, frame.len() as i32);
            message.extend_from_slice(&frame);
            stream.write_all(&message).await.map_err(io)?;
            let size = stream.read_i32().await.map_err(io)?;
            let size = usize::try_from(size)
                .ok()
                .filter(|s| (4..=MAX_RESPONSE).contains(s))
                .ok_or_else(|| GroupError::Malformed {
                    request: name,
                    message: format!("response size {size}"),
                })?;
            let mut response = vec![0; size];
            stream.read_exact(&mut response).await.map_err(io)?;
            let got = i32::from_be_bytes([response[0], response[1], response[2], response[3]]);
            if got != correlation {
                return Err(GroupError::Malformed {
                    request: name,
                    message: format!("correlation id {got}, expected {correlation}"),
                });
            }
            response.drain(..4);
            Ok(response)
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| GroupError::Timeout {
                request: name,
                addr: self.coordinator.clone(),
                timeout: self.timeout,
            })?
    }
}

/// Partitions grouped by topic (first-appearance order), with each one's index in the input.
fn by_topic(partitions: &[(String, i32)]) -> Vec<(String, Vec<(i32, usize)>)> {
    let mut topics: Vec<(String, Vec<(i32, usize)>)> = Vec::new();
    for (i, (topic, index)) in partitions.iter().enumerate() {
        match topics.iter_mut().find(|(t, _)| t == topic) {
            Some((_, list)) => list.push((*index, i)),
            None => topics.push((topic.clone(), vec![(*index, i)])),
        }
    }
    topics
}

fn put_i16(buf: &mut Vec<u8>, v: i16) {
    buf.extend_from_slice(&v.to_be_bytes());
}

fn put_i32(buf: &mut Vec<u8>, v: i32) {
    buf.extend_from_slice(&v.to_be_bytes());
}

fn put_i64(buf: &mut Vec<u8>, v: i64) {
    buf.extend_from_slice(&v.to_be_bytes());
}

fn put_string(buf: &mut Vec<u8>, s: &str) {
    put_i16(buf, s.len() as i16);
    buf.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    request: &'static str,
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(request: &'static str, data: &'a [u8]) -> Self {
        Reader {
            request,
            data,
            at: 0,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], GroupError> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.data.len());
        let Some(end) = end else {
            return Err(GroupError::Malformed {
                request: self.request,
                message: format!("{n} bytes at {} of {}", self.at, self.data.len()),
            });
        };
        let slice = &self.data[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn i16(&mut self) -> Result<i16, GroupError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Result<i32, GroupError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i64(&mut self) -> Result<i64, GroupError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    /// An array length (a null array, -1, reads as empty).
    fn len(&mut self) -> Result<usize, GroupError> {
        Ok(usize::try_from(self.i32()?).unwrap_or(0))
    }

    fn nullable_string(&mut self) -> Result<Option<String>, GroupError> {
        let n = self.i16()?;
        if n < 0 {
            return Ok(None);
        }
        let bytes = self.take(n as usize)?;
        String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|e| GroupError::Malformed {
                request: self.request,
                message: e.to_string(),
            })
    }

    fn string(&mut self) -> Result<String, GroupError> {
        self.nullable_string()?.ok_or(GroupError::Malformed {
            request: self.request,
            message: "null string".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_grouped_by_topic_keeping_their_index() {
        let p = vec![
            ("a".to_string(), 1),
            ("b".to_string(), 0),
            ("a".to_string(), 0),
        ];
        assert_eq!(
            by_topic(&p),
            vec![
                ("a".to_string(), vec![(1, 0), (0, 2)]),
                ("b".to_string(), vec![(0, 1)]),
            ]
        );
    }

    #[test]
    fn reader_rejects_truncated_data() {
        let data = [0u8, 3, b'a', b'b'];
        let mut r = Reader::new("t", &data);
        assert!(matches!(r.string(), Err(GroupError::Malformed { .. })));
        let data = [0xffu8, 0xff];
        let mut r = Reader::new("t", &data);
        assert_eq!(r.nullable_string().unwrap(), None);
    }
}
