//! Minting one JWT per simulated user, the way a customer's backend would.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use quiver_session::Claims;

/// The tenant `quiver serve` creates when run without a config file.
/// Mirrors `quiver_server::tenants::DEV_TENANT`, copied rather than
/// imported so the load generator does not link the whole server.
pub const DEV_TENANT: &str = "demo";

/// Signs tokens for one tenant with its HS256 secret.
pub struct Minter {
    tenant: String,
    secret: Vec<u8>,
    /// Unix seconds the tokens expire at: one expiry for the whole run.
    exp: u64,
}

impl std::fmt::Debug for Minter {
    // The secret stays out of logs and panics.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minter")
            .field("tenant", &self.tenant)
            .field("exp", &self.exp)
            .finish_non_exhaustive()
    }
}

impl Minter {
    /// A minter for `tenant`; tokens stay valid for `lifetime` from now,
    /// which must outlast the run (reconnects re-send the same token).
    pub fn new(tenant: String, secret: Vec<u8>, lifetime: Duration) -> anyhow::Result<Self> {
        if tenant.is_empty() {
            bail!("the tenant id is empty; pass --tenant");
        }
        if secret.is_empty() {
            bail!("the HS256 secret is empty; pass the tenant's hs256_secret with --secret");
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .context("the system clock is before 1970")?;
        Ok(Self {
            tenant,
            secret,
            exp: (now + lifetime).as_secs(),
        })
    }

    /// The dev tenant of a `quiver serve` without config, whose secret the
    /// server keeps at `DATA_DIR/dev/demo.secret`.
    pub fn dev(data_dir: &Path, lifetime: Duration) -> anyhow::Result<Self> {
        let path = dev_secret_path(data_dir);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read the dev secret {}; start `quiver serve --data-dir {}` once (it creates it), or pass --tenant and --secret",
                path.display(),
                data_dir.display()
            )
        })?;
        // The server trims the file the same way when it loads it.
        Self::new(
            DEV_TENANT.to_owned(),
            text.trim().as_bytes().to_vec(),
            lifetime,
        )
    }

    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// A token for `user`, allowed to publish and subscribe everywhere.
    pub fn token(&self, user: &str) -> anyhow::Result<String> {
        self.sign(user, None)
    }

    /// A token for `user` that may also report positions for the entities
    /// `track` lists (ids or `prefix*` patterns): the `track` claim.
    pub fn tracker_token(&self, user: &str, track: &[&str]) -> anyhow::Result<String> {
        self.sign(user, Some(track.iter().map(|t| (*t).to_owned()).collect()))
    }

    fn sign(&self, user: &str, track: Option<Vec<String>>) -> anyhow::Result<String> {
        let claims = Claims {
            sub: user.to_owned(),
            tenant: self.tenant.clone(),
            exp: self.exp,
            nbf: None,
            subscribe: None,
            publish: None,
            track,
        };
        claims
            .sign_hs256(&self.secret)
            .with_context(|| format!("cannot sign a token for {user}"))
    }
}

/// Where the dev tenant's secret lives; mirrors
/// `quiver_server::tenants::dev_secret_path`.
pub fn dev_secret_path(data_dir: &Path) -> PathBuf {
    data_dir.join("dev").join(format!("{DEV_TENANT}.secret"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_user_tenant_and_expiry() {
        let minter = Minter::new("bench".into(), b"s3cret".to_vec(), Duration::from_secs(60))
            .expect("minter");
        let token = minter.token("sub-1").expect("token");
        assert_eq!(token.split('.').count(), 3, "{token}");
        let payload = token.split('.').nth(1).expect("payload");
        // The claims are readable base64url JSON; check the fields we set.
        use base64::Engine as _;
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url");
        let json: serde_json::Value = serde_json::from_slice(&claims).expect("json");
        assert_eq!(json["sub"], "sub-1");
        assert_eq!(json["tenant"], "bench");
        assert!(json["exp"].as_u64().expect("exp") > 0);
        assert!(json.get("track").is_none(), "{json}");
    }

    #[test]
    fn tracker_tokens_carry_the_track_claim() {
        use base64::Engine as _;
        let minter = Minter::new("bench".into(), b"s3cret".to_vec(), Duration::from_secs(60))
            .expect("minter");
        let token = minter.tracker_token("t-1", &["load-*"]).expect("token");
        let payload = token.split('.').nth(1).expect("payload");
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url");
        let json: serde_json::Value = serde_json::from_slice(&claims).expect("json");
        assert_eq!(json["track"], serde_json::json!(["load-*"]));
    }

    #[test]
    fn empty_secret_or_tenant_is_refused() {
        assert!(Minter::new("t".into(), vec![], Duration::from_secs(1)).is_err());
        assert!(Minter::new(String::new(), b"s".to_vec(), Duration::from_secs(1)).is_err());
    }

    #[test]
    fn dev_secret_is_read_and_trimmed() {
        let dir = std::env::temp_dir().join(format!("quiver-load-test-{}", std::process::id()));
        let path = dev_secret_path(&dir);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, "abc\n").expect("write");
        let minter = Minter::dev(&dir, Duration::from_secs(60)).expect("dev");
        assert_eq!(minter.tenant(), DEV_TENANT);
        assert_eq!(minter.secret, b"abc");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(Minter::dev(&dir, Duration::from_secs(60)).is_err());
    }
}
