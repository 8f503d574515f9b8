//! Strict reading of the app's answers (SPEC §5). The app is someone else's
//! code: anything off the documented shape becomes `Malformed` with the path
//! of the offending field, never a panic and never a guess.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::ProbeError;
use crate::access::{Access, ObservedAccess};

/// What the app answered for one customer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeAnswer {
    /// The Stripe customer id the answer is about.
    pub customer: String,
    /// The app's user id, when the app named one.
    pub user: Option<String>,
    /// The access the app reports (`found: false` when it has no such user).
    pub observed: ObservedAccess,
}

/// One page of `GET {probe_url}/list`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListPage {
    /// Users with access, as the app answered them.
    pub answers: Vec<ProbeAnswer>,
    /// Cursor of the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

fn malformed(reason: String) -> ProbeError {
    ProbeError::Malformed { reason }
}

fn bad(at: &str, field: &str, expected: &str, got: &Value) -> ProbeError {
    malformed(format!(
        "{at}{field}: expected {expected}, got {}",
        kind(got)
    ))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parses a response body as JSON; the serde message names only a position.
pub(crate) fn json_body(bytes: &[u8]) -> Result<Value, ProbeError> {
    serde_json::from_slice(bytes).map_err(|e| malformed(format!("body is not JSON: {e}")))
}

/// An optional string: absent and `null` are `None`.
fn opt_string(
    obj: &Map<String, Value>,
    at: &str,
    field: &str,
) -> Result<Option<String>, ProbeError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(bad(at, field, "a string or null", other)),
    }
}

/// One answer object; `at` prefixes field names in errors (`customers[3].`).
pub(crate) fn parse_answer(value: &Value, at: &str) -> Result<ProbeAnswer, ProbeError> {
    let Value::Object(obj) = value else {
        let place = at.trim_end_matches('.');
        let place = if place.is_empty() { "body" } else { place };
        return Err(malformed(format!(
            "{place}: expected an object, got {}",
            kind(value)
        )));
    };
    let customer = match obj.get("customer") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(other) => return Err(bad(at, "customer", "a non-empty string", other)),
        None => return Err(malformed(format!("{at}customer: missing"))),
    };
    let user = opt_string(obj, at, "user")?;
    match obj.get("found") {
        None | Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => {
            return Ok(ProbeAnswer {
                customer,
                user,
                observed: ObservedAccess::default(),
            });
        }
        Some(other) => return Err(bad(at, "found", "a boolean", other)),
    }
    let active = match obj.get("active") {
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(bad(at, "active", "a boolean", other)),
        None => return Err(malformed(format!("{at}active: missing"))),
    };
    let plan = opt_string(obj, at, "plan")?;
    let deploy_sha = opt_string(obj, at, "deploy_sha")?;
    let mut features = BTreeSet::new();
    match obj.get("features") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let Value::String(name) = item else {
                    return Err(bad(at, &format!("features[{i}]"), "a string", item));
                };
                features.insert(name.clone());
            }
        }
        Some(other) => return Err(bad(at, "features", "an array of strings", other)),
    }
    let mut limits = BTreeMap::new();
    match obj.get("limits") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, v) in map {
                let Some(n) = v.as_i64() else {
                    return Err(bad(at, &format!("limits.{name}"), "an integer", v));
                };
                limits.insert(name.clone(), n);
            }
        }
        Some(other) => return Err(bad(at, "limits", "an object of integers", other)),
    }
    Ok(ProbeAnswer {
        customer,
        user,
        observed: ObservedAccess {
            found: true,
            access: Access {
                active,
                plan,
                features,
                limits,
            },
            deploy_sha,
        },
    })
}

/// The answer to a single probe, which must be about the customer asked for.
pub(crate) fn parse_single(body: &[u8], customer: &str) -> Result<ProbeAnswer, ProbeError> {
    let answer = parse_answer(&json_body(body)?, "")?;
    if answer.customer != customer {
        return Err(malformed(format!(
            "customer: asked about {customer:?}, the app answered about {:?}",
            answer.customer
        )));
    }
    Ok(answer)
}

/// A batch answer, matched back to the requested customers in request order.
/// A customer the app left out, or one it was not asked about, is malformed;
/// when a customer was answered twice the first answer counts.
pub(crate) fn parse_batch(
    body: &[u8],
    pairs: &[(String, String)],
) -> Result<Vec<ProbeAnswer>, ProbeError> {
    let value = json_body(body)?;
    let Some(items) = value.get("customers").and_then(Value::as_array) else {
        let got = value.get("customers").map_or("nothing", kind);
        return Err(malformed(format!(
            "customers: expected an array, got {got}"
        )));
    };
    let mut by_customer = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let answer = parse_answer(item, &format!("customers[{i}]."))?;
        if !pairs.iter().any(|(c, _)| *c == answer.customer) {
            return Err(malformed(format!(
                "customers[{i}].customer: {:?} was not asked about",
                answer.customer
            )));
        }
        by_customer.entry(answer.customer.clone()).or_insert(answer);
    }
    pairs
        .iter()
        .map(|(customer, _)| {
            by_customer
                .get(customer)
                .cloned()
                .ok_or_else(|| malformed(format!("customers: no answer for {customer:?}")))
        })
        .collect()
}

/// A `/list` page. A `next_cursor` equal to the cursor sent would loop
/// forever, so it is malformed too.
pub(crate) fn parse_list(body: &[u8], cursor: Option<&str>) -> Result<ListPage, ProbeError> {
    let value = json_body(body)?;
    let Some(items) = value.get("data").and_then(Value::as_array) else {
        let got = value.get("data").map_or("nothing", kind);
        return Err(malformed(format!("data: expected an array, got {got}")));
    };
    let answers = items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_answer(item, &format!("data[{i}].")))
        .collect::<Result<Vec<_>, _>>()?;
    let next_cursor = match value.get("next_cursor") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) if Some(s.as_str()) == cursor => {
            return Err(malformed(format!(
                "next_cursor: repeats the cursor sent ({s:?})"
            )));
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return Err(bad("", "next_cursor", "a string or null", other)),
    };
    Ok(ListPage {
        answers,
        next_cursor,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn reason(result: Result<impl std::fmt::Debug, ProbeError>) -> String {
        match result {
            Err(ProbeError::Malformed { reason }) => reason,
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    fn single(value: Value) -> Result<ProbeAnswer, ProbeError> {
        parse_single(value.to_string().as_bytes(), "cus_1")
    }

    #[test]
    fn reads_the_documented_answer() {
        let answer = single(json!({"customer": "cus_1", "user": "u1", "plan": "pro",
            "features": ["sso", "export"], "limits": {"seats": 10}, "active": true,
            "deploy_sha": "abc123"}))
        .unwrap();
        assert_eq!(answer.user.as_deref(), Some("u1"));
        let access = &answer.observed.access;
        assert!(answer.observed.found && access.active);
        assert_eq!(access.plan.as_deref(), Some("pro"));
        assert_eq!(access.features.len(), 2);
        assert_eq!(access.limits["seats"], 10);
        // plan, features, limits, user and deploy_sha may be null or absent.
        let bare = single(json!({"customer": "cus_1", "plan": null, "active": false})).unwrap();
        assert!(bare.observed.found && bare.observed.access == Access::default());
        let gone = single(json!({"customer": "cus_1", "found": false})).unwrap();
        assert!(!gone.observed.found);
    }

    #[test]
    fn names_the_offending_field() {
        let base = json!({"customer": "cus_1", "active": true});
        let with = |field: &str, value: Value| {
            let mut v = base.clone();
            v[field] = value;
            reason(single(v))
        };
        assert!(with("features", json!("sso")).starts_with("features: expected an array"));
        assert!(with("features", json!(["sso", 3])).starts_with("features[1]: expected a string"));
        assert!(with("limits", json!([1])).starts_with("limits: expected an object"));
        assert!(
            with("limits", json!({"seats": 1.5})).starts_with("limits.seats: expected an integer")
        );
        assert!(with("limits", json!({"seats": "10"})).starts_with("limits.seats"));
        assert!(with("active", json!("yes")).starts_with("active: expected a boolean"));
        assert!(with("plan", json!(1)).starts_with("plan:"));
        assert!(with("customer", json!("cus_2")).contains("cus_2"));
        assert!(reason(single(json!({"customer": "cus_1"}))).starts_with("active: missing"));
        assert!(reason(single(json!({"active": true}))).starts_with("customer: missing"));
        assert!(reason(single(json!([1]))).starts_with("body: expected an object"));
        assert!(reason(parse_single(b"<html>", "cus_1")).starts_with("body is not JSON"));
    }

    #[test]
    fn batches_match_back_and_lists_do_not_loop() {
        let pairs = [
            ("cus_1".to_string(), "u1".to_string()),
            ("cus_2".to_string(), "u2".to_string()),
        ];
        let only_one = json!({"customers": [{"customer": "cus_1", "found": false}]});
        assert!(reason(parse_batch(only_one.to_string().as_bytes(), &pairs)).contains("cus_2"));
        let stranger = json!({"customers": [{"customer": "cus_9", "found": false}]});
        assert!(reason(parse_batch(stranger.to_string().as_bytes(), &pairs)).contains("cus_9"));
        assert!(reason(parse_batch(b"{}", &pairs)).starts_with("customers: expected an array"));
        let page = json!({"data": [], "next_cursor": "cus_5"});
        assert!(
            reason(parse_list(page.to_string().as_bytes(), Some("cus_5"))).contains("next_cursor")
        );
        let last = parse_list(br#"{"data":[],"next_cursor":null}"#, None).unwrap();
        assert_eq!(last.next_cursor, None);
        assert!(reason(parse_list(br#"{"next_cursor":null}"#, None)).starts_with("data:"));
    }
}
