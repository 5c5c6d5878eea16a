//! Settlement's vocabulary as pure rules: the settlement date and its cutoff, the fee
//! arithmetic, the figures of one merchant's day, the states, and the CSV report.

use banking::kst::KST;
use ledger::Micros;
use merchants::FEE_BPS_MAX;
use time::{Date, Duration, PrimitiveDateTime, Time};

use crate::error::SettlementError;

ids::ulid_id!(
    /// A settlement's id, `stl_` + a canonical ULID. It is also the id of the settlement's
    /// ledger transaction and the reference of its bank transfer.
    SettlementId,
    "stl_"
);

/// The prefix every ledger transaction settlement books starts with, so that measuring a
/// payable account's other movements can leave settlement's own out.
pub const LEDGER_PREFIX: &str = "stl_";

/// The basis points in one whole.
const BPS_PER_WHOLE: i128 = 10_000;

/// A settlement date: a KST business date. The day's sales are those posted before its cutoff,
/// the next day's 00:00 KST.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SettlementDate(Date);

impl SettlementDate {
    /// Parses `YYYY-MM-DD` (exactly, zero-padded).
    pub fn parse(value: &str) -> Result<SettlementDate, SettlementError> {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        let invalid = || SettlementError::DateInvalid(value.chars().take(32).collect());
        if value.len() != 10 {
            return Err(invalid());
        }
        Date::parse(value, &format)
            .map(SettlementDate)
            .map_err(|_| invalid())
    }

    pub fn from_date(date: Date) -> SettlementDate {
        SettlementDate(date)
    }

    /// The KST business date an instant falls on.
    pub fn of_instant(at: Micros) -> SettlementDate {
        let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at) * 1000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        SettlementDate(at.to_offset(KST).date())
    }

    pub fn date(self) -> Date {
        self.0
    }

    /// The day's cutoff: the next day's 00:00 KST, in microseconds since the epoch.
    pub fn cutoff_micros(self) -> Micros {
        let next = self.0 + Duration::days(1);
        let instant = PrimitiveDateTime::new(next, Time::MIDNIGHT).assume_offset(KST);
        i64::try_from(instant.unix_timestamp_nanos() / 1000).expect("dates fit in i64 micros")
    }
}

impl std::fmt::Display for SettlementDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}",
            self.0.year(),
            u8::from(self.0.month()),
            self.0.day()
        )
    }
}

/// The fee on `sales` at `fee_bps`: `sales × fee_bps / 10,000`, rounded half up to the minor
/// unit, in integers only (the product is taken in 128 bits, so no sales figure overflows it).
/// `None` for negative sales or a rate outside 0..=10,000.
pub fn fee_of(sales: i64, fee_bps: u32) -> Option<i64> {
    if sales < 0 || fee_bps > FEE_BPS_MAX {
        return None;
    }
    let product = i128::from(sales).checked_mul(i128::from(fee_bps))?;
    let rounded = product.checked_add(BPS_PER_WHOLE / 2)? / BPS_PER_WHOLE;
    i64::try_from(rounded).ok()
}

/// What one merchant's settlement of a day is made of, before anything is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Figures {
    /// Sales credited to payable in the fee window: the fee base.
    pub sales: i64,
    /// What the settlement takes from payable: everything payable held at the cutoff that
    /// earlier settlements did not take (negative when the merchant owes the platform).
    pub gross: i64,
    pub fee_bps: u32,
    pub fee: i64,
    /// What is paid out: gross − fee.
    pub net: i64,
}

/// The inputs of [`figures`]: sums over the merchant's payable account and its earlier
/// settlements, each in minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Balances {
    /// Everything credited to payable before the cutoff except settlement's own bookings.
    pub credited: i64,
    /// Everything debited from payable before the cutoff except settlement's own bookings.
    pub debited: i64,
    /// The gross of every earlier settlement that was booked (not carried over).
    pub settled_gross: i64,
    /// The net of every earlier settlement whose payout failed and went back to payable.
    pub returned_net: i64,
    /// Sales credited to payable in the fee window.
    pub window_sales: i64,
}

/// The figures of a day: gross = credited − debited − settled + returned; fee on the window's
/// sales; net = gross − fee. `None` when a sum overflows or an input is out of range.
pub fn figures(balances: Balances, fee_bps: u32) -> Option<Figures> {
    let gross = balances
        .credited
        .checked_sub(balances.debited)?
        .checked_sub(balances.settled_gross)?
        .checked_add(balances.returned_net)?;
    let fee = fee_of(balances.window_sales, fee_bps)?;
    Some(Figures {
        sales: balances.window_sales,
        gross,
        fee_bps,
        fee,
        net: gross.checked_sub(fee)?,
    })
}

impl Figures {
    /// Whether there is nothing to settle or carry: no money owed either way and no sales.
    pub fn is_empty(&self) -> bool {
        self.gross == 0 && self.sales == 0
    }

    /// Whether the settlement pays out; otherwise it is carried over to the next one.
    pub fn pays_out(&self) -> bool {
        self.net > 0
    }
}

/// Where a settlement is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SettlementState {
    /// Figures fixed; the ledger transaction and payout are being made.
    Calculated,
    /// Booked and sent to the bank; the outcome is not known yet.
    Paying,
    /// The bank executed the payout.
    Paid,
    /// The bank refused the payout; the net went back to payable for the next settlement.
    Failed,
    /// Net was zero or negative: nothing was booked or paid, the next settlement takes it.
    CarriedOver,
}

impl SettlementState {
    pub const ALL: [SettlementState; 5] = [
        SettlementState::Calculated,
        SettlementState::Paying,
        SettlementState::Paid,
        SettlementState::Failed,
        SettlementState::CarriedOver,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SettlementState::Calculated => "calculated",
            SettlementState::Paying => "paying",
            SettlementState::Paid => "paid",
            SettlementState::Failed => "failed",
            SettlementState::CarriedOver => "carried_over",
        }
    }

    pub fn from_db(value: &str) -> Option<SettlementState> {
        SettlementState::ALL
            .into_iter()
            .find(|state| state.as_str() == value)
    }

    /// Whether nothing more happens to the settlement.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            SettlementState::Paid | SettlementState::Failed | SettlementState::CarriedOver
        )
    }

    /// Whether the settlement's gross was (or is being) taken from payable.
    pub fn is_booked(self) -> bool {
        !matches!(self, SettlementState::CarriedOver)
    }
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Running,
    Paying,
    Completed,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Paying => "paying",
            RunState::Completed => "completed",
        }
    }

    pub fn from_db(value: &str) -> Option<RunState> {
        [RunState::Running, RunState::Paying, RunState::Completed]
            .into_iter()
            .find(|state| state.as_str() == value)
    }
}

/// One merchant's settlement of one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    pub id: SettlementId,
    pub merchant_id: String,
    pub merchant_name: String,
    pub date: SettlementDate,
    pub currency: money::Currency,
    pub window_from: Micros,
    pub cutoff_at: Micros,
    pub sales: i64,
    pub fee_bps: u32,
    pub gross: i64,
    pub fee: i64,
    pub net: i64,
    pub state: SettlementState,
    pub bank_transfer_id: Option<String>,
    pub failure_code: Option<String>,
    pub created_at: Micros,
    pub updated_at: Micros,
}

/// The counts and sums of a run, recomputed from its settlements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunTotals {
    pub settlements: i64,
    pub paid: i64,
    pub paying: i64,
    pub failed: i64,
    pub carried_over: i64,
    /// Sums over booked settlements (paid, paying, failed).
    pub gross: i64,
    pub fee: i64,
    /// The net of paid settlements.
    pub net_paid: i64,
}

impl RunTotals {
    /// The state these totals put the run in, once every merchant is calculated.
    pub fn state(&self, calculated: bool) -> RunState {
        if !calculated {
            RunState::Running
        } else if self.paying > 0 || self.settlements > self.final_count() {
            RunState::Paying
        } else {
            RunState::Completed
        }
    }

    fn final_count(&self) -> i64 {
        self.paid + self.failed + self.carried_over
    }
}

/// A run: one settlement date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub date: SettlementDate,
    pub cutoff_at: Micros,
    pub state: RunState,
    pub calculated_at: Option<Micros>,
    pub totals: RunTotals,
    pub started_at: Micros,
    pub completed_at: Option<Micros>,
    pub updated_at: Micros,
}

/// The CSV report's header line.
pub const CSV_HEADER: &str =
    "settlement_id,merchant_id,merchant_name,currency,sales,fee_bps,gross,fee,net,status,bank_transfer_id";

/// The CSV report of a day's settlements, in the order given (merchant id order), with a header
/// line and `\n` line ends. Amounts are decimal strings in major units.
pub fn csv_report(settlements: &[Settlement]) -> String {
    let mut out = String::with_capacity(64 * (settlements.len() + 1));
    out.push_str(CSV_HEADER);
    out.push('\n');
    for s in settlements {
        let amount = |minor: i64| money::format_minor(minor, s.currency);
        let fields = [
            s.id.as_str().to_owned(),
            s.merchant_id.clone(),
            csv_text(&s.merchant_name),
            s.currency.code().to_owned(),
            amount(s.sales),
            s.fee_bps.to_string(),
            amount(s.gross),
            amount(s.fee),
            amount(s.net),
            s.state.as_str().to_owned(),
            s.bank_transfer_id.clone().unwrap_or_default(),
        ];
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

/// A free-text field as CSV: quoted when it holds a comma, quote or line break, quotes doubled;
/// a leading `=`, `+`, `-` or `@` is prefixed with `'`, so a spreadsheet never runs a name as a
/// formula.
fn csv_text(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn dates_parse_exactly_and_cut_off_at_the_next_kst_midnight() {
        let date = SettlementDate::parse("2026-11-22").unwrap();
        assert_eq!(date.to_string(), "2026-11-22");
        // 2026-11-23T00:00+09:00 is 2026-11-22T15:00Z.
        assert_eq!(
            date.cutoff_micros(),
            1_795_305_600_000_000 + 15 * 3_600_000_000
        );
        for bad in [
            "2026-11-31",
            "2026-1-22",
            "22-11-2026",
            "",
            "2026-11-22T00:00",
            " 2026-11-22",
        ] {
            assert_eq!(
                SettlementDate::parse(bad).unwrap_err().code(),
                "settlement_date_invalid",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn an_instant_falls_on_its_kst_date() {
        let date = SettlementDate::parse("2026-11-22").unwrap();
        let cutoff = date.cutoff_micros();
        assert_eq!(SettlementDate::of_instant(cutoff - 1), date);
        assert_eq!(SettlementDate::of_instant(cutoff).to_string(), "2026-11-23");
    }

    #[test]
    fn fees_round_half_up_to_the_won() {
        assert_eq!(fee_of(10_000, 250), Some(250));
        assert_eq!(fee_of(1_020, 250), Some(26)); // 25.5 rounds up
        assert_eq!(fee_of(1_019, 250), Some(25)); // 25.475 rounds down
        assert_eq!(fee_of(1, 4_999), Some(0));
        assert_eq!(fee_of(1, 5_000), Some(1));
        assert_eq!(fee_of(0, 250), Some(0));
        assert_eq!(fee_of(i64::MAX, 10_000), Some(i64::MAX));
        assert_eq!(fee_of(-1, 250), None);
        assert_eq!(fee_of(100, 10_001), None);
    }

    #[test]
    fn figures_take_what_earlier_settlements_did_not() {
        let balances = Balances {
            credited: 100_000,
            debited: 10_000,
            settled_gross: 30_000,
            returned_net: 5_000,
            window_sales: 40_000,
        };
        let f = figures(balances, 250).unwrap();
        assert_eq!(f.gross, 65_000);
        assert_eq!(f.fee, 1_000);
        assert_eq!(f.net, 64_000);
        assert!(f.pays_out());
        let owing = figures(
            Balances {
                credited: 1_000,
                debited: 3_000,
                window_sales: 1_000,
                ..Balances::default()
            },
            250,
        )
        .unwrap();
        assert_eq!((owing.gross, owing.fee, owing.net), (-2_000, 25, -2_025));
        assert!(!owing.pays_out());
        assert!(figures(
            Balances {
                credited: i64::MAX,
                debited: -1,
                ..Balances::default()
            },
            0
        )
        .is_none());
    }

    #[test]
    fn states_round_trip_and_only_carried_over_books_nothing() {
        for state in SettlementState::ALL {
            assert_eq!(SettlementState::from_db(state.as_str()), Some(state));
            assert_eq!(state.is_booked(), state != SettlementState::CarriedOver);
        }
        assert_eq!(SettlementState::from_db("done"), None);
    }

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(csv_text("My Coffee"), "My Coffee");
        assert_eq!(csv_text("Coffee, Tea"), "\"Coffee, Tea\"");
        assert_eq!(csv_text("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_text("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(csv_text("-1,2"), "\"'-1,2\"");
    }

    proptest! {
        /// The fee equals the exact rational sales × bps / 10,000 rounded half up: it is within
        /// half a unit, never negative, never above sales, and monotone in sales.
        #[test]
        fn fee_is_the_rounded_exact_product(sales in 0i64..=i64::MAX / 2, bps in 0u32..=10_000) {
            let fee = fee_of(sales, bps).unwrap();
            let exact_times_10000 = i128::from(sales) * i128::from(bps);
            let distance = i128::from(fee) * 10_000 - exact_times_10000;
            prop_assert!(distance > -5_000 && distance <= 5_000, "{sales} {bps} {fee}");
            prop_assert!(fee >= 0 && fee <= sales);
            prop_assert!(fee_of(sales + 1, bps).unwrap() >= fee);
        }

        /// Net plus fee is always gross, whatever the balances.
        #[test]
        fn net_plus_fee_is_gross(
            credited in 0i64..1_000_000_000_000,
            debited in 0i64..1_000_000_000_000,
            settled in 0i64..1_000_000_000_000,
            returned in 0i64..1_000_000_000_000,
            sales in 0i64..1_000_000_000_000,
            bps in 0u32..=10_000,
        ) {
            let f = figures(Balances {
                credited, debited, settled_gross: settled, returned_net: returned,
                window_sales: sales,
            }, bps).unwrap();
            prop_assert_eq!(f.net + f.fee, f.gross);
            prop_assert_eq!(f.gross, credited - debited - settled + returned);
        }
    }
}
