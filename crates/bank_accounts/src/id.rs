//! Typed ids: a type prefix and a ULID, so that ids sort by creation time and a linked
//! account's id can never be mistaken for a deposit's.

ids::ulid_id!(
    /// A linked bank account's id, `ba_` + ULID.
    BankAccountId,
    "ba_"
);
ids::ulid_id!(
    /// A 1-won micro-deposit's id, `bad_` + ULID. The ledger transaction that books it is
    /// `<id>.deposit`.
    DepositId,
    "bad_"
);

impl DepositId {
    /// The id of the ledger transaction that books this deposit and its fee. Derived, never
    /// generated, so that booking the same deposit again is a replay.
    pub fn ledger_transaction_id(&self) -> String {
        format!("{}.deposit", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back_and_only_canonical_ones_parse() {
        let id = BankAccountId::generate();
        assert!(id.as_str().starts_with("ba_"));
        assert_eq!(BankAccountId::parse(id.as_str()), Some(id.clone()));
        let ulid = &id.as_str()[3..];
        for bad in [
            String::new(),
            "ba_".to_owned(),
            ulid.to_owned(),
            format!("ba_{}", ulid.to_lowercase()),
            format!("bad_{ulid}"),
            format!("ba_{ulid}0"),
        ] {
            assert_eq!(BankAccountId::parse(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_deposit_books_under_a_derived_ledger_id() {
        let id = DepositId::parse("bad_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B").expect("canonical");
        assert_eq!(
            id.ledger_transaction_id(),
            "bad_01JD7Z8Q3K5N2V4W6X8Y0Z1A2B.deposit"
        );
    }
}
