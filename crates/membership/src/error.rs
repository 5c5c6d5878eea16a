//! One named error per rejected precondition, each with a stable public code.

use ledger::LedgerError;

/// Why membership refused a request. A refused request has changed nothing, except that a
/// failed password check is counted toward the login throttle.
#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    /// The email address is not acceptable.
    #[error("email {0}")]
    EmailInvalid(&'static str),
    /// The phone number is not acceptable.
    #[error("phone {0}")]
    PhoneInvalid(&'static str),
    /// The name is not acceptable.
    #[error("name {0}")]
    NameInvalid(&'static str),
    /// A new password does not meet the password policy.
    #[error("password {0}")]
    PasswordInvalid(&'static str),
    /// Another active member already uses this email address.
    #[error("this email address is already registered")]
    EmailTaken,
    /// Another active member already uses this phone number.
    #[error("this phone number is already registered")]
    PhoneTaken,
    /// The email address or the password is wrong. Which one is never said.
    #[error("the email address or the password is wrong")]
    InvalidCredentials,
    /// Too many failed password checks for this email address; retry after the given time.
    #[error("too many failed attempts for this email address; retry in {retry_after_s} s")]
    LoginLocked {
        /// Seconds until the lock ends, rounded up.
        retry_after_s: i64,
    },
    /// A password change named a current password that is not the member's.
    #[error("the current password is wrong")]
    CurrentPasswordIncorrect,
    /// A profile change asked for something that needs another field too.
    #[error("{0}")]
    ChangeInvalid(&'static str),
    /// No member with this id exists, or the caller may not know that one does.
    #[error("member {0} does not exist")]
    NotFound(String),
    /// The member is closed; nothing about them can change any more.
    #[error("member {0} is closed")]
    Closed(String),
    /// The member still has money or pending holds in this ledger account.
    #[error("the member still holds funds in ledger account {account_code}; close refused")]
    BalanceRemaining {
        /// The code of the first non-empty account found.
        account_code: String,
    },
    /// A bug or a failure of the machine (no randomness, a hashing task that died); the detail
    /// is for the logs.
    #[error("internal error: {0}")]
    Internal(String),
    /// The ledger could not be read.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The database failed.
    #[error("database error: {0}")]
    Storage(#[from] sqlx::Error),
}

impl MemberError {
    /// The stable code clients match on; it never changes once published.
    pub fn code(&self) -> &'static str {
        match self {
            MemberError::EmailInvalid(_) => "email_invalid",
            MemberError::PhoneInvalid(_) => "phone_invalid",
            MemberError::NameInvalid(_) => "name_invalid",
            MemberError::PasswordInvalid(_) => "password_invalid",
            MemberError::EmailTaken => "email_taken",
            MemberError::PhoneTaken => "phone_taken",
            MemberError::InvalidCredentials => "invalid_credentials",
            MemberError::LoginLocked { .. } => "login_locked",
            MemberError::CurrentPasswordIncorrect => "current_password_incorrect",
            MemberError::ChangeInvalid(_) => "invalid_request",
            MemberError::NotFound(_) => "member_not_found",
            MemberError::Closed(_) => "member_closed",
            MemberError::BalanceRemaining { .. } => "balance_remaining",
            MemberError::Internal(_) => "internal_error",
            MemberError::Ledger(error) => error.code(),
            MemberError::Storage(_) => "storage_unavailable",
        }
    }
}
