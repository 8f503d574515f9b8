//! Secrets at rest: XChaCha20-Poly1305 under the master key, bound to the
//! row they belong to so a ciphertext cannot be moved to another project.

use chacha20poly1305::{
    XChaCha20Poly1305, XNonce,
    aead::{Aead, KeyInit, Payload},
};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

const NONCE_LEN: usize = 24;

/// The 32-byte key from `PARITYRAIL_MASTER_KEY`.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

/// A stored secret could not be decrypted: the master key differs from the
/// one that encrypted it, or the row was altered.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot decrypt stored secrets: PARITYRAIL_MASTER_KEY is not the key they were encrypted with"
)]
pub struct WrongKey;

impl MasterKey {
    pub fn from_hex(hex_key: &str) -> Result<Self, String> {
        let bytes = hex::decode(hex_key.trim())
            .map_err(|_| "must be 64 hex characters (run `parityrail keygen`)".to_string())?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "must be 64 hex characters (run `parityrail keygen`)".to_string())?;
        Ok(Self(key))
    }

    /// A fresh random key, as `parityrail keygen` prints it.
    pub fn generate_hex() -> String {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        hex::encode(key)
    }

    /// Encrypts `plaintext`; `context` (for example `"stripe_key:prj_…"`) must
    /// be given again to decrypt.
    pub fn seal(&self, context: &str, plaintext: &str) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory input");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        out
    }

    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<String, WrongKey> {
        if sealed.len() < NONCE_LEN {
            return Err(WrongKey);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let plain = cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| WrongKey)?;
        String::from_utf8(plain).map_err(|_| WrongKey)
    }

    /// A keyed fingerprint: lets the store recognise a secret it already holds
    /// without keeping anything that reveals it.
    pub fn fingerprint(&self, context: &str, value: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        mac.update(context.as_bytes());
        mac.update(b"\0");
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// The plaintext sealed into `meta` so a start with a different key fails
/// loudly instead of failing on the first webhook.
pub const KEY_CHECK_CONTEXT: &str = "parityrail:master-key-check";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let key = MasterKey::from_hex(&MasterKey::generate_hex()).unwrap();
        let sealed = key.seal("stripe_key:prj_a", "sk_test_123");
        assert!(!sealed.windows(4).any(|w| w == b"sk_t"));
        assert_eq!(
            key.open("stripe_key:prj_a", &sealed).unwrap(),
            "sk_test_123"
        );
        assert!(key.open("stripe_key:prj_b", &sealed).is_err());
        let other = MasterKey::from_hex(&MasterKey::generate_hex()).unwrap();
        assert!(other.open("stripe_key:prj_a", &sealed).is_err());
        assert!(key.open("x", &sealed[..10]).is_err());
    }

    #[test]
    fn bad_hex_is_explained() {
        assert!(MasterKey::from_hex("zz").unwrap_err().contains("keygen"));
        assert!(MasterKey::from_hex(&"ab".repeat(31)).is_err());
        assert_eq!(format!("{:?}", MasterKey([1; 32])), "MasterKey([redacted])");
    }
}
