//! The linked-accounts service: linking (holder-name check, 1-won deposit), verification,
//! debit consent with its ARS step, unlinking, and the lookups the wallet makes.

use std::sync::Arc;
use std::time::Duration;

use banking::{
    AccountNumber, BankAccount, BankCode, BankFees, BankGateway, DebitConsent, HolderName,
    PayerNumber, RealNameOutcome, RefusalCode,
};
use ledger::{Clock, Ledger, Micros, Page};
use membership::{MemberId, MemberStatus, Members};
use storage::Db;
use wallet::{ChargeSource, WithdrawalTarget};

use crate::deposit::Books;
use crate::domain::{
    generate_payer_number, names_match, DigitCode, LinkKind, LinkStatus, ARS_CODE_DIGITS,
    VERIFICATION_CODE_DIGITS,
};
use crate::error::BankAccountError;
use crate::id::BankAccountId;
use crate::keys::AccountKeys;
use crate::link::{last4, masked, ConsentSession, Disclosed, LinkedAccount, VerificationProgress};
use crate::store::{self, LinkRow, NewLinkRow};

pub(crate) const MICROS_PER_S: i64 = 1_000_000;
/// How long a micro-deposit's code is accepted after the deposit arrived: ten minutes.
pub const CODE_TTL_S: i64 = 10 * 60;
/// Wrong codes accepted per deposit before it must be resent.
pub const CODE_ATTEMPTS_MAX: i64 = 5;
/// Deposits per link: the first and three resends. Each costs a payout, and each code is five
/// more guesses, so the total is bounded: at most 20 guesses at 6-digit codes per link.
pub const DEPOSITS_PER_LINK_MAX: i64 = 4;
/// How long an ARS session is open: three minutes, the length of a phone call's patience.
pub const ARS_TTL_S: i64 = 3 * 60;
/// Wrong ARS codes accepted per session.
pub const ARS_ATTEMPTS_MAX: i64 = 3;
/// Live charge accounts per member when not configured otherwise.
pub const CHARGE_ACCOUNTS_MAX_DEFAULT: i64 = 10;
/// The partner bank when none is configured: 089, K bank's standard code.
pub const PARTNER_BANK_CODE_DEFAULT: &str = "089";
/// The largest page of a member's links.
pub const PAGE_SIZE_MAX: i64 = 100;
/// The MAC domain of verification and ARS codes.
pub(crate) const CODE_DOMAIN: &str = "mypay.bank_accounts.code.v1";
/// The MAC domain of account-number blind indexes.
const BLIND_INDEX_DOMAIN: &str = "mypay.bank_accounts.blind_index.v1";

/// Tunables of linked accounts.
#[derive(Debug, Clone)]
pub struct BankAccountConfig {
    /// The keys that seal account numbers and digest codes.
    pub keys: Arc<AccountKeys>,
    /// The partner bank's standard code; partner links must be at this bank.
    pub partner_bank_code: BankCode,
    /// Live charge accounts per member.
    pub charge_accounts_max: i64,
    /// What bank calls cost, to book the payout fee of each micro-deposit.
    pub fees: BankFees,
    /// Waits before each transfer-result inquiry that resolves an unknown deposit outcome,
    /// inside the request that sent it; what is still unknown after them is resolved later.
    pub inquiry_backoff: Vec<Duration>,
}

impl BankAccountConfig {
    /// The defaults with these keys: partner bank 089, 10 charge accounts, the default fee
    /// table, and inquiries after 100, 300 and 900 ms.
    pub fn new(keys: Arc<AccountKeys>) -> BankAccountConfig {
        BankAccountConfig {
            keys,
            partner_bank_code: BankCode::parse(PARTNER_BANK_CODE_DEFAULT).expect("a valid default"),
            charge_accounts_max: CHARGE_ACCOUNTS_MAX_DEFAULT,
            fees: BankFees::default(),
            inquiry_backoff: [100, 300, 900].map(Duration::from_millis).to_vec(),
        }
    }
}

/// Parses what a member types: a 3-digit bank code and an account number (hyphens allowed).
pub fn parse_account(
    bank_code: &str,
    account_number: &str,
) -> Result<BankAccount, BankAccountError> {
    let bank_code = BankCode::parse(bank_code).map_err(BankAccountError::from_invalid)?;
    let number = AccountNumber::parse(account_number).map_err(BankAccountError::from_invalid)?;
    Ok(BankAccount::new(bank_code, number))
}

/// The linked-accounts service. Cheap to share behind an `Arc`.
pub struct BankAccounts {
    pub(crate) db: Db,
    pub(crate) ledger: Arc<Ledger>,
    members: Arc<Members>,
    pub(crate) bank: Arc<dyn BankGateway>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: BankAccountConfig,
    pub(crate) books: Books,
}

impl std::fmt::Debug for BankAccounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BankAccounts")
            .field("db", &self.db)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl BankAccounts {
    /// The service over a migrated database; time comes from the ledger's clock.
    pub fn new(
        db: Db,
        ledger: Arc<Ledger>,
        members: Arc<Members>,
        bank: Arc<dyn BankGateway>,
        config: BankAccountConfig,
    ) -> BankAccounts {
        BankAccounts {
            db,
            clock: ledger.clock(),
            ledger,
            members,
            bank,
            config,
            books: Books::default(),
        }
    }

    /// Links an account: checks the holder's name at the bank against the member's, stores the
    /// link with its number sealed, and sends the 1-won deposit whose memo carries the code.
    /// The answer's status is `awaiting_verification`, or `deposit_pending` when the bank's
    /// answer is still unknown after a few inquiries (a later call resolves it).
    pub async fn link(
        &self,
        member_id: &MemberId,
        kind: LinkKind,
        account: BankAccount,
    ) -> Result<Disclosed, BankAccountError> {
        let member = self.members.get(member_id).await?;
        if member.status == MemberStatus::Closed {
            return Err(BankAccountError::MemberClosed(member_id.to_string()));
        }
        let blind_index = self.blind_index(&account);
        self.refuse_link(member_id, kind, &account, &blind_index)
            .await?;
        let holder_name = match self
            .bank
            .real_name(&account)
            .await
            .map_err(BankAccountError::from_bank)?
        {
            RealNameOutcome::Found { holder_name } => holder_name,
            RealNameOutcome::NotFound => return Err(BankAccountError::AccountUnknownAtBank),
        };
        if !names_match(member.name.as_str(), holder_name.expose()) {
            return Err(BankAccountError::HolderNameMismatch);
        }
        let id = BankAccountId::generate();
        let sealed = self.config.keys.seal(
            account.account_number.expose().as_bytes(),
            &number_aad(&id, &account.bank_code),
        )?;
        let last4 = last4(&account.account_number);
        let new = NewLinkRow {
            id: id.as_str(),
            member_id: member_id.as_str(),
            kind: kind.as_str(),
            bank_code: account.bank_code.as_str(),
            account_key_id: &sealed.key_id,
            account_number_sealed: &sealed.sealed,
            account_blind_index: &blind_index,
            account_last4: &last4,
            holder_name: holder_name.expose(),
            now: self.clock.now_micros(),
        };
        let deposit = match self.store_link_with_deposit(&new).await {
            Ok(deposit) => deposit,
            Err(error) if self.is_unique_violation(&error) => {
                // A concurrent link of the same account won the race; say which rule it broke.
                self.refuse_link(member_id, kind, &account, &blind_index)
                    .await?;
                return Err(error);
            }
            Err(error) => return Err(error),
        };
        let outcome = self.deliver(&deposit, &account).await?;
        outcome.into_result()?;
        let row = self.row(&id).await?;
        Ok(Disclosed {
            account: self.view(row).await?,
            account_number: account.account_number,
        })
    }

    /// Sends a new code (a new 1-won deposit) for a link that waits for its code. The previous
    /// codes stop being accepted once the new deposit arrives. Bounded per link.
    pub async fn resend(
        &self,
        member_id: &MemberId,
        id: &BankAccountId,
    ) -> Result<Disclosed, BankAccountError> {
        let row = self.refreshed_owned(member_id, id).await?;
        match status(&row)? {
            LinkStatus::DepositPending => return Err(BankAccountError::DepositPending),
            LinkStatus::AwaitingVerification => {}
            status if status.is_ended() => return Err(BankAccountError::Ended),
            _ => return Err(BankAccountError::AlreadyVerified),
        }
        if store::deposit_count(&self.db, &row.id).await? >= DEPOSITS_PER_LINK_MAX {
            return Err(BankAccountError::ResendLimitReached(
                DEPOSITS_PER_LINK_MAX - 1,
            ));
        }
        let account = self.open_account(&row)?;
        let deposit = match self.store_deposit(&row.id).await {
            Ok(deposit) => deposit,
            // A concurrent resend took the same sequence number first.
            Err(error) if self.is_unique_violation(&error) => {
                return Err(BankAccountError::DepositPending)
            }
            Err(error) => return Err(error),
        };
        self.deliver(&deposit, &account).await?.into_result()?;
        let row = self.row(id).await?;
        Ok(Disclosed {
            account: self.view(row).await?,
            account_number: account.account_number,
        })
    }

    /// Checks the code the member read from the deposit's memo. Each wrong code uses one of
    /// five attempts; an expired or exhausted code must be resent.
    pub async fn verify(
        &self,
        member_id: &MemberId,
        id: &BankAccountId,
        code: &str,
    ) -> Result<Disclosed, BankAccountError> {
        let code = DigitCode::parse(code, VERIFICATION_CODE_DIGITS)
            .ok_or(BankAccountError::CodeInvalid(VERIFICATION_CODE_DIGITS))?;
        let row = self.refreshed_owned(member_id, id).await?;
        match status(&row)? {
            LinkStatus::DepositPending => return Err(BankAccountError::DepositPending),
            LinkStatus::AwaitingVerification => {}
            status if status.is_ended() => return Err(BankAccountError::Ended),
            _ => return Err(BankAccountError::AlreadyVerified),
        }
        let deposit = store::current_deposit(&self.db, &row.id)
            .await?
            .ok_or_else(|| {
                BankAccountError::Internal(format!("{} waits without a deposit", row.id))
            })?;
        let now = self.clock.now_micros();
        if deposit.expires_at.is_none_or(|expires| now >= expires) {
            return Err(BankAccountError::CodeExpired);
        }
        let used = store::use_code_attempt(&self.db, &deposit.id, CODE_ATTEMPTS_MAX)
            .await?
            .ok_or(BankAccountError::AttemptsExceeded)?;
        let matched = self.config.keys.mac_matches(
            CODE_DOMAIN,
            &[&deposit.id, code.expose()],
            &deposit.code_hmac,
        );
        if !matched {
            return Err(BankAccountError::CodeMismatch {
                attempts_left: CODE_ATTEMPTS_MAX - used,
            });
        }
        if !store::set_verified(&self.db, &row.id, now).await? {
            // Unlinked or verified by a concurrent request in the meantime.
            let row = self.row(id).await?;
            return Err(if status(&row)?.is_ended() {
                BankAccountError::Ended
            } else {
                BankAccountError::AlreadyVerified
            });
        }
        self.disclosed(id).await
    }

    /// Starts the debit consent: opens an ARS session whose 2-digit code the member keys in on
    /// the call, and shows the account in full. Starting again replaces the open session.
    pub async fn start_consent(
        &self,
        member_id: &MemberId,
        id: &BankAccountId,
    ) -> Result<ConsentSession, BankAccountError> {
        let row = self.refreshed_owned(member_id, id).await?;
        match status(&row)? {
            LinkStatus::Verified | LinkStatus::ConsentPending => {}
            LinkStatus::Active => return Err(BankAccountError::ConsentExists),
            status if status.is_ended() => return Err(BankAccountError::Ended),
            _ => return Err(BankAccountError::NotVerified),
        }
        let code = DigitCode::generate(ARS_CODE_DIGITS);
        let now = self.clock.now_micros();
        let expires_at = now.saturating_add(ARS_TTL_S * MICROS_PER_S);
        let digest = self
            .config
            .keys
            .mac(CODE_DOMAIN, &[&row.id, "ars", code.expose()]);
        if !store::open_ars(&self.db, &row.id, &digest, expires_at, now).await? {
            return Err(BankAccountError::Ended);
        }
        let Disclosed {
            account,
            account_number,
        } = self.disclosed(id).await?;
        Ok(ConsentSession {
            account,
            account_number,
            ars_code: code,
            expires_at,
        })
    }

    /// Confirms the ARS step with the keyed code and registers the debit consent at the bank
    /// under a payer number the platform issues; the link becomes `active`. `member_id` is the
    /// owner confirming in the app, or `None` for the ARS provider's callback (a platform key).
    ///
    /// Once the code matched, the confirmation is recorded before the bank is called, so a retry
    /// after a bank failure registers again (idempotent at the bank) without a new ARS call.
    pub async fn confirm_consent(
        &self,
        member_id: Option<&MemberId>,
        id: &BankAccountId,
        code: &str,
    ) -> Result<LinkedAccount, BankAccountError> {
        let code = DigitCode::parse(code, ARS_CODE_DIGITS)
            .ok_or(BankAccountError::CodeInvalid(ARS_CODE_DIGITS))?;
        let row = match member_id {
            Some(member_id) => self.owned(member_id, id).await?,
            None => self.live(id).await?,
        };
        match status(&row)? {
            LinkStatus::ConsentPending => {}
            LinkStatus::Active => return Err(BankAccountError::ConsentExists),
            LinkStatus::Verified => return Err(BankAccountError::ArsSessionMissing),
            _ => return Err(BankAccountError::NotVerified),
        }
        if row.consent_confirmed_at.is_none() {
            self.check_ars_code(&row, &code).await?;
        }
        let row = self.row(id).await?;
        let payer_number = row
            .payer_number
            .as_deref()
            .map(PayerNumber::parse)
            .transpose()
            .map_err(|_| BankAccountError::Internal(format!("{} has a bad payer number", row.id)))?
            .ok_or_else(|| {
                BankAccountError::Internal(format!("{} confirmed without a payer number", row.id))
            })?;
        let consent = DebitConsent {
            payer_number: payer_number.clone(),
            account: self.open_account(&row)?,
        };
        self.bank
            .register_consent(&consent)
            .await
            .map_err(BankAccountError::from_bank)?;
        if !store::activate(&self.db, &row.id, self.clock.now_micros()).await? {
            // Unlinked while the bank registered: take the consent back so no debit can follow.
            if let Err(error) = self.bank.revoke_consent(&payer_number).await {
                tracing::error!(bank_account = %row.id, %error, "revoking the consent of an unlinked account failed; revoke it by hand");
            }
            return Err(BankAccountError::Ended);
        }
        self.view(self.row(id).await?).await
    }

    /// Unlinks an account: revokes its debit consent at the bank (if one may exist) and ends
    /// the link. A link whose deposit is still unresolved cannot end until the bank answers.
    pub async fn unlink(
        &self,
        member_id: &MemberId,
        id: &BankAccountId,
    ) -> Result<LinkedAccount, BankAccountError> {
        let row = self.refreshed_owned(member_id, id).await?;
        if status(&row)? == LinkStatus::DepositPending {
            return Err(BankAccountError::DepositPending);
        }
        if let Some(payer_number) = &row.payer_number {
            self.revoke(&row.id, payer_number).await?;
        }
        if !store::end_link(
            &self.db,
            &row.id,
            LinkStatus::Unlinked,
            self.clock.now_micros(),
        )
        .await?
        {
            return Err(BankAccountError::Ended);
        }
        let ended = self.row(id).await?;
        // A consent confirmed between our read and the end of the link was registered at the
        // bank under a payer number we did not revoke: revoke it now, so that no debit can
        // follow an unlinked account.
        if let Some(late) = ended.payer_number.as_deref() {
            if row.payer_number.as_deref() != Some(late) {
                self.revoke(&ended.id, late).await?;
            }
        }
        self.view(ended).await
    }

    /// Withdraws a debit consent at the bank; one the bank does not know is already withdrawn.
    async fn revoke(&self, link_id: &str, payer_number: &str) -> Result<(), BankAccountError> {
        let payer_number = PayerNumber::parse(payer_number)
            .map_err(|_| BankAccountError::Internal(format!("{link_id} has a bad payer number")))?;
        match self.bank.revoke_consent(&payer_number).await {
            Ok(())
            | Err(banking::BankError::Refused {
                code: RefusalCode::ConsentMissing,
                ..
            }) => Ok(()),
            Err(error) => Err(BankAccountError::from_bank(error)),
        }
    }

    /// Whose link this is, read without asking the bank anything, so that the API layer can
    /// authorise the caller before [`BankAccounts::get`] may call the bank.
    pub async fn owner(&self, id: &BankAccountId) -> Result<Option<MemberId>, BankAccountError> {
        let Some(row) = store::link_by_id(&self.db, id.as_str()).await? else {
            return Ok(None);
        };
        MemberId::parse(&row.member_id)
            .map(Some)
            .ok_or_else(|| BankAccountError::Internal(format!("{} has a bad member id", row.id)))
    }

    /// A link by id, for any caller the API layer authorised (the owner, or an admin or
    /// platform key); its number masked. Ended links are found too (history). A deposit still
    /// being resolved is asked after first.
    pub async fn get(&self, id: &BankAccountId) -> Result<Option<LinkedAccount>, BankAccountError> {
        let Some(row) = store::link_by_id(&self.db, id.as_str()).await? else {
            return Ok(None);
        };
        let row = self.refresh(row).await?;
        Ok(Some(self.view(row).await?))
    }

    /// A member's live links in id order, `limit` (1 to 100) at most after the cursor.
    pub async fn list(
        &self,
        member_id: &MemberId,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Page<LinkedAccount>, BankAccountError> {
        let limit = limit.clamp(1, PAGE_SIZE_MAX);
        let mut rows = store::live_links_of(&self.db, member_id.as_str(), after, limit + 1).await?;
        let next = (rows.len() as i64 > limit).then(|| {
            rows.truncate(limit as usize);
            rows.last().map(|row| row.id.clone())
        });
        let mut items = Vec::with_capacity(rows.len());
        for row in rows {
            items.push(self.view(row).await?);
        }
        Ok(Page {
            items,
            next: next.flatten(),
        })
    }

    /// The account a charge collects from: the named one, or (`None`) the member's default,
    /// their partner account if active, else their most recently activated charge account.
    /// It must be `active`: verified, with a registered debit consent.
    pub async fn charge_source(
        &self,
        member: &MemberId,
        id: Option<&str>,
    ) -> Result<ChargeSource, BankAccountError> {
        let row = match id {
            Some(id) => {
                let row = self.owned_by_text(member, id).await?;
                match status(&row)? {
                    LinkStatus::Active => row,
                    LinkStatus::Verified | LinkStatus::ConsentPending => {
                        return Err(BankAccountError::ConsentMissing)
                    }
                    _ => return Err(BankAccountError::NotVerified),
                }
            }
            None => match store::preferred_link(&self.db, member.as_str(), &[LinkStatus::Active])
                .await?
            {
                Some(row) => row,
                None => {
                    let verified = store::preferred_link(
                        &self.db,
                        member.as_str(),
                        &[LinkStatus::Verified, LinkStatus::ConsentPending],
                    )
                    .await?;
                    return Err(match verified {
                        Some(_) => BankAccountError::ConsentMissing,
                        None => BankAccountError::NotFound("default".into()),
                    });
                }
            },
        };
        let payer_number = row
            .payer_number
            .as_deref()
            .and_then(|p| PayerNumber::parse(p).ok())
            .ok_or_else(|| {
                BankAccountError::Internal(format!("{} is active without a payer number", row.id))
            })?;
        Ok(ChargeSource {
            account: self.open_account(&row)?,
            bank_account_id: row.id,
            payer_number,
        })
    }

    /// The account a withdrawal pays out to: the named one, or (`None`) the member's default,
    /// their partner account if verified, else their most recently activated or verified
    /// charge account. It must be verified; a debit consent is not needed to receive money.
    pub async fn withdrawal_target(
        &self,
        member: &MemberId,
        id: Option<&str>,
    ) -> Result<WithdrawalTarget, BankAccountError> {
        let row = match id {
            Some(id) => self.owned_by_text(member, id).await?,
            None => store::preferred_link(
                &self.db,
                member.as_str(),
                &[
                    LinkStatus::Verified,
                    LinkStatus::ConsentPending,
                    LinkStatus::Active,
                ],
            )
            .await?
            .ok_or_else(|| BankAccountError::NotFound("default".into()))?,
        };
        if !status(&row)?.is_verified() {
            return Err(BankAccountError::NotVerified);
        }
        let holder_name = HolderName::parse(&row.holder_name)
            .map_err(|_| BankAccountError::Internal(format!("{} has a bad holder name", row.id)))?;
        Ok(WithdrawalTarget {
            account: self.open_account(&row)?,
            bank_account_id: row.id,
            holder_name,
        })
    }

    /// Refuses a link the rules forbid, before any bank call: another live link of the same
    /// account by this member, a second partner link, a partner account another member holds,
    /// a partner link at another bank, or too many charge accounts.
    async fn refuse_link(
        &self,
        member_id: &MemberId,
        kind: LinkKind,
        account: &BankAccount,
        blind_index: &str,
    ) -> Result<(), BankAccountError> {
        if kind == LinkKind::Partner && account.bank_code != self.config.partner_bank_code {
            return Err(BankAccountError::NotPartnerBank(
                self.config.partner_bank_code.to_string(),
            ));
        }
        let (same_account, has_partner, partner_elsewhere) =
            store::collisions(&self.db, member_id.as_str(), blind_index).await?;
        if same_account {
            return Err(BankAccountError::AlreadyLinked);
        }
        match kind {
            LinkKind::Partner if has_partner => Err(BankAccountError::PartnerLinkExists),
            LinkKind::Partner if partner_elsewhere => Err(BankAccountError::PartnerAccountTaken),
            LinkKind::Partner => Ok(()),
            LinkKind::Charge => {
                let max = self.config.charge_accounts_max;
                if store::live_charge_count(&self.db, member_id.as_str()).await? >= max {
                    Err(BankAccountError::LimitReached(max))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Checks a keyed ARS code against the open session, using one attempt, and records the
    /// confirmation with a payer number.
    async fn check_ars_code(
        &self,
        row: &LinkRow,
        code: &DigitCode,
    ) -> Result<(), BankAccountError> {
        let (Some(digest), Some(expires_at)) = (&row.ars_code_hmac, row.ars_expires_at) else {
            return Err(BankAccountError::ArsSessionMissing);
        };
        let now = self.clock.now_micros();
        if now >= expires_at {
            return Err(BankAccountError::ArsSessionExpired);
        }
        let used = store::use_ars_attempt(&self.db, &row.id, ARS_ATTEMPTS_MAX)
            .await?
            .ok_or(BankAccountError::ArsAttemptsExceeded)?;
        if !self
            .config
            .keys
            .mac_matches(CODE_DOMAIN, &[&row.id, "ars", code.expose()], digest)
        {
            return Err(BankAccountError::ArsCodeMismatch {
                attempts_left: ARS_ATTEMPTS_MAX - used,
            });
        }
        let payer_number = generate_payer_number();
        // A concurrent confirmation may have recorded first; either way it is confirmed now.
        store::confirm_consent(&self.db, &row.id, payer_number.as_str(), now).await?;
        Ok(())
    }

    /// Whether a write failed on a unique index (a concurrent request won a race).
    fn is_unique_violation(&self, error: &BankAccountError) -> bool {
        matches!(error, BankAccountError::Storage(error) if self.db.backend().is_unique_violation(error))
    }

    /// The blind index of an account: equal accounts give equal indexes, and the index reveals
    /// nothing about the number without the index key.
    fn blind_index(&self, account: &BankAccount) -> String {
        self.config.keys.mac(
            BLIND_INDEX_DOMAIN,
            &[account.bank_code.as_str(), account.account_number.expose()],
        )
    }

    /// The account of a stored link, its number opened with the keyring.
    pub(crate) fn open_account(&self, row: &LinkRow) -> Result<BankAccount, BankAccountError> {
        let bad = |what: &str| BankAccountError::Internal(format!("{} has a bad {what}", row.id));
        let bank_code = BankCode::parse(&row.bank_code).map_err(|_| bad("bank code"))?;
        let id = BankAccountId::parse(&row.id).ok_or_else(|| bad("id"))?;
        let plain = self.config.keys.open(
            &row.account_key_id,
            &row.account_number_sealed,
            &number_aad(&id, &bank_code),
        )?;
        let number = std::str::from_utf8(&plain)
            .ok()
            .and_then(|text| AccountNumber::parse(text).ok())
            .ok_or_else(|| bad("account number"))?;
        Ok(BankAccount::new(bank_code, number))
    }

    pub(crate) async fn row(&self, id: &BankAccountId) -> Result<LinkRow, BankAccountError> {
        store::link_by_id(&self.db, id.as_str())
            .await?
            .ok_or_else(|| BankAccountError::NotFound(id.to_string()))
    }

    /// A live link of this member; any other (another member's, ended, missing) is not found.
    /// Ownership is checked before anything else, so another member's link answers exactly like
    /// a missing one whatever its state.
    async fn owned(
        &self,
        member_id: &MemberId,
        id: &BankAccountId,
    ) -> Result<LinkRow, BankAccountError> {
        let row = self.row(id).await?;
        if row.member_id != member_id.as_str() {
            return Err(BankAccountError::NotFound(id.to_string()));
        }
        if row.ended_at.is_some() {
            return Err(BankAccountError::Ended);
        }
        Ok(row)
    }

    async fn owned_by_text(
        &self,
        member_id: &MemberId,
        id: &str,
    ) -> Result<LinkRow, BankAccountError> {
        let parsed = BankAccountId::parse(id)
            .ok_or_else(|| BankAccountError::NotFound(id.chars().take(64).collect()))?;
        self.owned(member_id, &parsed).await
    }

    /// A live link; ended links answer `bank_account_ended`.
    async fn live(&self, id: &BankAccountId) -> Result<LinkRow, BankAccountError> {
        let row = self.row(id).await?;
        if row.ended_at.is_some() {
            return Err(BankAccountError::Ended);
        }
        Ok(row)
    }

    /// [`Self::owned`], after resolving a deposit that is still pending.
    async fn refreshed_owned(
        &self,
        member_id: &MemberId,
        id: &BankAccountId,
    ) -> Result<LinkRow, BankAccountError> {
        let row = self.owned(member_id, id).await?;
        self.refresh(row).await
    }

    /// Resolves the current deposit of a link in `deposit_pending` and reads the link again.
    async fn refresh(&self, row: LinkRow) -> Result<LinkRow, BankAccountError> {
        if status(&row)? != LinkStatus::DepositPending {
            return Ok(row);
        }
        if let Some(deposit) = store::current_deposit(&self.db, &row.id).await? {
            if deposit.status == "pending" {
                let account = self.open_account(&row)?;
                self.resolve(&deposit, &account).await?;
            }
        }
        let id = BankAccountId::parse(&row.id)
            .ok_or_else(|| BankAccountError::Internal(format!("{} is not a link id", row.id)))?;
        self.row(&id).await
    }

    async fn disclosed(&self, id: &BankAccountId) -> Result<Disclosed, BankAccountError> {
        let row = self.row(id).await?;
        let account_number = self.open_account(&row)?.account_number;
        Ok(Disclosed {
            account: self.view(row).await?,
            account_number,
        })
    }

    /// A stored link as handed out, masked, with its verification progress while unverified.
    async fn view(&self, row: LinkRow) -> Result<LinkedAccount, BankAccountError> {
        let bad = |what: &str| BankAccountError::Internal(format!("{} has a bad {what}", row.id));
        let status = status(&row)?;
        let verification = match status {
            LinkStatus::DepositPending | LinkStatus::AwaitingVerification => {
                self.progress(&row.id).await?
            }
            _ => None,
        };
        Ok(LinkedAccount {
            id: BankAccountId::parse(&row.id).ok_or_else(|| bad("id"))?,
            member_id: MemberId::parse(&row.member_id).ok_or_else(|| bad("member id"))?,
            kind: LinkKind::from_db(&row.kind).ok_or_else(|| bad("kind"))?,
            status,
            bank_code: BankCode::parse(&row.bank_code).map_err(|_| bad("bank code"))?,
            account_number_masked: masked(&row.account_last4),
            holder_name: HolderName::parse(&row.holder_name).map_err(|_| bad("holder name"))?,
            verification,
            created_at: row.created_at,
            updated_at: row.updated_at,
            verified_at: row.verified_at,
            activated_at: row.activated_at,
            ended_at: row.ended_at,
        })
    }

    async fn progress(
        &self,
        link_id: &str,
    ) -> Result<Option<VerificationProgress>, BankAccountError> {
        let Some(deposit) = store::current_deposit(&self.db, link_id).await? else {
            return Ok(None);
        };
        let sent = store::deposit_count(&self.db, link_id).await?;
        Ok(Some(VerificationProgress {
            deposited: deposit.status == "succeeded",
            expires_at: deposit.expires_at,
            attempts_left: (CODE_ATTEMPTS_MAX - deposit.attempts).max(0),
            resends_left: (DEPOSITS_PER_LINK_MAX - sent).max(0),
        }))
    }
}

/// A stored link's status.
pub(crate) fn status(row: &LinkRow) -> Result<LinkStatus, BankAccountError> {
    LinkStatus::from_db(&row.status)
        .ok_or_else(|| BankAccountError::Internal(format!("{} has unknown status", row.id)))
}

/// The associated data an account number is sealed with: its link's id and its bank, so that a
/// ciphertext moved to another row (or relabelled with another bank) does not open.
fn number_aad(id: &BankAccountId, bank_code: &BankCode) -> Vec<u8> {
    format!("{}\0{}", id.as_str(), bank_code.as_str()).into_bytes()
}

/// Microseconds of a verification code's life.
pub(crate) fn code_ttl_micros() -> Micros {
    CODE_TTL_S * MICROS_PER_S
}
