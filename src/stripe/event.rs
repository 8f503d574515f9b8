//! The few fields ParityRail reads from a verified webhook body. Works for
//! payloads rendered before and after `2025-03-31.basil`, where the invoice's
//! subscription link moved (PROTOCOL.md §3.1).

use serde::Deserialize;
use serde_json::Value;

/// The event types whose arrival triggers a re-read of the customer (SPEC §2).
pub const HANDLED_TYPES: [&str; 7] = [
    "checkout.session.completed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_failed",
    "entitlements.active_entitlement_summary.updated",
];

pub fn is_handled(event_type: &str) -> bool {
    HANDLED_TYPES.contains(&event_type)
}

/// A Stripe snapshot event whose signature has been verified.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedEvent {
    pub id: String,
    pub event_type: String,
    pub livemode: bool,
    pub created: i64,
    pub api_version: Option<String>,
    /// The Stripe customer the event is about, when the payload names one.
    pub customer: Option<String>,
    /// The subscription the event is about, when the payload names one.
    pub subscription: Option<String>,
}

/// Why a verified body is not a Stripe event ParityRail can take.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    #[error("body is not JSON")]
    NotJson,
    #[error("body is not a Stripe event: {0}")]
    NotAnEvent(&'static str),
}

#[derive(Deserialize)]
struct Envelope {
    id: Option<Value>,
    #[serde(rename = "type")]
    event_type: Option<Value>,
    object: Option<String>,
    livemode: Option<bool>,
    created: Option<i64>,
    api_version: Option<String>,
    data: Option<Data>,
}

#[derive(Deserialize)]
struct Data {
    object: Option<Value>,
}

/// An id field that Stripe may send as a string or as an expanded object.
pub fn expandable_id(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Object(o) => o.get("id")?.as_str().map(str::to_string),
        _ => None,
    }
}

impl VerifiedEvent {
    /// Parses a verified body. Only the envelope must be well formed; fields
    /// of `data.object` are read leniently because their shape depends on the
    /// endpoint's API version.
    pub fn parse(body: &[u8]) -> Result<Self, EventError> {
        let envelope: Envelope = serde_json::from_slice(body).map_err(|e| {
            if e.is_data() {
                EventError::NotAnEvent("unexpected field types")
            } else {
                EventError::NotJson
            }
        })?;
        let id = match envelope.id {
            Some(Value::String(s)) if !s.is_empty() => s,
            _ => return Err(EventError::NotAnEvent("missing `id`")),
        };
        let event_type = match envelope.event_type {
            Some(Value::String(s)) if !s.is_empty() => s,
            _ => return Err(EventError::NotAnEvent("missing `type`")),
        };
        if let Some(object) = envelope.object.as_deref()
            && object != "event"
        {
            return Err(EventError::NotAnEvent(
                "`object` is not \"event\" (thin events are not supported)",
            ));
        }
        let object = envelope.data.and_then(|d| d.object).unwrap_or(Value::Null);
        let (customer, subscription) = refs_of(&event_type, &object);
        Ok(Self {
            id,
            event_type,
            livemode: envelope.livemode.unwrap_or(false),
            created: envelope.created.unwrap_or(0),
            api_version: envelope.api_version,
            customer,
            subscription,
        })
    }
}

fn refs_of(event_type: &str, object: &Value) -> (Option<String>, Option<String>) {
    let customer = expandable_id(object.get("customer"));
    let subscription = if event_type.starts_with("customer.subscription.") {
        object.get("id").and_then(Value::as_str).map(str::to_string)
    } else if event_type.starts_with("invoice.") {
        // basil and later: parent.subscription_details.subscription; before: subscription.
        expandable_id(object.pointer("/parent/subscription_details/subscription"))
            .or_else(|| expandable_id(object.get("subscription")))
    } else {
        expandable_id(object.get("subscription"))
    };
    (customer, subscription)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_what_is_not_an_event() {
        assert_eq!(VerifiedEvent::parse(b"not json"), Err(EventError::NotJson));
        assert_eq!(VerifiedEvent::parse(b""), Err(EventError::NotJson));
        assert!(matches!(
            VerifiedEvent::parse(b"[1]"),
            Err(EventError::NotAnEvent(_))
        ));
        assert!(matches!(
            VerifiedEvent::parse(b"{}"),
            Err(EventError::NotAnEvent(_))
        ));
        assert!(matches!(
            VerifiedEvent::parse(br#"{"id":"evt_1"}"#),
            Err(EventError::NotAnEvent("missing `type`"))
        ));
        assert!(matches!(
            VerifiedEvent::parse(br#"{"id":5,"type":"x"}"#),
            Err(EventError::NotAnEvent(_))
        ));
        assert!(matches!(
            VerifiedEvent::parse(br#"{"id":"evt_1","type":"x","object":"v2.core.event"}"#),
            Err(EventError::NotAnEvent(_))
        ));
    }

    #[test]
    fn customer_may_be_expanded() {
        let e = VerifiedEvent::parse(
            br#"{"id":"evt_1","type":"invoice.paid","object":"event","data":{"object":{"customer":{"id":"cus_9"},"subscription":"sub_old"}}}"#,
        )
        .unwrap();
        assert_eq!(e.customer.as_deref(), Some("cus_9"));
        assert_eq!(e.subscription.as_deref(), Some("sub_old"));
    }
}
