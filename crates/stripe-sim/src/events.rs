//! Event emission: builds Stripe event envelopes, stores them in list order
//! and queues them for every webhook endpoint.

use serde_json::{Value, json};

use crate::model::key;
use crate::state::{API_VERSION, Store, StoredEvent};

impl Store {
    /// Stores an event and queues it for delivery to every endpoint.
    pub(crate) fn emit(&mut self, kind: &str, object: Value, previous: Option<Value>) -> Value {
        let s = self.next_event_seq();
        let created = self.clock.now();
        let mut data = json!({ "object": object });
        if let Some(previous) = previous {
            data["previous_attributes"] = previous;
        }
        let event = json!({
            "id": self.event_id(s),
            "object": "event",
            "api_version": API_VERSION,
            "created": created,
            "data": data,
            "livemode": self.livemode,
            "pending_webhooks": self.endpoints.iter().filter(|e| e.wants(kind)).count(),
            // Changes made through the simulator's control API play the part
            // of Stripe's automatic processing, which has no request id.
            "request": { "id": null, "idempotency_key": null },
            "type": kind,
        });
        self.events.push(StoredEvent {
            kind: kind.to_owned(),
            json: event.clone(),
        });
        self.event_index.insert(key(created, s));
        for endpoint in 0..self.endpoints.len() {
            if self.endpoints[endpoint].wants(kind) {
                self.outbox.push_back((s, endpoint));
            }
        }
        event
    }

    /// Registers an endpoint; every event emitted from now on that it
    /// wants is queued for it. Returns its `we_…` id.
    pub(crate) fn add_endpoint(&mut self, url: &str, secret: &str, enabled: Vec<String>) -> String {
        let id = crate::ids::format_short("we", self.endpoints.len() as u32, &self.tag);
        let created = self.clock.now();
        self.endpoints.push(crate::state::Endpoint {
            id: id.clone(),
            url: url.to_owned(),
            secret: secret.to_owned(),
            enabled_events: enabled,
            created,
            deleted: false,
        });
        id
    }

    /// Emits unless automatic events are switched off for bulk seeding.
    pub(crate) fn auto_emit(&mut self, kind: &str, object: Value, previous: Option<Value>) {
        if self.auto_events {
            self.emit(kind, object, previous);
        }
    }

    /// Queues an already emitted event again for every endpoint.
    pub(crate) fn requeue(&mut self, event: u32) {
        let kind = self.events[event as usize].kind.clone();
        for endpoint in 0..self.endpoints.len() {
            if self.endpoints[endpoint].wants(&kind) {
                self.outbox.push_back((event, endpoint));
            }
        }
    }
}

/// Does an event of type `kind` match a `type` filter (`*` wildcards allowed,
/// as Stripe allows `customer.subscription.*`)?
pub(crate) fn type_matches(filter: &str, kind: &str) -> bool {
    match filter.strip_suffix('*') {
        Some(prefix) => kind.starts_with(prefix),
        None => filter == kind,
    }
}

#[cfg(test)]
mod tests {
    use super::type_matches;

    #[test]
    fn wildcard_types() {
        assert!(type_matches(
            "customer.subscription.*",
            "customer.subscription.updated"
        ));
        assert!(!type_matches("customer.subscription.*", "customer.created"));
        assert!(type_matches("invoice.paid", "invoice.paid"));
        assert!(!type_matches("invoice.paid", "invoice.payment_failed"));
    }
}
