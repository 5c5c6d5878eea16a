//! The JSON shapes of the member routes. Passwords arrive as [`Secret`], so that a request
//! printed with `Debug` shows none, and no response ever carries a password or its hash.

use membership::{Member, MemberStatus, NewSession};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::time::format_micros;
use crate::Secret;

/// What a person signs up with.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUpRequest {
    /// An ASCII email address, up to 254 characters; stored in lower case.
    #[schema(example = "kim@example.com")]
    pub email: String,
    /// A Korean mobile number (`010-1234-5678`) or an international number with `+` and the
    /// country code; stored in E.164 form (`+821012345678`).
    #[schema(example = "010-1234-5678")]
    pub phone: String,
    /// 1 to 64 characters, any script, no control characters.
    #[schema(example = "김민수")]
    pub name: String,
    /// 10 to 128 characters; stored only as an argon2id hash.
    #[schema(value_type = String, example = "correct horse battery")]
    pub password: Secret,
}

/// A change of profile. Absent (or null) fields stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProfileRequest {
    /// A new name.
    pub name: Option<String>,
    /// A new email address, to log in with from now on.
    pub email: Option<String>,
    /// A new phone number.
    pub phone: Option<String>,
    /// A new password (10 to 128 characters). Needs `current_password`, and logs out every
    /// session of the member, this one included.
    #[schema(value_type = Option<String>)]
    pub new_password: Option<Secret>,
    /// The current password; required with `new_password`, refused without it.
    #[schema(value_type = Option<String>)]
    pub current_password: Option<Secret>,
}

/// Closing takes no fields; an empty body or `{}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseRequest {}

/// Logging in.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogInRequest {
    /// The member's email address, in any case.
    #[schema(example = "kim@example.com")]
    pub email: String,
    /// The member's password.
    #[schema(value_type = String, example = "correct horse battery")]
    pub password: Secret,
}

/// Whether a member may still log in and act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemberStatusView {
    /// Signed up and not closed.
    Active,
    /// Closed for good.
    Closed,
}

/// A member, as the member themself and admin and platform keys see them.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    /// The member's id (`usr_…`).
    #[schema(example = "usr_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B")]
    pub id: String,
    /// The email address, in lower case.
    #[schema(example = "kim@example.com")]
    pub email: String,
    /// The phone number in E.164 form.
    #[schema(example = "+821012345678")]
    pub phone: String,
    /// The member's name.
    #[schema(example = "김민수")]
    pub name: String,
    /// `active` or `closed`.
    pub status: MemberStatusView,
    /// When the member signed up (RFC 3339, UTC).
    pub created_at: String,
    /// When the profile last changed.
    pub updated_at: String,
    /// When the member was closed, if they were.
    pub closed_at: Option<String>,
}

impl From<Member> for MemberView {
    fn from(member: Member) -> MemberView {
        MemberView {
            id: member.id.to_string(),
            email: member.email.to_string(),
            phone: member.phone.to_string(),
            name: member.name.to_string(),
            status: match member.status {
                MemberStatus::Active => MemberStatusView::Active,
                MemberStatus::Closed => MemberStatusView::Closed,
            },
            created_at: format_micros(member.created_at),
            updated_at: format_micros(member.updated_at),
            closed_at: member.closed_at.map(format_micros),
        }
    }
}

/// A new session, with the token that is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// The bearer token for the member's requests. Only its SHA-256 digest is stored.
    #[schema(example = "mps_3q2-7wEXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPLE0")]
    pub token: String,
    /// When the session ends (RFC 3339, UTC); using it does not extend it.
    pub expires_at: String,
    /// The member the session belongs to (`usr_…`).
    pub member_id: String,
}

impl From<NewSession> for SessionView {
    fn from(new: NewSession) -> SessionView {
        SessionView {
            token: new.token.expose().to_owned(),
            expires_at: format_micros(new.session.expires_at),
            member_id: new.session.member_id.to_string(),
        }
    }
}
