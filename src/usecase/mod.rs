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
//! | `accounts` | dashboard users, sign-in, sessions, the activity log |
//! | `members` | members and roles, API tokens (the members page and the API) |

pub mod accounts;
pub mod checks;
pub mod connection;
pub mod drill;
pub mod events;
pub mod health;
pub mod incidents;
pub mod members;
pub mod overview;
pub mod projects;
pub mod scans;
pub mod tokens;

/// One page of a newest-first list and the cursor of the next page.
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// A keyset cursor as pages carry it: `{time}.{id}` of the last row shown.
/// An id must start with `prefix`; anything unreadable is `None` (the list
/// starts from the top).
pub fn parse_cursor(raw: &str, prefix: &str) -> Option<(i64, String)> {
    let (at, id) = raw.split_once('.')?;
    let at = at.parse().ok()?;
    (id.starts_with(prefix) && id.len() <= 255).then(|| (at, id.to_string()))
}

/// Cuts a fetch of `limit + 1` rows to a page, with the cursor of the last
/// row kept when there is more.
pub fn page_of<T>(mut rows: Vec<T>, limit: i64, key: impl Fn(&T) -> (i64, &str)) -> Page<T> {
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| {
            let (at, id) = key(r);
            format!("{at}.{id}")
        })
    } else {
        None
    };
    Page { items: rows, next }
}
