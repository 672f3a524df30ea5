//! Key layout of the embedded store.
//!
//! Every key starts with the channel prefix
//! `[tenant len: u8][tenant][channel len: u8][channel]`. Length prefixes make
//! the encoding unambiguous (tenant `a` + channel `bc` never collides with
//! tenant `ab` + channel `c`), and since the tenant is always first, no range
//! scan of one tenant's channel can reach into another tenant's keys.
//!
//! - messages:    prefix + offset as big-endian u64 (so byte order = offset order)
//! - heads:       prefix
//! - idempotency: prefix + the publisher's key bytes (the rest of the key)

use crate::{
    ChannelKey, Offset, ReadRange, StoreError, validate_channel, validate_idempotency_key,
};

/// Longest tenant or channel name, in bytes: the length must fit the one-byte
/// prefix.
pub const MAX_NAME_BYTES: usize = 255;

/// Longest idempotency key, in bytes. Keys are opaque tokens chosen by
/// publishers (typically a UUID or ULID), so this is generous.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 255;

/// The channel prefix shared by all three keyspaces. It is also the heads key.
pub(crate) fn channel_prefix(key: &ChannelKey) -> Result<Vec<u8>, StoreError> {
    validate_channel(key)?;
    let (tenant, channel) = (key.tenant.as_bytes(), key.channel.as_bytes());
    let mut out = Vec::with_capacity(2 + tenant.len() + channel.len() + 8);
    push_name(&mut out, tenant);
    push_name(&mut out, channel);
    Ok(out)
}

fn push_name(out: &mut Vec<u8>, name: &[u8]) {
    // validate_channel bounds the length to 255, so this cannot truncate.
    out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(name);
}

/// The key of the message at `offset` in the channel with `prefix`.
pub(crate) fn message_key(prefix: &[u8], offset: Offset) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + 8);
    key.extend_from_slice(prefix);
    key.extend_from_slice(&offset.to_be_bytes());
    key
}

/// Reads the offset back out of a message key found by a scan of `prefix`.
pub(crate) fn offset_of(prefix: &[u8], key: &[u8]) -> Result<Offset, StoreError> {
    key.strip_prefix(prefix)
        .and_then(|rest| <[u8; 8]>::try_from(rest).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| StoreError::Corrupt {
            what: format!(
                "message key of {} bytes outside its channel's layout",
                key.len()
            ),
        })
}

/// The idempotency record key of `idem` in the channel with `prefix`.
pub(crate) fn idempotency_key(prefix: &[u8], idem: &str) -> Result<Vec<u8>, StoreError> {
    validate_idempotency_key(idem)?;
    let mut key = Vec::with_capacity(prefix.len() + idem.len());
    key.extend_from_slice(prefix);
    key.extend_from_slice(idem.as_bytes());
    Ok(key)
}

/// Inclusive first and last message keys a read of `range` may touch, or
/// `None` when the range holds no possible offset (offsets start at 1).
pub(crate) fn read_bounds(prefix: &[u8], range: &ReadRange) -> Option<(Vec<u8>, Vec<u8>)> {
    let first = match range.after {
        Some(after) => after.checked_add(1)?,
        None => 1,
    }
    .max(1);
    let last = match range.before {
        Some(before) => before.checked_sub(1)?,
        None => u64::MAX,
    };
    if range.limit == 0 || first > last {
        return None;
    }
    Some((message_key(prefix, first), message_key(prefix, last)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Direction;

    fn range(after: Option<u64>, before: Option<u64>) -> ReadRange {
        ReadRange {
            after,
            before,
            limit: 10,
            direction: Direction::Forward,
        }
    }

    #[test]
    fn prefixes_are_unambiguous() {
        let a = channel_prefix(&ChannelKey::new("a", "bc")).unwrap();
        let b = channel_prefix(&ChannelKey::new("ab", "c")).unwrap();
        assert_ne!(a, b);
        assert!(!b.starts_with(&a) && !a.starts_with(&b));
    }

    #[test]
    fn names_are_validated() {
        assert!(channel_prefix(&ChannelKey::new("", "c")).is_err());
        assert!(channel_prefix(&ChannelKey::new("t", "")).is_err());
        assert!(channel_prefix(&ChannelKey::new("t", "x".repeat(256))).is_err());
        assert!(channel_prefix(&ChannelKey::new("x".repeat(255), "x".repeat(255))).is_ok());
    }

    #[test]
    fn offsets_round_trip_and_sort() {
        let p = channel_prefix(&ChannelKey::new("t", "c")).unwrap();
        assert!(message_key(&p, 255) < message_key(&p, 256));
        assert_eq!(offset_of(&p, &message_key(&p, 42)).unwrap(), 42);
        assert!(offset_of(&p, &p).is_err());
    }

    #[test]
    fn bounds_cover_edge_cases() {
        let p = b"p".to_vec();
        assert!(read_bounds(&p, &range(Some(u64::MAX), None)).is_none());
        assert!(read_bounds(&p, &range(None, Some(0))).is_none());
        assert!(read_bounds(&p, &range(None, Some(1))).is_none());
        assert!(read_bounds(&p, &range(Some(3), Some(4))).is_none());
        let (lo, hi) = read_bounds(&p, &range(Some(3), Some(5))).unwrap();
        assert_eq!((lo, hi), (message_key(&p, 4), message_key(&p, 4)));
    }
}
