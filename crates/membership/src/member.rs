//! Members and sessions as the service hands them out, and what callers send to change them.

use ledger::Micros;

use crate::domain::{Email, MemberId, MemberName, Password, Phone, SessionId, SessionToken};

/// Whether a member may still log in and act.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberStatus {
    /// Signed up and not closed.
    Active,
    /// Closed for good: cannot log in, and every session was revoked.
    Closed,
}

impl MemberStatus {
    /// The name stored in `members.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Active => "active",
            MemberStatus::Closed => "closed",
        }
    }

    /// Reads a stored status; the table's CHECK constraint admits only these two.
    pub(crate) fn from_db(value: &str) -> Option<MemberStatus> {
        match value {
            "active" => Some(MemberStatus::Active),
            "closed" => Some(MemberStatus::Closed),
            _ => None,
        }
    }
}

/// A member as stored, without the password hash, which never leaves the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: MemberId,
    pub email: Email,
    pub phone: Phone,
    pub name: MemberName,
    pub status: MemberStatus,
    pub created_at: Micros,
    pub updated_at: Micros,
    pub closed_at: Option<Micros>,
}

/// What a person signs up with.
#[derive(Debug, Clone)]
pub struct NewMember {
    pub email: Email,
    pub phone: Phone,
    pub name: MemberName,
    pub password: Password,
}

/// A change of profile. Absent fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct ProfileChange {
    pub name: Option<MemberName>,
    pub email: Option<Email>,
    pub phone: Option<Phone>,
    /// A new password, allowed only with the current one.
    pub new_password: Option<Password>,
    /// The member's current password, required to set a new one.
    pub current_password: Option<Password>,
}

/// A live login session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub member_id: MemberId,
    pub created_at: Micros,
    pub expires_at: Micros,
}

/// A session just created by logging in, with the token that is handed out this once.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub session: Session,
    pub token: SessionToken,
}
