//! Checking `ParityRail-Signature` as an app author would: HMAC-SHA256 over
//! `"{t}.{path_and_query}.{body}"` with the probe secret (SPEC §5).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header every probe and reconcile request carries.
pub const SIGNATURE_HEADER: &str = "parityrail-signature";

/// Requests signed longer ago than this (or this far in the future) are refused.
pub const TOLERANCE_SECS: i64 = 300;

/// Whether `header` (`t={unix},v1={hex}`) signs this request target and body
/// with `secret`, at most `TOLERANCE_SECS` away from `now`.
///
/// `path_and_query` must be the request target exactly as received, not a
/// re-encoded form of the decoded query.
pub fn verify_signature(
    header: &str,
    secret: &str,
    path_and_query: &str,
    body: &[u8],
    now: i64,
) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for element in header.split(',') {
        let Some((key, value)) = element.trim().split_once('=') else {
            return false;
        };
        match key {
            "t" if timestamp.is_some() => return false,
            "t" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                timestamp = value.parse::<i64>().ok();
            }
            "t" => return false,
            "v1" => signatures.push(value),
            _ => {}
        }
    }
    let Some(t) = timestamp else {
        return false;
    };
    if now.abs_diff(t) > TOLERANCE_SECS.unsigned_abs() {
        return false;
    }
    signatures.iter().any(|candidate| {
        let Ok(raw) = hex::decode(candidate) else {
            return false;
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
            return false;
        };
        mac.update(format!("{t}.{path_and_query}.").as_bytes());
        mac.update(body);
        // `verify_slice` compares in constant time.
        mac.verify_slice(&raw).is_ok()
    })
}

/// Unix seconds now.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}
