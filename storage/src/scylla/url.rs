//! `scylla://host1:9042,host2:9042/keyspace?param=value` URLs.

use scylla::statement::Consistency;

use super::config::{ScyllaConfig, validate_keyspace};
use crate::StoreError;

impl ScyllaConfig {
    /// Parses `scylla://host1:9042,host2:9042/keyspace?node_id=gw-1`.
    ///
    /// The port defaults to 9042. Optional query parameters: `node_id`,
    /// `replication_factor` (SimpleStrategy with that factor), `dc` (with
    /// `replication_factor`: NetworkTopologyStrategy in that datacenter),
    /// and `consistency` (`local_quorum`, `quorum`, `one`, `local_one`,
    /// `all`). `cql://` is accepted as a synonym.
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        let bad = |why: &str| {
            StoreError::Invalid(format!(
                "store URL {url:?}: {why}; expected scylla://host1:9042,host2:9042/keyspace"
            ))
        };
        let rest = url
            .strip_prefix("scylla://")
            .or_else(|| url.strip_prefix("cql://"))
            .ok_or_else(|| bad("the scheme must be scylla://"))?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (hosts, keyspace) = rest.split_once('/').ok_or_else(|| bad("no keyspace"))?;
        validate_keyspace(keyspace).map_err(|e| bad(&e))?;
        let nodes = hosts
            .split(',')
            .filter(|h| !h.is_empty())
            .map(|h| {
                if has_port(h) {
                    h.to_owned()
                } else {
                    format!("{h}:9042")
                }
            })
            .collect::<Vec<_>>();
        if nodes.is_empty() {
            return Err(bad("no hosts"));
        }
        let mut config = Self::new(nodes, keyspace);
        let (mut factor, mut dc) = (None, None);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').ok_or_else(|| bad("bad query"))?;
            match key {
                "node_id" => config.node_id = value.to_owned(),
                "replication_factor" => {
                    factor = Some(
                        value
                            .parse::<u8>()
                            .map_err(|_| bad("bad replication_factor"))?,
                    )
                }
                "dc" => dc = Some(value.to_owned()),
                "consistency" => {
                    config.consistency =
                        parse_consistency(value).ok_or_else(|| bad("bad consistency"))?
                }
                other => return Err(bad(&format!("unknown parameter {other}"))),
            }
        }
        match (factor, dc) {
            (Some(rf), None) => {
                config.replication =
                    format!("{{'class': 'SimpleStrategy', 'replication_factor': {rf}}}")
            }
            (Some(rf), Some(dc))
                if dc
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c)) =>
            {
                config.replication = format!("{{'class': 'NetworkTopologyStrategy', '{dc}': {rf}}}")
            }
            (None, None) => {}
            _ => return Err(bad("dc needs replication_factor and a plain name")),
        }
        Ok(config)
    }
}

fn has_port(host: &str) -> bool {
    // `[::1]:9042`, `host:9042`; a bare IPv6 address has several colons.
    match host.rsplit_once(':') {
        Some((h, port)) => port.parse::<u16>().is_ok() && (!h.contains(':') || h.ends_with(']')),
        None => false,
    }
}

fn parse_consistency(name: &str) -> Option<Consistency> {
    Some(match name.to_ascii_lowercase().as_str() {
        "local_quorum" => Consistency::LocalQuorum,
        "quorum" => Consistency::Quorum,
        "one" => Consistency::One,
        "local_one" => Consistency::LocalOne,
        "all" => Consistency::All,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        let c =
            ScyllaConfig::from_url("scylla://a,b:19042/ks?replication_factor=3&dc=dc1").unwrap();
        assert_eq!(c.nodes, ["a:9042", "b:19042"]);
        assert_eq!(c.keyspace, "ks");
        assert!(
            c.replication.contains("NetworkTopologyStrategy") && c.replication.contains("'dc1': 3")
        );
        for bad in [
            "scylla://a",
            "http://a/ks",
            "scylla:///ks",
            "scylla://a/k-s",
            "scylla://a/ks?x=1",
        ] {
            assert!(ScyllaConfig::from_url(bad).is_err(), "{bad}");
        }
        assert!(
            ScyllaConfig::from_url("scylla://127.0.0.1:9042/quiver")
                .unwrap()
                .validate()
                .is_ok()
        );
    }
}
