//! The floor's TLS and QUIC settings, made to match the gateway's: rustls
//! with the ring provider, TLS 1.3 only, no 0-RTT, one certificate (the
//! gateway's own PEM files when given, else a self-signed P-256 like the
//! gateway's dev certificate), and the gateway's transport windows.
//! Only the ALPN differs (`quiver-floor/1`), because the protocol does.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use quiver_client::{Trust, rustls_client_config};
use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub const ALPN: &[u8] = b"quiver-floor/1";

/// The server config: the gateway's transport settings
/// (gateway/server/src/quic/config.rs) with the floor's ALPN.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    idle_timeout: Duration,
) -> anyhow::Result<quinn::ServerConfig> {
    let provider = Arc::new(ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("certificate and key do not match")?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    tls.max_early_data_size = 0;
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .context("TLS config is not usable for QUIC")?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_concurrent_bidi_streams(8u32.into())
        .max_concurrent_uni_streams(0u32.into())
        .max_idle_timeout(Some(idle_timeout.try_into().context("idle timeout")?))
        .stream_receive_window((256u32 * 1024).into())
        .receive_window((1024u32 * 1024).into())
        .send_window(2 * 1024 * 1024)
        .keep_alive_interval(None)
        .datagram_receive_buffer_size(None);
    server.transport_config(Arc::new(transport));
    server.migration(true);
    Ok(server)
}

/// Loads a PEM chain and key (e.g. the gateway's `tls/dev-cert.pem` and
/// `tls/dev-key.pem`), or makes a self-signed one for localhost.
pub fn identity(
    cert: Option<&Path>,
    key: Option<&Path>,
) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    match (cert, key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .with_context(|| format!("cannot read {}", cert.display()))?
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("{} holds a bad certificate", cert.display()))?;
            if chain.is_empty() {
                bail!("{} holds no certificate", cert.display());
            }
            let key = PrivateKeyDer::from_pem_file(key)
                .with_context(|| format!("cannot read a private key from {}", key.display()))?;
            Ok((chain, key))
        }
        (None, None) => {
            let names = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
            let made = rcgen::generate_simple_self_signed(names).context("rcgen")?;
            let key = PrivateKeyDer::try_from(made.signing_key.serialize_der())
                .map_err(|e| anyhow::anyhow!("generated key: {e}"))?;
            Ok((vec![made.cert.der().clone()], key))
        }
        _ => bail!("pass both --cert and --key, or neither for a self-signed certificate"),
    }
}

/// The thin clients' config: same trust choices as the gateway clients.
pub fn client_config(
    trust: &Trust,
    keepalive: Duration,
    idle_timeout: Duration,
) -> anyhow::Result<quinn::ClientConfig> {
    // The gateway client's trust setup (roots or its --insecure verifier),
    // with the floor's ALPN.
    let mut tls = rustls_client_config(trust)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .context("TLS config is not usable for QUIC")?;
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_idle_timeout(Some(idle_timeout.try_into().context("idle timeout")?))
        .keep_alive_interval((!keepalive.is_zero()).then_some(keepalive))
        .max_concurrent_bidi_streams(0u32.into())
        .max_concurrent_uni_streams(0u32.into());
    config.transport_config(Arc::new(transport));
    Ok(config)
}
