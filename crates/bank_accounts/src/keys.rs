//! The keys that protect account numbers at rest.
//!
//! - A **keyring** of AES-256-GCM keys, each with an id. The first key seals every new value;
//!   every key in the ring opens the values it sealed, found by the key id stored next to the
//!   ciphertext. Rotating means putting a new key first and keeping the old ones listed until
//!   nothing sealed under them remains.
//! - An **index key** for HMAC-SHA256: the blind index of an account number (uniqueness and
//!   duplicate checks without decrypting) and the digests of verification codes. It does not
//!   rotate with the keyring, because every stored index would have to be recomputed.
//!
//! Configuration text: the keyring is `id:base64key,id:base64key,…` (first is current), the index
//! key is one base64 key; both are 32 bytes. Nothing here prints a key: `Debug` shows key ids
//! only, and errors name the rule that failed, never the input.

use std::fmt;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::TryRngCore;
use sha2::Sha256;

/// Bytes in every key: AES-256 and a 256-bit HMAC key.
pub const KEY_BYTES: usize = 32;
/// The longest key id.
pub const KEY_ID_LEN_MAX: usize = 32;
/// The most keys a keyring holds; more would mean rotations that were never finished.
pub const KEYRING_KEYS_MAX: usize = 16;
/// Bytes of a GCM nonce.
const NONCE_BYTES: usize = 12;

type HmacSha256 = Hmac<Sha256>;

/// Why key material or a sealed value was refused. Never carries key material or plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The configuration text does not describe usable keys.
    #[error("account keys: {0}")]
    Config(&'static str),
    /// A sealed value names a key that is not in the keyring.
    #[error("no key {0:?} in the account keyring")]
    UnknownKey(String),
    /// A sealed value does not open: damaged, or sealed for another row.
    #[error("a sealed value does not open under key {0:?}")]
    Unsealable(String),
    /// The operating system gave no randomness.
    #[error("no randomness for a key or nonce")]
    NoRandomness,
}

/// A key's id, stored next to each value it sealed: 1 to 32 ASCII letters, digits, `_` or `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyId(String);

impl KeyId {
    /// Parses a key id.
    pub fn parse(value: &str) -> Result<KeyId, KeyError> {
        let valid = (1..=KEY_ID_LEN_MAX).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if valid {
            Ok(KeyId(value.to_owned()))
        } else {
            Err(KeyError::Config(
                "a key id must be 1 to 32 letters, digits, '_' or '-'",
            ))
        }
    }

    /// The id as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A value sealed under a key of the ring: the key's id and base64 of nonce || ciphertext || tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub sealed: String,
}

struct DataKey {
    id: KeyId,
    cipher: Aes256Gcm,
}

/// The account-number keys: the AES-256-GCM keyring and the HMAC index key.
pub struct AccountKeys {
    ring: Vec<DataKey>,
    index: [u8; KEY_BYTES],
}

impl fmt::Debug for AccountKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.ring.iter().map(|key| key.id.as_str()).collect();
        f.debug_struct("AccountKeys")
            .field("keyring", &ids)
            .field("index", &"***")
            .finish()
    }
}

impl AccountKeys {
    /// Parses the keyring (`id:base64key,…`, first is current) and the index key (base64).
    pub fn parse(keyring: &str, index: &str) -> Result<AccountKeys, KeyError> {
        let mut ring: Vec<DataKey> = Vec::new();
        for entry in keyring.split(',').map(str::trim) {
            let (id, key) = entry
                .split_once(':')
                .ok_or(KeyError::Config("the keyring must be id:base64key,…"))?;
            let id = KeyId::parse(id.trim())?;
            if ring.iter().any(|known| known.id == id) {
                return Err(KeyError::Config("a key id appears twice in the keyring"));
            }
            let bytes = decode_key(key.trim())?;
            ring.push(DataKey {
                id,
                cipher: Aes256Gcm::new(&bytes.into()),
            });
        }
        if ring.len() > KEYRING_KEYS_MAX {
            return Err(KeyError::Config("the keyring holds at most 16 keys"));
        }
        Ok(AccountKeys {
            ring,
            index: decode_key(index.trim())?,
        })
    }

    /// Fresh random keys: one keyring key with id `key_id` and an index key. Returns the keys
    /// and their configuration text (keyring, index), to be written to a protected file.
    pub fn generate(key_id: &str) -> Result<(AccountKeys, String, String), KeyError> {
        let id = KeyId::parse(key_id)?;
        let ring_text = format!("{}:{}", id.as_str(), STANDARD.encode(random_key()?));
        let index_text = STANDARD.encode(random_key()?);
        let keys = AccountKeys::parse(&ring_text, &index_text)?;
        Ok((keys, ring_text, index_text))
    }

    /// The id of the key that seals new values.
    pub fn current_key_id(&self) -> &str {
        self.ring[0].id.as_str()
    }

    /// Seals `plaintext` under the current key, bound to `aad` (the row it belongs to).
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Sealed, KeyError> {
        let key = &self.ring[0];
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rngs::OsRng
            .try_fill_bytes(&mut nonce)
            .map_err(|_| KeyError::NoRandomness)?;
        let ciphertext = key
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| KeyError::Unsealable(key.id.as_str().to_owned()))?;
        let mut out = Vec::with_capacity(NONCE_BYTES + ciphertext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(Sealed {
            key_id: key.id.as_str().to_owned(),
            sealed: STANDARD.encode(out),
        })
    }

    /// Opens a value sealed under the key `key_id` for the same `aad`.
    pub fn open(&self, key_id: &str, sealed: &str, aad: &[u8]) -> Result<Vec<u8>, KeyError> {
        let key = self
            .ring
            .iter()
            .find(|key| key.id.as_str() == key_id)
            .ok_or_else(|| KeyError::UnknownKey(key_id.to_owned()))?;
        let unsealable = || KeyError::Unsealable(key_id.to_owned());
        let bytes = STANDARD.decode(sealed).map_err(|_| unsealable())?;
        if bytes.len() <= NONCE_BYTES {
            return Err(unsealable());
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        key.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map_err(|_| unsealable())
    }

    /// Hex HMAC-SHA256 under the index key of `parts`, each ended by a NUL so that no two
    /// different lists of parts hash the same input. `domain` separates the uses of the key.
    pub fn mac(&self, domain: &str, parts: &[&str]) -> String {
        hex::encode(self.mac_of(domain, parts).finalize().into_bytes())
    }

    /// Whether `expected_hex` is the MAC of `parts`, compared in constant time.
    pub fn mac_matches(&self, domain: &str, parts: &[&str], expected_hex: &str) -> bool {
        match hex::decode(expected_hex) {
            Ok(expected) => self.mac_of(domain, parts).verify_slice(&expected).is_ok(),
            Err(_) => false,
        }
    }

    fn mac_of(&self, domain: &str, parts: &[&str]) -> HmacSha256 {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.index)
            .expect("HMAC takes a key of any length");
        mac.update(domain.as_bytes());
        mac.update(b"\0");
        for part in parts {
            mac.update(part.as_bytes());
            mac.update(b"\0");
        }
        mac
    }
}

fn decode_key(text: &str) -> Result<[u8; KEY_BYTES], KeyError> {
    let bytes = STANDARD
        .decode(text)
        .map_err(|_| KeyError::Config("a key must be standard base64"))?;
    bytes
        .try_into()
        .map_err(|_| KeyError::Config("a key must be 32 bytes"))
}

fn random_key() -> Result<[u8; KEY_BYTES], KeyError> {
    let mut key = [0u8; KEY_BYTES];
    rand::rngs::OsRng
        .try_fill_bytes(&mut key)
        .map_err(|_| KeyError::NoRandomness)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_text(byte: u8) -> String {
        STANDARD.encode([byte; KEY_BYTES])
    }

    #[test]
    fn sealed_values_open_with_the_same_row_only() {
        let (keys, _, _) = AccountKeys::generate("k1").unwrap();
        let sealed = keys.seal(b"110123456789", b"ba_1|088").unwrap();
        assert_eq!(sealed.key_id, "k1");
        assert!(!sealed.sealed.contains("110123456789"));
        assert_eq!(
            keys.open("k1", &sealed.sealed, b"ba_1|088").unwrap(),
            b"110123456789"
        );
        assert_eq!(
            keys.open("k1", &sealed.sealed, b"ba_2|088"),
            Err(KeyError::Unsealable("k1".into()))
        );
        assert_eq!(
            keys.open("k2", &sealed.sealed, b"ba_1|088"),
            Err(KeyError::UnknownKey("k2".into()))
        );
        let again = keys.seal(b"110123456789", b"ba_1|088").unwrap();
        assert_ne!(
            again.sealed, sealed.sealed,
            "every seal takes a fresh nonce"
        );
    }

    #[test]
    fn rotation_seals_with_the_first_key_and_opens_with_any() {
        let index = key_text(9);
        let old = AccountKeys::parse(&format!("old:{}", key_text(1)), &index).unwrap();
        let sealed_old = old.seal(b"123456", b"row").unwrap();
        let rotated =
            AccountKeys::parse(&format!("new:{}, old:{}", key_text(2), key_text(1)), &index)
                .unwrap();
        assert_eq!(rotated.current_key_id(), "new");
        assert_eq!(
            rotated.open("old", &sealed_old.sealed, b"row").unwrap(),
            b"123456"
        );
        let sealed_new = rotated.seal(b"123456", b"row").unwrap();
        assert_eq!(sealed_new.key_id, "new");
        assert_eq!(
            old.open("new", &sealed_new.sealed, b"row"),
            Err(KeyError::UnknownKey("new".into())),
            "the old ring cannot read what the new key sealed"
        );
        assert_eq!(
            old.mac("d", &["x"]),
            rotated.mac("d", &["x"]),
            "the index key does not rotate with the ring"
        );
    }

    #[test]
    fn configuration_is_checked_and_never_echoed() {
        let index = key_text(9);
        for (ring, why) in [
            ("", "the keyring must be id:base64key,…"),
            ("k1", "the keyring must be id:base64key,…"),
            ("k1:notbase64!", "a key must be standard base64"),
            ("k1:AAAA", "a key must be 32 bytes"),
            (
                "bad id:AAAA",
                "a key id must be 1 to 32 letters, digits, '_' or '-'",
            ),
        ] {
            assert_eq!(
                AccountKeys::parse(ring, &index).unwrap_err(),
                KeyError::Config(why),
                "{ring:?}"
            );
        }
        let twice = format!("k1:{},k1:{}", key_text(1), key_text(2));
        assert!(AccountKeys::parse(&twice, &index).is_err());
        assert!(AccountKeys::parse(&format!("k1:{}", key_text(1)), "short").is_err());
        let keys = AccountKeys::parse(&format!("k1:{}", key_text(7)), &index).unwrap();
        let debug = format!("{keys:?}");
        assert!(debug.contains("k1") && !debug.contains(&key_text(7)) && !debug.contains(&index));
    }

    #[test]
    fn macs_are_keyed_separated_and_checked_in_constant_time() {
        let a = AccountKeys::parse(&format!("k:{}", key_text(1)), &key_text(2)).unwrap();
        let b = AccountKeys::parse(&format!("k:{}", key_text(1)), &key_text(3)).unwrap();
        let mac = a.mac("code", &["bad_1", "123456"]);
        assert!(a.mac_matches("code", &["bad_1", "123456"], &mac));
        assert!(!a.mac_matches("code", &["bad_1", "123457"], &mac));
        assert!(!a.mac_matches("blind", &["bad_1", "123456"], &mac));
        assert!(!a.mac_matches("code", &["bad_11", "23456"], &mac));
        assert!(!b.mac_matches("code", &["bad_1", "123456"], &mac));
        assert!(!a.mac_matches("code", &["bad_1", "123456"], "zz"));
    }
}
