//! The JSON shapes of the publish API: what a backend sends, and how
//! messages and acks are printed (the `quiver` CLI prints the same shapes).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use quiver_storage::{Appended, Edit, EditKind, Header, ItemState, StoredMessage};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Longest idempotency key accepted, in bytes (as over QUIC).
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 255;

/// A ULID as its canonical 26-character Crockford base32 text.
pub fn ulid_string(id: u128) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    (0..26)
        .rev()
        .map(|i| ALPHABET[((id >> (i * 5)) & 0x1f) as usize] as char)
        .collect()
}

/// Sets `payload` (UTF-8 text) or, for other bytes, `payload_base64`.
pub fn put_payload(value: &mut Value, payload: &[u8]) {
    match std::str::from_utf8(payload) {
        Ok(text) => value["payload"] = json!(text),
        Err(_) => value["payload_base64"] = json!(BASE64.encode(payload)),
    }
}

/// Headers as one JSON object (a repeated name keeps its last value).
pub fn headers_json<'a>(headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> Value {
    headers
        .into_iter()
        .map(|(n, v)| (n.to_owned(), json!(v)))
        .collect::<Map<_, _>>()
        .into()
}

/// One stored message, as history returns it: `kind` is `item`, `update`
/// or `delete` (edits also carry the `target` offset), and `state` the
/// item's current one: `original`, `updated` or `deleted`.
pub fn message_json(message: &StoredMessage) -> Value {
    let mut value = json!({
        "offset": message.offset,
        "id": ulid_string(message.id.0),
        "sender": &*message.sender,
        "timestamp_ms": message.timestamp_ms,
        "headers": headers_json(message.headers.iter().map(|h| (h.name.as_str(), h.value.as_str()))),
        "kind": kind_name(message.edit),
        "state": state_name(message.state),
    });
    if let Some(edit) = message.edit {
        value["target"] = json!(edit.target);
    }
    put_payload(&mut value, &message.payload);
    value
}

/// The JSON name of a message's kind.
pub fn kind_name(edit: Option<Edit>) -> &'static str {
    match edit.map(|e| e.kind) {
        None => "item",
        Some(EditKind::Update) => "update",
        Some(EditKind::Delete) => "delete",
    }
}

/// The JSON name of an item's state.
pub fn state_name(state: ItemState) -> &'static str {
    match state {
        ItemState::Original => "original",
        ItemState::Updated => "updated",
        ItemState::Deleted => "deleted",
    }
}

/// The answer to one publish.
pub fn ack_json(channel: &str, appended: &Appended) -> Value {
    json!({
        "channel": channel,
        "offset": appended.offset,
        "id": ulid_string(appended.id.0),
        "duplicate": appended.duplicate,
    })
}

/// One message a backend publishes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PublishBody {
    /// The channel; only in batch items (single publishes name it in the path).
    #[serde(default)]
    pub channel: Option<String>,
    /// The payload as UTF-8 text.
    #[serde(default)]
    pub payload: Option<String>,
    /// The payload as standard base64, for binary payloads.
    #[serde(default)]
    pub payload_base64: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// What a valid [`PublishBody`] becomes.
#[derive(Debug)]
pub(super) struct Checked {
    pub payload: Bytes,
    pub headers: Vec<Header>,
    pub idempotency_key: Option<String>,
}

/// Why a [`PublishBody`] is refused; the handler picks the status.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Invalid {
    /// 400: fix the request.
    Request(String),
    /// 413: the payload and headers exceed the tenant's limit.
    TooLarge(String),
}

impl PublishBody {
    /// Checks the payload, headers and key against the tenant's
    /// `max_payload_bytes` (payload plus header names and values, as over
    /// QUIC).
    pub(super) fn check(self, max_payload_bytes: usize) -> Result<Checked, Invalid> {
        let payload =
            match (self.payload, self.payload_base64) {
                (Some(text), None) => Bytes::from(text),
                (None, Some(encoded)) => BASE64
                    .decode(encoded.as_bytes())
                    .map(Bytes::from)
                    .map_err(|e| {
                        Invalid::Request(format!("payload_base64 is not standard base64: {e}"))
                    })?,
                (None, None) => {
                    return Err(Invalid::Request(
                        "set \"payload\" (UTF-8 text) or \"payload_base64\"".into(),
                    ));
                }
                (Some(_), Some(_)) => {
                    return Err(Invalid::Request(
                        "set either \"payload\" or \"payload_base64\", not both".into(),
                    ));
                }
            };
        let size = payload.len()
            + self
                .headers
                .iter()
                .map(|(n, v)| n.len() + v.len())
                .sum::<usize>();
        if size > max_payload_bytes {
            return Err(Invalid::TooLarge(format!(
                "payload and headers are {size} bytes; the tenant's limit is {max_payload_bytes}"
            )));
        }
        let idempotency_key = match self.idempotency_key {
            Some(key) if key.len() > MAX_IDEMPOTENCY_KEY_BYTES => {
                return Err(Invalid::Request(format!(
                    "idempotency_key is {} bytes; the limit is {MAX_IDEMPOTENCY_KEY_BYTES}",
                    key.len()
                )));
            }
            Some(key) if key.is_empty() => None,
            key => key,
        };
        let headers = self
            .headers
            .into_iter()
            .map(|(name, value)| Header { name, value })
            .collect();
        Ok(Checked {
            payload,
            headers,
            idempotency_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> PublishBody {
        serde_json::from_str(json).expect("parses")
    }

    #[test]
    fn ulids_print_as_crockford_base32() {
        assert_eq!(ulid_string(0), "00000000000000000000000000");
        assert_eq!(ulid_string(u128::MAX), "7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
        assert_eq!(ulid_string(0x1f), "0000000000000000000000000Z");
    }

    #[test]
    fn payloads_are_text_or_base64() {
        let checked = body(r#"{"payload": "hi", "headers": {"k": "v"}}"#)
            .check(100)
            .expect("valid");
        assert_eq!(&checked.payload[..], b"hi");
        assert_eq!(checked.headers[0].name, "k");
        let checked = body(r#"{"payload_base64": "AP8="}"#)
            .check(100)
            .expect("valid");
        assert_eq!(&checked.payload[..], [0, 255]);
        let mut value = json!({});
        put_payload(&mut value, &[0, 255]);
        assert_eq!(value["payload_base64"], "AP8=");
    }

    #[test]
    fn bad_bodies_say_why() {
        assert!(matches!(body("{}").check(10), Err(Invalid::Request(_))));
        assert!(matches!(
            body(r#"{"payload": "a", "payload_base64": "YQ=="}"#).check(10),
            Err(Invalid::Request(_))
        ));
        assert!(matches!(
            body(r#"{"payload_base64": "not base64!"}"#).check(10),
            Err(Invalid::Request(_))
        ));
        assert!(matches!(
            body(r#"{"payload": "12345", "headers": {"ab": "cdef"}}"#).check(10),
            Err(Invalid::TooLarge(_))
        ));
        let long = format!(
            r#"{{"payload": "", "idempotency_key": "{}"}}"#,
            "k".repeat(256)
        );
        assert!(matches!(body(&long).check(10), Err(Invalid::Request(_))));
        assert!(serde_json::from_str::<PublishBody>(r#"{"payload": "a", "x": 1}"#).is_err());
    }
}
