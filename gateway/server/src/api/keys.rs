//! Per-tenant API keys of the publish API. A key identifies its tenant, so
//! routes name no tenant and a key can never reach another tenant's data.

use std::sync::Arc;

use axum::http::HeaderMap;

use super::{ApiError, bearer, constant_time_eq};

/// Shortest key accepted from config: shorter ones are guessable.
pub const MIN_API_KEY_BYTES: usize = 16;

/// Every tenant's API keys. Immutable once built; key material is never
/// printed (not even by `Debug`).
#[derive(Clone, Default)]
pub struct ApiKeys {
    /// (key, tenant) pairs. A handful per tenant, so a linear scan that
    /// compares every key in constant time costs nothing and leaks nothing.
    keys: Vec<(Box<[u8]>, Arc<str>)>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

/// Why a set of keys cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiKeyError {
    #[error(
        "an API key of tenant {tenant:?} is {len} bytes; use at least {MIN_API_KEY_BYTES} random characters"
    )]
    TooShort { tenant: String, len: usize },
    #[error("tenants {first:?} and {second:?} share an API key; a key must identify one tenant")]
    Shared { first: String, second: String },
}

impl ApiKeys {
    /// Builds the registry from (tenant, key) pairs.
    pub fn new(pairs: impl IntoIterator<Item = (Arc<str>, String)>) -> Result<Self, ApiKeyError> {
        let mut keys: Vec<(Box<[u8]>, Arc<str>)> = Vec::new();
        for (tenant, key) in pairs {
            let key = key.trim();
            if key.len() < MIN_API_KEY_BYTES {
                return Err(ApiKeyError::TooShort {
                    tenant: tenant.to_string(),
                    len: key.len(),
                });
            }
            if let Some((_, other)) = keys.iter().find(|(k, _)| **k == *key.as_bytes()) {
                if *other == tenant {
                    continue;
                }
                return Err(ApiKeyError::Shared {
                    first: other.to_string(),
                    second: tenant.to_string(),
                });
            }
            keys.push((key.as_bytes().into(), tenant));
        }
        Ok(Self { keys })
    }

    /// Whether no tenant has a key (the publish API then refuses everyone).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The tenant a presented key belongs to. Every key is compared, each in
    /// constant time, so timing tells neither which key nor how much of it
    /// matched.
    pub fn tenant_of(&self, presented: &str) -> Option<Arc<str>> {
        let mut found = None;
        for (key, tenant) in &self.keys {
            if constant_time_eq(presented.as_bytes(), key) {
                found = Some(tenant.clone());
            }
        }
        found
    }

    /// The tenant of the request's `Authorization: Bearer KEY`, or 401.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Arc<str>, ApiError> {
        bearer(headers)
            .and_then(|key| self.tenant_of(key))
            .ok_or_else(|| {
                ApiError::new(
                    axum::http::StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "missing or wrong API key: send Authorization: Bearer <key> with a key of your tenant (`quiver apikey --tenant T` prints one)",
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> ApiKeys {
        ApiKeys::new([
            (Arc::from("acme"), "acme-key-0123456789".to_string()),
            (Arc::from("acme"), "acme-key-second-one".to_string()),
            (Arc::from("globex"), "globex-key-01234567".to_string()),
        ])
        .expect("valid keys")
    }

    #[test]
    fn a_key_names_its_tenant() {
        let keys = keys();
        assert_eq!(
            keys.tenant_of("acme-key-0123456789").as_deref(),
            Some("acme")
        );
        assert_eq!(
            keys.tenant_of("acme-key-second-one").as_deref(),
            Some("acme")
        );
        assert_eq!(
            keys.tenant_of("globex-key-01234567").as_deref(),
            Some("globex")
        );
        assert_eq!(keys.tenant_of("globex-key-0123456"), None);
        assert_eq!(keys.tenant_of(""), None);
    }

    #[test]
    fn short_and_shared_keys_are_refused() {
        assert!(matches!(
            ApiKeys::new([(Arc::from("a"), "short".to_string())]),
            Err(ApiKeyError::TooShort { len: 5, .. })
        ));
        assert!(matches!(
            ApiKeys::new([
                (Arc::from("a"), "same-key-0123456789".to_string()),
                (Arc::from("b"), "same-key-0123456789".to_string()),
            ]),
            Err(ApiKeyError::Shared { .. })
        ));
    }

    #[test]
    fn debug_output_has_no_key_material() {
        let printed = format!("{:?}", keys());
        assert!(!printed.contains("key-"), "{printed}");
    }
}
