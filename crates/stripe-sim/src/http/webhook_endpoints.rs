//! `/v1/webhook_endpoints`: create (the secret is returned once), list,
//! retrieve and delete, with form-encoded bodies like Stripe's.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, State};
use serde_json::{Value, json};

use super::App;
use super::error::ApiError;
use super::query::{ListParams, Params};
use crate::control::Caller;

type ApiResult = Result<Json<Value>, ApiError>;

fn visible(app: &App, caller: &Caller) -> bool {
    caller.livemode == app.sim.store().livemode
}

pub(crate) async fn create(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult {
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::invalid("the body is not form-encoded text", "url"))?;
    let params = Params::parse(Some(text));
    let url = params
        .get("url")
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ApiError::invalid("Missing required param: url.", "url"))?;
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(ApiError::invalid(
            "Invalid URL: URL must be publicly accessible with a valid scheme (http or https).",
            "url",
        ));
    }
    let enabled: Vec<String> = params.all("enabled_events").map(str::to_owned).collect();
    if enabled.is_empty() {
        return Err(ApiError::invalid(
            "Missing required param: enabled_events.",
            "enabled_events",
        ));
    }
    if !visible(&app, &caller) {
        return Err(ApiError::invalid(
            "This key cannot create endpoints in the account's mode.",
            "url",
        ));
    }
    let secret = format!("whsec_{}", crate::ids::random(32));
    let mut store = app.sim.store_mut();
    let id = store.add_endpoint(url, &secret, enabled);
    let livemode = store.livemode;
    let endpoint = store
        .endpoints
        .iter()
        .find(|e| e.id == id)
        .expect("just added");
    Ok(Json(endpoint.json(livemode, true)))
}

pub(crate) async fn list(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let lp = ListParams::parse(&Params::parse(q.as_deref()))?;
    let store = app.sim.store();
    // Newest first, as Stripe lists.
    let all: Vec<_> = if caller.livemode == store.livemode {
        store
            .endpoints
            .iter()
            .rev()
            .filter(|e| !e.deleted)
            .collect()
    } else {
        Vec::new()
    };
    let at = |id: &str, param: &str| {
        all.iter()
            .position(|e| e.id == id)
            .ok_or_else(|| ApiError::no_such_param("webhook_endpoint", id, param))
    };
    let (from, to) = match lp.cursor_id() {
        Some((id, "starting_after")) => {
            let after = at(id, "starting_after")? + 1;
            (after, (after + lp.limit).min(all.len()))
        }
        Some((id, param)) => {
            let before = at(id, param)?;
            (before.saturating_sub(lp.limit), before)
        }
        None => (0, lp.limit.min(all.len())),
    };
    let has_more = match lp.cursor_id() {
        Some((_, "ending_before")) => from > 0,
        _ => to < all.len(),
    };
    let data: Vec<Value> = all[from..to]
        .iter()
        .map(|e| e.json(store.livemode, false))
        .collect();
    Ok(Json(
        json!({"object": "list", "data": data, "has_more": has_more, "url": "/v1/webhook_endpoints"}),
    ))
}

pub(crate) async fn show(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult {
    let store = app.sim.store();
    store
        .endpoints
        .iter()
        .find(|e| e.id == id && !e.deleted && caller.livemode == store.livemode)
        .map(|e| Json(e.json(store.livemode, false)))
        .ok_or_else(|| ApiError::no_such("webhook_endpoint", &id, None))
}

pub(crate) async fn remove(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult {
    let mut store = app.sim.store_mut();
    let mode_ok = caller.livemode == store.livemode;
    let endpoint = store
        .endpoints
        .iter_mut()
        .find(|e| e.id == id && !e.deleted && mode_ok)
        .ok_or_else(|| ApiError::no_such("webhook_endpoint", &id, None))?;
    endpoint.deleted = true;
    // Deliveries not yet sent to it are dropped, as Stripe stops sending.
    let slot = store
        .endpoints
        .iter()
        .position(|e| e.id == id)
        .expect("found");
    store.outbox.retain(|(_, e)| *e != slot);
    Ok(Json(
        json!({"id": id, "object": "webhook_endpoint", "deleted": true}),
    ))
}
