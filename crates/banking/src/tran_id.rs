//! Our request ids at the bank (`bank_tran_id`, 거래고유번호): the 10-character institution code
//! the bank assigned to the platform, `U`, and 9 characters we choose, e.g. `M202600001U4KX9Z0001`.
//!
//! The bank requires the id to be unique per institution per bank day, and it is the key under
//! which the bank records a transfer: sending the same id again (with the same request time)
//! returns the recorded result instead of moving money twice, and a transfer-result inquiry
//! finds a transfer by it. So an id is generated once per transfer, stored with the request
//! before the call, and reused for every retry and inquiry of that transfer.

use std::collections::HashSet;
use std::fmt;
use std::sync::Mutex;

use crate::error::InvalidValue;

/// Length of the institution code the bank assigns (이용기관코드).
const INSTITUTION_LEN: usize = 10;
/// Length of the part of an id the platform chooses (이용기관 부여번호).
const SERIAL_LEN: usize = 9;
/// The separator between the two parts, fixed by the open-banking API.
const SEPARATOR: u8 = b'U';
/// The alphabet of generated characters: digits, then upper-case letters.
const ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

fn is_id_char(b: u8) -> bool {
    b.is_ascii_digit() || b.is_ascii_uppercase()
}

/// The platform's 10-character institution code (digits and upper-case letters), as assigned by
/// the bank or the open-banking centre.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct InstitutionCode([u8; INSTITUTION_LEN]);

impl InstitutionCode {
    pub fn parse(value: &str) -> Result<InstitutionCode, InvalidValue> {
        let bytes: [u8; INSTITUTION_LEN] = value.as_bytes().try_into().map_err(|_| {
            InvalidValue::new(
                "institution_code",
                "must be 10 digits or upper-case letters",
            )
        })?;
        if !bytes.iter().copied().all(is_id_char) {
            return Err(InvalidValue::new(
                "institution_code",
                "must be 10 digits or upper-case letters",
            ));
        }
        Ok(InstitutionCode(bytes))
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("an institution code is ASCII")
    }
}

impl fmt::Display for InstitutionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for InstitutionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InstitutionCode({})", self.as_str())
    }
}

/// A `bank_tran_id`: 10-character institution code, `U`, 9 digits or upper-case letters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BankTranId(String);

impl BankTranId {
    /// The length of every id.
    pub const LEN: usize = INSTITUTION_LEN + 1 + SERIAL_LEN;

    pub fn parse(value: &str) -> Result<BankTranId, InvalidValue> {
        let bytes = value.as_bytes();
        let valid = bytes.len() == Self::LEN
            && bytes[INSTITUTION_LEN] == SEPARATOR
            && bytes[..INSTITUTION_LEN].iter().copied().all(is_id_char)
            && bytes[INSTITUTION_LEN + 1..].iter().copied().all(is_id_char);
        if !valid {
            return Err(InvalidValue::new(
                "bank_tran_id",
                "must be a 10-character institution code, 'U' and 9 digits or upper-case letters",
            ));
        }
        Ok(BankTranId(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The institution that issued the id.
    pub fn institution(&self) -> InstitutionCode {
        InstitutionCode::parse(&self.0[..INSTITUTION_LEN]).expect("checked when parsed")
    }
}

impl fmt::Display for BankTranId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for BankTranId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BankTranId({})", self.0)
    }
}

/// Characters of the serial taken by the generator's random prefix.
const PREFIX_LEN: usize = 5;
/// Characters of the serial taken by the generator's counter.
const COUNTER_LEN: usize = SERIAL_LEN - PREFIX_LEN;
/// 36^5 prefixes.
const PREFIXES: u64 = 60_466_176;
/// 36^4 ids per prefix.
const COUNTER_VALUES: u64 = 1_679_616;

/// Generates ids that are unique per bank day.
///
/// The 9 chosen characters are a 5-character prefix drawn at random when the generator is
/// created, followed by a 4-character counter. Why the ids are unique:
///
/// - **Within one generator**, by construction: the counter never repeats under one prefix, and
///   when it runs out (after 1,679,616 ids) a new random prefix is drawn that this generator has
///   never used. Ids are therefore unique for the generator's whole life, which covers every day
///   it lives through, midnight included.
/// - **Between generators** (replicas, restarts), by the prefix: two generators that issue ids on
///   the same day collide only if they drew the same prefix, with probability 1 / 36^5
///   (about 1.7 × 10⁻⁸) per pair. Ten restarts a day make 45 pairs, about one collision every
///   3,600 years.
///
/// A collision would not move money twice (the bank keys transfers by id and refuses an id
/// reused for a different transfer), but it would make the second transfer fail or, for an
/// identical transfer, answer with the first one's result. That residual risk is why callers
/// store each id before sending it and never derive ids from anything else.
#[derive(Debug)]
pub struct BankTranIdGenerator {
    institution: InstitutionCode,
    state: Mutex<GeneratorState>,
}

#[derive(Debug)]
struct GeneratorState {
    prefix: u64,
    counter: u64,
    used_prefixes: HashSet<u64>,
}

impl BankTranIdGenerator {
    /// A generator with a fresh random prefix.
    pub fn new(institution: InstitutionCode) -> BankTranIdGenerator {
        let prefix = random_prefix();
        BankTranIdGenerator {
            institution,
            state: Mutex::new(GeneratorState {
                prefix,
                counter: 0,
                used_prefixes: HashSet::from([prefix]),
            }),
        }
    }

    /// The next id.
    pub fn next_id(&self) -> BankTranId {
        let (prefix, counter) = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if state.counter == COUNTER_VALUES {
                // The used set grows by one entry per 1.7 million ids, so it stays tiny.
                let prefix = loop {
                    let candidate = random_prefix();
                    if state.used_prefixes.insert(candidate) {
                        break candidate;
                    }
                };
                state.prefix = prefix;
                state.counter = 0;
            }
            let counter = state.counter;
            state.counter += 1;
            (state.prefix, counter)
        };
        let mut id = String::with_capacity(BankTranId::LEN);
        id.push_str(self.institution.as_str());
        id.push(char::from(SEPARATOR));
        push_base36(&mut id, prefix, PREFIX_LEN);
        push_base36(&mut id, counter, COUNTER_LEN);
        debug_assert!(BankTranId::parse(&id).is_ok(), "generated an invalid id");
        BankTranId(id)
    }
}

fn random_prefix() -> u64 {
    rand::random_range(0..PREFIXES)
}

/// Appends `value` in base 36, left-padded with zeros to `width` characters.
fn push_base36(out: &mut String, value: u64, width: usize) {
    let mut digits = vec![b'0'; width];
    let mut rest = value;
    for slot in digits.iter_mut().rev() {
        *slot = ALPHABET[(rest % 36) as usize];
        rest /= 36;
    }
    assert_eq!(rest, 0, "{value} does not fit in {width} base-36 digits");
    out.push_str(std::str::from_utf8(&digits).expect("the alphabet is ASCII"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn institution() -> InstitutionCode {
        InstitutionCode::parse("M202600001").unwrap()
    }

    #[test]
    fn ids_have_the_open_banking_format() {
        let id = BankTranId::parse("M202600001U4KX9Z0001").unwrap();
        assert_eq!(id.institution(), institution());
        assert_eq!(id.as_str().len(), 20);
        for bad in [
            "",
            "M202600001U4KX9Z000",
            "M202600001U4KX9Z00012",
            "M202600001X4KX9Z0001",
            "m202600001U4KX9Z0001",
            "M202600001U4kx9z0001",
            "M20260000-U4KX9Z0001",
        ] {
            assert!(BankTranId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn institution_codes_are_ten_characters() {
        assert!(InstitutionCode::parse("T991234567").is_ok());
        assert!(InstitutionCode::parse("T99123456").is_err());
        assert!(InstitutionCode::parse("t991234567").is_err());
    }

    #[test]
    fn generated_ids_parse_and_never_repeat() {
        let generator = BankTranIdGenerator::new(institution());
        let mut seen = HashSet::new();
        for _ in 0..10_000 {
            let id = generator.next_id();
            assert_eq!(BankTranId::parse(id.as_str()), Ok(id.clone()));
            assert!(id.as_str().starts_with("M202600001U"));
            assert!(seen.insert(id));
        }
    }

    #[test]
    fn an_exhausted_counter_moves_to_an_unused_prefix() {
        let generator = BankTranIdGenerator::new(institution());
        let first = generator.next_id();
        generator.state.lock().unwrap().counter = COUNTER_VALUES - 1;
        let last_of_prefix = generator.next_id();
        assert_eq!(&last_of_prefix.as_str()[11..16], &first.as_str()[11..16]);
        assert_eq!(&last_of_prefix.as_str()[16..], "ZZZZ");
        let next = generator.next_id();
        assert_ne!(&next.as_str()[11..16], &first.as_str()[11..16]);
        assert_eq!(&next.as_str()[16..], "0000");
        assert_eq!(generator.state.lock().unwrap().used_prefixes.len(), 2);
    }

    #[test]
    fn base36_is_zero_padded() {
        let mut out = String::new();
        push_base36(&mut out, 0, 4);
        push_base36(&mut out, 35, 2);
        push_base36(&mut out, COUNTER_VALUES - 1, 4);
        assert_eq!(out, "00000ZZZZZ");
    }
}
