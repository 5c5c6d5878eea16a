//! Why a back-office request was refused. A refusal changed nothing.

use membership::MemberError;

#[derive(Debug, thiserror::Error)]
pub enum BackofficeError {
    /// The email address is not one (the rules members' addresses follow).
    #[error("email must be a valid address")]
    EmailInvalid,
    /// The password is too short or too long (the rules members' passwords follow).
    #[error("password must be 10 to 128 characters")]
    PasswordInvalid,
    /// The name is blank or longer than 100 characters.
    #[error("name must be 1 to 100 characters")]
    NameInvalid,
    /// Another operator has this address.
    #[error("an operator with this email exists")]
    EmailTaken,
    /// Wrong address or password, or a disabled operator: one answer for all three.
    #[error("the email or password is not right")]
    InvalidCredentials,
    /// The database failed.
    #[error("database error: {0}")]
    Storage(#[from] sqlx::Error),
    /// Hashing failed, or a stored row that cannot be.
    #[error("internal error: {0}")]
    Internal(String),
}

impl BackofficeError {
    pub fn code(&self) -> &'static str {
        match self {
            BackofficeError::EmailInvalid => "email_invalid",
            BackofficeError::PasswordInvalid => "password_invalid",
            BackofficeError::NameInvalid => "name_invalid",
            BackofficeError::EmailTaken => "operator_email_taken",
            BackofficeError::InvalidCredentials => "invalid_credentials",
            BackofficeError::Storage(_) => "storage_unavailable",
            BackofficeError::Internal(_) => "internal_error",
        }
    }
}

impl From<MemberError> for BackofficeError {
    fn from(error: MemberError) -> BackofficeError {
        BackofficeError::Internal(error.to_string())
    }
}
