//! Password hashing with argon2id.
//!
//! Parameters are argon2's defaults, which are OWASP's recommended minimum for argon2id:
//! 19 MiB of memory, 2 passes, 1 lane. Each hash is stored as a PHC string that carries its own
//! salt and parameters, so raising them later only affects new hashes.
//!
//! Hashing is deliberately slow (tens of milliseconds) and memory-hungry, so it runs on the
//! blocking thread pool, never on the async workers, and at most one hash per core (and never
//! more than 16) runs at once: a burst of logins then queues instead of allocating 19 MiB per request.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::TryRngCore;
use tokio::sync::{OnceCell, Semaphore};

use crate::domain::Password;
use crate::MemberError;

/// Random bytes of salt per hash (argon2 recommends 16).
const SALT_BYTES: usize = 16;
/// The most hashes computed at once, whatever the machine.
const IN_FLIGHT_LIMIT: usize = 16;

/// Hashes and verifies passwords, bounded in concurrency.
#[derive(Debug)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    /// A hash of a random password, verified against when an email address is unknown, so
    /// that a login for an unregistered address costs as much as one for a registered address.
    dummy: OnceCell<String>,
}

impl Default for Hasher {
    fn default() -> Hasher {
        Hasher::new()
    }
}

impl Hasher {
    pub fn new() -> Hasher {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Hasher {
            permits: Arc::new(Semaphore::new(cores.clamp(1, IN_FLIGHT_LIMIT))),
            dummy: OnceCell::new(),
        }
    }

    /// A new argon2id hash of `password` with a fresh random salt, as a PHC string.
    pub async fn hash(&self, password: &Password) -> Result<String, MemberError> {
        let mut salt = [0u8; SALT_BYTES];
        rand::rngs::OsRng
            .try_fill_bytes(&mut salt)
            .map_err(|error| MemberError::Internal(format!("no randomness for a salt: {error}")))?;
        let password = password.clone();
        self.run(move || {
            let salt = SaltString::encode_b64(&salt)
                .map_err(|error| MemberError::Internal(format!("salt encoding: {error}")))?;
            Argon2::default()
                .hash_password(password.expose().as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(|error| MemberError::Internal(format!("argon2 hashing: {error}")))
        })
        .await
    }

    /// Whether `password` matches the stored PHC string.
    pub async fn verify(&self, password: &Password, stored: &str) -> Result<bool, MemberError> {
        let password = password.clone();
        let stored = stored.to_owned();
        self.run(move || {
            let parsed = PasswordHash::new(&stored).map_err(|error| {
                MemberError::Internal(format!("stored hash unreadable: {error}"))
            })?;
            match Argon2::default().verify_password(password.expose().as_bytes(), &parsed) {
                Ok(()) => Ok(true),
                Err(argon2::password_hash::Error::Password) => Ok(false),
                Err(error) => Err(MemberError::Internal(format!(
                    "argon2 verification: {error}"
                ))),
            }
        })
        .await
    }

    /// Spends the same work as verifying a real password, and always fails. Used when the
    /// email address names no member.
    pub async fn verify_dummy(&self, password: &Password) -> Result<bool, MemberError> {
        let dummy = self
            .dummy
            .get_or_try_init(|| async {
                let random = crate::domain::SessionToken::generate()?;
                let password = Password::presented(random.expose().to_owned())?;
                self.hash(&password).await
            })
            .await?;
        self.verify(password, dummy).await?;
        Ok(false)
    }

    /// Runs hashing work on the blocking pool once a permit is free.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, MemberError> + Send + 'static,
    ) -> Result<T, MemberError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| MemberError::Internal("the hasher's semaphore is closed".into()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|error| MemberError::Internal(format!("hashing task failed: {error}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_salted_argon2id_and_verify() {
        let hasher = Hasher::new();
        let password = Password::parse("correct horse battery".into()).unwrap();
        let first = hasher.hash(&password).await.unwrap();
        let second = hasher.hash(&password).await.unwrap();
        assert!(
            first.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{first}"
        );
        assert_ne!(first, second, "every hash has its own salt");
        assert!(!first.contains("correct horse"));
        assert!(hasher.verify(&password, &first).await.unwrap());
        let wrong = Password::presented("correct horse batterY".into()).unwrap();
        assert!(!hasher.verify(&wrong, &first).await.unwrap());
        assert!(!hasher.verify_dummy(&password).await.unwrap());
        assert!(hasher.verify(&password, "not a phc string").await.is_err());
    }
}
