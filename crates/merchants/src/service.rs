//! The merchants service: onboarding with a holder-name check of the settlement account,
//! reads, changes, a new settlement account, and the merchant's ledger accounts.

use std::sync::Arc;

use bank_accounts::{names_match, AccountKeys};
use banking::{AccountNumber, BankAccount, BankCode, BankError, HolderName, RealNameOutcome};
use ledger::{
    AccountCode, AccountId, AccountKind, Ledger, LedgerError, NewAccount, Page, PAGE_SIZE_MAX,
};
use money::Currency;
use storage::Db;
use wallet::bank_transfer::BankTransfers;

use crate::domain::{
    check_fee_bps, check_name, Merchant, MerchantAccount, MerchantPatch, MerchantStatus,
    NewMerchant, SettlementAccount,
};
use crate::error::MerchantError;
use crate::id::MerchantId;
use crate::store::{self, MerchantRow, NewMerchantRow, SettlementRow};

/// The MAC domain of onboarding requests (see [`Merchants::onboard`]).
const ONBOARDING_DOMAIN: &str = "mypay.merchants.onboarding.v1";

/// Parses a settlement account as a caller types it: a 3-digit bank code, an account number
/// (hyphens allowed between digits) and the name the caller expects it to be held in.
pub fn parse_settlement_account(
    bank_code: &str,
    account_number: &str,
    holder_name: &str,
) -> Result<(BankAccount, HolderName), MerchantError> {
    let bank_code = BankCode::parse(bank_code).map_err(MerchantError::from_invalid)?;
    let number = AccountNumber::parse(account_number).map_err(MerchantError::from_invalid)?;
    let holder = HolderName::parse(holder_name).map_err(MerchantError::from_invalid)?;
    Ok((BankAccount::new(bank_code, number), holder))
}

/// The merchants service. Cheap to clone: every clone shares one set of handles.
#[derive(Clone)]
pub struct Merchants {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    ledger: Arc<Ledger>,
    /// The bank transfer executor: the gateway for holder-name inquiries and the booking of
    /// their fees. Settlement will send its payouts through the same one.
    transfers: Arc<BankTransfers>,
    /// The keyring that seals linked accounts' numbers seals settlement accounts too.
    keys: Arc<AccountKeys>,
}

impl std::fmt::Debug for Merchants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Merchants")
            .field("db", &self.inner.db)
            .field("keys", &self.inner.keys)
            .finish_non_exhaustive()
    }
}

impl Merchants {
    /// The service over a migrated database. `transfers` is the process's bank transfer
    /// executor (it holds the bank gateway and the fee table); `keys` is the account keyring.
    pub fn new(
        db: Db,
        ledger: Arc<Ledger>,
        transfers: Arc<BankTransfers>,
        keys: Arc<AccountKeys>,
    ) -> Merchants {
        Merchants {
            inner: Arc::new(Inner {
                db,
                ledger,
                transfers,
                keys,
            }),
        }
    }

    /// Onboards a merchant, `active`: checks the name and fee rate, asks the bank whose the
    /// settlement account is (the answer must be the expected holder), and stores the merchant
    /// with the account number sealed. Nothing is stored when a check fails.
    ///
    /// With a request key, the same key and the same request answer the merchant the first
    /// attempt onboarded (even a concurrent one), and the same key with another request is
    /// refused with `idempotency_key_reused`.
    pub async fn onboard(&self, new: NewMerchant) -> Result<Merchant, MerchantError> {
        let name = check_name(&new.name)?;
        let fee_bps = check_fee_bps(new.fee_bps)?;
        let request = new.request_key.as_ref().map(|key| {
            let mac = self.request_mac(&name, fee_bps, &new.account, &new.holder_name);
            (key, mac)
        });
        if let Some((key, mac)) = &request {
            if let Some(row) = store::merchant_by_request(self.db(), &key.scope, &key.key).await? {
                return self.replayed(row, mac);
            }
        }
        let holder = self.check_holder(&new.account, &new.holder_name).await?;
        let id = MerchantId::generate();
        let settlement = self.seal(&id, &new.account, &holder)?;
        let row = NewMerchantRow {
            id: id.as_str(),
            name: &name,
            fee_bps: i64::from(fee_bps),
            settlement: &settlement,
            request: request
                .as_ref()
                .map(|(key, mac)| (key.scope.as_str(), key.key.as_str(), mac.as_str())),
            now: self.inner.ledger.now_micros(),
        };
        if let Err(error) = store::insert_merchant(self.db(), &row).await {
            let Some((key, mac)) = &request else {
                return Err(error.into());
            };
            if !self.db().backend().is_unique_violation(&error) {
                return Err(error.into());
            }
            // A concurrent request with the same key stored its merchant first.
            let row = store::merchant_by_request(self.db(), &key.scope, &key.key)
                .await?
                .ok_or(error)?;
            return self.replayed(row, mac);
        }
        tracing::info!(merchant = %id, "merchant onboarded");
        self.get(&id).await
    }

    /// A merchant by id; `merchant_not_found` when there is none.
    pub async fn get(&self, id: &MerchantId) -> Result<Merchant, MerchantError> {
        view(self.row(id).await?)
    }

    /// Merchants in onboarding order, `limit` (1 to 500) at most after the cursor (the last id
    /// of the previous page).
    pub async fn list(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Page<Merchant>, MerchantError> {
        let limit = limit.clamp(1, PAGE_SIZE_MAX);
        let mut rows = store::merchants_after(self.db(), after, limit + 1).await?;
        let next = (rows.len() as i64 > limit).then(|| {
            rows.truncate(limit as usize);
            rows.last().map(|row| row.id.clone())
        });
        let items = rows.into_iter().map(view).collect::<Result<_, _>>()?;
        Ok(Page {
            items,
            next: next.flatten(),
        })
    }

    /// Changes the name, the fee rate or the status; absent fields stay as they are. A new fee
    /// rate applies to payments made after the change; what is already payable keeps the rate
    /// it was booked with.
    pub async fn update(
        &self,
        id: &MerchantId,
        patch: MerchantPatch,
    ) -> Result<Merchant, MerchantError> {
        let name = patch.name.as_deref().map(check_name).transpose()?;
        let fee_bps = patch.fee_bps.map(check_fee_bps).transpose()?;
        if name.is_none() && fee_bps.is_none() && patch.status.is_none() {
            return self.get(id).await;
        }
        let found = store::update_merchant(
            self.db(),
            id.as_str(),
            name.as_deref(),
            fee_bps.map(i64::from),
            patch.status.map(MerchantStatus::as_str),
            self.inner.ledger.now_micros(),
        )
        .await?;
        if !found {
            return Err(MerchantError::NotFound(id.to_string()));
        }
        self.get(id).await
    }

    /// Replaces the settlement account after the same holder-name check as onboarding. A
    /// refused check leaves the old account in place.
    pub async fn change_settlement_account(
        &self,
        id: &MerchantId,
        account: BankAccount,
        holder: HolderName,
    ) -> Result<Merchant, MerchantError> {
        // Exists, before the bank is asked anything on its behalf.
        self.row(id).await?;
        let checked = self.check_holder(&account, &holder).await?;
        let settlement = self.seal(id, &account, &checked)?;
        let now = self.inner.ledger.now_micros();
        if !store::set_settlement(self.db(), id.as_str(), &settlement, now).await? {
            return Err(MerchantError::NotFound(id.to_string()));
        }
        tracing::info!(merchant = %id, bank_code = %account.bank_code, "settlement account changed");
        self.get(id).await
    }

    /// The settlement account in full and the holder name the bank reported, for a payout
    /// (and its holder check) at the bank only: never show or log them.
    pub async fn settlement_target(
        &self,
        id: &MerchantId,
    ) -> Result<(BankAccount, HolderName), MerchantError> {
        let row = self.row(id).await?;
        let account = self.open_account(&row)?;
        let holder = HolderName::parse(&row.settlement.holder_name)
            .map_err(|_| bad(&row, "settlement holder name"))?;
        Ok((account, holder))
    }

    /// The merchant's ledger account for `purpose` in `currency`,
    /// `liability:merchant:{id}:{payable|escrow}:{CUR}`, opened on first use: escrow must not
    /// go negative, payable may (a refund after settlement leaves the merchant owing).
    ///
    /// Safe under concurrent first use: the ledger opens an account by inserting it unless its
    /// code exists and then reading it by code, so every caller gets the one account. A merchant
    /// that does not exist gets no account (`merchant_not_found`); status is not checked, because
    /// refunds and settlement still reach a suspended merchant's accounts.
    pub async fn ledger_account(
        &self,
        merchant: &MerchantId,
        purpose: MerchantAccount,
        currency: Currency,
    ) -> Result<AccountId, MerchantError> {
        let code = AccountCode::parse(&purpose.code(merchant, currency))?;
        match self.inner.ledger.account_by_code(&code).await {
            Ok(account) => return Ok(account.id),
            Err(LedgerError::AccountNotFound(_)) => {}
            Err(error) => return Err(error.into()),
        }
        self.row(merchant).await?;
        let account = self
            .inner
            .ledger
            .create_account(NewAccount {
                code,
                kind: AccountKind::Liability,
                currency,
                flags: purpose.flags(),
                metadata: None,
            })
            .await?;
        Ok(account.id)
    }

    pub(crate) fn db(&self) -> &Db {
        &self.inner.db
    }

    pub(crate) fn ledger(&self) -> &Ledger {
        &self.inner.ledger
    }

    pub(crate) fn bank(&self) -> &Arc<dyn banking::BankGateway> {
        self.inner.transfers.bank()
    }

    pub(crate) async fn row(&self, id: &MerchantId) -> Result<MerchantRow, MerchantError> {
        store::merchant_by_id(self.db(), id.as_str())
            .await?
            .ok_or_else(|| MerchantError::NotFound(id.to_string()))
    }

    /// Asks the bank whose the account is and compares with the expected holder, ignoring
    /// whitespace and Latin letter case as banks print names their own way. Returns the name
    /// as the bank reported it. The inquiry's fee is booked (under an id of its own) whenever
    /// the bank answered, whatever the answer.
    async fn check_holder(
        &self,
        account: &BankAccount,
        expected: &HolderName,
    ) -> Result<HolderName, MerchantError> {
        let transfers = &self.inner.transfers;
        let answer = transfers.bank().real_name(account).await;
        if !matches!(answer, Err(BankError::Unavailable { .. })) {
            let fee_id = format!("bkf:real_name:{}", ulid::Ulid::new());
            transfers
                .book_fee(&fee_id, transfers.fees().real_name)
                .await?;
        }
        match answer.map_err(MerchantError::from_bank)? {
            RealNameOutcome::Found { holder_name }
                if names_match(expected.expose(), holder_name.expose()) =>
            {
                Ok(holder_name)
            }
            RealNameOutcome::Found { holder_name } => Err(MerchantError::HolderNameMismatch {
                actual_masked: holder_name.masked(),
            }),
            RealNameOutcome::NotFound => Err(MerchantError::AccountUnknownAtBank),
        }
    }

    /// The settlement account as stored: the number sealed for this merchant and bank.
    fn seal(
        &self,
        id: &MerchantId,
        account: &BankAccount,
        holder: &HolderName,
    ) -> Result<SettlementRow, MerchantError> {
        let sealed = self.inner.keys.seal(
            account.account_number.expose().as_bytes(),
            &number_aad(id.as_str(), &account.bank_code),
        )?;
        let digits = account.account_number.expose();
        Ok(SettlementRow {
            bank_code: account.bank_code.as_str().to_owned(),
            key_id: sealed.key_id,
            number_sealed: sealed.sealed,
            last4: digits[digits.len() - 4..].to_owned(),
            holder_name: holder.expose().to_owned(),
        })
    }

    fn open_account(&self, row: &MerchantRow) -> Result<BankAccount, MerchantError> {
        self.open_sealed(&row.id, &row.settlement)
    }

    /// Opens an account number sealed for `merchant_id` (its settlement account, or a copy of
    /// it kept by a debit mandate: the same ciphertext under the same associated data).
    pub(crate) fn open_sealed(
        &self,
        merchant_id: &str,
        sealed: &SettlementRow,
    ) -> Result<BankAccount, MerchantError> {
        let bad = |what: &str| MerchantError::Internal(format!("{merchant_id} has a bad {what}"));
        let bank_code =
            BankCode::parse(&sealed.bank_code).map_err(|_| bad("settlement bank code"))?;
        let plain = self.inner.keys.open(
            &sealed.key_id,
            &sealed.number_sealed,
            &number_aad(merchant_id, &bank_code),
        )?;
        let number = std::str::from_utf8(&plain)
            .ok()
            .and_then(|text| AccountNumber::parse(text).ok())
            .ok_or_else(|| bad("settlement account number"))?;
        Ok(BankAccount::new(bank_code, number))
    }

    /// A keyed digest of what an onboarding request asked for. Keyed, because account numbers
    /// are few enough to guess from a plain hash.
    fn request_mac(
        &self,
        name: &str,
        fee_bps: u32,
        account: &BankAccount,
        holder: &HolderName,
    ) -> String {
        self.inner.keys.mac(
            ONBOARDING_DOMAIN,
            &[
                name,
                &fee_bps.to_string(),
                account.bank_code.as_str(),
                account.account_number.expose(),
                holder.expose(),
            ],
        )
    }

    /// The merchant a request key onboarded, if this request is the one that onboarded it.
    fn replayed(&self, row: MerchantRow, mac: &str) -> Result<Merchant, MerchantError> {
        if row.request_mac.as_deref() == Some(mac) {
            view(row)
        } else {
            Err(MerchantError::RequestKeyReused)
        }
    }
}

/// The associated data a settlement account number is sealed with: its merchant and its bank,
/// so that a ciphertext moved to another row (or relabelled with another bank) does not open.
fn number_aad(merchant_id: &str, bank_code: &BankCode) -> Vec<u8> {
    format!("{merchant_id}\0{}", bank_code.as_str()).into_bytes()
}

fn bad(row: &MerchantRow, what: &str) -> MerchantError {
    MerchantError::Internal(format!("{} has a bad {what}", row.id))
}

/// A stored merchant as handed out, its settlement account masked.
fn view(row: MerchantRow) -> Result<Merchant, MerchantError> {
    let holder = HolderName::parse(&row.settlement.holder_name)
        .map_err(|_| bad(&row, "settlement holder name"))?;
    Ok(Merchant {
        id: MerchantId::parse(&row.id).ok_or_else(|| bad(&row, "id"))?,
        status: MerchantStatus::from_db(&row.status).ok_or_else(|| bad(&row, "status"))?,
        fee_bps: u32::try_from(row.fee_bps).map_err(|_| bad(&row, "fee rate"))?,
        settlement: SettlementAccount {
            bank_code: BankCode::parse(&row.settlement.bank_code)
                .map_err(|_| bad(&row, "settlement bank code"))?,
            account_number_masked: format!("***-***-{}", row.settlement.last4),
            holder_name_masked: holder.masked(),
        },
        name: row.name,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settlement_accounts_parse_field_by_field() {
        let (account, holder) =
            parse_settlement_account("088", "110-123-456789", " (주)마이커피 ").unwrap();
        assert_eq!(account.bank_code.as_str(), "088");
        assert_eq!(account.account_number.expose(), "110123456789");
        assert_eq!(holder.expose(), "(주)마이커피");
        for (bank, number, holder, code) in [
            ("88", "110123456789", "a", "bank_code_invalid"),
            ("088", "12", "a", "account_number_invalid"),
            ("088", "110123456789", " ", "holder_name_invalid"),
        ] {
            let error = parse_settlement_account(bank, number, holder).unwrap_err();
            assert_eq!(error.code(), code);
        }
    }

    #[test]
    fn numbers_are_sealed_for_one_merchant_and_bank() {
        let (keys, _, _) = AccountKeys::generate("k1").unwrap();
        let bank = BankCode::parse("088").unwrap();
        let other_bank = BankCode::parse("004").unwrap();
        let sealed = keys
            .seal(b"110123456789", &number_aad("mer_A", &bank))
            .unwrap();
        let open = |merchant: &str, bank: &BankCode| {
            keys.open(&sealed.key_id, &sealed.sealed, &number_aad(merchant, bank))
        };
        assert_eq!(open("mer_A", &bank).unwrap(), b"110123456789");
        assert!(open("mer_B", &bank).is_err());
        assert!(open("mer_A", &other_bank).is_err());
    }
}
