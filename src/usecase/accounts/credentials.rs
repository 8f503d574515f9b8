//! Emails and passwords: normalised and checked, hashed with argon2id and
//! verified off the async threads, with a dummy verify for unknown emails.

use std::sync::OnceLock;

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier, password_hash::SaltString};
use rand::RngCore;

use super::{AccountError, MAX_PASSWORD, MIN_PASSWORD};

/// Normalises and checks an email: trimmed, lower-case, one `@` with text
/// on both sides and a dot in the domain.
pub fn parse_email(raw: &str) -> Result<String, AccountError> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if valid {
        Ok(email)
    } else {
        Err(AccountError::invalid(
            "email",
            format!("{:?} is not an email address", raw.trim()),
        ))
    }
}

pub(in crate::usecase) fn check_password(password: &str) -> Result<(), AccountError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD {
        return Err(AccountError::invalid(
            "password",
            format!("the password must be at least {MIN_PASSWORD} characters (it has {n})"),
        ));
    }
    if password.len() > MAX_PASSWORD {
        return Err(AccountError::invalid(
            "password",
            format!("the password may be at most {MAX_PASSWORD} bytes"),
        ));
    }
    Ok(())
}

/// argon2id with the crate's defaults, off the async threads.
pub(in crate::usecase) async fn hash_password(password: String) -> String {
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt");
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .expect("argon2 with default parameters")
            .to_string()
    })
    .await
    .expect("hashing does not panic")
}

/// A hash no password matches, verified for unknown emails so that a
/// sign-in takes as long whether or not the account exists.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::encode_b64(b"parityrail-dummy").expect("valid salt");
        Argon2::default()
            .hash_password(b"no password matches this hash", &salt)
            .expect("argon2")
            .to_string()
    })
}

pub(super) async fn verify_password(password: String, stored: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| dummy_hash().to_string());
        let matched = PasswordHash::new(&stored).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        });
        known && matched
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_lowercased_and_checked() {
        assert_eq!(
            parse_email("  Ada@Example.COM ").unwrap(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@example",
            "a b@example.com",
            "a@b@c.com",
            "ada@.com",
        ] {
            assert!(parse_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_need_twelve_characters() {
        assert!(check_password("short").is_err());
        assert!(check_password("exactly12chr").is_ok());
        assert_eq!(
            check_password("elevenchars").unwrap_err().field(),
            Some("password")
        );
    }

    #[tokio::test]
    async fn a_password_verifies_against_its_hash_only() {
        let hash = hash_password("correct horse battery".into()).await;
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery".into(), Some(hash.clone())).await);
        assert!(!verify_password("wrong horse battery".into(), Some(hash)).await);
        assert!(!verify_password("anything at all".into(), None).await);
    }
}
