//! Opening the session and applying `storage/schema.cql`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::TranslationError;
use scylla::policies::address_translator::{AddressTranslator, UntranslatedPeer};

use super::config::ScyllaConfig;
use super::db::{map_execution, unavailable};
use crate::StoreError;

/// The schema, with `$keyspace` and `$replication` to fill in.
pub const SCHEMA_CQL: &str = include_str!("../../schema.cql");

pub(crate) async fn open_session(config: &ScyllaConfig) -> Result<Session, StoreError> {
    // One profile for every statement: the consistency, the serial
    // consistency of LWTs and the client-side timeout. The driver's default
    // load balancing is token-aware (prepared statements carry the
    // partition key), and its default retry policy retries only statements
    // marked idempotent, which `statements.rs` sets per statement.
    let profile = ExecutionProfile::builder()
        .consistency(config.consistency)
        .serial_consistency(Some(config.serial_consistency))
        .request_timeout(Some(config.request_timeout))
        .build();
    let mut builder = SessionBuilder::new();
    if !config.address_map.is_empty() {
        let map = config.address_map.iter().copied().collect();
        builder = builder.address_translator(Arc::new(MapTranslator(map)));
    }
    builder
        .known_nodes(&config.nodes)
        .connection_timeout(config.request_timeout)
        .default_execution_profile_handle(profile.into_handle())
        .build()
        .await
        .map_err(|e| unavailable(format!("cannot connect to {:?}: {e}", config.nodes)))
}

/// The schema's statements for `config`, in order. The `ALTER TABLE ... ADD`
/// statements fail on a keyspace that has their column already; run them
/// with [`apply_schema`], or treat the errors [`is_already_applied`] names as
/// success.
pub fn schema_statements(config: &ScyllaConfig) -> Vec<String> {
    let text: String = SCHEMA_CQL
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    text.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.replace("$keyspace", &config.keyspace)
                .replace("$replication", &config.replication)
        })
        .collect()
}

/// Whether `error`, from running the schema statement `statement`, means
/// the statement's change is already in place: an `ALTER TABLE ... ADD` of a
/// column the table has (Cassandra: "already exists"; ScyllaDB: "conflicts
/// with an existing column").
pub fn is_already_applied(statement: &str, error: &str) -> bool {
    let adds_column = statement.starts_with("ALTER TABLE") && statement.contains(" ADD ");
    let error = error.to_ascii_lowercase();
    adds_column
        && (error.contains("already exists") || error.contains("conflicts with an existing column"))
}

/// Applies [`schema_statements`] on `session`: creates what is missing and
/// adds missing columns, so it runs on every start (the store's `connect`
/// calls it); the driver waits for schema agreement after each statement.
pub async fn apply_schema(session: &Session, config: &ScyllaConfig) -> Result<(), StoreError> {
    apply(session, config).await
}

/// Creates whatever is missing; see [`apply_schema`].
pub(crate) async fn apply(session: &Session, config: &ScyllaConfig) -> Result<(), StoreError> {
    let scylla = is_scylla(session).await?;
    for mut statement in schema_statements(config) {
        // ScyllaDB 6 makes new keyspaces use tablets, which do not support
        // the lightweight transactions of the lease and plugin tables.
        // Cassandra does not know the option, hence only on ScyllaDB.
        if scylla && statement.starts_with("CREATE KEYSPACE") {
            statement.push_str(" AND tablets = {'enabled': false}");
        }
        // DDL cannot be prepared; it runs once per start, off the hot path.
        let result = session.query_unpaged(statement.as_str(), ()).await;
        if let Err(err) = &result
            && is_already_applied(&statement, &err.to_string())
        {
            continue;
        }
        result
            .map_err(|e| map_execution(&e).error)
            .map_err(|e| match e {
                StoreError::Backend(reason) => StoreError::Backend(format!(
                    "applying the schema failed ({reason}); statement: {statement}"
                )),
                other => other,
            })?;
    }
    Ok(())
}

/// Whether the cluster is ScyllaDB (which has `system.scylla_local`) rather
/// than Cassandra.
async fn is_scylla(session: &Session) -> Result<bool, StoreError> {
    let cql = "SELECT table_name FROM system_schema.tables \
               WHERE keyspace_name = 'system' AND table_name = 'scylla_local'";
    let result = session
        .query_unpaged(cql, ())
        .await
        .map_err(|e| map_execution(&e).error)?;
    let rows = result
        .into_rows_result()
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok(rows.rows_num() > 0)
}

/// [`ScyllaConfig::address_map`]: mapped addresses are rewritten, the rest
/// pass through (the driver's own map refuses unmapped ones).
struct MapTranslator(HashMap<SocketAddr, SocketAddr>);

#[async_trait]
impl AddressTranslator for MapTranslator {
    async fn translate_address(
        &self,
        peer: &UntranslatedPeer,
    ) -> Result<SocketAddr, TranslationError> {
        let advertised = peer.untranslated_address();
        Ok(self.0.get(&advertised).copied().unwrap_or(advertised))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_column_additions_may_already_exist() {
        let add = "ALTER TABLE ks.messages ADD state tinyint";
        let cassandra = "Database returned an error: The query is syntactically correct but                          invalid, Error message: Column with name 'state' already exists";
        let scylla = "Invalid column name state because it conflicts with an existing column";
        assert!(is_already_applied(add, cassandra));
        assert!(is_already_applied(add, scylla));
        assert!(!is_already_applied(add, "Unknown keyspace ks"));
        assert!(!is_already_applied("CREATE TABLE ks.t (a int)", cassandra));
    }

    #[test]
    fn the_schema_adds_edit_columns_and_positions_tables() {
        let config = ScyllaConfig::from_url("scylla://127.0.0.1/ks").unwrap();
        let statements = schema_statements(&config);
        for column in ["edit_target", "edit_kind", "state"] {
            assert!(
                statements
                    .iter()
                    .any(|s| s.starts_with("ALTER TABLE ks.messages ADD ") && s.contains(column)),
                "{column}"
            );
        }
        for table in ["ks.positions_latest", "ks.positions_history"] {
            assert!(statements.iter().any(|s| s.contains(table)), "{table}");
        }
    }
}
