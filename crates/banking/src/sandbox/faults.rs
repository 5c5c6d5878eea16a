//! Fault injection: rules that make the sandbox bank slow, refuse, time out or lose its reply,
//! deterministically, so that tests (and people) can drive every path of a caller's recovery.
//!
//! A rule names an operation, a kind and how many calls it applies to. Each call of an operation
//! takes the first rule for that operation, in the order the rules were given; a rule with a
//! count is used up after that many calls, a rule without one applies until the rules change.
//! Every kind first waits `latency_ms`, then:
//!
//! - `latency`: processes the request and answers normally;
//! - `error`: answers that the bank failed (`bank_rsp_code` 911) and executes nothing; a collect
//!   or payout is recorded as refused under its id, as a bank would;
//! - `timeout`: executes nothing and withholds the reply for `hold_ms`, then answers HTTP 504;
//! - `lost_reply`: executes and commits, then withholds the reply for `hold_ms` and answers 504.
//!
//! A client whose timeout is shorter than `hold_ms` sees the same thing for `timeout` and
//! `lost_reply`: no answer. Only an inquiry tells them apart, which is the point.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The longest latency or hold a rule may ask for.
pub const FAULT_DELAY_MS_MAX: u64 = 600_000;
/// How long `timeout` and `lost_reply` withhold the reply unless a rule says otherwise: longer
/// than any sensible client timeout.
pub const HOLD_MS_DEFAULT: u64 = 60_000;
/// The most rules held at once.
pub const FAULT_RULES_MAX: usize = 64;

/// An operation of the sandbox's API that faults can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultOp {
    /// `/v2.0/inquiry/real_name`.
    RealName,
    /// `/v2.0/consent/register` and `/v2.0/consent/revoke`.
    Consent,
    /// `/v2.0/transfer/withdraw/acnt_num`.
    Collect,
    /// `/v2.0/transfer/deposit/acnt_num`.
    Payout,
    /// `/v2.0/transfer/result`.
    Result,
    /// `/v2.0/account/transaction_list/acnt_num`.
    Statement,
}

impl FaultOp {
    const ALL: [FaultOp; 6] = [
        FaultOp::RealName,
        FaultOp::Consent,
        FaultOp::Collect,
        FaultOp::Payout,
        FaultOp::Result,
        FaultOp::Statement,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FaultOp::RealName => "real_name",
            FaultOp::Consent => "consent",
            FaultOp::Collect => "collect",
            FaultOp::Payout => "payout",
            FaultOp::Result => "result",
            FaultOp::Statement => "statement",
        }
    }
}

/// What a fault does; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    Latency,
    Error,
    Timeout,
    LostReply,
}

impl FaultKind {
    const ALL: [FaultKind; 4] = [
        FaultKind::Latency,
        FaultKind::Error,
        FaultKind::Timeout,
        FaultKind::LostReply,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Latency => "latency",
            FaultKind::Error => "error",
            FaultKind::Timeout => "timeout",
            FaultKind::LostReply => "lost_reply",
        }
    }
}

/// One rule, as given on the command line or to `PUT /admin/faults`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    pub op: FaultOp,
    pub kind: FaultKind,
    /// How many calls the rule applies to; absent means every call until the rules change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Waited before anything else happens.
    #[serde(default)]
    pub latency_ms: u64,
    /// How long `timeout` and `lost_reply` withhold the reply.
    #[serde(default = "hold_ms_default")]
    pub hold_ms: u64,
}

fn hold_ms_default() -> u64 {
    HOLD_MS_DEFAULT
}

/// A rule that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid fault rule: {0}")]
pub struct FaultRuleError(String);

impl FaultRule {
    /// A rule for the next `count` calls of `op`, without latency and with the default hold.
    pub fn next(op: FaultOp, kind: FaultKind, count: u32) -> FaultRule {
        FaultRule {
            op,
            kind,
            count: Some(count),
            latency_ms: 0,
            hold_ms: HOLD_MS_DEFAULT,
        }
    }

    /// The same rule with `latency_ms` set.
    pub fn with_latency_ms(self, latency_ms: u64) -> FaultRule {
        FaultRule { latency_ms, ..self }
    }

    /// The same rule with `hold_ms` set.
    pub fn with_hold_ms(self, hold_ms: u64) -> FaultRule {
        FaultRule { hold_ms, ..self }
    }

    fn validate(&self) -> Result<(), FaultRuleError> {
        if self.count == Some(0) {
            return Err(FaultRuleError("count must be at least 1".into()));
        }
        if self.latency_ms > FAULT_DELAY_MS_MAX || self.hold_ms > FAULT_DELAY_MS_MAX {
            return Err(FaultRuleError(format!(
                "latency_ms and hold_ms must be at most {FAULT_DELAY_MS_MAX}"
            )));
        }
        Ok(())
    }
}

impl FromStr for FaultRule {
    type Err = FaultRuleError;

    /// Parses `OP=KIND[,count=N][,latency_ms=MS][,hold_ms=MS]`, e.g. `collect=lost_reply,count=1`
    /// or `payout=latency,latency_ms=1500`.
    fn from_str(text: &str) -> Result<FaultRule, FaultRuleError> {
        let (op, rest) = text.split_once('=').ok_or_else(|| {
            FaultRuleError("expected OP=KIND[,count=N][,latency_ms=MS][,hold_ms=MS]".into())
        })?;
        let mut parts = rest.split(',');
        let kind = parts.next().unwrap_or_default();
        let op = FaultOp::ALL
            .into_iter()
            .find(|o| o.as_str() == op.trim())
            .ok_or_else(|| {
                FaultRuleError(format!(
                    "unknown operation {op:?}; one of real_name, consent, collect, payout, result, statement"
                ))
            })?;
        let kind = FaultKind::ALL
            .into_iter()
            .find(|k| k.as_str() == kind.trim())
            .ok_or_else(|| {
                FaultRuleError(format!(
                    "unknown kind {kind:?}; one of latency, error, timeout, lost_reply"
                ))
            })?;
        let mut rule = FaultRule {
            op,
            kind,
            count: None,
            latency_ms: 0,
            hold_ms: HOLD_MS_DEFAULT,
        };
        for part in parts {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| FaultRuleError(format!("expected KEY=VALUE, got {part:?}")))?;
            let number = |v: &str| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| FaultRuleError(format!("{key} must be a whole number")))
            };
            match key.trim() {
                "count" => {
                    let count = u32::try_from(number(value)?)
                        .map_err(|_| FaultRuleError("count is too large".into()))?;
                    rule.count = Some(count);
                }
                "latency_ms" => rule.latency_ms = number(value)?,
                "hold_ms" => rule.hold_ms = number(value)?,
                other => {
                    return Err(FaultRuleError(format!(
                        "unknown setting {other:?}; one of count, latency_ms, hold_ms"
                    )))
                }
            }
        }
        rule.validate()?;
        Ok(rule)
    }
}

impl fmt::Display for FaultRule {
    /// The command-line form, which parses back to the same rule.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.op.as_str(), self.kind.as_str())?;
        if let Some(count) = self.count {
            write!(f, ",count={count}")?;
        }
        write!(
            f,
            ",latency_ms={},hold_ms={}",
            self.latency_ms, self.hold_ms
        )
    }
}

/// The fault that applies to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fault {
    pub kind: FaultKind,
    pub latency: Duration,
    pub hold: Duration,
}

/// The rules in force. Shared by every request; changed by the admin endpoint.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<FaultRule>>,
}

impl Faults {
    pub fn new(rules: Vec<FaultRule>) -> Result<Faults, FaultRuleError> {
        let faults = Faults::default();
        faults.replace(rules)?;
        Ok(faults)
    }

    /// Replaces every rule.
    pub fn replace(&self, rules: Vec<FaultRule>) -> Result<(), FaultRuleError> {
        check(&rules, 0)?;
        *self.lock() = rules;
        Ok(())
    }

    /// Adds rules after the ones in force.
    pub fn append(&self, rules: Vec<FaultRule>) -> Result<(), FaultRuleError> {
        let mut current = self.lock();
        check(&rules, current.len())?;
        current.extend(rules);
        Ok(())
    }

    /// The rules in force, with the calls they have left.
    pub fn list(&self) -> Vec<FaultRule> {
        self.lock().clone()
    }

    /// Takes the fault for one call of `op`, using up one call of its rule.
    pub(crate) fn take(&self, op: FaultOp) -> Option<Fault> {
        let mut rules = self.lock();
        let index = rules.iter().position(|rule| rule.op == op)?;
        let rule = rules[index];
        match rule.count {
            Some(1) => {
                rules.remove(index);
            }
            Some(n) => rules[index].count = Some(n - 1),
            None => {}
        }
        Some(Fault {
            kind: rule.kind,
            latency: Duration::from_millis(rule.latency_ms),
            hold: Duration::from_millis(rule.hold_ms),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<FaultRule>> {
        // The rules are plain data, consistent after every statement; a panic elsewhere while
        // holding the lock cannot have left them half-changed.
        self.rules.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn check(rules: &[FaultRule], already: usize) -> Result<(), FaultRuleError> {
    if already + rules.len() > FAULT_RULES_MAX {
        return Err(FaultRuleError(format!(
            "at most {FAULT_RULES_MAX} rules may be in force"
        )));
    }
    rules.iter().try_for_each(FaultRule::validate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_form_parses_and_round_trips() {
        let rule: FaultRule = "collect=lost_reply,count=2,latency_ms=50,hold_ms=100"
            .parse()
            .unwrap();
        assert_eq!(
            rule,
            FaultRule::next(FaultOp::Collect, FaultKind::LostReply, 2)
                .with_latency_ms(50)
                .with_hold_ms(100)
        );
        assert_eq!(rule.to_string().parse::<FaultRule>(), Ok(rule));
        let forever: FaultRule = "payout=timeout".parse().unwrap();
        assert_eq!(forever.count, None);
        assert_eq!(forever.hold_ms, HOLD_MS_DEFAULT);
        for bad in [
            "collect",
            "withdraw=error",
            "collect=explode",
            "collect=error,count=0",
            "collect=error,count=x",
            "collect=error,latency_ms=600001",
            "collect=error,colour=red",
            "collect=error,count",
        ] {
            assert!(bad.parse::<FaultRule>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_json_form_has_defaults() {
        let rule: FaultRule =
            serde_json::from_str(r#"{"op": "real_name", "kind": "error", "count": 1}"#).unwrap();
        assert_eq!(
            rule,
            FaultRule::next(FaultOp::RealName, FaultKind::Error, 1)
        );
        assert!(
            serde_json::from_str::<FaultRule>(r#"{"op": "collect", "kind": "error", "n": 1}"#)
                .is_err()
        );
    }

    #[test]
    fn rules_apply_in_order_and_run_out() {
        let faults = Faults::new(vec![
            FaultRule::next(FaultOp::Collect, FaultKind::Error, 2),
            FaultRule::next(FaultOp::Payout, FaultKind::Timeout, 1),
            FaultRule::next(FaultOp::Collect, FaultKind::LostReply, 1).with_latency_ms(7),
        ])
        .unwrap();
        let kind = |op| faults.take(op).map(|f| f.kind);
        assert_eq!(kind(FaultOp::Collect), Some(FaultKind::Error));
        assert_eq!(kind(FaultOp::Collect), Some(FaultKind::Error));
        let third = faults.take(FaultOp::Collect).unwrap();
        assert_eq!(
            (third.kind, third.latency),
            (FaultKind::LostReply, Duration::from_millis(7))
        );
        assert_eq!(kind(FaultOp::Collect), None);
        assert_eq!(kind(FaultOp::RealName), None);
        assert_eq!(faults.list().len(), 1);
        assert_eq!(kind(FaultOp::Payout), Some(FaultKind::Timeout));
        assert!(faults.list().is_empty());
    }

    #[test]
    fn a_rule_without_count_stays() {
        let faults = Faults::new(vec![FaultRule {
            count: None,
            ..FaultRule::next(FaultOp::Statement, FaultKind::Latency, 1)
        }])
        .unwrap();
        for _ in 0..5 {
            assert!(faults.take(FaultOp::Statement).is_some());
        }
        faults.replace(Vec::new()).unwrap();
        assert!(faults.take(FaultOp::Statement).is_none());
    }

    #[test]
    fn the_number_of_rules_is_bounded() {
        let rule = FaultRule::next(FaultOp::Collect, FaultKind::Error, 1);
        let faults = Faults::new(vec![rule; FAULT_RULES_MAX]).unwrap();
        assert!(faults.append(vec![rule]).is_err());
        assert!(Faults::new(vec![rule; FAULT_RULES_MAX + 1]).is_err());
    }
}
