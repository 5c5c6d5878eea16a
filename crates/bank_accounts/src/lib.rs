//! Linked bank accounts: the accounts members charge from and withdraw to.
//!
//! Two separate processes, as the partner-bank contract requires: **charge accounts** at any
//! bank, several per member, and the **partner account** at the partner bank, one per member
//! and one member per account. Both go the same way: a holder-name check at the bank against
//! the member's name, a 1-won micro-deposit whose memo carries a code the member types back
//! (10 minutes, 5 attempts, a bounded number of resends), then a debit consent confirmed by an
//! ARS step and registered at the bank under a payer number the platform issues.
//!
//! Architecture invariants: account numbers are stored only sealed (AES-256-GCM under a named
//! key of a rotating keyring), with an HMAC blind index for uniqueness and the last four digits
//! for masking; they leave this crate in full only in the member's own linking, verification
//! and consent answers ([`Disclosed`], [`ConsentSession`]) and to the bank and the wallet
//! (`wallet::ChargeSource`, `wallet::WithdrawalTarget`, through the wallet's `FundingAccounts`
//! port, which [`BankAccounts`] implements). Codes are stored only as keyed digests. The 1-won
//! deposit is stored before it is sent, resolved by inquiry when its outcome is unknown, and
//! booked once under an id derived from its own. This crate knows no HTTP.

#![forbid(unsafe_code)]

mod deposit;
mod domain;
mod error;
mod funding;
mod id;
mod keys;
mod link;
mod service;
mod store;

pub use deposit::{deposits_requested_between, MicroDeposit};
pub use domain::{
    generate_payer_number, names_match, DigitCode, LinkKind, LinkStatus, ARS_CODE_DIGITS,
    DEPOSIT_MEMO_PREFIX, VERIFICATION_CODE_DIGITS,
};
pub use error::BankAccountError;
pub use id::{BankAccountId, DepositId};
pub use keys::{AccountKeys, KeyError, KeyId, Sealed, KEYRING_KEYS_MAX, KEY_BYTES, KEY_ID_LEN_MAX};
pub use link::{ConsentSession, Disclosed, LinkedAccount, VerificationProgress};
pub use service::{
    parse_account, BankAccountConfig, BankAccounts, ARS_ATTEMPTS_MAX, ARS_TTL_S,
    CHARGE_ACCOUNTS_MAX_DEFAULT, CODE_ATTEMPTS_MAX, CODE_TTL_S, DEPOSITS_PER_LINK_MAX,
    PAGE_SIZE_MAX, PARTNER_BANK_CODE_DEFAULT,
};
