//! Pseudonymous user ids: with `--pseudonymize-users`, a user id is replaced by a
//! keyed hash before anything about the user is stored, so the database never
//! holds the ids apps send. Assignment is unchanged: SDKs hash the raw id.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Turns user ids into their pseudonyms with a secret key kept in the database.
#[derive(Clone)]
pub struct Pseudonyms {
    key: Vec<u8>,
}

impl std::fmt::Debug for Pseudonyms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonyms(..)")
    }
}

impl Pseudonyms {
    pub fn new(key: Vec<u8>) -> Self {
        Self { key }
    }

    /// HMAC-SHA256 of the id, in hex: the same id always gives the same
    /// pseudonym, and without the key no id can be recovered or tested.
    pub fn of(&self, user: &str) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return super::hex(&[]);
        };
        mac.update(user.as_bytes());
        super::hex(&mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pseudonym_is_stable_per_key_and_hides_the_id() {
        let one = Pseudonyms::new(b"first key".to_vec());
        let other = Pseudonyms::new(b"second key".to_vec());
        assert_eq!(one.of("ユーザー42"), one.of("ユーザー42"));
        assert_ne!(one.of("ユーザー42"), one.of("ユーザー43"));
        assert_ne!(one.of("ユーザー42"), other.of("ユーザー42"));
        assert_eq!(one.of("u1").len(), 64);
        assert!(!one.of("u1").contains("u1"));
    }
}
