//! What an on-call engineer is told to do about each kind of incident.

use crate::store::IncidentKind;

/// Concrete retry guidance for an incident kind (SPEC §6).
pub fn guidance(kind: &str) -> &'static str {
    match kind {
        k if k == IncidentKind::Unfulfilled.as_str() => {
            "The customer paid but the app does not grant the expected access. Check the app's Stripe webhook \
             handler logs for this event id at the deploy SHA shown, fix or re-run the handler (or use Reconcile), \
             then Rerun the check to confirm."
        }
        k if k == IncidentKind::UnpaidAccess.as_str() => {
            "The app grants access Stripe does not pay for (cancelled, downgraded or never paid). Revoke the extra \
             access in the app or confirm the customer's subscription in Stripe, then Rerun the check."
        }
        k if k == IncidentKind::ProbeFailed.as_str() => {
            "ParityRail could not read access from the app probe. Check the probe URL, that the app is up, and that \
             it verifies ParityRail-Signature with the configured secret; checks retry on their own and this \
             incident resolves on the next successful probe."
        }
        k if k == IncidentKind::WebhookLag.as_str() => {
            "Events are stored but not processed within the lag threshold. Check that `parityrail serve` workers \
             are running and that Stripe's API is reachable; events are re-queued on redelivery and can be replayed \
             with `parityrail events replay`."
        }
        k if k == IncidentKind::UnmappedCustomer.as_str() => {
            "The Stripe customer cannot be mapped to an app user. Set the user-id metadata key (default \
             parityrail_user_id) on the subscription or customer in Stripe, then Rerun."
        }
        k if k == IncidentKind::StripeAuth.as_str() => {
            "Stripe rejected the API key (revoked, expired or wrong mode). Reconnect with a valid key \
             (`parityrail stripe connect`), then replay dead events with `parityrail events replay`."
        }
        _ => "Investigate the evidence, then Rerun the check.",
    }
}
