//! One group commit: offsets and idempotency for every queued append call,
//! written as one atomic fjall batch with one fsync. Edit records rewrite
//! their targets in that same batch.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use fjall::PersistMode;

use super::codec::{self, IdempotencyRecord, MessageParts};
use super::engine::{Engine, map_fjall, now_ms};
use super::keys;
use crate::{Appended, Edit, EditKind, Header, MessageId, Offset, StoreError};

/// Heads at or above this are refused, which leaves room for any group's
/// increments without overflow checks in the hot loop.
const OFFSET_LIMIT: Offset = 1 << 63;

/// A message validated and encoded on the caller's task, so the single
/// writer thread does only what must be serialized.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// Channel prefix: the heads key and the start of the other keys.
    pub(crate) prefix: Vec<u8>,
    /// Full idempotency record key, when the publisher sent one.
    pub(crate) idempotency_key: Option<Vec<u8>>,
    pub(crate) id: MessageId,
    pub(crate) timestamp_ms: u64,
    /// The encoded message value (see `codec.rs`).
    pub(crate) value: Vec<u8>,
    /// For an edit record: the edit and the content an update puts in place.
    pub(crate) edit: Option<PreparedEdit>,
}

/// An edit record's edit, and its payload and headers (cheap to clone:
/// `Bytes`, and headers are few).
#[derive(Debug)]
pub(crate) struct PreparedEdit {
    pub(crate) edit: Edit,
    pub(crate) payload: Bytes,
    pub(crate) headers: Vec<Header>,
}

/// Last assigned offset per channel, owned by the writer thread. Entries are
/// loaded from the heads keyspace on first use and only ever updated after a
/// group is durable, so the cache never runs ahead of the disk.
#[derive(Debug, Default)]
pub(crate) struct HeadCache {
    heads: HashMap<Vec<u8>, Offset>,
}

impl HeadCache {
    fn get_or_load(&mut self, engine: &Engine, prefix: &[u8]) -> Result<Offset, StoreError> {
        if let Some(head) = self.heads.get(prefix) {
            return Ok(*head);
        }
        let head = engine.head(prefix)?;
        self.heads.insert(prefix.to_vec(), head);
        Ok(head)
    }
}

/// Appends every queued call of one group and returns one result per call,
/// in order, plus the write error if the group's batch failed to commit
/// (after which fjall refuses all writes).
///
/// Phase 1 does all disk reads (idempotency lookups, head loads) per call,
/// so a corrupt record fails only the call that touches it. Phase 2 assigns
/// offsets in memory and builds one atomic batch; one fsync makes it durable.
/// If that write fails, every remaining call gets the error and the cache
/// entries of every channel the group touched are dropped, so the next
/// offset is reloaded from the durable head instead of guessed.
pub(crate) fn commit(
    engine: &Engine,
    cache: &mut HeadCache,
    window_ms: u64,
    calls: Vec<Vec<Prepared>>,
) -> (Vec<Result<Vec<Appended>, StoreError>>, Option<StoreError>) {
    let now = now_ms();
    let mut known = HashMap::new();
    let mut targets = HashMap::new();
    let staged: Vec<_> = calls
        .into_iter()
        .map(|call| {
            load(
                engine,
                cache,
                window_ms,
                now,
                &mut known,
                &mut targets,
                &call,
            )
            .map(|()| call)
        })
        .collect();

    let mut new_heads = HashMap::new();
    let loaded = Loaded { known, targets };
    let (batch, mut results) = assign(engine, cache, now, loaded, staged, &mut new_heads);
    // An all-duplicate group writes nothing and needs no fsync.
    let written = if batch.is_empty() {
        Ok(())
    } else {
        batch.commit().map_err(map_fjall)
    };
    match written {
        Ok(()) => {
            cache.heads.extend(new_heads);
            (results, None)
        }
        Err(err) => {
            for prefix in new_heads.keys() {
                cache.heads.remove(prefix);
            }
            for result in results.iter_mut().filter(|r| r.is_ok()) {
                *result = Err(err.clone());
            }
            (results, Some(err))
        }
    }
}

/// Idempotency keys looked up on disk: the live record, or `None`.
type Known = HashMap<Vec<u8>, Option<IdempotencyRecord>>;

/// Edit targets read from disk, by message key: the stored item, or `None`.
type Targets = HashMap<Vec<u8>, Option<crate::StoredMessage>>;

/// What phase 1 read for phase 2.
struct Loaded {
    known: Known,
    targets: Targets,
}

/// Phase 1 for one call: loads what phase 2 needs into `cache`, `known`
/// and `targets`.
fn load(
    engine: &Engine,
    cache: &mut HeadCache,
    window_ms: u64,
    now: u64,
    known: &mut Known,
    targets: &mut Targets,
    call: &[Prepared],
) -> Result<(), StoreError> {
    for msg in call {
        let head = cache.get_or_load(engine, &msg.prefix)?;
        if head >= OFFSET_LIMIT {
            // Unreachable in practice (2^63 messages); refuse rather than wrap.
            return Err(StoreError::Invalid(
                "the channel has used up its offsets".into(),
            ));
        }
        // A target at or below the durable head is on disk; a higher one
        // can only be a message of this group, which phase 2 tracks.
        if let Some(edit) = &msg.edit
            && (1..=head).contains(&edit.edit.target)
        {
            let key = keys::message_key(&msg.prefix, edit.edit.target);
            if let std::collections::hash_map::Entry::Vacant(slot) = targets.entry(key) {
                let stored = match engine.messages.get(slot.key()).map_err(map_fjall)? {
                    Some(value) => Some(codec::decode_message(edit.edit.target, &value)?),
                    None => None,
                };
                slot.insert(stored);
            }
        }
        if let Some(key) = &msg.idempotency_key
            && !known.contains_key(key)
        {
            let record = lookup(engine, key, now, window_ms)?;
            known.insert(key.clone(), record);
        }
    }
    Ok(())
}

/// Phase 2: offsets, idempotency, and the batch; no I/O.
fn assign(
    engine: &Engine,
    cache: &HeadCache,
    now: u64,
    loaded: Loaded,
    staged: Vec<Result<Vec<Prepared>, StoreError>>,
    new_heads: &mut HashMap<Vec<u8>, Offset>,
) -> (
    fjall::OwnedWriteBatch,
    Vec<Result<Vec<Appended>, StoreError>>,
) {
    // The fsync happens inside commit, before the batch becomes visible to
    // readers, so nobody can read a message that a crash could still lose.
    // SyncAll (fsync, not fdatasync) also covers a freshly rotated journal
    // file's metadata; the cost is the same on the common file systems.
    let mut batch = engine.db.batch().durability(Some(PersistMode::SyncAll));
    // Keys resolved so far, from disk or earlier in this group: a second
    // message with the same key is a duplicate of the first even though
    // neither is on disk yet.
    let mut resolved: HashMap<Vec<u8>, Appended> = loaded
        .known
        .into_iter()
        .filter_map(|(key, record)| Some((key, record?.as_duplicate())))
        .collect();
    let mut results = Vec::with_capacity(staged.len());
    // Message values are collected before they go into the batch, because
    // an edit later in the group may rewrite a message written earlier in
    // it, and a batch must hold one value per key.
    let mut rows = Rows {
        writes: Vec::new(),
        new_rows: HashMap::new(),
        items: loaded.targets,
        rewritten: HashSet::new(),
    };

    for call in staged {
        let call = match call {
            Ok(call) => call,
            Err(err) => {
                results.push(Err(err));
                continue;
            }
        };
        let mut outcomes = Vec::with_capacity(call.len());
        for msg in call {
            if let Some(earlier) = msg.idempotency_key.as_ref().and_then(|k| resolved.get(k)) {
                outcomes.push(*earlier);
                continue;
            }
            // Phase 1 loaded every head this call touches into the cache.
            let head = new_heads
                .get(&msg.prefix)
                .or_else(|| cache.heads.get(&msg.prefix));
            // Phase 1 capped heads at OFFSET_LIMIT, so this cannot saturate.
            let offset = head.copied().unwrap_or(0).saturating_add(1);
            if let Some(edit) = &msg.edit {
                rows.apply_edit(&msg.prefix, offset, edit);
            }
            let key = keys::message_key(&msg.prefix, offset);
            rows.new_rows.insert(key.clone(), rows.writes.len());
            rows.writes.push((key, msg.value));
            let appended = Appended {
                offset,
                id: msg.id,
                timestamp_ms: msg.timestamp_ms,
                duplicate: false,
            };
            if let Some(key) = msg.idempotency_key {
                let record = IdempotencyRecord {
                    offset,
                    id: msg.id,
                    timestamp_ms: msg.timestamp_ms,
                    recorded_ms: now,
                };
                batch.insert(&engine.idempotency, key.clone(), record.encode().to_vec());
                resolved.insert(key, record.as_duplicate());
            }
            new_heads.insert(msg.prefix, offset);
            outcomes.push(appended);
        }
        results.push(Ok(outcomes));
    }

    for (key, value) in rows.finish() {
        batch.insert(&engine.messages, key, value);
    }
    // Heads go in the same atomic batch as the messages they cover.
    for (prefix, head) in new_heads.iter() {
        batch.insert(&engine.heads, prefix.clone(), head.to_be_bytes().to_vec());
    }
    (batch, results)
}
/// The message values of one group: the new messages, plus the items that
/// edits in the group rewrote.
struct Rows {
    /// New messages, in offset order: key and encoded value.
    writes: Vec<(Vec<u8>, Vec<u8>)>,
    /// Index in `writes` of every new message, by key.
    new_rows: HashMap<Vec<u8>, usize>,
    /// The current content of every item an edit of the group targets (or
    /// may target), by key: read from disk in phase 1, or decoded from
    /// `writes` at first use. `None` for an item that does not exist.
    items: Targets,
    /// Keys of items whose content in `items` an edit changed.
    rewritten: HashSet<Vec<u8>>,
}

impl Rows {
    /// Applies an edit at `offset` of the channel with `prefix` to its
    /// target, if the target exists, is lower, is no edit itself and is not
    /// deleted; otherwise does nothing.
    fn apply_edit(&mut self, prefix: &[u8], offset: Offset, edit: &PreparedEdit) {
        let target = edit.edit.target;
        if target == 0 || target >= offset {
            return;
        }
        let key = keys::message_key(prefix, target);
        if !self.items.contains_key(&key) {
            // Not loaded from disk: only a message of this group can be there.
            let current = self
                .new_rows
                .get(&key)
                .and_then(|&i| codec::decode_message(target, &self.writes[i].1).ok());
            self.items.insert(key.clone(), current);
        }
        let Some(Some(item)) = self.items.get_mut(&key) else {
            return;
        };
        if item.edit.is_some() {
            return;
        }
        let Some(state) = item.state.after(edit.edit.kind) else {
            return;
        };
        item.state = state;
        match edit.edit.kind {
            EditKind::Update => {
                item.payload = edit.payload.clone();
                item.headers = edit.headers.clone();
            }
            EditKind::Delete => {
                item.payload = Bytes::new();
                item.headers = Vec::new();
            }
        }
        self.rewritten.insert(key);
    }

    /// Every value to write: the new messages, with the rewritten ones
    /// among them replaced, then the rewritten items already on disk.
    fn finish(mut self) -> Vec<(Vec<u8>, Vec<u8>)> {
        for key in self.rewritten {
            let Some(Some(item)) = self.items.remove(&key) else {
                continue;
            };
            // The content came from values already encoded, so this cannot
            // pass the size limit; skip rather than fail if it ever did.
            let Ok(value) = codec::encode_parts(&MessageParts::of_stored(&item)) else {
                continue;
            };
            match self.new_rows.get(&key) {
                Some(&i) => self.writes[i].1 = value,
                None => self.writes.push((key, value)),
            }
        }
        self.writes
    }
}

/// The live record of `key`, or `None` if absent or older than the window.
fn lookup(
    engine: &Engine,
    key: &[u8],
    now_ms: u64,
    window_ms: u64,
) -> Result<Option<IdempotencyRecord>, StoreError> {
    let Some(value) = engine.idempotency.get(key).map_err(map_fjall)? else {
        return Ok(None);
    };
    let record = IdempotencyRecord::decode(&value)?;
    Ok((!record.is_expired(now_ms, window_ms)).then_some(record))
}
