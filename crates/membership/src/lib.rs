//! Membership: members sign up with an email address, a phone number, a name and a password;
//! log in for a session token; change their profile; and close their membership once they hold
//! no money.
//!
//! Architecture invariants: passwords are stored only as argon2id hashes and session tokens
//! only as SHA-256 digests; neither is ever logged (their types print `***`). This crate knows
//! no HTTP. It reads the ledger (to refuse closing a member who still holds funds) but never
//! writes to it. Every statement it runs is in `store`, written once for both databases.

#![forbid(unsafe_code)]

mod domain;
mod error;
mod hasher;
mod member;
mod service;
mod store;

pub use domain::{
    Email, MemberId, MemberName, Password, Phone, SessionId, SessionToken, EMAIL_LEN_MAX,
    EMAIL_LOCAL_LEN_MAX, NAME_CHARS_MAX, PASSWORD_CHARS_MAX, PASSWORD_CHARS_MIN,
    SESSION_TOKEN_PREFIX,
};
pub use error::MemberError;
pub use hasher::Hasher;
pub use member::{Member, MemberStatus, NewMember, NewSession, ProfileChange, Session};
pub use service::{
    MemberConfig, Members, LOGIN_FAILURES_MAX, LOGIN_FAILURE_WINDOW_S, LOGIN_LOCK_S,
    SESSIONS_PER_MEMBER_MAX, SESSION_TTL_S_DEFAULT, SESSION_TTL_S_MAX, SESSION_TTL_S_MIN,
};
