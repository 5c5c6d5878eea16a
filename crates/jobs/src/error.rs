/// Why a job operation failed, each with a stable code for the API.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("no job {0}")]
    NotFound(String),
    /// Retry and discard apply to dead jobs only.
    #[error("job {id} is {state}, not dead")]
    NotDead { id: String, state: &'static str },
    #[error("invalid {field}: {reason}")]
    Invalid {
        field: &'static str,
        reason: &'static str,
    },
    #[error("database error: {0}")]
    Storage(#[from] sqlx::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

impl JobError {
    pub fn code(&self) -> &'static str {
        match self {
            JobError::NotFound(_) => "job_not_found",
            JobError::NotDead { .. } => "job_not_dead",
            JobError::Invalid { .. } => "invalid_request",
            JobError::Storage(_) => "storage_unavailable",
            JobError::Internal(_) => "internal",
        }
    }
}
