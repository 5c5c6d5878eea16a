//! The ledger's invariants, verified against a whole database by `mypay check` and by tests.

use sqlx::{AnyConnection, Row};
use storage::Db;

/// One violated invariant, with the rows that violate it (at most a few, as examples).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub invariant: &'static str,
    pub examples: Vec<String>,
}

/// What a check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub accounts: i64,
    pub transactions: i64,
    pub postings: i64,
    pub violations: Vec<Violation>,
}

impl CheckReport {
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }
}

impl std::fmt::Display for CheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "checked {} accounts, {} transactions, {} postings",
            self.accounts, self.transactions, self.postings
        )?;
        for invariant in INVARIANTS {
            let broken = self
                .violations
                .iter()
                .find(|v| v.invariant == invariant.name);
            match broken {
                None => writeln!(f, "  ok    {}", invariant.name)?,
                Some(v) => writeln!(f, "  FAIL  {}: {}", v.invariant, v.examples.join("; "))?,
            }
        }
        Ok(())
    }
}

/// How many offending rows a report names per invariant.
const EXAMPLES_MAX: i64 = 5;

struct Invariant {
    name: &'static str,
    /// A query returning one text column describing each offending row; none means it holds.
    sql: &'static str,
}

/// Each invariant as a query for its counterexamples. Sums are cast because PostgreSQL sums
/// BIGINT into NUMERIC.
const INVARIANTS: &[Invariant] = &[
    Invariant {
        name: "every transaction balances per currency",
        sql: "SELECT transaction_id || ' ' || currency || ' sums to ' || CAST(CAST(SUM(amount) AS BIGINT) AS TEXT) \
              FROM ledger_postings GROUP BY transaction_id, currency HAVING CAST(SUM(amount) AS BIGINT) <> 0",
    },
    Invariant {
        name: "every transaction has at least two postings",
        sql: "SELECT t.id FROM ledger_transactions t \
              WHERE (SELECT COUNT(*) FROM ledger_postings p WHERE p.transaction_id = t.id) < 2",
    },
    Invariant {
        name: "every posting belongs to a stored transaction and account of its currency",
        sql: "SELECT p.transaction_id || ' leg ' || CAST(p.leg AS TEXT) FROM ledger_postings p \
              LEFT JOIN ledger_transactions t ON t.id = p.transaction_id \
              LEFT JOIN ledger_accounts a ON a.id = p.account_id \
              WHERE t.id IS NULL OR a.id IS NULL OR a.currency <> p.currency",
    },
    Invariant {
        name: "every stored balance equals the sum of its postings",
        sql: "SELECT a.id || ' stores ' || CAST(a.debits_posted AS TEXT) || '/' || CAST(a.credits_posted AS TEXT) \
              || ' but postings sum to ' || CAST(COALESCE(s.debits, 0) AS TEXT) || '/' || CAST(COALESCE(s.credits, 0) AS TEXT) \
              FROM ledger_accounts a LEFT JOIN ( \
                SELECT account_id, \
                       CAST(SUM(CASE WHEN amount > 0 THEN amount ELSE 0 END) AS BIGINT) AS debits, \
                       CAST(SUM(CASE WHEN amount < 0 THEN -amount ELSE 0 END) AS BIGINT) AS credits, \
                       COUNT(*) AS n \
                FROM ledger_postings GROUP BY account_id) s ON s.account_id = a.id \
              WHERE a.debits_posted <> COALESCE(s.debits, 0) OR a.credits_posted <> COALESCE(s.credits, 0) \
                 OR a.posting_count <> COALESCE(s.n, 0)",
    },
    Invariant {
        name: "every posting's running balance follows from the postings before it",
        sql: "SELECT r.account_id || ' #' || CAST(r.account_seq AS TEXT) FROM ( \
                SELECT p.account_id, p.account_seq, p.balance_after, \
                       CAST(SUM(CASE WHEN a.kind IN ('asset', 'expense') THEN p.amount ELSE -p.amount END) \
                            OVER (PARTITION BY p.account_id ORDER BY p.account_seq) AS BIGINT) AS running \
                FROM ledger_postings p JOIN ledger_accounts a ON a.id = p.account_id) r \
              WHERE r.running <> r.balance_after",
    },
    Invariant {
        name: "every pending total equals the sum of its pending holds",
        sql: "SELECT a.id FROM ledger_accounts a \
              WHERE a.debits_pending <> COALESCE((SELECT CAST(SUM(h.amount) AS BIGINT) FROM ledger_holds h \
                      WHERE h.debit_account_id = a.id AND h.state = 'pending'), 0) \
                 OR a.credits_pending <> COALESCE((SELECT CAST(SUM(h.amount) AS BIGINT) FROM ledger_holds h \
                      WHERE h.credit_account_id = a.id AND h.state = 'pending'), 0)",
    },
    Invariant {
        name: "no must-not-go-negative account is negative",
        sql: "SELECT id FROM ledger_accounts WHERE (flags % 2) = 1 AND ( \
                (kind IN ('asset', 'expense') AND debits_posted - credits_posted - credits_pending < 0) OR \
                (kind NOT IN ('asset', 'expense') AND credits_posted - debits_posted - debits_pending < 0))",
    },
    Invariant {
        name: "all postings sum to zero per currency",
        sql: "SELECT currency || ' sums to ' || CAST(CAST(SUM(amount) AS BIGINT) AS TEXT) FROM ledger_postings \
              GROUP BY currency HAVING CAST(SUM(amount) AS BIGINT) <> 0",
    },
];

/// Runs every invariant query in one read snapshot.
pub async fn check(db: &Db) -> Result<CheckReport, sqlx::Error> {
    let mut report = CheckReport::default();
    let mut tx = db.begin_snapshot().await?;
    report.accounts = count(&mut tx, "SELECT COUNT(*) FROM ledger_accounts").await?;
    report.transactions = count(&mut tx, "SELECT COUNT(*) FROM ledger_transactions").await?;
    report.postings = count(&mut tx, "SELECT COUNT(*) FROM ledger_postings").await?;
    for invariant in INVARIANTS {
        let sql = format!("{} LIMIT {EXAMPLES_MAX}", invariant.sql);
        let rows = sqlx::query(&sql).fetch_all(&mut *tx).await?;
        if !rows.is_empty() {
            let examples = rows
                .iter()
                .map(|row| row.try_get::<String, _>(0))
                .collect::<Result<_, _>>()?;
            report.violations.push(Violation {
                invariant: invariant.name,
                examples,
            });
        }
    }
    tx.rollback().await?;
    Ok(report)
}

async fn count(conn: &mut AnyConnection, sql: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(sql).fetch_one(conn).await
}
