//! The remittance vocabulary: ids, states, steps, the stored records, and the configuration.

use std::time::Duration;

use ledger::Micros;

ids::ulid_id!(
    /// A business remittance request: `rem_` + ULID, the request's unique number.
    RemittanceId,
    "rem_"
);

/// Where a remittance is. The happy path is requested → collected → deposited → withdrawn →
/// completed; a collect the bank refused ends `failed` with nothing moved; a payout the bank
/// refused goes `returning` → `returned`, paying A's money back to A.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RemittanceState {
    /// Recorded; A's money not collected yet.
    Requested,
    /// The bank moved A's money into the master account.
    Collected,
    /// The money is in the ledger, held for the remittance.
    Deposited,
    /// The money is held towards the master account for B's payout.
    Withdrawn,
    /// B was paid.
    Completed,
    /// B's payout was refused; A is being paid back.
    Returning,
    /// A was paid back.
    Returned,
    /// A's collect was refused; nothing moved.
    Failed,
}

impl RemittanceState {
    pub fn as_str(self) -> &'static str {
        match self {
            RemittanceState::Requested => "requested",
            RemittanceState::Collected => "collected",
            RemittanceState::Deposited => "deposited",
            RemittanceState::Withdrawn => "withdrawn",
            RemittanceState::Completed => "completed",
            RemittanceState::Returning => "returning",
            RemittanceState::Returned => "returned",
            RemittanceState::Failed => "failed",
        }
    }

    pub fn parse(value: &str) -> Option<RemittanceState> {
        Some(match value {
            "requested" => RemittanceState::Requested,
            "collected" => RemittanceState::Collected,
            "deposited" => RemittanceState::Deposited,
            "withdrawn" => RemittanceState::Withdrawn,
            "completed" => RemittanceState::Completed,
            "returning" => RemittanceState::Returning,
            "returned" => RemittanceState::Returned,
            "failed" => RemittanceState::Failed,
            _ => return None,
        })
    }

    /// Whether nothing more will happen to the remittance.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RemittanceState::Completed | RemittanceState::Returned | RemittanceState::Failed
        )
    }

    /// The step that moves a remittance on from this state, if any.
    pub fn next_step(self) -> Option<Step> {
        match self {
            RemittanceState::Requested => Some(Step::Collect),
            RemittanceState::Collected => Some(Step::Deposit),
            RemittanceState::Deposited => Some(Step::Withdraw),
            RemittanceState::Withdrawn => Some(Step::Payout),
            RemittanceState::Returning => Some(Step::Return),
            RemittanceState::Completed | RemittanceState::Returned | RemittanceState::Failed => {
                None
            }
        }
    }
}

/// One step of a remittance, each run by a job of its own (seed 002's four failure points,
/// and the way back): collect A's money at the bank; deposit it into the ledger; withdraw it
/// from the ledger towards the master account; pay B at the bank; or pay A back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    Collect,
    Deposit,
    Withdraw,
    Payout,
    Return,
}

impl Step {
    pub const ALL: [Step; 5] = [
        Step::Collect,
        Step::Deposit,
        Step::Withdraw,
        Step::Payout,
        Step::Return,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Collect => "collect",
            Step::Deposit => "deposit",
            Step::Withdraw => "withdraw",
            Step::Payout => "payout",
            Step::Return => "return",
        }
    }

    pub fn parse(value: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|step| step.as_str() == value)
    }

    /// The job kind that runs this step: `remittance.collect`, ….
    pub fn job_kind(self) -> &'static str {
        match self {
            Step::Collect => "remittance.collect",
            Step::Deposit => "remittance.deposit",
            Step::Withdraw => "remittance.withdraw",
            Step::Payout => "remittance.payout",
            Step::Return => "remittance.return",
        }
    }

    /// The state a remittance must be in for this step to run.
    pub fn from_state(self) -> RemittanceState {
        match self {
            Step::Collect => RemittanceState::Requested,
            Step::Deposit => RemittanceState::Collected,
            Step::Withdraw => RemittanceState::Deposited,
            Step::Payout => RemittanceState::Withdrawn,
            Step::Return => RemittanceState::Returning,
        }
    }
}

/// A remittance as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remittance {
    pub id: RemittanceId,
    pub sender_merchant_id: String,
    pub recipient_merchant_id: String,
    /// In won.
    pub amount: i64,
    pub memo: Option<String>,
    pub state: RemittanceState,
    pub failure_code: Option<String>,
    pub created_at: Micros,
    pub updated_at: Micros,
    pub finished_at: Option<Micros>,
    pub alerted_at: Option<Micros>,
}

/// A state a remittance reached, with what the step made (a bank transfer or ledger id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub state: RemittanceState,
    pub reference: Option<String>,
    pub at: Micros,
}

/// A step that failed, counting its failed attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub remittance_id: String,
    pub step: Step,
    pub job_id: String,
    pub failures: i64,
    pub last_code: String,
    pub last_message: String,
    pub first_failed_at: Micros,
    pub last_failed_at: Micros,
    /// How often the retry batch re-queued the step after its job ran out of attempts.
    pub batch_retries: i64,
    pub resolved_at: Option<Micros>,
}

/// A remittance to make, as the caller asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRemittance {
    pub sender_merchant_id: String,
    pub recipient_merchant_id: String,
    /// In won.
    pub amount: i64,
    pub memo: Option<String>,
    /// Who asked (the caller's scope) and their Idempotency-Key, if any.
    pub request_scope: String,
    pub request_key: Option<String>,
}

/// The longest memo accepted, in characters: it is printed on B's bank statement as it is,
/// and a bank prints at most this many.
pub const MEMO_CHARS_MAX: usize = banking::MEMO_CHARS_MAX;

/// How remittances run.
#[derive(Debug, Clone)]
pub struct RemittanceConfig {
    /// Attempts each step's job gets before it is a dead letter (seed 002: 3).
    pub step_attempts: i64,
    /// The pause between attempts of a step (seed 002: 10 s).
    pub step_delay: Duration,
    /// How often the retry batch re-queues a step whose job ran out of attempts (seed 002: 3).
    pub batch_retries_max: i64,
    /// A remittance not finished this long after it was requested is alerted on (seed 002:
    /// 10 minutes).
    pub overdue_after: Duration,
    /// Where alerts are posted as JSON, if anywhere (besides the log line and the metric).
    pub alert_url: Option<reqwest::Url>,
    /// The largest remittance accepted, in won.
    pub amount_max: i64,
}

impl Default for RemittanceConfig {
    fn default() -> RemittanceConfig {
        RemittanceConfig {
            step_attempts: 3,
            step_delay: Duration::from_secs(10),
            batch_retries_max: 3,
            overdue_after: Duration::from_secs(10 * 60),
            alert_url: None,
            amount_max: 1_000_000_000,
        }
    }
}

impl RemittanceConfig {
    /// The configuration within its bounds: at least one attempt, at most 20; pauses of at
    /// most an hour; at most 20 batch retries; an overdue age of a second to a day.
    pub fn bounded(mut self) -> RemittanceConfig {
        self.step_attempts = self.step_attempts.clamp(1, 20);
        self.step_delay = self.step_delay.min(Duration::from_secs(3_600));
        self.batch_retries_max = self.batch_retries_max.clamp(0, 20);
        self.overdue_after = self
            .overdue_after
            .clamp(Duration::from_secs(1), Duration::from_secs(86_400));
        self.amount_max = self.amount_max.clamp(1, banking::TRANSFER_AMOUNT_WON_MAX);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_steps_round_trip_and_chain() {
        for state in [
            RemittanceState::Requested,
            RemittanceState::Collected,
            RemittanceState::Deposited,
            RemittanceState::Withdrawn,
            RemittanceState::Completed,
            RemittanceState::Returning,
            RemittanceState::Returned,
            RemittanceState::Failed,
        ] {
            assert_eq!(RemittanceState::parse(state.as_str()), Some(state));
            // A state has a next step exactly when it is not final, and that step starts
            // from it.
            match state.next_step() {
                Some(step) => assert_eq!(step.from_state(), state),
                None => assert!(state.is_final()),
            }
        }
        for step in Step::ALL {
            assert_eq!(Step::parse(step.as_str()), Some(step));
            assert!(step.job_kind().ends_with(step.as_str()));
        }
        assert_eq!(RemittanceState::parse("paid"), None);
    }

    #[test]
    fn configuration_is_bounded() {
        let config = RemittanceConfig {
            step_attempts: 0,
            step_delay: Duration::from_secs(100_000),
            batch_retries_max: -1,
            overdue_after: Duration::ZERO,
            alert_url: None,
            amount_max: i64::MAX,
        }
        .bounded();
        assert_eq!(config.step_attempts, 1);
        assert_eq!(config.step_delay, Duration::from_secs(3_600));
        assert_eq!(config.batch_retries_max, 0);
        assert_eq!(config.overdue_after, Duration::from_secs(1));
        assert!(config.amount_max <= banking::TRANSFER_AMOUNT_WON_MAX);
    }
}
