//! Every SQL statement of membership, written once for SQLite and PostgreSQL with `$N`
//! placeholders (which both accept). Nothing here decides what is allowed.

use ledger::Micros;
use sqlx::{Any, AnyConnection, Transaction};
use storage::Db;

use crate::domain::{Email, MemberId, MemberName, Phone, SessionId};
use crate::member::{Member, MemberStatus, Session};
use crate::MemberError;

const MEMBER_COLUMNS: &str =
    "id, email, phone, name, status, created_at, updated_at, closed_at, password_hash";

/// A stored member row: the columns of [`MEMBER_COLUMNS`], in order.
type MemberRow = (
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    String,
);

/// A member and their password hash, which only the service sees.
pub(crate) struct StoredMember {
    pub member: Member,
    pub password_hash: String,
}

fn stored_member(row: MemberRow) -> Result<StoredMember, MemberError> {
    let (id, email, phone, name, status, created_at, updated_at, closed_at, password_hash) = row;
    let status = MemberStatus::from_db(&status)
        .ok_or_else(|| MemberError::Internal(format!("member {id} has unknown status")))?;
    Ok(StoredMember {
        member: Member {
            id: MemberId::from_stored(id),
            email: Email::from_db(email),
            phone: Phone::from_db(phone),
            name: MemberName::from_db(name),
            status,
            created_at,
            updated_at,
            closed_at,
        },
        password_hash,
    })
}

pub(crate) async fn insert_member(
    db: &Db,
    member: &Member,
    password_hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO members (id, email, phone, name, password_hash, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(member.id.as_str())
    .bind(member.email.as_str())
    .bind(member.phone.as_str())
    .bind(member.name.as_str())
    .bind(password_hash)
    .bind(member.status.as_str())
    .bind(member.created_at)
    .bind(member.updated_at)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Which of an email address and a phone number active members already use: (email, phone).
pub(crate) async fn taken(
    db: &Db,
    email: Option<&Email>,
    phone: Option<&Phone>,
    except: Option<&MemberId>,
) -> Result<(bool, bool), sqlx::Error> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT email, phone FROM members \
         WHERE status = 'active' AND (email = $1 OR phone = $2) AND id <> $3",
    )
    .bind(email.map(Email::as_str).unwrap_or_default())
    .bind(phone.map(Phone::as_str).unwrap_or_default())
    .bind(except.map(MemberId::as_str).unwrap_or_default())
    .fetch_all(db.pool())
    .await?;
    let email_taken = email.is_some_and(|e| rows.iter().any(|(found, _)| found == e.as_str()));
    let phone_taken = phone.is_some_and(|p| rows.iter().any(|(_, found)| found == p.as_str()));
    Ok((email_taken, phone_taken))
}

pub(crate) async fn member_by_id(
    db: &Db,
    id: &MemberId,
) -> Result<Option<StoredMember>, MemberError> {
    member_where(db, "id = $1", id.as_str()).await
}

/// The active member with this email address, if any.
pub(crate) async fn active_member_by_email(
    db: &Db,
    email: &Email,
) -> Result<Option<StoredMember>, MemberError> {
    member_where(db, "email = $1 AND status = 'active'", email.as_str()).await
}

/// The active member with this phone number, if any.
pub(crate) async fn active_member_by_phone(
    db: &Db,
    phone: &Phone,
) -> Result<Option<StoredMember>, MemberError> {
    member_where(db, "phone = $1 AND status = 'active'", phone.as_str()).await
}

/// The member matching a fixed condition with one parameter; both lookups are unique.
async fn member_where(
    db: &Db,
    condition: &'static str,
    value: &str,
) -> Result<Option<StoredMember>, MemberError> {
    let row: Option<MemberRow> = sqlx::query_as(&format!(
        "SELECT {MEMBER_COLUMNS} FROM members WHERE {condition}"
    ))
    .bind(value)
    .fetch_optional(db.pool())
    .await?;
    row.map(stored_member).transpose()
}

/// The new values of a profile update; `None` keeps the stored value.
pub(crate) struct ProfileUpdate<'a> {
    pub name: Option<&'a MemberName>,
    pub email: Option<&'a Email>,
    pub phone: Option<&'a Phone>,
    /// The new hash, and the hash it replaces: the update only applies if the stored hash is
    /// still the one the current password was verified against.
    pub password_hash: Option<(&'a str, &'a str)>,
}

/// Updates an active member; returns whether a row changed.
pub(crate) async fn update_member(
    tx: &mut Transaction<'static, Any>,
    id: &MemberId,
    update: &ProfileUpdate<'_>,
    now: Micros,
) -> Result<bool, sqlx::Error> {
    let (new_hash, old_hash) = update.password_hash.unzip();
    let done = sqlx::query(
        "UPDATE members SET \
             name = COALESCE($1, name), email = COALESCE($2, email), \
             phone = COALESCE($3, phone), password_hash = COALESCE($4, password_hash), \
             updated_at = $5 \
         WHERE id = $6 AND status = 'active' AND ($7 IS NULL OR password_hash = $7)",
    )
    .bind(update.name.map(|n| n.as_str().to_owned()))
    .bind(update.email.map(|e| e.as_str().to_owned()))
    .bind(update.phone.map(|p| p.as_str().to_owned()))
    .bind(new_hash.map(str::to_owned))
    .bind(now)
    .bind(id.as_str())
    .bind(old_hash.map(str::to_owned))
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Closes an active member; returns whether a row changed.
pub(crate) async fn close_member(
    tx: &mut Transaction<'static, Any>,
    id: &MemberId,
    now: Micros,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE members SET status = 'closed', closed_at = $1, updated_at = $1 \
         WHERE id = $2 AND status = 'active'",
    )
    .bind(now)
    .bind(id.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Stores a new session and keeps at most `live_max` per member. Dead sessions (revoked or
/// expired) of the member are deleted first; then, past the limit, the oldest live ones are,
/// which logs out the member's least recently signed-in device.
pub(crate) async fn insert_session(
    conn: &mut AnyConnection,
    session: &Session,
    token_sha256: &str,
    live_max: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM member_sessions \
         WHERE member_id = $1 AND (revoked_at IS NOT NULL OR expires_at <= $2)",
    )
    .bind(session.member_id.as_str())
    .bind(session.created_at)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO member_sessions (id, member_id, token_sha256, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(session.id.as_str())
    .bind(session.member_id.as_str())
    .bind(token_sha256)
    .bind(session.created_at)
    .bind(session.expires_at)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "DELETE FROM member_sessions WHERE member_id = $1 AND id NOT IN ( \
             SELECT id FROM member_sessions WHERE member_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT $2)",
    )
    .bind(session.member_id.as_str())
    .bind(live_max)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The live session with this token digest: not revoked, not expired, of an active member.
pub(crate) async fn live_session(
    db: &Db,
    token_sha256: &str,
    now: Micros,
) -> Result<Option<Session>, sqlx::Error> {
    let row: Option<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT s.id, s.member_id, s.created_at, s.expires_at \
         FROM member_sessions s JOIN members m ON m.id = s.member_id \
         WHERE s.token_sha256 = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 \
           AND m.status = 'active'",
    )
    .bind(token_sha256)
    .bind(now)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.map(|(id, member_id, created_at, expires_at)| Session {
        id: SessionId::from_stored(id),
        member_id: MemberId::from_stored(member_id),
        created_at,
        expires_at,
    }))
}

pub(crate) async fn revoke_session(
    db: &Db,
    id: &SessionId,
    now: Micros,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE member_sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(id.as_str())
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Revokes every live session of a member.
pub(crate) async fn revoke_member_sessions(
    tx: &mut Transaction<'static, Any>,
    member_id: &MemberId,
    now: Micros,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE member_sessions SET revoked_at = $1 WHERE member_id = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(member_id.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// When the lock on this email address ends, if it is locked at `now`.
pub(crate) async fn locked_until(
    db: &Db,
    email: &Email,
    now: Micros,
) -> Result<Option<Micros>, sqlx::Error> {
    let row: Option<(i64,)> = sqlx::query_as(
        "SELECT locked_until FROM member_login_throttle WHERE email = $1 AND locked_until > $2",
    )
    .bind(email.as_str())
    .bind(now)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.map(|(until,)| until))
}

/// Counts a failed password check for this address, and locks the address until
/// `now + lock_micros` when it reaches `failures_max` within `window_micros`. One upsert counts
/// atomically, so concurrent failures on PostgreSQL are all counted. Rows whose window and lock
/// are both over are pruned on the way, which bounds the table by the addresses that failed
/// within one window.
pub(crate) async fn record_failure(
    db: &Db,
    email: &Email,
    now: Micros,
    window_micros: Micros,
    failures_max: i64,
    lock_micros: Micros,
) -> Result<(), sqlx::Error> {
    let window_start = now - window_micros;
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "DELETE FROM member_login_throttle \
         WHERE window_started_at <= $1 AND (locked_until IS NULL OR locked_until <= $2)",
    )
    .bind(window_start)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let (failures,): (i64,) = sqlx::query_as(
        "INSERT INTO member_login_throttle (email, failures, window_started_at) \
         VALUES ($1, 1, $2) \
         ON CONFLICT (email) DO UPDATE SET \
             failures = CASE WHEN member_login_throttle.window_started_at > $3 \
                 THEN member_login_throttle.failures + 1 ELSE 1 END, \
             window_started_at = CASE WHEN member_login_throttle.window_started_at > $3 \
                 THEN member_login_throttle.window_started_at ELSE $2 END \
         RETURNING failures",
    )
    .bind(email.as_str())
    .bind(now)
    .bind(window_start)
    .fetch_one(&mut *tx)
    .await?;
    if failures >= failures_max {
        sqlx::query(
            "UPDATE member_login_throttle \
             SET failures = 0, window_started_at = $1, locked_until = $2 WHERE email = $3",
        )
        .bind(now)
        .bind(now + lock_micros)
        .bind(email.as_str())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// Forgets the failures of an address after a successful password check.
pub(crate) async fn clear_failures(db: &Db, email: &Email) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM member_login_throttle WHERE email = $1")
        .bind(email.as_str())
        .execute(db.pool())
        .await?;
    Ok(())
}
