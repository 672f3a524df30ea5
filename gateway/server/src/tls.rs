//! The server's TLS identity: a configured certificate, or a self-signed
//! dev certificate generated once and kept under the data dir.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest as _, Sha256};
use tracing::info;

use crate::tenants::write_private;

/// Where the dev certificate lives; clients pass it as `--ca`.
pub fn dev_cert_path(data_dir: &Path) -> PathBuf {
    data_dir.join("tls").join("dev-cert.pem")
}

fn dev_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("tls").join("dev-key.pem")
}

/// A certificate chain and its key.
#[derive(Debug)]
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Identity {
    /// Loads the configured certificate, or the dev one (creating it on
    /// first use). Logs the leaf's SHA-256 fingerprint either way.
    pub fn load_or_create(
        cert: Option<&Path>,
        key: Option<&Path>,
        data_dir: &Path,
    ) -> anyhow::Result<Self> {
        let identity = match (cert, key) {
            (Some(cert), Some(key)) => Self::load(cert, key)?,
            (None, None) => {
                let cert = dev_cert_path(data_dir);
                let key = dev_key_path(data_dir);
                if !cert.exists() {
                    create_dev_certificate(&cert, &key)?;
                    info!(path = %cert.display(), "generated a self-signed dev certificate");
                }
                Self::load(&cert, &key)?
            }
            _ => bail!("set both server.cert and server.key, or neither for a dev certificate"),
        };
        if let Some(leaf) = identity.chain.first() {
            info!(sha256 = %fingerprint(leaf), "TLS certificate");
        }
        Ok(identity)
    }

    fn load(cert: &Path, key: &Path) -> anyhow::Result<Self> {
        let cert_pem = std::fs::read(cert)
            .with_context(|| format!("cannot read certificate {}", cert.display()))?;
        let chain = rustls_pemfile::certs(&mut cert_pem.as_slice())
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("{} holds no valid PEM certificate", cert.display()))?;
        if chain.is_empty() {
            bail!("{} holds no certificate", cert.display());
        }
        let key_pem =
            std::fs::read(key).with_context(|| format!("cannot read key {}", key.display()))?;
        let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
            .with_context(|| format!("{} holds no valid PEM private key", key.display()))?
            .with_context(|| format!("{} holds no private key", key.display()))?;
        Ok(Self { chain, key })
    }

    /// The rustls server config for QUIC: TLS 1.3 only, the given ALPNs.
    pub fn server_config(&self, alpn: &[&[u8]]) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .context("certificate and key do not match")?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        // 0-RTT replays would let an attacker repeat a publish; not offered.
        config.max_early_data_size = 0;
        Ok(Arc::new(config))
    }
}

/// Hex SHA-256 of a DER certificate, colon-separated like browsers show it.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    Sha256::digest(cert.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn create_dev_certificate(cert: &Path, key: &Path) -> anyhow::Result<()> {
    let names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let certified =
        rcgen::generate_simple_self_signed(names).context("cannot generate the dev certificate")?;
    write_private(key, certified.signing_key.serialize_pem().as_bytes())?;
    if let Some(dir) = cert.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(cert, certified.cert.pem())
        .with_context(|| format!("cannot write {}", cert.display()))?;
    Ok(())
}
