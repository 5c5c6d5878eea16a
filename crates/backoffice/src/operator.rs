//! Operators, their console sessions and the audit log: the back office's own state.

use std::sync::Arc;

use ledger::{Clock, Micros};
use membership::{Email, Hasher, Password, SessionToken};
use sqlx::Row;
use storage::Db;

use crate::error::BackofficeError;

ids::ulid_id!(
    /// An operator's id, `opr_` + a canonical ULID.
    OperatorId,
    "opr_"
);

ids::ulid_id!(
    /// An audit entry's id, `aud_` + a canonical ULID (ordered by time).
    AuditId,
    "aud_"
);

/// How long a console session lasts after login: a working day.
pub const CONSOLE_SESSION_TTL_S: i64 = 8 * 3_600;
/// The longest operator name.
pub const OPERATOR_NAME_CHARS_MAX: usize = 100;
/// The most audit entries one page shows.
pub const AUDIT_PAGE_MAX: i64 = 200;

/// A person with a console login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub id: OperatorId,
    pub email: String,
    pub name: String,
    pub created_at: Micros,
}

/// A live console session: who, and the token every form must carry back.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    pub operator: Operator,
    /// Compared with the `csrf` field of every POST; never a credential by itself.
    pub csrf_token: String,
    pub expires_at: Micros,
}

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: String,
    pub operator_id: String,
    pub operator_email: String,
    pub action: String,
    pub target: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub at: Micros,
}

/// Operators, console sessions and the audit log.
#[derive(Clone)]
pub struct Backoffice {
    db: Db,
    clock: Arc<dyn Clock>,
    hasher: Arc<Hasher>,
}

impl std::fmt::Debug for Backoffice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backoffice").finish_non_exhaustive()
    }
}

impl Backoffice {
    pub fn new(db: Db, clock: Arc<dyn Clock>) -> Backoffice {
        Backoffice {
            db,
            clock,
            hasher: Arc::new(Hasher::new()),
        }
    }

    /// Creates an operator. The address and password follow members' rules.
    pub async fn create_operator(
        &self,
        email: &str,
        name: &str,
        password: String,
    ) -> Result<Operator, BackofficeError> {
        let email = Email::parse(email).map_err(|_| BackofficeError::EmailInvalid)?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > OPERATOR_NAME_CHARS_MAX {
            return Err(BackofficeError::NameInvalid);
        }
        let password = Password::parse(password).map_err(|_| BackofficeError::PasswordInvalid)?;
        let hash = self.hasher.hash(&password).await?;
        let operator = Operator {
            id: OperatorId::generate(),
            email: email.as_str().to_owned(),
            name: name.to_owned(),
            created_at: self.clock.now_micros(),
        };
        let inserted = sqlx::query(
            "INSERT INTO operators (id, email, name, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(operator.id.as_str())
        .bind(&operator.email)
        .bind(&operator.name)
        .bind(&hash)
        .bind(operator.created_at)
        .execute(self.db.pool())
        .await;
        match inserted {
            Ok(_) => Ok(operator),
            Err(error) if self.db.backend().is_unique_violation(&error) => {
                Err(BackofficeError::EmailTaken)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Logs an operator in: a new session and its token (for the cookie; only its digest is
    /// stored). A wrong address costs as much as a wrong password, and both answer the same.
    pub async fn log_in(
        &self,
        email: &str,
        password: String,
    ) -> Result<(SessionToken, ConsoleSession), BackofficeError> {
        let password =
            Password::presented(password).map_err(|_| BackofficeError::InvalidCredentials)?;
        let row = match Email::parse(email) {
            Ok(email) => {
                sqlx::query(
                    "SELECT id, email, name, password_hash, created_at FROM operators \
                 WHERE email = $1 AND disabled_at IS NULL",
                )
                .bind(email.as_str())
                .fetch_optional(self.db.pool())
                .await?
            }
            Err(_) => None,
        };
        let Some(row) = row else {
            self.hasher.verify_dummy(&password).await?;
            return Err(BackofficeError::InvalidCredentials);
        };
        let hash: String = row.try_get("password_hash")?;
        if !self.hasher.verify(&password, &hash).await? {
            return Err(BackofficeError::InvalidCredentials);
        }
        let operator = operator_from_row(&row)?;
        let token = SessionToken::generate()?;
        let csrf_token = SessionToken::generate()?.expose().to_owned();
        let now = self.clock.now_micros();
        let expires_at = now + CONSOLE_SESSION_TTL_S * 1_000_000;
        sqlx::query(
            "INSERT INTO console_sessions (token_digest, operator_id, csrf_token, created_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token.digest())
        .bind(operator.id.as_str())
        .bind(&csrf_token)
        .bind(now)
        .bind(expires_at)
        .execute(self.db.pool())
        .await?;
        let session = ConsoleSession {
            operator,
            csrf_token,
            expires_at,
        };
        let target = session.operator.id.to_string();
        self.audit(&session.operator, "console.log_in", &target, None, None)
            .await?;
        Ok((token, session))
    }

    /// The live session a cookie's token names, if any (expired sessions and disabled
    /// operators have none).
    pub async fn session(&self, token: &str) -> Result<Option<ConsoleSession>, BackofficeError> {
        let Some(token) = SessionToken::parse(token) else {
            return Ok(None);
        };
        let row = sqlx::query(
            "SELECT o.id, o.email, o.name, o.created_at, s.csrf_token, s.expires_at \
             FROM console_sessions s JOIN operators o ON o.id = s.operator_id \
             WHERE s.token_digest = $1 AND s.expires_at > $2 AND o.disabled_at IS NULL",
        )
        .bind(token.digest())
        .bind(self.clock.now_micros())
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|row| {
            Ok(ConsoleSession {
                operator: operator_from_row(&row)?,
                csrf_token: row.try_get("csrf_token")?,
                expires_at: row.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    /// Ends the session a token names (nothing happens for an unknown one).
    pub async fn log_out(&self, token: &str) -> Result<(), BackofficeError> {
        let Some(token) = SessionToken::parse(token) else {
            return Ok(());
        };
        sqlx::query("DELETE FROM console_sessions WHERE token_digest = $1")
            .bind(token.digest())
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    /// Records that `operator` did `action` to `target`, with the state before and after.
    pub async fn audit(
        &self,
        operator: &Operator,
        action: &str,
        target: &str,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    ) -> Result<(), BackofficeError> {
        sqlx::query(
            "INSERT INTO audit_log (id, operator_id, operator_email, action, target, \
             before_state, after_state, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(AuditId::generate().as_str())
        .bind(operator.id.as_str())
        .bind(&operator.email)
        .bind(action)
        .bind(target)
        .bind(before.map(|v| v.to_string()))
        .bind(after.map(|v| v.to_string()))
        .bind(self.clock.now_micros())
        .execute(self.db.pool())
        .await?;
        tracing::info!(operator = %operator.id, action, target, "console action");
        Ok(())
    }

    /// Audit entries newest first, before the entry `before` (exclusive), at most `limit`.
    pub async fn audit_log(
        &self,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, BackofficeError> {
        let rows = sqlx::query(
            "SELECT id, operator_id, operator_email, action, target, before_state, after_state, \
             at FROM audit_log WHERE id < $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(before.unwrap_or("aud_~"))
        .bind(limit.clamp(1, AUDIT_PAGE_MAX))
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditEntry {
                    id: row.try_get("id")?,
                    operator_id: row.try_get("operator_id")?,
                    operator_email: row.try_get("operator_email")?,
                    action: row.try_get("action")?,
                    target: row.try_get("target")?,
                    before: row.try_get("before_state")?,
                    after: row.try_get("after_state")?,
                    at: row.try_get("at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(BackofficeError::from)
    }
}

fn operator_from_row(row: &sqlx::any::AnyRow) -> Result<Operator, BackofficeError> {
    Ok(Operator {
        id: OperatorId::from_stored(row.try_get("id")?),
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
    })
}
