//! Parsing and resolving the `host:port` server address.

use std::net::SocketAddr;

use crate::error::ClientError;

/// A parsed `host:port`; the host (without IPv6 brackets) doubles as the
/// TLS server name, which rustls accepts for IP literals too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// As configured, for error messages.
    pub(crate) server: String,
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl Target {
    pub(crate) fn parse(server: &str) -> Result<Self, ClientError> {
        let invalid = |reason: &str| ClientError::InvalidAddress {
            server: server.to_owned(),
            reason: reason.to_owned(),
        };
        let (host, port) = if let Some(rest) = server.strip_prefix('[') {
            let (host, port) = rest
                .split_once("]:")
                .ok_or_else(|| invalid("an IPv6 address needs the form [addr]:port"))?;
            (host, port)
        } else {
            let (host, port) = server
                .rsplit_once(':')
                .ok_or_else(|| invalid("the port is missing"))?;
            if host.contains(':') {
                return Err(invalid("put an IPv6 address in brackets"));
            }
            (host, port)
        };
        if host.is_empty() {
            return Err(invalid("the host is empty"));
        }
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| invalid("the port is not a number in 1..=65535"))?;
        Ok(Self {
            server: server.to_owned(),
            host: host.to_owned(),
            port,
        })
    }

    /// Resolves the host, preferring an address of the same family as
    /// `local` (a socket bound to one family may not reach the other), or
    /// IPv4 without one: `localhost` often resolves to `::1` first, while
    /// the gateway listens on `0.0.0.0` by default.
    pub(crate) async fn resolve(
        &self,
        local: Option<SocketAddr>,
    ) -> Result<SocketAddr, ClientError> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|e| ClientError::InvalidAddress {
                server: self.server.clone(),
                reason: format!("cannot resolve {}: {e}", self.host),
            })?
            .collect();
        let preferred = |a: &&SocketAddr| local.map_or(a.is_ipv4(), |l| l.is_ipv4() == a.is_ipv4());
        addrs
            .iter()
            .find(preferred)
            .or_else(|| addrs.first())
            .copied()
            .ok_or_else(|| ClientError::InvalidAddress {
                server: self.server.clone(),
                reason: format!("{} resolves to no address", self.host),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_ip_literals() {
        let t = Target::parse("localhost:4433").expect("name");
        assert_eq!((t.host.as_str(), t.port), ("localhost", 4433));
        let t = Target::parse("127.0.0.1:1").expect("v4");
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 1));
        let t = Target::parse("[::1]:4433").expect("v6");
        assert_eq!((t.host.as_str(), t.port), ("::1", 4433));
    }

    #[test]
    fn rejects_bad_addresses() {
        for bad in [
            "localhost",
            ":4433",
            "host:0",
            "host:99999",
            "::1:4433",
            "[::1]",
            "[]:1",
            "h:x",
        ] {
            assert!(
                matches!(Target::parse(bad), Err(ClientError::InvalidAddress { .. })),
                "{bad} should be rejected"
            );
        }
    }

    #[tokio::test]
    async fn resolves_literals_without_dns() {
        let t = Target::parse("[::1]:4433").expect("v6");
        assert_eq!(
            t.resolve(None).await.expect("resolve"),
            "[::1]:4433".parse().expect("addr")
        );
    }
}
