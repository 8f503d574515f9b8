//! Stripe's webhook signature scheme, checked on the raw bytes before any
//! JSON parsing (SPEC §2, PROTOCOL.md §1).
//!
//! Where the official SDKs disagree on input Stripe never sends, ParityRail
//! accepts only what all three accept: every element must be exactly
//! `key=value`, `t` appears once as digits (an optional leading `+`), `v1`
//! values are compared as the exact lowercase hex Stripe emits, and the body
//! must be UTF-8. The signature is checked before the age, like Python and Node.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The tolerance of every official SDK: five minutes.
pub const TOLERANCE_SECS: i64 = 300;

/// Why a delivery was rejected. `as_str` names match the vectors' `expected_kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("Stripe-Signature header is missing")]
    MissingHeader,
    #[error("no webhook signing secret is configured for this project")]
    MissingSecret,
    #[error("Stripe-Signature header is malformed")]
    MalformedHeader,
    #[error("Stripe-Signature header has no v1 signature")]
    NoV1Signature,
    #[error("no v1 signature matches a signing secret of this project")]
    SignatureMismatch,
    #[error("signature timestamp is older than the 300 s tolerance")]
    TimestampOutsideTolerance,
    #[error("body is not valid UTF-8")]
    BodyNotUtf8,
}

impl VerifyError {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingHeader => "missing_header",
            Self::MissingSecret => "missing_secret",
            Self::MalformedHeader => "malformed_header",
            Self::NoV1Signature => "no_v1_signature",
            Self::SignatureMismatch => "signature_mismatch",
            Self::TimestampOutsideTolerance => "timestamp_outside_tolerance",
            Self::BodyNotUtf8 => "body_not_utf8",
        }
    }
}

struct ParsedHeader<'a> {
    timestamp: i64,
    signatures: Vec<&'a str>,
}

fn parse_header(header: &str) -> Result<ParsedHeader<'_>, VerifyError> {
    if header.is_empty() {
        return Err(VerifyError::MissingHeader);
    }
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for element in header.split(',') {
        let mut parts = element.split('=');
        let (Some(key), Some(value), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(VerifyError::MalformedHeader);
        };
        match key {
            "t" if timestamp.is_some() => return Err(VerifyError::MalformedHeader),
            "t" => timestamp = Some(parse_timestamp(value)?),
            "v1" => signatures.push(value),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(VerifyError::MalformedHeader)?;
    if signatures.is_empty() {
        return Err(VerifyError::NoV1Signature);
    }
    Ok(ParsedHeader {
        timestamp,
        signatures,
    })
}

fn parse_timestamp(value: &str) -> Result<i64, VerifyError> {
    let digits = value.strip_prefix('+').unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::MalformedHeader);
    }
    digits.parse().map_err(|_| VerifyError::MalformedHeader)
}

/// Lowercase hex HMAC-SHA256 of `{t}.{body}` with the whole secret as key.
pub fn compute_signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Verifies a delivery against every stored secret; any `v1` may match any
/// secret (a secret roll sends several). `now` is unix seconds.
pub fn verify<S: AsRef<str>>(
    header: Option<&str>,
    body: &[u8],
    secrets: &[S],
    now: i64,
) -> Result<(), VerifyError> {
    let numbered: Vec<(usize, &str)> = secrets.iter().map(AsRef::as_ref).enumerate().collect();
    verify_with_ids(header, body, &numbered, now).map(|_| ())
}

/// Like [`verify`], over `(id, secret)` pairs: the id of the first secret
/// that matched. Every secret and every `v1` is compared (in constant
/// time) before the answer is chosen.
pub fn verify_with_ids<I: Copy, S: AsRef<str>>(
    header: Option<&str>,
    body: &[u8],
    secrets: &[(I, S)],
    now: i64,
) -> Result<I, VerifyError> {
    let secrets: Vec<(I, &str)> = secrets
        .iter()
        .map(|(id, s)| (*id, s.as_ref()))
        .filter(|(_, s)| !s.is_empty())
        .collect();
    if secrets.is_empty() {
        return Err(VerifyError::MissingSecret);
    }
    let parsed = parse_header(header.ok_or(VerifyError::MissingHeader)?)?;
    if std::str::from_utf8(body).is_err() {
        return Err(VerifyError::BodyNotUtf8);
    }
    let mut matches = Vec::with_capacity(secrets.len());
    for (_, secret) in &secrets {
        let expected = compute_signature(secret, parsed.timestamp, body);
        let mut matched = subtle::Choice::from(0u8);
        for candidate in &parsed.signatures {
            // Length is public (always 64); the comparison itself is constant time.
            if candidate.len() == expected.len() {
                matched |= expected.as_bytes().ct_eq(candidate.as_bytes());
            }
        }
        matches.push(bool::from(matched));
    }
    let Some(index) = matches.iter().position(|m| *m) else {
        return Err(VerifyError::SignatureMismatch);
    };
    if now.saturating_sub(parsed.timestamp) > TOLERANCE_SECS {
        return Err(VerifyError::TimestampOutsideTolerance);
    }
    Ok(secrets[index].0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_headers_never_panic() {
        let body = b"{}";
        for header in [
            "",
            ",",
            "=",
            "t",
            "t=",
            "v1",
            "t=1,v1",
            "t=99999999999999999999999,v1=aa",
            "t=1,v1=\u{e9}\u{e9}",
            "t=-9223372036854775808,v1=00",
            ",,,,,",
            "t=1,t=2,v1=x",
        ] {
            assert!(
                verify(Some(header), body, &["whsec_x"], 0).is_err(),
                "{header:?}"
            );
        }
    }

    #[test]
    fn valid_signature_round_trips() {
        let sig = compute_signature("whsec_abc", 1000, b"{}");
        let header = format!("t=1000,v1={sig}");
        assert_eq!(verify(Some(&header), b"{}", &["whsec_abc"], 1000), Ok(()));
        assert_eq!(
            verify(Some(&header), b"{}", &["whsec_old", "whsec_abc"], 1300),
            Ok(())
        );
        assert_eq!(
            verify(Some(&header), b"{}", &["whsec_abc"], 1301),
            Err(VerifyError::TimestampOutsideTolerance)
        );
        assert_eq!(
            verify(Some(&header), b"{} ", &["whsec_abc"], 1000),
            Err(VerifyError::SignatureMismatch)
        );
        assert_eq!(
            verify::<&str>(Some(&header), b"{}", &[], 1000),
            Err(VerifyError::MissingSecret)
        );
    }
}
