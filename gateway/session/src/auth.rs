//! Token verification. A connection's tenant comes only from a verified
//! token: the `tenant` claim picks which keys to verify with, and the
//! signature then vouches for the claim.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::channel::ChannelPatterns;
use crate::limits::LimitOverrides;

/// Longest token accepted; real tokens are a few hundred bytes.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// One key a tenant's tokens may be signed with.
#[derive(Clone)]
pub enum TenantKey {
    /// Shared secret for HS256.
    Hs256(Vec<u8>),
    /// PEM public key for RS256.
    Rs256(DecodingKey),
    /// PEM public key for EdDSA (Ed25519).
    EdDsa(DecodingKey),
}

impl std::fmt::Debug for TenantKey {
    // Never print key material, not even a public key's bytes: logs are
    // shipped to places secrets must not go.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TenantKey::Hs256(_) => "Hs256(<secret>)",
            TenantKey::Rs256(_) => "Rs256(<public key>)",
            TenantKey::EdDsa(_) => "EdDsa(<public key>)",
        })
    }
}

impl TenantKey {
    pub fn rs256_pem(pem: &[u8]) -> Result<Self, jsonwebtoken::errors::Error> {
        DecodingKey::from_rsa_pem(pem).map(TenantKey::Rs256)
    }

    pub fn eddsa_pem(pem: &[u8]) -> Result<Self, jsonwebtoken::errors::Error> {
        DecodingKey::from_ed_pem(pem).map(TenantKey::EdDsa)
    }

    fn algorithm(&self) -> Algorithm {
        match self {
            TenantKey::Hs256(_) => Algorithm::HS256,
            TenantKey::Rs256(_) => Algorithm::RS256,
            TenantKey::EdDsa(_) => Algorithm::EdDSA,
        }
    }

    fn decoding_key(&self) -> DecodingKey {
        match self {
            TenantKey::Hs256(secret) => DecodingKey::from_secret(secret),
            TenantKey::Rs256(key) | TenantKey::EdDsa(key) => key.clone(),
        }
    }
}

/// What the gateway knows about one tenant to admit its users.
#[derive(Clone, Debug)]
pub struct Tenant {
    pub id: Arc<str>,
    pub keys: Vec<TenantKey>,
    pub limits: LimitOverrides,
}

/// The claims Quiver reads from a token (and writes when it mints one).
#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq, Eq)]
pub struct Claims {
    /// The user id; becomes the `sender` of the user's messages.
    pub sub: String,
    pub tenant: String,
    /// Expiry, Unix seconds.
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Channel patterns the user may subscribe to (and read history of).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribe: Option<Vec<String>>,
    /// Channel patterns the user may publish to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish: Option<Vec<String>>,
    /// Entity ids (or `prefix*` patterns) the user may report positions
    /// for. Unlike the channel claims, a token without it may track
    /// nothing: reporting where something is needs an explicit grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track: Option<Vec<String>>,
}

impl Claims {
    /// Signs these claims with a tenant's HS256 secret.
    pub fn sign_hs256(&self, secret: &[u8]) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS256),
            self,
            &jsonwebtoken::EncodingKey::from_secret(secret),
        )
    }
}

/// A verified user of a tenant, with what the token allows.
#[derive(Clone, Debug)]
pub struct Identity {
    pub tenant: Arc<str>,
    pub user: Arc<str>,
    pub subscribe: ChannelPatterns,
    pub publish: ChannelPatterns,
    /// Entities the user may report positions for.
    pub track: ChannelPatterns,
    pub expires_at_secs: u64,
    /// The verified claims as JSON, for the tenant's on-connect plugins.
    pub claims_json: String,
}

/// Why a token was refused. Shown to the client, so it names the problem
/// without echoing the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    #[error("no token: put a JWT in Hello.token")]
    Missing,
    #[error("token is {0} bytes; the limit is {MAX_TOKEN_BYTES}")]
    TooLong(usize),
    #[error("token is not a JWT (expected header.payload.signature in base64url)")]
    Malformed,
    #[error("unsigned tokens (alg \"none\") are refused; sign with HS256, RS256 or EdDSA")]
    Unsigned,
    #[error("token has no string `tenant` claim")]
    NoTenant,
    #[error("unknown tenant {0:?}")]
    UnknownTenant(String),
    #[error("token signature does not verify with any key of tenant {0:?}")]
    BadSignature(String),
    #[error("token claims are invalid: {0}")]
    InvalidClaims(String),
    #[error("token expired at {exp} (server time {now}); get a fresh token")]
    Expired { exp: u64, now: u64 },
    #[error("token is not valid before {nbf} (server time {now})")]
    NotYetValid { nbf: u64, now: u64 },
}

/// Verifies tokens against the configured tenants. Shared by every
/// connection; immutable once built.
#[derive(Debug, Default)]
pub struct Authenticator {
    tenants: HashMap<Arc<str>, Tenant>,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    leeway_secs: u64,
}

impl Authenticator {
    pub fn new(tenants: impl IntoIterator<Item = Tenant>) -> Self {
        Self {
            tenants: tenants.into_iter().map(|t| (t.id.clone(), t)).collect(),
            leeway_secs: 30,
        }
    }

    pub fn tenant(&self, id: &str) -> Option<&Tenant> {
        self.tenants.get(id)
    }

    /// Verifies `token` at Unix time `now_secs` (passed in so tests control
    /// the clock).
    pub fn verify(&self, token: &str, now_secs: u64) -> Result<(Identity, &Tenant), AuthError> {
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::TooLong(token.len()));
        }
        let (header, payload) = split_unverified(token)?;
        if header_alg(&header)?.eq_ignore_ascii_case("none") {
            return Err(AuthError::Unsigned);
        }
        let tenant_id = unverified_tenant(&payload)?;
        let tenant = self
            .tenants
            .get(tenant_id.as_str())
            .ok_or(AuthError::UnknownTenant(tenant_id.clone()))?;

        let claims = self.verify_signature(token, tenant)?;
        if claims.tenant != *tenant.id {
            return Err(AuthError::BadSignature(tenant_id));
        }
        if claims.exp.saturating_add(self.leeway_secs) < now_secs {
            return Err(AuthError::Expired {
                exp: claims.exp,
                now: now_secs,
            });
        }
        if let Some(nbf) = claims.nbf
            && nbf > now_secs.saturating_add(self.leeway_secs)
        {
            return Err(AuthError::NotYetValid { nbf, now: now_secs });
        }
        if claims.sub.is_empty() || claims.sub.len() > 255 {
            return Err(AuthError::InvalidClaims(
                "`sub` must be 1 to 255 bytes".into(),
            ));
        }
        let claims_json = serde_json::to_string(&claims).unwrap_or_default();
        let identity = Identity {
            claims_json,
            tenant: tenant.id.clone(),
            user: claims.sub.into(),
            subscribe: ChannelPatterns::from_claim(claims.subscribe),
            publish: ChannelPatterns::from_claim(claims.publish),
            track: ChannelPatterns::from_claim(Some(claims.track.unwrap_or_default())),
            expires_at_secs: claims.exp,
        };
        Ok((identity, tenant))
    }

    fn verify_signature(&self, token: &str, tenant: &Tenant) -> Result<Claims, AuthError> {
        let mut last_claims_error = None;
        for key in &tenant.keys {
            let mut validation = Validation::new(key.algorithm());
            // exp and nbf are checked against the caller's clock above.
            validation.validate_exp = false;
            validation.validate_nbf = false;
            validation.set_required_spec_claims(&["exp", "sub"]);
            match jsonwebtoken::decode::<Claims>(token, &key.decoding_key(), &validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) => {
                    use jsonwebtoken::errors::ErrorKind;
                    match e.kind() {
                        ErrorKind::MissingRequiredClaim(_) | ErrorKind::Json(_) => {
                            last_claims_error = Some(e.to_string());
                        }
                        _ => {}
                    }
                }
            }
        }
        Err(match last_claims_error {
            Some(reason) => AuthError::InvalidClaims(reason),
            None => AuthError::BadSignature(tenant.id.to_string()),
        })
    }
}

fn split_unverified(token: &str) -> Result<(Vec<u8>, Vec<u8>), AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed);
    };
    let decode = |s: &str| URL_SAFE_NO_PAD.decode(s).map_err(|_| AuthError::Malformed);
    Ok((decode(header)?, decode(payload)?))
}

fn header_alg(header: &[u8]) -> Result<String, AuthError> {
    #[derive(Deserialize)]
    struct Header {
        alg: String,
    }
    serde_json::from_slice::<Header>(header)
        .map(|h| h.alg)
        .map_err(|_| AuthError::Malformed)
}

fn unverified_tenant(payload: &[u8]) -> Result<String, AuthError> {
    #[derive(Deserialize)]
    struct Peek {
        tenant: Option<String>,
    }
    serde_json::from_slice::<Peek>(payload)
        .map_err(|_| AuthError::Malformed)?
        .tenant
        .ok_or(AuthError::NoTenant)
}
