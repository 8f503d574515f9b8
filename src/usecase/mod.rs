//! The use cases every face calls: the CLI, the JSON API and the
//! dashboard parse their input, call one of these, and render what comes
//! back. Rules, validation and typed errors live here, once.
//!
//! | module | does |
//! |---|---|
//! | `projects` | create, configure, app probe, plan map |
//! | `connection` | "Test & connect" a Stripe key, webhook signing secrets |
//! | `checks` | start a check, read runs and their evidence |
//! | `events` | the webhook event log, replay |
//! | `incidents` | the inbox and its actions: acknowledge, resolve, rerun, reconcile, export |
//! | `scans` | start (or join) a scan, read past ones |
//! | `tokens` | API tokens: issue, list, revoke, authenticate |
//! | `health` | readiness, the queue |
//! | `overview` | a project at a glance |
//! | `accounts` | dashboard users, sign-in, sessions, members, the activity log |

pub mod accounts;
pub mod checks;
pub mod connection;
pub mod events;
pub mod health;
pub mod incidents;
pub mod overview;
pub mod projects;
pub mod scans;
pub mod tokens;
