//! Every SQL statement of linked accounts, written once for SQLite and PostgreSQL with `$N`
//! placeholders. Nothing here decides what is allowed; conditional updates report whether they
//! applied, and the service decides what that means.

use ledger::Micros;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use storage::Db;

use crate::domain::LinkStatus;

/// A stored link, as read. The account number is still sealed.
#[derive(Debug, Clone)]
pub(crate) struct LinkRow {
    pub id: String,
    pub member_id: String,
    pub kind: String,
    pub status: String,
    pub bank_code: String,
    pub account_key_id: String,
    pub account_number_sealed: String,
    pub account_last4: String,
    pub holder_name: String,
    pub payer_number: Option<String>,
    pub ars_code_hmac: Option<String>,
    pub ars_expires_at: Option<Micros>,
    pub consent_confirmed_at: Option<Micros>,
    pub created_at: Micros,
    pub updated_at: Micros,
    pub verified_at: Option<Micros>,
    pub activated_at: Option<Micros>,
    pub ended_at: Option<Micros>,
}

/// A new link, its account number sealed.
pub(crate) struct NewLinkRow<'a> {
    pub id: &'a str,
    pub member_id: &'a str,
    pub kind: &'a str,
    pub bank_code: &'a str,
    pub account_key_id: &'a str,
    pub account_number_sealed: &'a str,
    pub account_blind_index: &'a str,
    pub account_last4: &'a str,
    pub holder_name: &'a str,
    pub now: Micros,
}

const LINK_COLUMNS: &str = "id, member_id, kind, status, bank_code, account_key_id, \
     account_number_sealed, account_last4, holder_name, payer_number, ars_code_hmac, \
     ars_expires_at, consent_confirmed_at, created_at, updated_at, verified_at, \
     activated_at, ended_at";

fn link_row(row: &AnyRow) -> Result<LinkRow, sqlx::Error> {
    Ok(LinkRow {
        id: row.try_get("id")?,
        member_id: row.try_get("member_id")?,
        kind: row.try_get("kind")?,
        status: row.try_get("status")?,
        bank_code: row.try_get("bank_code")?,
        account_key_id: row.try_get("account_key_id")?,
        account_number_sealed: row.try_get("account_number_sealed")?,
        account_last4: row.try_get("account_last4")?,
        holder_name: row.try_get("holder_name")?,
        payer_number: row.try_get("payer_number")?,
        ars_code_hmac: row.try_get("ars_code_hmac")?,
        ars_expires_at: row.try_get("ars_expires_at")?,
        consent_confirmed_at: row.try_get("consent_confirmed_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        verified_at: row.try_get("verified_at")?,
        activated_at: row.try_get("activated_at")?,
        ended_at: row.try_get("ended_at")?,
    })
}

/// A stored micro-deposit.
#[derive(Debug, Clone)]
pub(crate) struct DepositRow {
    pub id: String,
    pub bank_account_id: String,
    pub seq: i64,
    pub bank_tran_id: String,
    pub requested_at: Micros,
    pub status: String,
    pub code_hmac: String,
    pub memo_key_id: Option<String>,
    pub memo_sealed: Option<String>,
    pub expires_at: Option<Micros>,
    pub attempts: i64,
}

const DEPOSIT_COLUMNS: &str = "id, bank_account_id, seq, bank_tran_id, requested_at, status, \
     code_hmac, memo_key_id, memo_sealed, expires_at, attempts";

fn deposit_row(row: &AnyRow) -> Result<DepositRow, sqlx::Error> {
    Ok(DepositRow {
        id: row.try_get("id")?,
        bank_account_id: row.try_get("bank_account_id")?,
        seq: row.try_get("seq")?,
        bank_tran_id: row.try_get("bank_tran_id")?,
        requested_at: row.try_get("requested_at")?,
        status: row.try_get("status")?,
        code_hmac: row.try_get("code_hmac")?,
        memo_key_id: row.try_get("memo_key_id")?,
        memo_sealed: row.try_get("memo_sealed")?,
        expires_at: row.try_get("expires_at")?,
        attempts: row.try_get("attempts")?,
    })
}

/// Stores a new link in `deposit_pending`. Fails on a unique index when the account is linked
/// already (see the migration).
pub(crate) async fn insert_link(
    tx: &mut Transaction<'static, Any>,
    link: &NewLinkRow<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO bank_accounts (id, member_id, kind, status, bank_code, account_key_id, \
             account_number_sealed, account_blind_index, account_last4, holder_name, \
             created_at, updated_at) \
         VALUES ($1, $2, $3, 'deposit_pending', $4, $5, $6, $7, $8, $9, $10, $10)",
    )
    .bind(link.id)
    .bind(link.member_id)
    .bind(link.kind)
    .bind(link.bank_code)
    .bind(link.account_key_id)
    .bind(link.account_number_sealed)
    .bind(link.account_blind_index)
    .bind(link.account_last4)
    .bind(link.holder_name)
    .bind(link.now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Stores a pending micro-deposit with the next sequence number of its link and puts the link
/// in `deposit_pending`. The (link, seq) unique key makes two concurrent resends collide.
/// Returns the sequence number taken.
pub(crate) async fn insert_deposit(
    tx: &mut Transaction<'static, Any>,
    deposit: &DepositRow,
) -> Result<i64, sqlx::Error> {
    let (seq,): (i64,) = sqlx::query_as(
        "INSERT INTO bank_account_deposits (id, bank_account_id, seq, bank_tran_id, \
             requested_at, status, code_hmac, memo_key_id, memo_sealed, created_at) \
         SELECT $1, $2, COALESCE(MAX(seq), 0) + 1, $3, $4, 'pending', $5, $6, $7, $4 \
         FROM bank_account_deposits WHERE bank_account_id = $2 \
         RETURNING seq",
    )
    .bind(deposit.id.as_str())
    .bind(deposit.bank_account_id.as_str())
    .bind(deposit.bank_tran_id.as_str())
    .bind(deposit.requested_at)
    .bind(deposit.code_hmac.as_str())
    .bind(deposit.memo_key_id.clone())
    .bind(deposit.memo_sealed.clone())
    .fetch_one(&mut **tx)
    .await?;
    set_status(
        tx,
        &deposit.bank_account_id,
        LinkStatus::DepositPending,
        deposit.requested_at,
    )
    .await?;
    Ok(seq)
}

async fn set_status(
    tx: &mut Transaction<'static, Any>,
    link_id: &str,
    status: LinkStatus,
    now: Micros,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE bank_accounts SET status = $1, updated_at = $2 \
         WHERE id = $3 AND ended_at IS NULL",
    )
    .bind(status.as_str())
    .bind(now)
    .bind(link_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(crate) async fn link_by_id(db: &Db, id: &str) -> Result<Option<LinkRow>, sqlx::Error> {
    let sql = format!("SELECT {LINK_COLUMNS} FROM bank_accounts WHERE id = $1");
    sqlx::query(&sql)
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .as_ref()
        .map(link_row)
        .transpose()
}

/// A member's live links in id order (oldest first), after the cursor, `limit` at most.
pub(crate) async fn live_links_of(
    db: &Db,
    member_id: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<LinkRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {LINK_COLUMNS} FROM bank_accounts \
         WHERE member_id = $1 AND ended_at IS NULL AND id > $2 ORDER BY id LIMIT $3"
    );
    let rows = sqlx::query(&sql)
        .bind(member_id)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(link_row).collect()
}

/// The member's live links in the given statuses, the most recently activated (then verified,
/// then created) first; partner links before charge links when `partner_first`.
pub(crate) async fn preferred_link(
    db: &Db,
    member_id: &str,
    statuses: &[LinkStatus],
) -> Result<Option<LinkRow>, sqlx::Error> {
    let mut names = statuses.iter().map(|s| s.as_str());
    let mut wanted: [&str; 3] = ["", "", ""];
    for slot in wanted.iter_mut() {
        *slot = names.next().unwrap_or("");
    }
    let sql = format!(
        "SELECT {LINK_COLUMNS} FROM bank_accounts \
         WHERE member_id = $1 AND ended_at IS NULL AND status IN ($2, $3, $4) \
         ORDER BY CASE kind WHEN 'partner' THEN 0 ELSE 1 END, \
             COALESCE(activated_at, 0) DESC, COALESCE(verified_at, 0) DESC, id DESC \
         LIMIT 1"
    );
    sqlx::query(&sql)
        .bind(member_id)
        .bind(wanted[0])
        .bind(wanted[1])
        .bind(wanted[2])
        .fetch_optional(db.pool())
        .await?
        .as_ref()
        .map(link_row)
        .transpose()
}

/// How many live charge links a member has.
pub(crate) async fn live_charge_count(db: &Db, member_id: &str) -> Result<i64, sqlx::Error> {
    let (count,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM bank_accounts \
         WHERE member_id = $1 AND kind = 'charge' AND ended_at IS NULL",
    )
    .bind(member_id)
    .fetch_one(db.pool())
    .await?;
    Ok(count)
}

/// Which live links would collide with a new one: (the member has this account, the member
/// has a partner link, another member has this account as partner).
pub(crate) async fn collisions(
    db: &Db,
    member_id: &str,
    blind_index: &str,
) -> Result<(bool, bool, bool), sqlx::Error> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT member_id, kind, account_blind_index FROM bank_accounts \
         WHERE ended_at IS NULL AND (member_id = $1 OR \
             (account_blind_index = $2 AND kind = 'partner'))",
    )
    .bind(member_id)
    .bind(blind_index)
    .fetch_all(db.pool())
    .await?;
    let mine = |row: &&(String, String, String)| row.0 == member_id;
    let same_account = rows.iter().filter(mine).any(|row| row.2 == blind_index);
    let has_partner = rows.iter().filter(mine).any(|row| row.1 == "partner");
    let partner_elsewhere = rows
        .iter()
        .any(|row| row.0 != member_id && row.1 == "partner" && row.2 == blind_index);
    Ok((same_account, has_partner, partner_elsewhere))
}

/// The deposit whose code the link is waiting for: the latest one the bank did not refuse.
pub(crate) async fn current_deposit(
    db: &Db,
    link_id: &str,
) -> Result<Option<DepositRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {DEPOSIT_COLUMNS} FROM bank_account_deposits \
         WHERE bank_account_id = $1 AND status <> 'failed' ORDER BY seq DESC LIMIT 1"
    );
    sqlx::query(&sql)
        .bind(link_id)
        .fetch_optional(db.pool())
        .await?
        .as_ref()
        .map(deposit_row)
        .transpose()
}

/// How many deposits were sent for a link, refused ones included.
pub(crate) async fn deposit_count(db: &Db, link_id: &str) -> Result<i64, sqlx::Error> {
    let (count,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM bank_account_deposits WHERE bank_account_id = $1")
            .bind(link_id)
            .fetch_one(db.pool())
            .await?;
    Ok(count)
}

/// Deposits requested in `[from, to)`, in id order after `after`, for reconciliation.
pub(crate) async fn deposits_requested_between(
    db: &Db,
    from: Micros,
    to: Micros,
    after: &str,
    limit: i64,
) -> Result<Vec<DepositRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {DEPOSIT_COLUMNS} FROM bank_account_deposits \
         WHERE requested_at >= $1 AND requested_at < $2 AND id > $3 ORDER BY id LIMIT $4"
    );
    let rows = sqlx::query(&sql)
        .bind(from)
        .bind(to)
        .bind(after)
        .bind(limit)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(deposit_row).collect()
}

/// Pending deposits, oldest first, for the sweeper.
pub(crate) async fn pending_deposits(db: &Db, limit: i64) -> Result<Vec<DepositRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {DEPOSIT_COLUMNS} FROM bank_account_deposits \
         WHERE status = 'pending' ORDER BY created_at, id LIMIT $1"
    );
    let rows = sqlx::query(&sql).bind(limit).fetch_all(db.pool()).await?;
    rows.iter().map(deposit_row).collect()
}

/// Records that a pending deposit arrived: the code is live until `expires_at`, the sealed memo
/// is erased, and the link waits for the code. Returns whether the deposit was still pending.
pub(crate) async fn deposit_succeeded(
    db: &Db,
    deposit: &DepositRow,
    now: Micros,
    expires_at: Micros,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let done = sqlx::query(
        "UPDATE bank_account_deposits SET status = 'succeeded', deposited_at = $1, \
             expires_at = $2, memo_key_id = NULL, memo_sealed = NULL \
         WHERE id = $3 AND status = 'pending'",
    )
    .bind(now)
    .bind(expires_at)
    .bind(deposit.id.as_str())
    .execute(&mut *tx)
    .await?;
    let applied = done.rows_affected() == 1;
    if applied {
        sqlx::query(
            "UPDATE bank_accounts SET status = 'awaiting_verification', updated_at = $1 \
             WHERE id = $2 AND status = 'deposit_pending'",
        )
        .bind(now)
        .bind(deposit.bank_account_id.as_str())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(applied)
}

/// Records that the bank refused a pending deposit. The link goes back to waiting for an
/// earlier deposit's code when one arrived, and fails (ends) when none did. Returns the link's
/// status afterwards.
pub(crate) async fn deposit_failed(
    db: &Db,
    deposit: &DepositRow,
    failure_code: &str,
    now: Micros,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let done = sqlx::query(
        "UPDATE bank_account_deposits SET status = 'failed', failure_code = $1, \
             memo_key_id = NULL, memo_sealed = NULL \
         WHERE id = $2 AND status = 'pending'",
    )
    .bind(failure_code)
    .bind(deposit.id.as_str())
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 1 {
        let (arrived,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM bank_account_deposits \
             WHERE bank_account_id = $1 AND status = 'succeeded'",
        )
        .bind(deposit.bank_account_id.as_str())
        .fetch_one(&mut *tx)
        .await?;
        if arrived > 0 {
            set_status(
                &mut tx,
                &deposit.bank_account_id,
                LinkStatus::AwaitingVerification,
                now,
            )
            .await?;
        } else {
            end_link_in(&mut tx, &deposit.bank_account_id, LinkStatus::Failed, now).await?;
        }
    }
    tx.commit().await
}

/// Uses one attempt of a deposit's code, if any is left; returns the attempts used after it.
pub(crate) async fn use_code_attempt(
    db: &Db,
    deposit_id: &str,
    attempts_max: i64,
) -> Result<Option<i64>, sqlx::Error> {
    let row: Option<(i64,)> = sqlx::query_as(
        "UPDATE bank_account_deposits SET attempts = attempts + 1 \
         WHERE id = $1 AND attempts < $2 RETURNING attempts",
    )
    .bind(deposit_id)
    .bind(attempts_max)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.map(|(attempts,)| attempts))
}

/// Marks a link verified if it still waits for its code.
pub(crate) async fn set_verified(db: &Db, link_id: &str, now: Micros) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE bank_accounts SET status = 'verified', verified_at = $1, updated_at = $1 \
         WHERE id = $2 AND status = 'awaiting_verification'",
    )
    .bind(now)
    .bind(link_id)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Opens an ARS session on a verified link (or replaces the open one).
pub(crate) async fn open_ars(
    db: &Db,
    link_id: &str,
    code_hmac: &str,
    expires_at: Micros,
    now: Micros,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE bank_accounts SET status = 'consent_pending', ars_code_hmac = $1, \
             ars_expires_at = $2, ars_attempts = 0, consent_confirmed_at = NULL, updated_at = $3 \
         WHERE id = $4 AND status IN ('verified', 'consent_pending')",
    )
    .bind(code_hmac)
    .bind(expires_at)
    .bind(now)
    .bind(link_id)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Uses one attempt of the open ARS session, if any is left; returns the attempts used after it.
pub(crate) async fn use_ars_attempt(
    db: &Db,
    link_id: &str,
    attempts_max: i64,
) -> Result<Option<i64>, sqlx::Error> {
    let row: Option<(i64,)> = sqlx::query_as(
        "UPDATE bank_accounts SET ars_attempts = ars_attempts + 1 \
         WHERE id = $1 AND status = 'consent_pending' AND consent_confirmed_at IS NULL \
             AND ars_attempts < $2 RETURNING ars_attempts",
    )
    .bind(link_id)
    .bind(attempts_max)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.map(|(attempts,)| attempts))
}

/// Records the member's ARS confirmation and the payer number the consent goes under (kept if
/// one was issued before). Returns whether the session was still open.
pub(crate) async fn confirm_consent(
    db: &Db,
    link_id: &str,
    payer_number: &str,
    now: Micros,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE bank_accounts SET consent_confirmed_at = $1, ars_code_hmac = NULL, \
             payer_number = COALESCE(payer_number, $2), updated_at = $1 \
         WHERE id = $3 AND status = 'consent_pending' AND consent_confirmed_at IS NULL",
    )
    .bind(now)
    .bind(payer_number)
    .bind(link_id)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Activates a link whose consent the bank registered.
pub(crate) async fn activate(db: &Db, link_id: &str, now: Micros) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE bank_accounts SET status = 'active', activated_at = $1, updated_at = $1 \
         WHERE id = $2 AND status = 'consent_pending' AND consent_confirmed_at IS NOT NULL",
    )
    .bind(now)
    .bind(link_id)
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends a live link (unlinked by the member); returns whether it was live.
pub(crate) async fn end_link(
    db: &Db,
    link_id: &str,
    status: LinkStatus,
    now: Micros,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let ended = end_link_in(&mut tx, link_id, status, now).await?;
    tx.commit().await?;
    Ok(ended)
}

async fn end_link_in(
    tx: &mut Transaction<'static, Any>,
    link_id: &str,
    status: LinkStatus,
    now: Micros,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE bank_accounts SET status = $1, ended_at = $2, updated_at = $2, \
             ars_code_hmac = NULL \
         WHERE id = $3 AND ended_at IS NULL",
    )
    .bind(status.as_str())
    .bind(now)
    .bind(link_id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}
