use std::time::Duration;

/// Every way a storage call can fail. Messages say what to do next.
// Clone: the embedded store's writer hands one commit failure to every
// caller of the group.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend cannot be reached or is overloaded. Nothing was written;
    /// the same call may succeed later.
    #[error("store unavailable: {reason}; nothing was written, retry after {retry_after:?}")]
    Unavailable {
        reason: String,
        retry_after: Duration,
    },
    /// Data on disk or in the database does not decode. Needs an operator.
    #[error("stored data is corrupt ({what}); restore the data directory from a backup")]
    Corrupt { what: String },
    /// The input breaks a rule the store enforces (for example an empty
    /// tenant). A bug in the caller.
    #[error("invalid storage request: {0}")]
    Invalid(String),
    /// An I/O error from the embedded engine.
    #[error("storage I/O failed: {0}; check the data directory's disk and permissions")]
    Io(String),
    /// The database refused the request for a reason a retry will not fix
    /// (for example a schema that does not match this release). Needs an
    /// operator.
    #[error("the database rejected the request: {0}; check the schema and the database's logs")]
    Backend(String),
    /// The store is shutting down.
    #[error("store is closed")]
    Closed,
}

impl StoreError {
    /// Whether the failed call may succeed if retried unchanged.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }
}
