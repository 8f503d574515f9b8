//! Stripe's webhook signature scheme (PROTOCOL.md §1.1).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The `Stripe-Signature` header value Stripe sends for `body` signed at
/// unix time `t`: `t={t},v1={hex hmac-sha256(secret, "{t}." + body)}`.
/// The key is the whole secret string, `whsec_` included.
pub fn sign_header(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC-SHA256 accepts keys of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}
