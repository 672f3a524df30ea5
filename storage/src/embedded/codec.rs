//! Value encodings of the embedded store. Every value starts with a format
//! version byte, so a later release can change the layout and still read
//! what an older one wrote.
//!
//! Message, format 1 (a plain message: no edit, state `Original`):
//! `[1][id: u128 BE][timestamp_ms: u64 BE][sender: varint len + utf8]`
//! `[header count: varint]([name: varint len + utf8][value: varint len + utf8])*`
//! `[payload: the rest]`
//!
//! Message, format 2 (an edit record, or an item an edit rewrote): format 1
//! with two fields between the headers and the payload:
//! `[flags: u8][edit target: varint, only when the flags name an edit]`,
//! where flags bits 0-1 are the item state (0 original, 1 updated,
//! 2 deleted) and bits 2-3 the edit kind (0 none, 1 update, 2 delete); other
//! bits must be 0. Plain messages keep format 1, so they cost no extra
//! byte, and a release that knows only format 1 still reads them.
//!
//! Lengths are LEB128 varints: names and headers are short, so one byte each
//! is the common case. The payload needs no length because it runs to the end.

use std::sync::Arc;

use bytes::Bytes;

use crate::{
    Appended, Edit, EditKind, Header, ItemState, MessageId, NewMessage, Offset, StoreError,
    StoredMessage,
};

const MESSAGE_V1: u8 = 1;
const MESSAGE_V2: u8 = 2;
const IDEMPOTENCY_V1: u8 = 1;
const IDEMPOTENCY_V1_LEN: usize = 1 + 8 + 16 + 8 + 8;

/// fjall stores values of at most 2^32 bytes.
const MAX_VALUE_BYTES: usize = u32::MAX as usize;

/// The fields of a message value.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MessageParts<'a> {
    pub(crate) id: MessageId,
    pub(crate) timestamp_ms: u64,
    pub(crate) sender: &'a str,
    pub(crate) headers: &'a [Header],
    pub(crate) payload: &'a [u8],
    pub(crate) edit: Option<Edit>,
    pub(crate) state: ItemState,
}

impl<'a> MessageParts<'a> {
    pub(crate) fn of_new(msg: &'a NewMessage) -> Self {
        Self {
            id: msg.id,
            timestamp_ms: msg.timestamp_ms,
            sender: &msg.sender,
            headers: &msg.headers,
            payload: &msg.payload,
            edit: msg.edit,
            state: ItemState::Original,
        }
    }

    pub(crate) fn of_stored(msg: &'a StoredMessage) -> Self {
        Self {
            id: msg.id,
            timestamp_ms: msg.timestamp_ms,
            sender: &msg.sender,
            headers: &msg.headers,
            payload: &msg.payload,
            edit: msg.edit,
            state: msg.state,
        }
    }
}

/// Encodes a new message (format 1, or 2 for an edit record).
pub(crate) fn encode_message(msg: &NewMessage) -> Result<Vec<u8>, StoreError> {
    encode_parts(&MessageParts::of_new(msg))
}

/// Encodes a message value: format 1 when it is plain, else format 2.
pub(crate) fn encode_parts(msg: &MessageParts<'_>) -> Result<Vec<u8>, StoreError> {
    let headers_len: usize = msg
        .headers
        .iter()
        .map(|h| h.name.len() + h.value.len() + 20)
        .sum();
    let capacity = 1 + 16 + 8 + 10 + msg.sender.len() + 10 + headers_len + 11 + msg.payload.len();
    if capacity > MAX_VALUE_BYTES {
        return Err(StoreError::Invalid(format!(
            "message encodes to about {capacity} bytes; the embedded store's limit is 4 GiB"
        )));
    }
    let plain = msg.edit.is_none() && msg.state == ItemState::Original;
    let mut out = Vec::with_capacity(capacity);
    out.push(if plain { MESSAGE_V1 } else { MESSAGE_V2 });
    out.extend_from_slice(&msg.id.0.to_be_bytes());
    out.extend_from_slice(&msg.timestamp_ms.to_be_bytes());
    put_bytes(&mut out, msg.sender.as_bytes());
    put_varint(&mut out, msg.headers.len() as u64);
    for header in msg.headers {
        put_bytes(&mut out, header.name.as_bytes());
        put_bytes(&mut out, header.value.as_bytes());
    }
    if !plain {
        let state = match msg.state {
            ItemState::Original => 0,
            ItemState::Updated => 1,
            ItemState::Deleted => 2,
        };
        let kind = match msg.edit.map(|e| e.kind) {
            None => 0,
            Some(EditKind::Update) => 1,
            Some(EditKind::Delete) => 2,
        };
        out.push(state | (kind << 2));
        if let Some(edit) = msg.edit {
            put_varint(&mut out, edit.target);
        }
    }
    out.extend_from_slice(msg.payload);
    Ok(out)
}

/// Decodes a stored message value; `offset` comes from its key.
pub(crate) fn decode_message(offset: Offset, value: &[u8]) -> Result<StoredMessage, StoreError> {
    let mut r = Reader::new(value, "message");
    let version = r.u8()?;
    if version != MESSAGE_V1 && version != MESSAGE_V2 {
        return Err(r.corrupt(&format!("unknown format version {version}")));
    }
    let id = MessageId(u128::from_be_bytes(r.array()?));
    let timestamp_ms = u64::from_be_bytes(r.array()?);
    let sender: Arc<str> = r.string()?.into();
    let count = r.varint()?;
    let mut headers = Vec::with_capacity(usize::try_from(count).unwrap_or(0).min(64));
    for _ in 0..count {
        let name = r.string()?;
        let value = r.string()?;
        headers.push(Header { name, value });
    }
    let (mut edit, mut state) = (None, ItemState::Original);
    if version == MESSAGE_V2 {
        let flags = r.u8()?;
        state = match flags & 0b11 {
            0 => ItemState::Original,
            1 => ItemState::Updated,
            2 => ItemState::Deleted,
            _ => return Err(r.corrupt(&format!("unknown item state in flags {flags:#x}"))),
        };
        let kind = match (flags >> 2) & 0b11 {
            0 => None,
            1 => Some(EditKind::Update),
            2 => Some(EditKind::Delete),
            _ => return Err(r.corrupt(&format!("unknown edit kind in flags {flags:#x}"))),
        };
        if flags >> 4 != 0 {
            return Err(r.corrupt(&format!("unknown flags {flags:#x}")));
        }
        if let Some(kind) = kind {
            edit = Some(Edit {
                target: r.varint()?,
                kind,
            });
        }
    }
    let payload = Bytes::copy_from_slice(r.rest());
    Ok(StoredMessage {
        offset,
        id,
        timestamp_ms,
        sender,
        payload,
        headers,
        edit,
        state,
    })
}

/// What an idempotency key resolved to, and when it was recorded (the
/// store's wall clock, which decides expiry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IdempotencyRecord {
    pub(crate) offset: Offset,
    pub(crate) id: MessageId,
    pub(crate) timestamp_ms: u64,
    pub(crate) recorded_ms: u64,
}

impl IdempotencyRecord {
    /// Whether the record is older than the window: such a key is treated
    /// as never seen. A clock that went backwards reads as "fresh".
    pub(crate) fn is_expired(&self, now_ms: u64, window_ms: u64) -> bool {
        now_ms.saturating_sub(self.recorded_ms) > window_ms
    }

    /// The outcome a retry of this record's message reports.
    pub(crate) fn as_duplicate(&self) -> Appended {
        Appended {
            offset: self.offset,
            id: self.id,
            timestamp_ms: self.timestamp_ms,
            duplicate: true,
        }
    }

    pub(crate) fn encode(&self) -> [u8; IDEMPOTENCY_V1_LEN] {
        let mut out = [0u8; IDEMPOTENCY_V1_LEN];
        out[0] = IDEMPOTENCY_V1;
        out[1..9].copy_from_slice(&self.offset.to_be_bytes());
        out[9..25].copy_from_slice(&self.id.0.to_be_bytes());
        out[25..33].copy_from_slice(&self.timestamp_ms.to_be_bytes());
        out[33..41].copy_from_slice(&self.recorded_ms.to_be_bytes());
        out
    }

    pub(crate) fn decode(value: &[u8]) -> Result<Self, StoreError> {
        let mut r = Reader::new(value, "idempotency record");
        let version = r.u8()?;
        if version != IDEMPOTENCY_V1 || value.len() != IDEMPOTENCY_V1_LEN {
            return Err(r.corrupt(&format!("version {version}, {} bytes", value.len())));
        }
        Ok(Self {
            offset: u64::from_be_bytes(r.array()?),
            id: MessageId(u128::from_be_bytes(r.array()?)),
            timestamp_ms: u64::from_be_bytes(r.array()?),
            recorded_ms: u64::from_be_bytes(r.array()?),
        })
    }
}

/// Channel heads are a bare big-endian u64: fixed size, nothing to version.
pub(crate) fn decode_head(value: &[u8]) -> Result<Offset, StoreError> {
    <[u8; 8]>::try_from(value)
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt {
            what: format!("channel head of {} bytes instead of 8", value.len()),
        })
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A bounds-checked cursor: every read past the end becomes `Corrupt`.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, pos: 0, what }
    }

    pub(crate) fn corrupt(&self, why: &str) -> StoreError {
        StoreError::Corrupt {
            what: format!("{} value: {why} at byte {}", self.what, self.pos),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        let end = self.pos.checked_add(n).filter(|&end| end <= self.buf.len());
        let Some(slice) = end.and_then(|end| self.buf.get(self.pos..end)) else {
            return Err(self.corrupt(&format!("truncated, {n} more bytes expected")));
        };
        self.pos += n;
        Ok(slice)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        let slice = self.take(N)?;
        <[u8; N]>::try_from(slice).map_err(|_| self.corrupt("short field"))
    }

    pub(crate) fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn varint(&mut self) -> Result<u64, StoreError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.corrupt("varint longer than 10 bytes"))
    }

    pub(crate) fn string(&mut self) -> Result<String, StoreError> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| self.corrupt("length overflows usize"))?;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| self.corrupt("text is not UTF-8"))
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        self.pos = self.buf.len();
        rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ChannelKey;

    fn sample() -> NewMessage {
        NewMessage {
            channel: ChannelKey::new("t", "c"),
            id: MessageId(u128::MAX - 7),
            timestamp_ms: 1_700_000_000_123,
            sender: "user-é".into(),
            payload: Bytes::from(vec![7u8; 300]),
            headers: vec![
                Header {
                    name: "a".into(),
                    value: String::new(),
                },
                Header {
                    name: "long".into(),
                    value: "v".repeat(200),
                },
            ],
            idempotency_key: None,
            edit: None,
        }
    }

    #[test]
    fn message_round_trips() {
        let msg = sample();
        let got = decode_message(9, &encode_message(&msg).unwrap()).unwrap();
        assert_eq!(
            (got.offset, got.id, got.timestamp_ms),
            (9, msg.id, msg.timestamp_ms)
        );
        assert_eq!(
            (got.sender, got.headers, got.payload),
            (msg.sender, msg.headers, msg.payload)
        );
    }

    #[test]
    fn plain_messages_keep_format_1_and_edits_round_trip() {
        assert_eq!(encode_message(&sample()).unwrap()[0], MESSAGE_V1);
        let edit = NewMessage {
            edit: Some(Edit {
                target: 300,
                kind: EditKind::Delete,
            }),
            ..sample()
        };
        let value = encode_message(&edit).unwrap();
        assert_eq!(value[0], MESSAGE_V2);
        let got = decode_message(9, &value).unwrap();
        assert_eq!((got.edit, got.state), (edit.edit, ItemState::Original));
        assert_eq!((got.payload, got.headers), (edit.payload, edit.headers));
        let rewritten = StoredMessage {
            state: ItemState::Updated,
            ..decode_message(3, &encode_message(&sample()).unwrap()).unwrap()
        };
        let value = encode_parts(&MessageParts::of_stored(&rewritten)).unwrap();
        assert_eq!(decode_message(3, &value).unwrap(), rewritten);
        let mut bad = value.clone();
        let flags_at = value.len() - 300 - 1;
        for flags in [0b11, 0b1100, 0b1_0000] {
            bad[flags_at] = flags;
            assert!(matches!(
                decode_message(3, &bad),
                Err(StoreError::Corrupt { .. })
            ));
        }
    }

    #[test]
    fn every_truncation_is_corrupt_not_a_panic() {
        let full = encode_message(&sample()).unwrap();
        // Cutting inside the header section must fail; cutting inside the
        // payload is indistinguishable from a shorter payload by design.
        let payload_start = full.len() - 300;
        for cut in 0..payload_start {
            let err = decode_message(1, &full[..cut]).unwrap_err();
            assert!(
                matches!(err, StoreError::Corrupt { .. }),
                "cut {cut}: {err}"
            );
        }
        let mut bad = full.clone();
        bad[0] = 99;
        assert!(matches!(
            decode_message(1, &bad),
            Err(StoreError::Corrupt { .. })
        ));
        // A sender length far past the end of the value.
        let mut huge_len = full[..25].to_vec();
        huge_len.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(matches!(
            decode_message(1, &huge_len),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn idempotency_record_round_trips() {
        let rec = IdempotencyRecord {
            offset: 5,
            id: MessageId(77),
            timestamp_ms: 3,
            recorded_ms: 4,
        };
        assert_eq!(IdempotencyRecord::decode(&rec.encode()).unwrap(), rec);
        assert!(IdempotencyRecord::decode(&rec.encode()[..40]).is_err());
        assert!(decode_head(&[0; 7]).is_err());
        assert_eq!(decode_head(&9u64.to_be_bytes()).unwrap(), 9);
    }
}
