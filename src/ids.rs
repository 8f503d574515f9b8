//! Identifiers, parsed at the edge so the rest of the code can trust them.

use std::fmt;

use rand::Rng;

const BASE32: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";

fn random_base32(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| BASE32[rng.random_range(0..BASE32.len())] as char)
        .collect()
}

/// `prj_` + 20 base32 characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct ProjectId(String);

impl ProjectId {
    pub fn generate() -> Self {
        Self(format!("prj_{}", random_base32(20)))
    }

    pub fn parse(raw: &str) -> Option<Self> {
        let rest = raw.strip_prefix("prj_")?;
        (rest.len() == 20 && rest.bytes().all(|b| BASE32.contains(&b)))
            .then(|| Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Stripe customer id: `cus_` and ASCII letters and digits, at most 255
/// characters. Parsed at every edge (webhook payloads, the API, the CLI,
/// Stripe pages, the app's `/list`) before it reaches a Stripe URL, so no
/// path segment or query can be smuggled in.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct CustomerId(String);

impl CustomerId {
    pub fn parse(raw: &str) -> Option<Self> {
        let rest = raw.strip_prefix("cus_")?;
        (!rest.is_empty() && raw.len() <= 255 && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
            .then(|| Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CustomerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// 20 random base32 characters, the body of every generated id.
pub fn random_id() -> String {
    random_base32(20)
}

/// A fresh incident id: `inc_` + 20 base32 characters.
pub fn incident_id() -> String {
    format!("inc_{}", random_base32(20))
}

/// A fresh API token id: `tok_` + 20 base32 characters (not secret).
pub fn token_id() -> String {
    format!("tok_{}", random_base32(20))
}

/// A fresh API token: `prt_` + 40 base32 characters (200 random bits).
pub fn api_token() -> String {
    format!("prt_{}", random_base32(40))
}

/// A worker's lease owner tag, unique per process and worker.
pub fn worker_tag(index: usize) -> String {
    format!("w{index}_{}", random_base32(8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_ids_round_trip() {
        let id = ProjectId::generate();
        assert_eq!(ProjectId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(id.as_str().len(), 24);
        for bad in [
            "",
            "prj_",
            "prj_abc",
            "PRJ_aaaaaaaaaaaaaaaaaaaa",
            "prj_AAAAAAAAAAAAAAAAAAAA",
            "prj_aaaaaaaaaaaaaaaaaaa1",
        ] {
            assert_eq!(ProjectId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn customer_ids_are_cus_and_alphanumerics() {
        assert!(CustomerId::parse("cus_QXg1o8vcGmoR32").is_some());
        for bad in [
            "",
            "cus_",
            "cus",
            "CUS_abc",
            "cus_abc/../../v1/charges",
            "cus_abc?expand[]=x",
            "cus_a b",
            "cus_é",
            "sub_abc",
        ] {
            assert_eq!(CustomerId::parse(bad), None, "{bad}");
        }
        assert!(CustomerId::parse(&format!("cus_{}", "a".repeat(300))).is_none());
    }
}
