//! The back office's own state and reports (issue 6): operators with a console login, their
//! sessions with CSRF tokens, the audit log of every console action, and the read-only
//! figures and search the console shows.
//!
//! Architecture invariants: `backoffice` knows no HTTP; it writes only its own tables
//! (`operators`, `console_sessions`, `audit_log`); passwords are stored only as argon2id
//! hashes and session tokens only as SHA-256 digests; its reports only read.

#![forbid(unsafe_code)]

mod error;
mod operator;
pub mod reports;

pub use error::BackofficeError;
pub use operator::{
    AuditEntry, Backoffice, ConsoleSession, Operator, OperatorId, AUDIT_PAGE_MAX,
    CONSOLE_SESSION_TTL_S, OPERATOR_NAME_CHARS_MAX,
};
