//! The membership vocabulary: parse-don't-validate newtypes, each with its tests beside it.

mod email;
mod id;
mod name;
mod password;
mod phone;
mod token;

pub use email::{Email, EMAIL_LEN_MAX, EMAIL_LOCAL_LEN_MAX};
pub use id::{MemberId, SessionId};
pub use name::{MemberName, NAME_CHARS_MAX};
pub use password::{Password, PASSWORD_CHARS_MAX, PASSWORD_CHARS_MIN};
pub use phone::Phone;
pub use token::{SessionToken, SESSION_TOKEN_PREFIX};
