//! What every page shares: the layout's context, times shown relative with
//! the absolute time on hover, access rendered as one line or side by side,
//! and the static stylesheet and script.

use askama::Template;
use askama_web::WebTemplate;
use axum::{
    http::{HeaderValue, header},
    response::IntoResponse,
};
use serde_json::Value;

use super::SignedIn;
use crate::{domain::Role, rfc3339, usecase::accounts::Membership};

/// The layout's context: who is signed in, the form token, and the project
/// and tab being shown.
pub struct Chrome {
    pub email: String,
    pub csrf: String,
    pub project: Option<ProjectNav>,
    pub tab: &'static str,
}

pub struct ProjectNav {
    pub id: String,
    pub name: String,
    pub mode: &'static str,
    pub role: &'static str,
    pub admin: bool,
}

impl Chrome {
    pub fn new(signed_in: &SignedIn, membership: Option<&Membership>, tab: &'static str) -> Self {
        Self {
            email: signed_in.user().email.clone(),
            csrf: signed_in.session.csrf_token.clone(),
            project: membership.map(|m| ProjectNav {
                id: m.project.id.to_string(),
                name: m.project.name.clone(),
                mode: m.project.mode.as_str(),
                role: m.role.as_str(),
                admin: m.role == Role::Admin,
            }),
            tab,
        }
    }

    /// The id of the project shown, for links.
    pub fn pid(&self) -> &str {
        self.project.as_ref().map_or("", |p| p.id.as_str())
    }

    /// Whether the user is an admin of the project shown.
    pub fn admin(&self) -> bool {
        self.project.as_ref().is_some_and(|p| p.admin)
    }

    /// Whether the project shown is a demo project (its data comes from the
    /// simulator; a drill of its public URL cannot be caught).
    pub fn demo(&self) -> bool {
        self.project.as_ref().is_some_and(|p| p.mode == "demo")
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub title: &'static str,
    pub message: String,
}

/// A moment as pages show it: "3 min ago", with the RFC 3339 time on hover.
pub struct When {
    pub abs: String,
    pub rel: String,
}

impl When {
    pub fn at(ms: i64, now: i64) -> Self {
        Self {
            abs: rfc3339(ms),
            rel: relative(ms, now),
        }
    }

    pub fn maybe(ms: Option<i64>, now: i64) -> Option<Self> {
        ms.map(|ms| Self::at(ms, now))
    }
}

/// "just now", "42 s ago", "5 min ago", "3 h ago", "2 d ago"; "in 5 min" ahead.
pub fn relative(ms: i64, now: i64) -> String {
    let delta = (now - ms) / 1000;
    let (n, ahead) = (delta.abs(), delta < 0);
    let text = match n {
        0..=4 => return "just now".into(),
        5..=59 => format!("{n} s"),
        60..=3599 => format!("{} min", n / 60),
        3600..=86_399 => format!("{} h", n / 3600),
        _ => format!("{} d", n / 86_400),
    };
    if ahead {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// Percent-encodes a query value.
pub fn encode(raw: &str) -> String {
    form_urlencoded::byte_serialize(raw.as_bytes()).collect()
}

/// Access (expected or observed, as stored JSON) on one line:
/// `pro · 2 features · 1 limit`, `no access`, `user not found`.
pub fn access_line(raw: Option<&str>) -> String {
    let Some(value) = raw.and_then(|r| serde_json::from_str::<Value>(r).ok()) else {
        return "—".into();
    };
    if value.get("found") == Some(&Value::Bool(false)) {
        return "user not found".into();
    }
    if value.get("active") != Some(&Value::Bool(true)) {
        return "no access".into();
    }
    let mut parts = vec![
        value
            .get("plan")
            .and_then(Value::as_str)
            .unwrap_or("active, no plan")
            .to_string(),
    ];
    let count = |key: &str| match value.get(key) {
        Some(Value::Array(a)) => a.len(),
        Some(Value::Object(o)) => o.len(),
        _ => 0,
    };
    match count("features") {
        0 => {}
        1 => parts.push("1 feature".into()),
        n => parts.push(format!("{n} features")),
    }
    match count("limits") {
        0 => {}
        1 => parts.push("1 limit".into()),
        n => parts.push(format!("{n} limits")),
    }
    parts.join(" · ")
}

/// One row of expected beside observed; `differs` marks a difference.
pub struct DiffRow {
    pub field: String,
    pub expected: String,
    pub observed: String,
    pub differs: bool,
}

/// Expected and observed access side by side, field by field: access,
/// plan, each feature, each limit.
pub fn access_diff(expected: Option<&str>, observed: Option<&str>) -> Vec<DiffRow> {
    let parse = |raw: Option<&str>| {
        raw.and_then(|r| serde_json::from_str::<Value>(r).ok())
            .unwrap_or(Value::Null)
    };
    let (e, o) = (parse(expected), parse(observed));
    let mut rows = Vec::new();
    let mut push = |field: String, ev: String, ov: String| {
        let differs = ev != ov;
        rows.push(DiffRow {
            field,
            expected: ev,
            observed: ov,
            differs,
        });
    };
    let active = |v: &Value| {
        if v.is_null() {
            "—".to_string()
        } else if v.get("found") == Some(&Value::Bool(false)) {
            "user not found".into()
        } else if v.get("active") == Some(&Value::Bool(true)) {
            "yes".into()
        } else {
            "no".into()
        }
    };
    push("access".into(), active(&e), active(&o));
    let plan = |v: &Value| {
        v.get("plan")
            .and_then(Value::as_str)
            .unwrap_or("—")
            .to_string()
    };
    push("plan".into(), plan(&e), plan(&o));
    let features = |v: &Value| -> Vec<String> {
        v.get("features")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let (ef, of) = (features(&e), features(&o));
    let mut all: Vec<&String> = ef.iter().chain(of.iter()).collect();
    all.sort();
    all.dedup();
    for f in all {
        let has = |list: &[String]| if list.contains(f) { "yes" } else { "no" };
        push(format!("feature {f}"), has(&ef).into(), has(&of).into());
    }
    let limits = |v: &Value| -> Vec<(String, String)> {
        v.get("limits")
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.to_string())).collect())
            .unwrap_or_default()
    };
    let (el, ol) = (limits(&e), limits(&o));
    let mut keys: Vec<&String> = el.iter().chain(ol.iter()).map(|(k, _)| k).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        let get = |list: &[(String, String)]| {
            list.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| "—".into())
        };
        push(format!("limit {k}"), get(&el), get(&ol));
    }
    rows
}

/// Pretty-printed JSON of a stored text column, for a `<pre>` (escaped
/// by the template like every other string).
pub fn pretty(raw: Option<&str>) -> String {
    raw.and_then(|r| serde_json::from_str::<Value>(r).ok())
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| raw.unwrap_or("").to_string())
}

const STYLESHEET: &str = include_str!("../../../static/app.css");
const SCRIPT: &str = include_str!("../../../static/app.js");

pub async fn stylesheet() -> impl IntoResponse {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        STYLESHEET,
    )
}

pub async fn script() -> impl IntoResponse {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        SCRIPT,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_like_people_say_them() {
        let now = 1_000_000_000;
        assert_eq!(relative(now, now), "just now");
        assert_eq!(relative(now - 42_000, now), "42 s ago");
        assert_eq!(relative(now - 300_000, now), "5 min ago");
        assert_eq!(relative(now - 3 * 3_600_000, now), "3 h ago");
        assert_eq!(relative(now - 2 * 86_400_000, now), "2 d ago");
        assert_eq!(relative(now + 300_000, now), "in 5 min");
    }

    #[test]
    fn access_reads_on_one_line_and_side_by_side() {
        let pro = r#"{"active":true,"plan":"pro","features":["api","sso"],"limits":{"seats":10}}"#;
        let none = r#"{"found":true,"active":false,"plan":null,"features":[],"limits":{}}"#;
        assert_eq!(access_line(Some(pro)), "pro · 2 features · 1 limit");
        assert_eq!(access_line(Some(none)), "no access");
        assert_eq!(access_line(Some(r#"{"found":false}"#)), "user not found");
        assert_eq!(access_line(None), "—");
        let rows = access_diff(Some(pro), Some(none));
        let differing: Vec<&str> = rows
            .iter()
            .filter(|r| r.differs)
            .map(|r| r.field.as_str())
            .collect();
        assert_eq!(
            differing,
            [
                "access",
                "plan",
                "feature api",
                "feature sso",
                "limit seats"
            ]
        );
        assert!(access_diff(Some(pro), Some(pro)).iter().all(|r| !r.differs));
    }
}
