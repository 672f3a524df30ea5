//! Building the tenant registry from config, and the dev tenant used when
//! no config is given.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use quiver_session::{Authenticator, LimitOverrides, Tenant, TenantKey};
use rand::RngCore as _;

use crate::api::ApiKeys;
use crate::config::{Config, TenantSection};

/// The tenant `quiver serve` runs without a config file.
pub const DEV_TENANT: &str = "demo";

/// Where the dev tenant's secret lives under the data dir.
pub fn dev_secret_path(data_dir: &Path, tenant: &str) -> PathBuf {
    data_dir.join("dev").join(format!("{tenant}.secret"))
}

/// The dev tenant's HS256 secret, created once (random, 256 bits) and kept
/// in the data dir so tokens survive restarts.
pub fn dev_secret(data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    let path = dev_secret_path(data_dir, DEV_TENANT);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        return Ok(existing.trim().as_bytes().to_vec());
    }
    let secret = random_hex();
    write_private(&path, secret.as_bytes())?;
    Ok(secret.into_bytes())
}

/// Where the dev tenant's API key (for the publish API) lives.
pub fn dev_api_key_path(data_dir: &Path, tenant: &str) -> PathBuf {
    data_dir.join("dev").join(format!("{tenant}.apikey"))
}

/// The dev tenant's API key, created once (random, 256 bits) and kept in
/// the data dir; `quiver apikey --tenant demo` prints it.
pub fn dev_api_key(data_dir: &Path) -> anyhow::Result<String> {
    let path = dev_api_key_path(data_dir, DEV_TENANT);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        return Ok(existing.trim().to_string());
    }
    let key = format!("qk_{}", random_hex());
    if let Err(error) = write_private(&path, key.as_bytes()) {
        // Another process (the server, or `quiver apikey`) made it first.
        return std::fs::read_to_string(&path)
            .map(|existing| existing.trim().to_string())
            .map_err(|_| error);
    }
    Ok(key)
}

/// A tenant's publish API keys: `api_keys`, then one per `api_key_files`
/// entry (surrounding whitespace ignored).
pub fn tenant_api_keys(section: &TenantSection, base: &Path) -> anyhow::Result<Vec<String>> {
    let mut keys = section.api_keys.clone();
    for path in &section.api_key_files {
        let text = String::from_utf8(read(base, path)?)
            .with_context(|| format!("{} is not UTF-8", path.display()))?;
        keys.push(text.trim().to_string());
    }
    Ok(keys)
}

/// Every tenant's publish API keys (in dev mode, the dev tenant's one).
pub fn api_keys(config: &Config, dev: bool, base: &Path) -> anyhow::Result<ApiKeys> {
    let mut pairs: Vec<(Arc<str>, String)> = Vec::new();
    if dev {
        pairs.push((DEV_TENANT.into(), dev_api_key(&config.server.data_dir)?));
    } else {
        for section in &config.tenants {
            let keys = tenant_api_keys(section, base)
                .with_context(|| format!("tenant {:?}", section.id))?;
            let tenant: Arc<str> = section.id.as_str().into();
            pairs.extend(keys.into_iter().map(|key| (tenant.clone(), key)));
        }
    }
    Ok(ApiKeys::new(pairs)?)
}

/// The admin API's bearer token: from `admin_token_file`, or created once
/// (random, 256 bits) in `DATA_DIR/admin.token`.
pub fn admin_token(config: &Config, base: &Path) -> anyhow::Result<String> {
    let path = match &config.api.admin_token_file {
        Some(path) => {
            let full = base.join(path);
            let token = std::fs::read_to_string(&full)
                .with_context(|| format!("cannot read admin token {}", full.display()))?;
            let token = token.trim().to_string();
            if token.len() < 16 {
                bail!(
                    "the admin token in {} is shorter than 16 characters",
                    full.display()
                );
            }
            return Ok(token);
        }
        None => admin_token_path(&config.server.data_dir),
    };
    if let Ok(existing) = std::fs::read_to_string(&path) {
        return Ok(existing.trim().to_string());
    }
    let token = random_hex();
    write_private(&path, token.as_bytes())?;
    Ok(token)
}

/// Where the generated admin token lives.
pub fn admin_token_path(data_dir: &Path) -> PathBuf {
    data_dir.join("admin.token")
}

fn random_hex() -> String {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a file readable by its owner only: it holds a secret.
pub fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    use std::io::Write as _;
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Every tenant's verification keys. `base` resolves relative key paths
/// (the config file's folder).
pub fn authenticator(config: &Config, dev: bool, base: &Path) -> anyhow::Result<Authenticator> {
    if dev {
        let secret = dev_secret(&config.server.data_dir)?;
        return Ok(Authenticator::new([Tenant {
            id: DEV_TENANT.into(),
            keys: vec![TenantKey::Hs256(secret)],
            limits: LimitOverrides::default(),
        }]));
    }
    if config.tenants.is_empty() {
        bail!(
            "the config declares no [[tenants]]; add one, or run without --config for the dev tenant"
        );
    }
    let mut tenants = Vec::with_capacity(config.tenants.len());
    for section in &config.tenants {
        tenants.push(tenant(section, base).with_context(|| format!("tenant {:?}", section.id))?);
    }
    Ok(Authenticator::new(tenants))
}

fn tenant(section: &TenantSection, base: &Path) -> anyhow::Result<Tenant> {
    if section.id.is_empty() || section.id.len() > 64 {
        bail!("tenant id must be 1 to 64 bytes");
    }
    let mut keys = Vec::new();
    if let Some(secret) = hs256_secret(section, base)? {
        keys.push(TenantKey::Hs256(secret));
    }
    for path in &section.rs256_public_keys {
        let pem = read(base, path)?;
        keys.push(
            TenantKey::rs256_pem(&pem).with_context(|| format!("RS256 key {}", path.display()))?,
        );
    }
    for path in &section.eddsa_public_keys {
        let pem = read(base, path)?;
        keys.push(
            TenantKey::eddsa_pem(&pem).with_context(|| format!("EdDSA key {}", path.display()))?,
        );
    }
    if keys.is_empty() {
        bail!("no keys: set hs256_secret_file, rs256_public_keys or eddsa_public_keys");
    }
    Ok(Tenant {
        id: Arc::from(section.id.as_str()),
        keys,
        limits: LimitOverrides::from(&section.limits),
    })
}

/// The tenant's HS256 secret, if it has one (used to mint tokens too).
pub fn hs256_secret(section: &TenantSection, base: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    match (&section.hs256_secret, &section.hs256_secret_file) {
        (Some(_), Some(_)) => bail!("set hs256_secret or hs256_secret_file, not both"),
        (Some(secret), None) => Ok(Some(secret.as_bytes().to_vec())),
        (None, Some(path)) => {
            let text = String::from_utf8(read(base, path)?)
                .with_context(|| format!("{} is not UTF-8", path.display()))?;
            Ok(Some(text.trim().as_bytes().to_vec()))
        }
        (None, None) => Ok(None),
    }
}

fn read(base: &Path, path: &Path) -> anyhow::Result<Vec<u8>> {
    let full = base.join(path);
    std::fs::read(&full).with_context(|| format!("cannot read {}", full.display()))
}
