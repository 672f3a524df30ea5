//! Message ids (ULIDs) between their wire form and `u128`.

use crate::fb;

/// The ULID as one `u128`: `hi` is the top 64 bits. Because a ULID's first
/// 48 bits are its timestamp, the `u128` sorts by creation time.
pub fn message_id_to_u128(id: &fb::MessageId) -> u128 {
    (u128::from(id.hi()) << 64) | u128::from(id.lo())
}

/// The wire form of a ULID given as one `u128` (see [`message_id_to_u128`]).
pub fn message_id_from_u128(id: u128) -> fb::MessageId {
    // Truncation is the point: split the id into its two 64-bit halves.
    #[allow(clippy::cast_possible_truncation)]
    fb::MessageId::new((id >> 64) as u64, id as u64)
}

impl From<u128> for fb::MessageId {
    fn from(id: u128) -> Self {
        message_id_from_u128(id)
    }
}

impl From<&fb::MessageId> for u128 {
    fn from(id: &fb::MessageId) -> Self {
        message_id_to_u128(id)
    }
}

impl From<fb::MessageId> for u128 {
    fn from(id: fb::MessageId) -> Self {
        message_id_to_u128(&id)
    }
}
