//! The session with its prepared statements, the in-flight limit, write
//! timestamps, and the mapping of driver errors to [`StoreError`].

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use scylla::client::session::Session;
use scylla::deserialize::row::DeserializeRow;
use scylla::errors::{DbError, ExecutionError, PrepareError, RequestAttemptError};
use scylla::response::query_result::QueryResult;
use scylla::serialize::row::SerializeRow;
use scylla::statement::batch::Batch;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlValue, Row};
use tokio::sync::Semaphore;

use super::statements::Statements;
use crate::StoreError;

/// How long a caller is told to wait after the database failed to answer.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// A failed request: the error for the caller, and whether the request may
/// still have been applied (a timeout or a connection lost mid-request),
/// which the append path must treat differently from a clean refusal.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) error: StoreError,
    pub(crate) ambiguous: bool,
}

impl From<Failure> for StoreError {
    fn from(failure: Failure) -> Self {
        failure.error
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Self {
            error,
            ambiguous: false,
        }
    }
}

pub(crate) fn unavailable(reason: impl Into<String>) -> StoreError {
    StoreError::Unavailable {
        reason: reason.into(),
        retry_after: RETRY_AFTER,
    }
}

pub(crate) struct Db {
    pub(crate) session: Session,
    pub(crate) st: Statements,
    /// Bounds the requests in flight (`max_in_flight`).
    permits: Semaphore,
    /// How long a request waits for a permit before failing.
    permit_wait: Duration,
    /// Last write timestamp handed out, in microseconds.
    clock: AtomicI64,
}

impl Db {
    pub(crate) fn new(
        session: Session,
        st: Statements,
        max_in_flight: usize,
        wait: Duration,
    ) -> Self {
        Self {
            session,
            st,
            permits: Semaphore::new(max_in_flight),
            permit_wait: wait,
            clock: AtomicI64::new(0),
        }
    }

    async fn permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, Failure> {
        match tokio::time::timeout(self.permit_wait, self.permits.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(StoreError::Closed.into()),
            Err(_) => Err(unavailable(
                "too many database requests in flight (max_in_flight); the database is slow or down",
            )
            .into()),
        }
    }

    /// Executes a prepared statement within the in-flight limit.
    pub(crate) async fn exec(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<QueryResult, Failure> {
        let _permit = self.permit().await?;
        self.session
            .execute_unpaged(statement, values)
            .await
            .map_err(|e| map_execution(&e))
    }

    /// Executes a batch of prepared statements within the in-flight limit.
    pub(crate) async fn batch<V: scylla::serialize::batch::BatchValues>(
        &self,
        batch: &Batch,
        values: V,
    ) -> Result<QueryResult, Failure> {
        let _permit = self.permit().await?;
        self.session
            .batch(batch, values)
            .await
            .map_err(|e| map_execution(&e))
    }

    /// Executes a query and deserializes every row as `R`.
    pub(crate) async fn rows<R>(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<Vec<R>, Failure>
    where
        R: for<'f, 'm> DeserializeRow<'f, 'm>,
    {
        let result = self.exec(statement, values).await?;
        let rows = result.into_rows_result().map_err(|e| corrupt(&e))?;
        let out = rows
            .rows::<R>()
            .map_err(|e| corrupt(&e))?
            .collect::<Result<Vec<R>, _>>();
        out.map_err(|e| corrupt(&e).into())
    }

    /// Executes a query page by page (for scans that may be large) and
    /// deserializes every row as `R`.
    pub(crate) async fn rows_paged<R>(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<Vec<R>, Failure>
    where
        R: for<'f, 'm> DeserializeRow<'f, 'm> + Unpin,
    {
        use futures::TryStreamExt;
        let _permit = self.permit().await?;
        let pager = self
            .session
            .execute_iter(statement.clone(), values)
            .await
            .map_err(|e| unavailable(format!("database scan failed: {e}")))?;
        let rows = pager.rows_stream::<R>().map_err(|e| corrupt(&e))?;
        rows.try_collect()
            .await
            .map_err(|e| unavailable(format!("database scan failed: {e}")).into())
    }

    /// Executes a query expected to return at most one row.
    pub(crate) async fn row<R>(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<Option<R>, Failure>
    where
        R: for<'f, 'm> DeserializeRow<'f, 'm>,
    {
        Ok(self.rows(statement, values).await?.into_iter().next())
    }

    /// Executes a lightweight transaction; returns whether it was applied.
    pub(crate) async fn lwt(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<bool, Failure> {
        let result = self.exec(statement, values).await?;
        let rows = result.into_rows_result().map_err(|e| corrupt(&e))?;
        let row = rows.first_row::<Row>().map_err(|e| corrupt(&e))?;
        match row.columns.first() {
            Some(Some(CqlValue::Boolean(applied))) => Ok(*applied),
            other => Err(corrupt(&format!("LWT result without [applied]: {other:?}")).into()),
        }
    }

    /// A write timestamp in microseconds: wall clock, but strictly above
    /// every one handed out before, so this store's writes of one row are
    /// ordered even within one microsecond.
    pub(crate) fn next_timestamp(&self) -> i64 {
        let now = now_micros();
        let prev = self
            .clock
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
                Some(now.max(last + 1))
            })
            .unwrap_or(now);
        now.max(prev + 1)
    }
}

pub(crate) fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

pub(crate) fn now_ms() -> i64 {
    now_micros() / 1000
}

fn corrupt(err: &dyn std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what: format!("unexpected result from the database: {err}"),
    }
}

/// Maps a driver error: anything that a retry may fix is `Unavailable`
/// (retryable); a request the database rejects is `Backend`.
pub(crate) fn map_execution(err: &ExecutionError) -> Failure {
    let retryable = |ambiguous| Failure {
        error: unavailable(format!("database request failed: {err}")),
        ambiguous,
    };
    match err {
        ExecutionError::RequestTimeout(_) => retryable(true),
        ExecutionError::ConnectionPoolError(_) | ExecutionError::EmptyPlan => retryable(false),
        ExecutionError::PrepareError(e) => map_prepare(e),
        ExecutionError::LastAttemptError(attempt) => map_attempt(attempt, err),
        _ => Failure {
            error: StoreError::Backend(format!("{err}")),
            ambiguous: false,
        },
    }
}

pub(crate) fn map_prepare(err: &PrepareError) -> Failure {
    match err {
        PrepareError::AllAttemptsFailed {
            first_attempt: RequestAttemptError::DbError(db, _),
        } if !transient(db) => Failure {
            error: StoreError::Backend(format!("cannot prepare a statement: {err}")),
            ambiguous: false,
        },
        _ => Failure {
            error: unavailable(format!("cannot prepare a statement: {err}")),
            ambiguous: false,
        },
    }
}

fn map_attempt(attempt: &RequestAttemptError, err: &ExecutionError) -> Failure {
    let failure = |ambiguous| Failure {
        error: unavailable(format!("database request failed: {err}")),
        ambiguous,
    };
    match attempt {
        RequestAttemptError::UnableToAllocStreamId => failure(false),
        RequestAttemptError::BrokenConnectionError(_) => failure(true),
        RequestAttemptError::DbError(db, _) if transient(db) => {
            // Unavailable and overload are refusals before any write; the
            // rest may have reached some replicas.
            let refused = matches!(
                db,
                DbError::Unavailable { .. }
                    | DbError::Overloaded
                    | DbError::IsBootstrapping
                    | DbError::RateLimitReached { .. }
            );
            failure(!refused)
        }
        _ => Failure {
            error: StoreError::Backend(format!("{err}")),
            ambiguous: false,
        },
    }
}

/// Database errors that a retry later may fix.
fn transient(db: &DbError) -> bool {
    matches!(
        db,
        DbError::Unavailable { .. }
            | DbError::Overloaded
            | DbError::IsBootstrapping
            | DbError::ReadTimeout { .. }
            | DbError::WriteTimeout { .. }
            | DbError::ReadFailure { .. }
            | DbError::WriteFailure { .. }
            | DbError::RateLimitReached { .. }
            | DbError::ServerError
            | DbError::TruncateError
    )
}
