//! Debit mandates: a business's consent to be debited from its bank account (CMS 출금이체
//! 동의), the precondition of a business remittance's collect.
//!
//! A business signs the mandate on paper and an operator registers it: the platform issues a
//! payer number, registers the consent for the merchant's settlement account at the bank, and
//! keeps a sealed copy of that account with the mandate. Collects cite the payer number and
//! debit exactly that account, even if the settlement account changes later (the bank's
//! consent is for the account it was registered with); registering again moves the mandate to
//! the current settlement account.

use bank_accounts::generate_payer_number;
use banking::{BankAccount, DebitConsent, PayerNumber};
use sqlx::Row;

use crate::error::MerchantError;
use crate::id::MerchantId;
use crate::service::Merchants;
use crate::store::SettlementRow;

/// A registered debit mandate, as shown: the account masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebitMandate {
    pub merchant_id: MerchantId,
    pub payer_number: String,
    pub bank_code: String,
    /// The account number's last four digits.
    pub last4: String,
    /// `active` or `revoked`.
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What a collect needs: the account to debit and the payer number its consent is under.
/// Never shown or logged: `BankAccount` masks itself in `Debug`.
#[derive(Debug, Clone)]
pub struct DebitSource {
    pub account: BankAccount,
    pub payer_number: PayerNumber,
}

const COLUMNS: &str =
    "merchant_id, payer_number, bank_code, key_id, number_sealed, last4, status, created_at, \
     updated_at";

impl Merchants {
    /// Registers the merchant's debit mandate for its current settlement account: the consent
    /// is registered at the bank first (nothing is stored if the bank refuses or is away), then
    /// stored. Registering again for the same account answers the active mandate unchanged;
    /// for another account (the settlement account changed), the old consent is revoked at the
    /// bank and the mandate moves to the new account under a new payer number.
    pub async fn register_debit_mandate(
        &self,
        id: &MerchantId,
    ) -> Result<DebitMandate, MerchantError> {
        let row = self.row(id).await?;
        let current = self.mandate_row(id).await?;
        if let Some((mandate, sealed)) = &current {
            if mandate.status == "active" && same_account(sealed, &row.settlement) {
                return Ok(mandate.clone());
            }
        }
        let account = self.open_sealed(&row.id, &row.settlement)?;
        let payer_number = generate_payer_number();
        self.bank()
            .register_consent(&DebitConsent {
                payer_number: payer_number.clone(),
                account,
            })
            .await
            .map_err(MerchantError::from_bank)?;
        if let Some((old, _)) = current.filter(|(old, _)| old.status == "active") {
            self.revoke_at_bank(&old.payer_number).await;
        }
        let now = self.ledger().now_micros();
        let s = &row.settlement;
        sqlx::query(
            "INSERT INTO merchant_debit_mandates (merchant_id, payer_number, bank_code, key_id, \
             number_sealed, last4, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, $7) \
             ON CONFLICT (merchant_id) DO UPDATE SET payer_number = $2, bank_code = $3, \
             key_id = $4, number_sealed = $5, last4 = $6, status = 'active', updated_at = $7",
        )
        .bind(id.as_str())
        .bind(payer_number.as_str())
        .bind(&s.bank_code)
        .bind(&s.key_id)
        .bind(&s.number_sealed)
        .bind(&s.last4)
        .bind(now)
        .execute(self.db().pool())
        .await?;
        tracing::info!(merchant = %id, bank_code = %s.bank_code, "debit mandate registered");
        self.debit_mandate(id).await
    }

    /// Revokes the merchant's debit mandate at the bank and marks it revoked; collects citing
    /// it are refused from then on. Revoking a revoked mandate changes nothing.
    pub async fn revoke_debit_mandate(
        &self,
        id: &MerchantId,
    ) -> Result<DebitMandate, MerchantError> {
        let (mandate, _) = self
            .mandate_row(id)
            .await?
            .ok_or(MerchantError::MandateMissing)?;
        if mandate.status == "active" {
            let payer_number = PayerNumber::parse(&mandate.payer_number)
                .map_err(|_| MerchantError::Internal(format!("{id} has a bad payer number")))?;
            self.bank()
                .revoke_consent(&payer_number)
                .await
                .map_err(MerchantError::from_bank)?;
            sqlx::query(
                "UPDATE merchant_debit_mandates SET status = 'revoked', updated_at = $1 \
                 WHERE merchant_id = $2",
            )
            .bind(self.ledger().now_micros())
            .bind(id.as_str())
            .execute(self.db().pool())
            .await?;
        }
        self.debit_mandate(id).await
    }

    /// The merchant's debit mandate (active or revoked), masked.
    pub async fn debit_mandate(&self, id: &MerchantId) -> Result<DebitMandate, MerchantError> {
        self.row(id).await?;
        self.mandate_row(id)
            .await?
            .map(|(mandate, _)| mandate)
            .ok_or(MerchantError::MandateMissing)
    }

    /// The account and payer number to collect from under the merchant's active mandate, for
    /// the bank only: `debit_mandate_missing` when it has none.
    pub async fn debit_source(&self, id: &MerchantId) -> Result<DebitSource, MerchantError> {
        let (mandate, sealed) = self
            .mandate_row(id)
            .await?
            .filter(|(mandate, _)| mandate.status == "active")
            .ok_or(MerchantError::MandateMissing)?;
        let payer_number = PayerNumber::parse(&mandate.payer_number)
            .map_err(|_| MerchantError::Internal(format!("{id} has a bad payer number")))?;
        Ok(DebitSource {
            account: self.open_sealed(id.as_str(), &sealed)?,
            payer_number,
        })
    }

    /// The account a mandate was registered for, in full, for paying money back to it.
    pub async fn mandate_account(&self, id: &MerchantId) -> Result<BankAccount, MerchantError> {
        let (_, sealed) = self
            .mandate_row(id)
            .await?
            .ok_or(MerchantError::MandateMissing)?;
        self.open_sealed(id.as_str(), &sealed)
    }

    async fn mandate_row(
        &self,
        id: &MerchantId,
    ) -> Result<Option<(DebitMandate, SettlementRow)>, MerchantError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM merchant_debit_mandates WHERE merchant_id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(self.db().pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let mandate = DebitMandate {
            merchant_id: id.clone(),
            payer_number: row.try_get("payer_number")?,
            bank_code: row.try_get("bank_code")?,
            last4: row.try_get("last4")?,
            status: row.try_get("status")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        };
        let sealed = SettlementRow {
            bank_code: mandate.bank_code.clone(),
            key_id: row.try_get("key_id")?,
            number_sealed: row.try_get("number_sealed")?,
            last4: mandate.last4.clone(),
            holder_name: String::new(),
        };
        Ok(Some((mandate, sealed)))
    }

    /// Withdraws a superseded consent at the bank. A failure is logged, not returned: the new
    /// mandate is registered already, and the old payer number is never cited again.
    async fn revoke_at_bank(&self, payer_number: &str) {
        let Ok(payer_number) = PayerNumber::parse(payer_number) else {
            return;
        };
        if let Err(error) = self.bank().revoke_consent(&payer_number).await {
            tracing::warn!(
                code = error.code(),
                "revoking a superseded debit consent failed"
            );
        }
    }
}

/// Whether a mandate's sealed account is the settlement account: the same ciphertext, since a
/// mandate copies it and a changed settlement account is sealed anew.
fn same_account(mandate: &SettlementRow, settlement: &SettlementRow) -> bool {
    mandate.bank_code == settlement.bank_code
        && mandate.key_id == settlement.key_id
        && mandate.number_sealed == settlement.number_sealed
}
