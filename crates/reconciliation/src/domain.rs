//! Reconciliation's vocabulary as pure rules: lines on either side, how they are matched, the
//! mismatches that result, and the safeguarding figures.

use std::collections::BTreeMap;

use ledger::Micros;

/// Which outside party a line comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// The bank's statement of the platform's master account.
    Bank,
    /// The card processor's transaction report.
    Psp,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Bank => "bank",
            Source::Psp => "psp",
        }
    }

    pub fn parse(value: &str) -> Option<Source> {
        match value {
            "bank" => Some(Source::Bank),
            "psp" => Some(Source::Psp),
            _ => None,
        }
    }
}

/// What is wrong with a match key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MismatchKind {
    /// They have it; we recorded nothing (or nothing that succeeded).
    MissingOurs,
    /// We recorded it as done; they do not have it.
    MissingTheirs,
    /// Both have it, with different amounts.
    AmountDiffers,
}

impl MismatchKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MismatchKind::MissingOurs => "missing_ours",
            MismatchKind::MissingTheirs => "missing_theirs",
            MismatchKind::AmountDiffers => "amount_differs",
        }
    }

    pub fn parse(value: &str) -> Option<MismatchKind> {
        match value {
            "missing_ours" => Some(MismatchKind::MissingOurs),
            "missing_theirs" => Some(MismatchKind::MissingTheirs),
            "amount_differs" => Some(MismatchKind::AmountDiffers),
            _ => None,
        }
    }
}

/// One line on one side: a bank statement line or one of our bank transfers, a PSP
/// transaction or one of our card approvals or cancellations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// What the two sides are matched by (a bank_tran_id, or `<order id>:<kind>`).
    pub key: String,
    /// Won: signed for the bank (into the master account positive), positive for the PSP.
    pub amount: i64,
    /// Our record (`btr_…`, `bad_…`, `po_…`, `rfd_…`) or nothing for their lines.
    pub reference: Option<String>,
    pub at: Option<Micros>,
}

/// A match key whose two sides disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub source: Source,
    pub kind: MismatchKind,
    pub key: String,
    pub our_reference: Option<String>,
    pub our_amount: Option<i64>,
    pub their_amount: Option<i64>,
    pub at: Option<Micros>,
    pub detail: String,
}

/// The outcome of matching one source.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Matched {
    /// Keys both sides have with equal sums.
    pub matched: usize,
    pub mismatches: Vec<Mismatch>,
}

/// Both sides of a key, summed: several lines may share a key (a PSP order's partial
/// cancellations on one day), and what must agree is their total.
#[derive(Debug, Default)]
struct Sides {
    ours: Option<i64>,
    theirs: Option<i64>,
    reference: Option<String>,
    at: Option<Micros>,
}

/// Matches our lines against theirs by key: a key only we have is missing on theirs, one only
/// they have is missing on ours, one whose sums differ is `amount_differs`. `explain` may say
/// more about a key they have and we lack (such as the state of our unfinished record of it).
/// Mismatches come out in key order, so a run's list is stable. A sum that overflows i64
/// saturates, which can only make a key mismatch, never match.
pub fn match_lines(
    source: Source,
    ours: &[Line],
    theirs: &[Line],
    explain: &dyn Fn(&str) -> Option<String>,
) -> Matched {
    let mut keys: BTreeMap<&str, Sides> = BTreeMap::new();
    for line in ours {
        let sides = keys.entry(line.key.as_str()).or_default();
        sides.ours = Some(sides.ours.unwrap_or(0).saturating_add(line.amount));
        sides.reference = sides.reference.take().or_else(|| line.reference.clone());
        sides.at = sides.at.or(line.at);
    }
    for line in theirs {
        let sides = keys.entry(line.key.as_str()).or_default();
        sides.theirs = Some(sides.theirs.unwrap_or(0).saturating_add(line.amount));
        // Their time comes first: it is when the money moved.
        sides.at = line.at.or(sides.at);
    }
    let mut result = Matched::default();
    for (key, sides) in keys {
        let (kind, detail) = match (sides.ours, sides.theirs) {
            (Some(ours), Some(theirs)) if ours == theirs => {
                result.matched += 1;
                continue;
            }
            (Some(ours), Some(theirs)) => (
                MismatchKind::AmountDiffers,
                format!(
                    "we recorded {ours} won, {} reports {theirs} won",
                    source.as_str()
                ),
            ),
            (Some(_), None) => (
                MismatchKind::MissingTheirs,
                format!(
                    "we recorded it as done; {} has no such line",
                    source.as_str()
                ),
            ),
            (None, Some(_)) => (
                MismatchKind::MissingOurs,
                explain(key).unwrap_or_else(|| {
                    format!("{} reports it; we recorded nothing", source.as_str())
                }),
            ),
            (None, None) => unreachable!("a key comes from at least one line"),
        };
        result.mismatches.push(Mismatch {
            source,
            kind,
            key: key.to_owned(),
            our_reference: sides.reference,
            our_amount: sides.ours,
            their_amount: sides.theirs,
            at: sides.at,
            detail,
        });
    }
    result
}

/// How the members' part of the master account compares with the money members hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Safeguarding {
    /// Equal: every won of member money is at the bank.
    Ok,
    /// The members' part is less than member money: money is missing at the bank.
    Shortfall,
    /// The members' part is more: the bank holds money the ledger does not explain.
    Excess,
    /// The bank showed no balance for the day (no statement line in the weeks before).
    Unknown,
}

impl Safeguarding {
    pub fn as_str(self) -> &'static str {
        match self {
            Safeguarding::Ok => "ok",
            Safeguarding::Shortfall => "shortfall",
            Safeguarding::Excess => "excess",
            Safeguarding::Unknown => "unknown",
        }
    }

    pub fn parse(value: &str) -> Option<Safeguarding> {
        match value {
            "ok" => Some(Safeguarding::Ok),
            "shortfall" => Some(Safeguarding::Shortfall),
            "excess" => Some(Safeguarding::Excess),
            "unknown" => Some(Safeguarding::Unknown),
            _ => None,
        }
    }
}

/// The safeguarding figures of a day, in won, at its cutoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SafeguardingFigures {
    /// Σ members' money accounts in the ledger.
    pub member_money: i64,
    /// The ledger's master account (`asset:bank:master`), posted.
    pub ledger_master: i64,
    /// The bank's closing balance of the master account, when it showed one.
    pub bank_balance: Option<i64>,
    /// The platform's own money at the bank that the ledger does not book (its float).
    pub own_funds: i64,
    /// What of the bank's balance belongs to members: the bank balance less the platform's
    /// own funds less what the ledger's master account holds for everyone else (merchants'
    /// payable and escrow, money in transit, fees), which is `ledger_master − member_money`.
    pub members_part: Option<i64>,
    pub status: Safeguarding,
}

/// The daily safeguarding check (DESIGN §3): Σ member money must equal the members' part of
/// the master account. The master account commingles members', merchants' and the
/// platform's money; the ledger says how much of it is not members' (`ledger_master −
/// member_money`), the bank says how much there is, and the platform's unbooked float is
/// configured. `None` when a figure overflows, which no real balance does.
pub fn safeguarding(
    member_money: i64,
    ledger_master: i64,
    bank_balance: Option<i64>,
    own_funds: i64,
) -> Option<SafeguardingFigures> {
    let others = ledger_master.checked_sub(member_money)?;
    let members_part = match bank_balance {
        Some(bank) => Some(bank.checked_sub(own_funds)?.checked_sub(others)?),
        None => None,
    };
    let status = match members_part {
        None => Safeguarding::Unknown,
        Some(part) if part == member_money => Safeguarding::Ok,
        Some(part) if part < member_money => Safeguarding::Shortfall,
        Some(_) => Safeguarding::Excess,
    };
    Some(SafeguardingFigures {
        member_money,
        ledger_master,
        bank_balance,
        own_funds,
        members_part,
        status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn line(key: &str, amount: i64) -> Line {
        Line {
            key: key.to_owned(),
            amount,
            reference: None,
            at: None,
        }
    }

    fn no_detail(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn each_kind_of_mismatch_is_found() {
        let ours = [line("a", 100), line("b", -50), line("c", 10), line("d", 7)];
        let theirs = [line("a", 100), line("c", 12), line("e", 3), line("d", 7)];
        let result = match_lines(Source::Bank, &ours, &theirs, &no_detail);
        assert_eq!(result.matched, 2);
        let kinds: Vec<(&str, MismatchKind)> = result
            .mismatches
            .iter()
            .map(|m| (m.key.as_str(), m.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("b", MismatchKind::MissingTheirs),
                ("c", MismatchKind::AmountDiffers),
                ("e", MismatchKind::MissingOurs),
            ]
        );
        assert_eq!(result.mismatches[1].our_amount, Some(10));
        assert_eq!(result.mismatches[1].their_amount, Some(12));
    }

    #[test]
    fn lines_sharing_a_key_are_compared_by_their_sum() {
        let ours = [line("o:cancellation", 300), line("o:cancellation", 200)];
        let theirs = [line("o:cancellation", 500)];
        let result = match_lines(Source::Psp, &ours, &theirs, &no_detail);
        assert_eq!(result.matched, 1);
        assert!(result.mismatches.is_empty());
    }

    #[test]
    fn a_missing_line_of_ours_can_be_explained() {
        let explain = |key: &str| (key == "x").then(|| "our transfer is unknown".to_owned());
        let result = match_lines(Source::Bank, &[], &[line("x", 5)], &explain);
        assert_eq!(result.mismatches[0].detail, "our transfer is unknown");
    }

    #[test]
    fn safeguarding_compares_the_members_part_with_member_money() {
        // The bank holds 1,000,000 of the platform's float, 5,000 of members' money and 700
        // owed to merchants, which the ledger's master account (5,700) knows.
        let ok = safeguarding(5_000, 5_700, Some(1_005_700), 1_000_000).unwrap();
        assert_eq!(ok.members_part, Some(5_000));
        assert_eq!(ok.status, Safeguarding::Ok);
        let short = safeguarding(5_000, 5_700, Some(1_005_600), 1_000_000).unwrap();
        assert_eq!(short.status, Safeguarding::Shortfall);
        let excess = safeguarding(5_000, 5_700, Some(1_005_701), 1_000_000).unwrap();
        assert_eq!(excess.status, Safeguarding::Excess);
        let unknown = safeguarding(5_000, 5_700, None, 0).unwrap();
        assert_eq!(unknown.status, Safeguarding::Unknown);
        assert_eq!(unknown.members_part, None);
        assert!(safeguarding(i64::MIN, 1, Some(0), 0).is_none());
    }

    #[test]
    fn names_round_trip() {
        for source in [Source::Bank, Source::Psp] {
            assert_eq!(Source::parse(source.as_str()), Some(source));
        }
        for kind in [
            MismatchKind::MissingOurs,
            MismatchKind::MissingTheirs,
            MismatchKind::AmountDiffers,
        ] {
            assert_eq!(MismatchKind::parse(kind.as_str()), Some(kind));
        }
        for status in [
            Safeguarding::Ok,
            Safeguarding::Shortfall,
            Safeguarding::Excess,
            Safeguarding::Unknown,
        ] {
            assert_eq!(Safeguarding::parse(status.as_str()), Some(status));
        }
    }

    proptest! {
        /// Matching a side against itself finds nothing; every key of either side is counted
        /// exactly once, as matched or as one mismatch; and a mismatch's kind follows from
        /// which sides have the key.
        #[test]
        fn every_key_is_matched_or_mismatched_once(
            ours in proptest::collection::vec((0u8..20, -1_000i64..1_000), 0..40),
            theirs in proptest::collection::vec((0u8..20, -1_000i64..1_000), 0..40),
        ) {
            let to_lines = |v: &[(u8, i64)]| -> Vec<Line> {
                v.iter().map(|(k, a)| line(&format!("k{k}"), *a)).collect()
            };
            let ours = to_lines(&ours);
            let theirs = to_lines(&theirs);
            let same = match_lines(Source::Bank, &ours, &ours, &no_detail);
            prop_assert!(same.mismatches.is_empty());
            let result = match_lines(Source::Bank, &ours, &theirs, &no_detail);
            let mut keys: Vec<&str> = ours.iter().chain(&theirs).map(|l| l.key.as_str()).collect();
            keys.sort();
            keys.dedup();
            prop_assert_eq!(result.matched + result.mismatches.len(), keys.len());
            for m in &result.mismatches {
                let has_ours = ours.iter().any(|l| l.key == m.key);
                let has_theirs = theirs.iter().any(|l| l.key == m.key);
                let expected = match (has_ours, has_theirs) {
                    (true, true) => MismatchKind::AmountDiffers,
                    (true, false) => MismatchKind::MissingTheirs,
                    _ => MismatchKind::MissingOurs,
                };
                prop_assert_eq!(m.kind, expected);
            }
        }
    }
}
