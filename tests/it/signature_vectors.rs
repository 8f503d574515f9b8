//! Every applicable vector of `signature-vectors.json` (run through Stripe's
//! official Python, Node and Go SDKs) must get ParityRail's expected answer.

use base64_free::decode_base64;
use parityrail::ingress::verify::{VerifyError, verify};
use serde_json::Value;

mod base64_free {
    /// The vectors carry exact bytes as base64; a dozen lines beat a dependency.
    pub fn decode_base64(input: &str) -> Vec<u8> {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = Vec::new();
        let (mut acc, mut bits) = (0u32, 0u32);
        for byte in input
            .bytes()
            .filter(|b| *b != b'=' && !b.is_ascii_whitespace())
        {
            let value = ALPHABET.iter().position(|c| *c == byte).expect("base64") as u32;
            acc = (acc << 6) | value;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
            }
        }
        out
    }
}

fn vectors() -> Vec<Value> {
    let raw = include_str!("../fixtures/stripe/signature-vectors.json");
    let file: Value = serde_json::from_str(raw).unwrap();
    let vectors = file["vectors"].as_array().unwrap().clone();
    assert_eq!(vectors.len(), file["count"].as_u64().unwrap() as usize);
    vectors
}

#[test]
fn agrees_with_every_applicable_vector() {
    let mut checked = 0;
    for v in vectors() {
        let id = v["id"].as_str().unwrap();
        let expected = v["parityrail_expected"].as_str().unwrap();
        if expected == "not_applicable" {
            // ParityRail always uses the SDKs' 300 s tolerance.
            assert_ne!(v["tolerance"].as_i64(), Some(300), "{id}");
            continue;
        }
        assert_eq!(v["tolerance"].as_i64(), Some(300), "{id}");
        let body = decode_base64(v["payload_base64"].as_str().unwrap());
        let secret = v["secret"].as_str().unwrap();
        let result = verify(
            v["header"].as_str(),
            &body,
            &[secret],
            v["now"].as_i64().unwrap(),
        );
        match expected {
            "accept" => assert_eq!(result, Ok(()), "vector {id} must be accepted"),
            "reject" => {
                let err = result.expect_err(&format!("vector {id} must be rejected"));
                // On headers shaped exactly as Stripe sends them, the reason
                // must also agree with the SDKs.
                if v["header_canonical"].as_bool() == Some(true) {
                    assert_eq!(err.as_str(), v["expected_kind"].as_str().unwrap(), "{id}");
                }
            }
            other => panic!("unknown expectation {other} in {id}"),
        }
        checked += 1;
    }
    assert_eq!(checked, 54, "every vector but the tolerance-0 one applies");
}

#[test]
fn rotation_vectors_accept_either_secret_in_the_store() {
    for v in vectors() {
        if v["parityrail_expected"] != "accept" {
            continue;
        }
        let body = decode_base64(v["payload_base64"].as_str().unwrap());
        let secret = v["secret"].as_str().unwrap();
        let with_other = ["whsec_unrelated_secret", secret];
        assert_eq!(
            verify(
                v["header"].as_str(),
                &body,
                &with_other,
                v["now"].as_i64().unwrap()
            ),
            Ok(()),
            "{}",
            v["id"]
        );
    }
    assert_eq!(
        verify(Some("t=1,v1=00"), b"", &[""], 1),
        Err(VerifyError::MissingSecret)
    );
}
