//! The membership service: sign-up, login sessions, profile changes and closing.

use std::sync::Arc;

use ledger::{Clock, Ledger, Micros, PAGE_SIZE_MAX};
use storage::Db;

use crate::domain::{Email, MemberId, Password, Phone, SessionId, SessionToken};
use crate::hasher::Hasher;
use crate::member::{Member, MemberStatus, NewMember, NewSession, ProfileChange, Session};
use crate::store::{self, ProfileUpdate, StoredMember};
use crate::MemberError;

const MICROS_PER_S: i64 = 1_000_000;

/// How long a session lives when not configured otherwise: one day.
pub const SESSION_TTL_S_DEFAULT: i64 = 24 * 60 * 60;
/// The shortest session lifetime a configuration may set: five minutes.
pub const SESSION_TTL_S_MIN: i64 = 5 * 60;
/// The longest session lifetime a configuration may set: thirty days.
pub const SESSION_TTL_S_MAX: i64 = 30 * 24 * 60 * 60;
/// Live sessions kept per member; logging in once more logs out the oldest.
pub const SESSIONS_PER_MEMBER_MAX: i64 = 20;
/// How many failed password checks for one email address lock it.
pub const LOGIN_FAILURES_MAX: i64 = 5;
/// The window, in seconds, within which those failures must fall to count together.
pub const LOGIN_FAILURE_WINDOW_S: i64 = 15 * 60;
/// How long, in seconds, a locked address stays locked.
pub const LOGIN_LOCK_S: i64 = 15 * 60;
/// Ledger account pages read while checking that a closing member holds no funds. A member
/// has a handful of accounts (money and points per currency); 20 pages of 500 is far beyond
/// any real member, and a member past it is refused rather than checked in part.
const CLOSE_CHECK_PAGES_MAX: usize = 20;

/// Tunables of membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberConfig {
    /// How long a session lives after login, in seconds; clamped to
    /// [`SESSION_TTL_S_MIN`]..=[`SESSION_TTL_S_MAX`].
    pub session_ttl_s: i64,
}

impl Default for MemberConfig {
    fn default() -> MemberConfig {
        MemberConfig {
            session_ttl_s: SESSION_TTL_S_DEFAULT,
        }
    }
}

/// The membership service. Cheap to share behind an `Arc`.
pub struct Members {
    db: Db,
    ledger: Arc<Ledger>,
    clock: Arc<dyn Clock>,
    session_ttl_micros: Micros,
    hasher: Hasher,
}

impl std::fmt::Debug for Members {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Members")
            .field("db", &self.db)
            .field("session_ttl_micros", &self.session_ttl_micros)
            .finish_non_exhaustive()
    }
}

impl Members {
    /// The service over a migrated database. Time comes from the ledger's clock, so that
    /// sessions and ledger writes share one notion of now (and tests move both at once).
    pub fn new(db: Db, ledger: Arc<Ledger>, config: MemberConfig) -> Members {
        let ttl_s = config
            .session_ttl_s
            .clamp(SESSION_TTL_S_MIN, SESSION_TTL_S_MAX);
        Members {
            db,
            clock: ledger.clock(),
            ledger,
            session_ttl_micros: ttl_s * MICROS_PER_S,
            hasher: Hasher::new(),
        }
    }

    /// Signs a person up. The email address and the phone number must not belong to another
    /// active member (`email_taken`, `phone_taken`).
    pub async fn sign_up(&self, new: NewMember) -> Result<Member, MemberError> {
        // Checked before hashing, so that the common refusal costs no hashing work; the unique
        // indexes decide races between concurrent sign-ups.
        self.refuse_taken(Some(&new.email), Some(&new.phone), None)
            .await?;
        let password_hash = self.hasher.hash(&new.password).await?;
        let now = self.clock.now_micros();
        let member = Member {
            id: MemberId::generate(),
            email: new.email,
            phone: new.phone,
            name: new.name,
            status: MemberStatus::Active,
            created_at: now,
            updated_at: now,
            closed_at: None,
        };
        match store::insert_member(&self.db, &member, &password_hash).await {
            Ok(()) => Ok(member),
            Err(error) if self.db.backend().is_unique_violation(&error) => {
                self.refuse_taken(Some(&member.email), Some(&member.phone), None)
                    .await?;
                Err(error.into())
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Logs a member in and opens a session. A wrong password and an unknown (or closed)
    /// member's address are both `invalid_credentials`, after the same hashing work. Password
    /// checks are throttled per address (`login_locked`).
    pub async fn log_in(
        &self,
        email: &Email,
        password: &Password,
    ) -> Result<NewSession, MemberError> {
        let stored = store::active_member_by_email(&self.db, email).await?;
        let member = self
            .check_password(email, password, stored.as_ref())
            .await?;
        let token = SessionToken::generate()?;
        let now = self.clock.now_micros();
        let session = Session {
            id: SessionId::generate(),
            member_id: member.id.clone(),
            created_at: now,
            expires_at: now.saturating_add(self.session_ttl_micros),
        };
        let mut tx = self.db.begin_write().await?;
        store::insert_session(&mut tx, &session, &token.digest(), SESSIONS_PER_MEMBER_MAX).await?;
        tx.commit().await?;
        Ok(NewSession { session, token })
    }

    /// The live session a token belongs to: not logged out, not expired, and of an active
    /// member. `None` for anything else, which callers answer as unauthenticated.
    pub async fn authenticate(&self, token: &SessionToken) -> Result<Option<Session>, MemberError> {
        let now = self.clock.now_micros();
        Ok(store::live_session(&self.db, &token.digest(), now).await?)
    }

    /// Ends a session. Ending it again changes nothing.
    pub async fn log_out(&self, session: &SessionId) -> Result<(), MemberError> {
        let now = self.clock.now_micros();
        Ok(store::revoke_session(&self.db, session, now).await?)
    }

    /// A member, active or closed.
    pub async fn get(&self, id: &MemberId) -> Result<Member, MemberError> {
        Ok(self.stored(id).await?.member)
    }

    /// The active member with this email address, if any: how a transfer finds its recipient.
    pub async fn find_active_by_email(&self, email: &Email) -> Result<Option<Member>, MemberError> {
        Ok(store::active_member_by_email(&self.db, email)
            .await?
            .map(|stored| stored.member))
    }

    /// The active member with this phone number, if any.
    pub async fn find_active_by_phone(&self, phone: &Phone) -> Result<Option<Member>, MemberError> {
        Ok(store::active_member_by_phone(&self.db, phone)
            .await?
            .map(|stored| stored.member))
    }

    /// Changes name, email address, phone number or password. A new password needs the
    /// current one, and revokes every session of the member, the current one included: every
    /// device must log in again with the new password.
    pub async fn update(
        &self,
        id: &MemberId,
        change: ProfileChange,
    ) -> Result<Member, MemberError> {
        let stored = self.stored(id).await?;
        if stored.member.status == MemberStatus::Closed {
            return Err(MemberError::Closed(id.to_string()));
        }
        let new_hash = match (&change.new_password, &change.current_password) {
            (Some(new_password), Some(current)) => {
                self.check_password(&stored.member.email, current, Some(&stored))
                    .await
                    .map_err(|error| match error {
                        MemberError::InvalidCredentials => MemberError::CurrentPasswordIncorrect,
                        other => other,
                    })?;
                Some(self.hasher.hash(new_password).await?)
            }
            (Some(_), None) => {
                return Err(MemberError::ChangeInvalid(
                    "new_password needs current_password",
                ))
            }
            (None, Some(_)) => {
                return Err(MemberError::ChangeInvalid(
                    "current_password is only accepted with new_password",
                ))
            }
            (None, None) => None,
        };
        self.refuse_taken(change.email.as_ref(), change.phone.as_ref(), Some(id))
            .await?;
        let update = ProfileUpdate {
            name: change.name.as_ref(),
            email: change.email.as_ref(),
            phone: change.phone.as_ref(),
            password_hash: new_hash
                .as_deref()
                .map(|new| (new, stored.password_hash.as_str())),
        };
        let now = self.clock.now_micros();
        let mut tx = self.db.begin_write().await?;
        let updated = match store::update_member(&mut tx, id, &update, now).await {
            Ok(updated) => updated,
            Err(error) if self.db.backend().is_unique_violation(&error) => {
                tx.rollback().await?;
                self.refuse_taken(change.email.as_ref(), change.phone.as_ref(), Some(id))
                    .await?;
                return Err(error.into());
            }
            Err(error) => return Err(error.into()),
        };
        if !updated {
            // Closed, or the password changed since it was verified, in the meantime.
            tx.rollback().await?;
            return Err(match self.stored(id).await?.member.status {
                MemberStatus::Closed => MemberError::Closed(id.to_string()),
                MemberStatus::Active => MemberError::CurrentPasswordIncorrect,
            });
        }
        if new_hash.is_some() {
            store::revoke_member_sessions(&mut tx, id, now).await?;
        }
        tx.commit().await?;
        Ok(self.stored(id).await?.member)
    }

    /// Closes a member for good, unless any of their ledger accounts still has a posted
    /// balance or pending holds (`balance_remaining`). Every session is revoked; the email
    /// address and phone number become free for a new sign-up.
    ///
    /// Flows that credit a member must check that the member is active: a credit that races
    /// with closing (or a bank callback that arrives after it) lands in a closed member's
    /// account, which reconciliation reports.
    pub async fn close(&self, id: &MemberId) -> Result<Member, MemberError> {
        let stored = self.stored(id).await?;
        if stored.member.status == MemberStatus::Closed {
            return Err(MemberError::Closed(id.to_string()));
        }
        self.refuse_remaining_funds(id).await?;
        let now = self.clock.now_micros();
        let mut tx = self.db.begin_write().await?;
        if !store::close_member(&mut tx, id, now).await? {
            tx.rollback().await?;
            return Err(MemberError::Closed(id.to_string()));
        }
        store::revoke_member_sessions(&mut tx, id, now).await?;
        tx.commit().await?;
        Ok(self.stored(id).await?.member)
    }

    async fn stored(&self, id: &MemberId) -> Result<StoredMember, MemberError> {
        store::member_by_id(&self.db, id)
            .await?
            .ok_or_else(|| MemberError::NotFound(id.to_string()))
    }

    /// Refuses an email address or phone number that another active member uses.
    async fn refuse_taken(
        &self,
        email: Option<&Email>,
        phone: Option<&Phone>,
        except: Option<&MemberId>,
    ) -> Result<(), MemberError> {
        if email.is_none() && phone.is_none() {
            return Ok(());
        }
        match store::taken(&self.db, email, phone, except).await? {
            (true, _) => Err(MemberError::EmailTaken),
            (false, true) => Err(MemberError::PhoneTaken),
            (false, false) => Ok(()),
        }
    }

    /// Verifies a password under the per-address throttle. `stored` is the member the address
    /// belongs to, if any; without one, a dummy hash is verified so that the answer takes as
    /// long as for a real member.
    async fn check_password<'a>(
        &self,
        email: &Email,
        password: &Password,
        stored: Option<&'a StoredMember>,
    ) -> Result<&'a Member, MemberError> {
        let now = self.clock.now_micros();
        if let Some(until) = store::locked_until(&self.db, email, now).await? {
            // Rounded up, so that a client retrying after exactly this long is let through.
            let retry_after_s = (until - now + MICROS_PER_S - 1) / MICROS_PER_S;
            return Err(MemberError::LoginLocked { retry_after_s });
        }
        let matched = match stored {
            Some(stored) => self.hasher.verify(password, &stored.password_hash).await?,
            None => self.hasher.verify_dummy(password).await?,
        };
        match stored {
            Some(stored) if matched => {
                store::clear_failures(&self.db, email).await?;
                Ok(&stored.member)
            }
            _ => {
                store::record_failure(
                    &self.db,
                    email,
                    now,
                    LOGIN_FAILURE_WINDOW_S * MICROS_PER_S,
                    LOGIN_FAILURES_MAX,
                    LOGIN_LOCK_S * MICROS_PER_S,
                )
                .await?;
                Err(MemberError::InvalidCredentials)
            }
        }
    }

    /// Refuses when any ledger account of the member has a nonzero posted balance or pending
    /// holds in either direction (money reserved to leave, or promised to arrive).
    async fn refuse_remaining_funds(&self, id: &MemberId) -> Result<(), MemberError> {
        let prefix = id.ledger_code_prefix();
        let mut after: Option<String> = None;
        for _ in 0..CLOSE_CHECK_PAGES_MAX {
            let page = self
                .ledger
                .accounts_by_code_prefix(&prefix, after.as_deref(), PAGE_SIZE_MAX)
                .await?;
            for account in &page.items {
                let totals = account.totals;
                let empty = totals.posted(account.kind)? == 0
                    && totals.debits_pending == 0
                    && totals.credits_pending == 0;
                if !empty {
                    return Err(MemberError::BalanceRemaining {
                        account_code: account.code.as_str().to_owned(),
                    });
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(()),
            }
        }
        Err(MemberError::Internal(format!(
            "member {id} has more ledger accounts than a close can check"
        )))
    }
}
