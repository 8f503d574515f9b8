//! The words every layer shares: statuses, kinds and triggers as enums, the
//! records the store decodes rows into, and the few Stripe shapes the
//! access derivation reads. Pure data: no I/O, nothing of SQL or HTTP.
//!
//! Stored and shown as their `as_str` names (SPEC §1, §6, §8); a name that
//! does not parse is corrupt data at the store edge, never a silent default.

mod records;
mod subscription;

pub use records::{
    Activity, ApiToken, EventRecord, Incident, Member, Project, ProjectSettings, Run, RunStep,
    Scan, Session, User,
};
pub use subscription::{Subscription, SubscriptionItem};

/// The id prefix of a drill's event (SPEC §8b): ParityRail sends it, signed
/// with the project's own secret, and labels everything it leads to.
pub const DRILL_EVENT_PREFIX: &str = "evt_parityrail_drill_";

/// Whether `event_id` is a drill's.
pub fn is_drill_event(event_id: &str) -> bool {
    event_id.starts_with(DRILL_EVENT_PREFIX)
}

/// Defines a string-named enum: `as_str`, `FromStr`, `Display` and serde as
/// its name.
macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable name used in storage, the API, the CLI and pages.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The value named `raw`, if any.
            pub fn parse(raw: &str) -> Option<Self> {
                match raw {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownName;
            fn from_str(raw: &str) -> Result<Self, UnknownName> {
                Self::parse(raw).ok_or_else(|| UnknownName {
                    what: stringify!($name),
                    got: raw.chars().take(64).collect(),
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($text),+]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                raw.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A name that is not one of an enum's values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what} {got:?} is not a known value")]
pub struct UnknownName {
    pub what: &'static str,
    pub got: String,
}

named_enum!(
    /// Where a project's Stripe data comes from (SPEC §1).
    ProjectMode {
        Live => "live",
        Test => "test",
        /// The built-in simulator: live traffic never touches it.
        Demo => "demo",
    }
);

named_enum!(
    /// Test or live, as given by a Stripe key's prefix and an event's `livemode`.
    KeyMode {
        Test => "test",
        Live => "live",
    }
);

impl KeyMode {
    pub fn is_live(self) -> bool {
        self == Self::Live
    }

    /// The mode of a Stripe secret (`sk_`) or restricted (`rk_`) key, from
    /// its prefix; `None` for anything else.
    pub fn of_key(key: &str) -> Option<Self> {
        match key.get(..8)? {
            "sk_test_" | "rk_test_" => Some(Self::Test),
            "sk_live_" | "rk_live_" => Some(Self::Live),
            _ => None,
        }
    }
}

named_enum!(
    /// What a token or a member may do in its project (SPEC §8).
    Role {
        /// Integrations, secrets, members and every incident action.
        Admin => "admin",
        /// Read everything, trigger checks and reruns.
        Viewer => "viewer",
    }
);

named_enum!(
    /// What started a check (SPEC §1).
    Trigger {
        Webhook => "webhook",
        Scan => "scan",
        Manual => "manual",
        Rerun => "rerun",
        Drill => "drill",
    }
);

named_enum!(
    /// Where a check stands: `pending` until its verdict.
    RunStatus {
        Pending => "pending",
        Passed => "passed",
        Failed => "failed",
    }
);

named_enum!(
    /// Why a run failed: an incident kind, or a reason that is not one.
    RunKind {
        Unfulfilled => "unfulfilled",
        UnpaidAccess => "unpaid_access",
        ProbeFailed => "probe_failed",
        UnmappedCustomer => "unmapped_customer",
        StripeAuth => "stripe_auth",
        /// Stripe could not be read for a reason other than the key.
        StripeError => "stripe_error",
        /// The project is not set up to check (no probe, gone).
        Setup => "setup",
    }
);

impl RunKind {
    /// The incident kind this failure opens, if it opens one.
    pub fn incident(self) -> Option<IncidentKind> {
        match self {
            Self::Unfulfilled => Some(IncidentKind::Unfulfilled),
            Self::UnpaidAccess => Some(IncidentKind::UnpaidAccess),
            Self::ProbeFailed => Some(IncidentKind::ProbeFailed),
            Self::UnmappedCustomer => Some(IncidentKind::UnmappedCustomer),
            Self::StripeAuth => Some(IncidentKind::StripeAuth),
            Self::StripeError | Self::Setup => None,
        }
    }
}

named_enum!(
    /// The kinds of incident (SPEC §6).
    IncidentKind {
        Unfulfilled => "unfulfilled",
        UnpaidAccess => "unpaid_access",
        ProbeFailed => "probe_failed",
        WebhookLag => "webhook_lag",
        UnmappedCustomer => "unmapped_customer",
        StripeAuth => "stripe_auth",
    }
);

impl IncidentKind {
    /// The run kind of a check that fails with this incident.
    pub fn as_run_kind(self) -> Option<RunKind> {
        RunKind::parse(self.as_str())
    }

    /// Concrete retry guidance for the on-call engineer (SPEC §6).
    pub fn guidance(self) -> &'static str {
        match self {
            Self::Unfulfilled => {
                "The customer paid but the app does not grant the expected access. Check the app's Stripe webhook \
                 handler logs for this event id at the deploy SHA shown, fix or re-run the handler (or use Reconcile), \
                 then Rerun the check to confirm."
            }
            Self::UnpaidAccess => {
                "The app grants access Stripe does not pay for (cancelled, downgraded or never paid). Revoke the extra \
                 access in the app or confirm the customer's subscription in Stripe, then Rerun the check."
            }
            Self::ProbeFailed => {
                "ParityRail could not read access from the app probe. Check the probe URL, that the app is up, and that \
                 it verifies ParityRail-Signature with the configured secret; checks retry on their own and this \
                 incident resolves on the next successful probe."
            }
            Self::WebhookLag => {
                "Events are stored but not processed within the lag threshold. Check that `parityrail serve` workers \
                 are running and that Stripe's API is reachable; events are re-queued on redelivery and can be replayed \
                 with `parityrail events replay`."
            }
            Self::UnmappedCustomer => {
                "The Stripe customer cannot be mapped to an app user. Set the user-id metadata key (default \
                 parityrail_user_id) on the subscription or customer in Stripe, then Rerun."
            }
            Self::StripeAuth => {
                "Stripe rejected the API key (revoked, expired or wrong mode) or the key lacks a permission named in \
                 the details. Reconnect with a valid key that may read Subscriptions, Customers, Invoices and (with \
                 Entitlements) Entitlements (`parityrail stripe connect`), then replay dead events with \
                 `parityrail events replay`. It resolves on the next working Stripe read."
            }
        }
    }
}

named_enum!(
    /// An incident's lifecycle (SPEC §8 `incidents list`).
    IncidentStatus {
        Open => "open",
        Acknowledged => "acknowledged",
        Resolved => "resolved",
    }
);

named_enum!(
    /// Where a scan stands (SPEC §7): `partial` when customers could not be checked.
    ScanStatus {
        Running => "running",
        Completed => "completed",
        Partial => "partial",
        Failed => "failed",
    }
);

named_enum!(
    /// What started a scan.
    ScanTrigger {
        Schedule => "schedule",
        Cron => "cron",
        Manual => "manual",
    }
);

named_enum!(
    /// One kind of evidence a run records (SPEC §1: snapshot → expected →
    /// probe attempts → verdict).
    StepName {
        StripeSnapshot => "stripe_snapshot",
        Expected => "expected",
        Probe => "probe",
        Verdict => "verdict",
    }
);

named_enum!(
    /// An event as the webhook log shows it (SPEC §8 `events list`).
    EventStatus {
        Received => "received",
        Processing => "processing",
        Processed => "processed",
        Ignored => "ignored",
        Failed => "failed",
        Dead => "dead",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_errors() {
        for s in ScanStatus::ALL {
            assert_eq!(s.as_str().parse::<ScanStatus>(), Ok(*s));
        }
        let err = "paused".parse::<RunStatus>().unwrap_err();
        assert_eq!(err.what, "RunStatus");
        assert_eq!(
            serde_json::to_string(&IncidentKind::UnpaidAccess).unwrap(),
            "\"unpaid_access\""
        );
        for kind in IncidentKind::ALL {
            if let Some(run) = kind.as_run_kind() {
                assert_eq!(run.incident(), Some(*kind));
            }
        }
    }

    #[test]
    fn key_modes_follow_the_prefix() {
        assert_eq!(KeyMode::of_key("sk_test_abc"), Some(KeyMode::Test));
        assert_eq!(KeyMode::of_key("rk_live_abc"), Some(KeyMode::Live));
        assert_eq!(KeyMode::of_key("pk_test_abc"), None);
        assert_eq!(KeyMode::of_key("sk_"), None);
    }
}
