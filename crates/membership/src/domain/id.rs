//! Typed ids: a type prefix and a ULID, so that ids sort by creation time and a member id can
//! never be mistaken for a session id in code or in a log line.

ids::ulid_id!(
    /// A member's id, `usr_` + ULID.
    MemberId,
    "usr_"
);
ids::ulid_id!(
    /// A login session's id, `mss_` + ULID. It is not the session's token and is not secret.
    SessionId,
    "mss_"
);

impl MemberId {
    /// The prefix of the codes of every ledger account that holds this member's funds, such as
    /// `liability:member:usr_…:money:KRW` and `liability:member:usr_…:points:KRW`.
    pub fn ledger_code_prefix(&self) -> String {
        format!("liability:member:{}:", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back() {
        let id = MemberId::generate();
        assert!(id.as_str().starts_with("usr_"));
        assert_eq!(id.as_str().len(), 30);
        assert_eq!(MemberId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(id.to_string(), id.as_str());
        let session = SessionId::generate();
        assert!(session.as_str().starts_with("mss_"));
        assert_eq!(SessionId::parse(session.as_str()), Some(session));
    }

    #[test]
    fn only_the_canonical_form_parses() {
        let id = MemberId::generate();
        let ulid = &id.as_str()[4..];
        for bad in [
            String::new(),
            "usr_".to_owned(),
            ulid.to_owned(),
            format!("usr_{}", ulid.to_lowercase()),
            format!("USR_{ulid}"),
            format!("mss_{ulid}"),
            format!("usr_{ulid}0"),
            format!("usr_{}", &ulid[1..]),
            "usr_8ZZZZZZZZZZZZZZZZZZZZZZZZZ".to_owned(),
            format!(" usr_{ulid}"),
        ] {
            assert_eq!(MemberId::parse(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_members_ledger_accounts_share_one_prefix() {
        let id = MemberId::parse("usr_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B").expect("canonical");
        assert_eq!(
            id.ledger_code_prefix(),
            "liability:member:usr_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B:"
        );
    }
}
