//! Every statement the backend runs, prepared once at connect. Prepared
//! statements give token-aware routing (the driver computes the partition's
//! replicas from the bound key) and skip parsing on the server; the driver
//! re-prepares them by itself on a node that restarted and forgot them.
//!
//! Each statement has a kind that sets how it may be retried and at which
//! consistency it runs:
//! - `read`: idempotent, at the configured consistency;
//! - `write`: idempotent (same values and timestamp give the same result,
//!   so the driver may retry it), at the configured consistency;
//! - `serial_read`: idempotent, at SERIAL/LOCAL_SERIAL, so it sees the
//!   latest lightweight transaction, committed or in progress;
//! - `lwt`: a lightweight transaction, never retried by the driver: a retry
//!   after a timeout could apply it twice.

use scylla::client::session::Session;
use scylla::statement::Consistency;
use scylla::statement::SerialConsistency;
use scylla::statement::prepared::PreparedStatement;

use super::config::ScyllaConfig;
use super::db::{Failure, map_prepare};

#[derive(Clone, Copy)]
enum Kind {
    Read,
    Write,
    SerialRead,
    Lwt,
}

macro_rules! statements {
    ($($name:ident: $kind:ident = $cql:literal;)*) => {
        pub(crate) struct Statements {
            $(pub(crate) $name: PreparedStatement,)*
        }

        impl Statements {
            pub(crate) async fn prepare(
                session: &Session,
                config: &ScyllaConfig,
            ) -> Result<Self, Failure> {
                Ok(Self {
                    $($name: prepare(session, config, $cql, Kind::$kind).await?,)*
                })
            }
        }
    };
}

statements! {
    ping: Read = "SELECT release_version FROM system.local WHERE key = 'local'";

    insert_message: Write = "INSERT INTO $ks.messages (tenant, channel, bucket, seq, id, ts, \
        sender, headers, payload, idem_key, epoch, edit_target, edit_kind, state) \
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) USING TTL ? AND TIMESTAMP ?";
    read_forward: Read = "SELECT seq, id, ts, sender, headers, payload, edit_target, edit_kind, \
        state FROM $ks.messages \
        WHERE tenant = ? AND channel = ? AND bucket = ? AND seq > ? AND seq < ? \
        ORDER BY seq ASC LIMIT ?";
    read_backward: Read = "SELECT seq, id, ts, sender, headers, payload, edit_target, edit_kind, \
        state FROM $ks.messages \
        WHERE tenant = ? AND channel = ? AND bucket = ? AND seq > ? AND seq < ? \
        ORDER BY seq DESC LIMIT ?";
    edit_target: Read = "SELECT id, edit_kind, state, TTL(id) FROM $ks.messages \
        WHERE tenant = ? AND channel = ? AND bucket = ? AND seq = ?";
    rewrite_message: Write = "UPDATE $ks.messages USING TTL ? AND TIMESTAMP ? \
        SET payload = ?, headers = ?, state = ? \
        WHERE tenant = ? AND channel = ? AND bucket = ? AND seq = ?";
    last_seq: Read = "SELECT seq FROM $ks.messages \
        WHERE tenant = ? AND channel = ? AND bucket = ? ORDER BY seq DESC LIMIT 1";
    tail: Read = "SELECT seq, id, ts, idem_key FROM $ks.messages \
        WHERE tenant = ? AND channel = ? AND bucket = ? AND seq > ?";
    message_id: Read = "SELECT id FROM $ks.messages \
        WHERE tenant = ? AND channel = ? AND bucket = ? AND seq = ?";

    idem_get_many: Read = "SELECT key, seq, id, ts FROM $ks.idempotency \
        WHERE tenant = ? AND channel = ? AND key IN ?";
    idem_put: Write = "INSERT INTO $ks.idempotency (tenant, channel, key, seq, id, ts) \
        VALUES (?, ?, ?, ?, ?, ?) USING TTL ? AND TIMESTAMP ?";

    lease_get: SerialRead = "SELECT owner, epoch, lease_until, head_hint FROM $ks.channel_leases \
        WHERE tenant = ? AND channel = ?";
    lease_hint: Read = "SELECT head_hint FROM $ks.channel_leases WHERE tenant = ? AND channel = ?";
    lease_insert: Lwt = "INSERT INTO $ks.channel_leases (tenant, channel, owner, epoch, \
        lease_until, head_hint) VALUES (?, ?, ?, ?, ?, 0) IF NOT EXISTS";
    lease_take: Lwt = "UPDATE $ks.channel_leases SET owner = ?, epoch = ?, lease_until = ? \
        WHERE tenant = ? AND channel = ? IF epoch = ? AND lease_until = ?";
    lease_renew: Lwt = "UPDATE $ks.channel_leases SET lease_until = ?, head_hint = ? \
        WHERE tenant = ? AND channel = ? IF owner = ? AND epoch = ?";

    kv_get: Read = "SELECT value FROM $ks.kv WHERE tenant = ? AND namespace = ? AND key = ?";
    kv_get_serial: SerialRead = "SELECT value, TTL(value) FROM $ks.kv \
        WHERE tenant = ? AND namespace = ? AND key = ?";
    kv_set: Write = "INSERT INTO $ks.kv (tenant, namespace, key, value) VALUES (?, ?, ?, ?) \
        USING TTL ?";
    kv_delete: Write = "DELETE FROM $ks.kv WHERE tenant = ? AND namespace = ? AND key = ?";
    kv_create: Lwt = "INSERT INTO $ks.kv (tenant, namespace, key, value) VALUES (?, ?, ?, ?) \
        IF NOT EXISTS USING TTL ?";
    kv_swap: Lwt = "UPDATE $ks.kv USING TTL ? SET value = ? \
        WHERE tenant = ? AND namespace = ? AND key = ? IF value = ?";

    plugin_get: SerialRead = "SELECT last_version, live, active, previous FROM $ks.plugins \
        WHERE tenant = ? AND name = ?";
    plugins_of: Read = "SELECT tenant, name, live, active, previous FROM $ks.plugins \
        WHERE tenant = ?";
    plugins_all: Read = "SELECT tenant, name, live, active, previous FROM $ks.plugins";
    plugin_create: Lwt = "INSERT INTO $ks.plugins (tenant, name, last_version, live) \
        VALUES (?, ?, 1, true) IF NOT EXISTS";
    plugin_bump: Lwt = "UPDATE $ks.plugins SET last_version = ?, live = true \
        WHERE tenant = ? AND name = ? IF last_version = ?";
    plugin_activate: Lwt = "UPDATE $ks.plugins SET active = ?, previous = ? \
        WHERE tenant = ? AND name = ? IF live = true AND active = ? AND previous = ?";
    plugin_delete: Lwt = "UPDATE $ks.plugins SET live = false, active = null, previous = null \
        WHERE tenant = ? AND name = ? IF live = true";
    versions_of: Read = "SELECT version, sha256, size_bytes, config, uploaded_ms, chunks \
        FROM $ks.plugin_versions WHERE tenant = ? AND name = ?";
    version_put: Write = "INSERT INTO $ks.plugin_versions (tenant, name, version, sha256, \
        size_bytes, config, uploaded_ms, chunks) VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
    versions_delete: Write = "DELETE FROM $ks.plugin_versions WHERE tenant = ? AND name = ?";
    chunk_get: Read = "SELECT data FROM $ks.plugin_components \
        WHERE tenant = ? AND name = ? AND version = ? AND chunk = ?";
    chunk_put: Write = "INSERT INTO $ks.plugin_components (tenant, name, version, chunk, data) \
        VALUES (?, ?, ?, ?, ?)";
    position_latest_put: Write = "INSERT INTO $ks.positions_latest (tenant, channel, entity, \
        lat, lon, accuracy, heading, speed, ts, user_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
        USING TIMESTAMP ?";
    position_history_put: Write = "INSERT INTO $ks.positions_history (tenant, channel, entity, \
        ts, lat, lon, accuracy, heading, speed, user_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
        USING TTL ?";
    positions_latest: Read = "SELECT entity, lat, lon, accuracy, heading, speed, ts, user_id \
        FROM $ks.positions_latest WHERE tenant = ? AND channel = ? LIMIT ?";
    positions_history: Read = "SELECT entity, lat, lon, accuracy, heading, speed, ts, user_id \
        FROM $ks.positions_history WHERE tenant = ? AND channel = ? AND entity = ? AND ts >= ? \
        LIMIT ?";
    chunks_delete: Write = "DELETE FROM $ks.plugin_components \
        WHERE tenant = ? AND name = ? AND version = ?";
}

async fn prepare(
    session: &Session,
    config: &ScyllaConfig,
    cql: &str,
    kind: Kind,
) -> Result<PreparedStatement, Failure> {
    let cql = cql.replace("$ks", &config.keyspace);
    let mut statement = session.prepare(cql).await.map_err(|e| map_prepare(&e))?;
    statement.set_consistency(config.consistency);
    statement.set_serial_consistency(Some(config.serial_consistency));
    match kind {
        Kind::Read | Kind::Write => statement.set_is_idempotent(true),
        Kind::SerialRead => {
            statement.set_is_idempotent(true);
            statement.set_consistency(match config.serial_consistency {
                SerialConsistency::LocalSerial => Consistency::LocalSerial,
                SerialConsistency::Serial => Consistency::Serial,
            });
        }
        Kind::Lwt => statement.set_is_idempotent(false),
    }
    Ok(statement)
}
