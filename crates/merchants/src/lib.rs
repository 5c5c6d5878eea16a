//! Merchants (가맹점): the businesses that sell through the platform.
//!
//! A merchant is onboarded by an operator (an admin or platform key) with a name, a fee rate in
//! basis points (an integer from 0 to 10,000) and a settlement bank account, whose holder the
//! bank must confirm to be the expected name before anything is stored. The account number is
//! sealed like linked accounts' numbers (AES-256-GCM under the account keyring, bound to the
//! merchant and bank) and shown only masked; it leaves this crate in full only to the bank,
//! through [`Merchants::settlement_target`].
//!
//! The merchant's money lives in the ledger, in accounts this crate names and opens on first
//! use ([`Merchants::ledger_account`]): `liability:merchant:{id}:payable:{CUR}` (what the
//! platform owes the merchant; may go negative after a refund of settled money) and
//! `liability:merchant:{id}:escrow:{CUR}` (held for the buyer's confirmation; never negative).
//!
//! Architecture invariants: no settlement account number is stored or logged in the clear;
//! a merchant is stored only after the bank confirmed its account's holder; fee rates are
//! integers, never floats; this crate knows no HTTP and moves no money (it books only the
//! holder-name inquiry's fee).

#![forbid(unsafe_code)]

mod domain;
mod error;
mod id;
mod mandate;
mod sellers;
mod service;
mod store;

pub use domain::{
    check_fee_bps, check_name, Merchant, MerchantAccount, MerchantPatch, MerchantStatus,
    NewMerchant, SettlementAccount, FEE_BPS_MAX, MERCHANT_NAME_CHARS_MAX,
};
pub use error::MerchantError;
pub use id::MerchantId;
pub use mandate::{DebitMandate, DebitSource};
pub use service::{parse_settlement_account, Merchants};
