//! `ParityRail-Signature` (SPEC §5): `t={unix},v1={hex hmac-sha256(secret,
//! "{t}.{path_and_query}.{body}")}`, so the app can tell a probe came from
//! ParityRail and is fresh. Public so app authors can check it the same way.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The request header carrying the signature.
pub const SIGNATURE_HEADER: &str = "ParityRail-Signature";

/// How far from the app's clock a signature may be: five minutes, as Stripe.
pub const TOLERANCE_SECS: i64 = 300;

fn mac(secret: &str, t: i64, path_and_query: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(format!("{t}.{path_and_query}.").as_bytes());
    mac.update(body);
    mac
}

/// The full header value signing one request.
///
/// `path_and_query` is the request target exactly as sent (path, then `?`
/// and the query with its percent-encoding as on the wire, no scheme or
/// host); `body` is empty for GET.
pub fn sign(secret: &str, t: i64, path_and_query: &str, body: &[u8]) -> String {
    let digest = mac(secret, t, path_and_query, body).finalize().into_bytes();
    format!("t={t},v1={}", hex::encode(digest))
}

/// Whether `header` signs this request with `secret` and its `t` is within
/// `tolerance` seconds of `now` (either side, so a skewed clock cannot
/// stretch the window). Any one matching `v1` is enough, which lets an app
/// accept both secrets while rotating. Malformed headers are simply false.
pub fn verify(
    header: &str,
    secret: &str,
    path_and_query: &str,
    body: &[u8],
    now: i64,
    tolerance: i64,
) -> bool {
    let mut timestamp = None;
    let mut candidates = Vec::new();
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
            "v1" => candidates.push(value),
            _ => {}
        }
    }
    let Some(t) = timestamp else {
        return false;
    };
    if now.abs_diff(t) > tolerance.unsigned_abs() {
        return false;
    }
    candidates.iter().any(|candidate| {
        hex::decode(candidate).is_ok_and(|raw| {
            // `verify_slice` compares in constant time.
            mac(secret, t, path_and_query, body)
                .verify_slice(&raw)
                .is_ok()
        })
    })
}

/// Unix seconds now.
pub(crate) fn unix_now() -> i64 {
    crate::now_ms() / 1000
}
