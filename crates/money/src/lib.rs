//! Currencies and amounts for mypay, in integer minor units.
//!
//! Money is never represented as a float here: binary floating point cannot hold most decimal
//! fractions exactly, and a payments ledger must add up to the last minor unit. Amounts are `i64`
//! counts of a currency's minor unit (cents, fils, or whole won), every operation that could
//! overflow is checked, and decimal strings are parsed with a deliberately strict grammar so that
//! no input can be read two ways.
//!
//! ```
//! use money::{Currency, Money};
//!
//! let price = Money::parse("12.5", Currency::USD)?;
//! assert_eq!(price.minor(), 1250);
//! assert_eq!(price.to_string(), "12.50 USD");
//! # Ok::<(), money::MoneyError>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::float_arithmetic, clippy::float_cmp)]

mod amount;
mod currency;
mod error;
mod money;

pub use amount::{format_minor, parse_amount, parse_signed_amount};
pub use currency::Currency;
pub use error::MoneyError;
pub use money::Money;
