//! Stripe-shaped handlers for the read endpoints ParityRail calls.

use std::collections::BTreeSet;

use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router, middleware};
use serde_json::{Value, json};

use super::error::ApiError;
use super::query::{ListParams, Params};
use super::{App, gate};
use crate::control::Caller;
use crate::events::type_matches;
use crate::model::{Cursor, Key, StatusFilter, key, page};
use crate::objects::Expand;
use crate::state::Store;

type ApiResult = Result<Json<Value>, ApiError>;

pub(crate) fn router(app: App) -> Router {
    Router::new()
        .route("/v1/account", get(account))
        .route("/v1/customers", get(list_customers))
        .route("/v1/customers/{id}", get(get_customer))
        .route("/v1/subscriptions", get(list_subscriptions))
        .route("/v1/subscriptions/{id}", get(get_subscription))
        .route("/v1/invoices/{id}", get(get_invoice))
        .route("/v1/products/{id}", get(get_product))
        .route("/v1/prices/{id}", get(get_price))
        .route(
            "/v1/entitlements/active_entitlements",
            get(list_entitlements),
        )
        .route("/v1/events", get(list_events))
        .route("/v1/events/{id}", get(get_event))
        .route(
            "/v1/webhook_endpoints",
            get(super::webhook_endpoints::list).post(super::webhook_endpoints::create),
        )
        .route(
            "/v1/webhook_endpoints/{id}",
            get(super::webhook_endpoints::show).delete(super::webhook_endpoints::remove),
        )
        .fallback(unrecognized)
        .method_not_allowed_fallback(unrecognized)
        .layer(middleware::from_fn_with_state(app.clone(), gate))
        .with_state(app)
}

async fn unrecognized(method: Method, uri: Uri) -> Response {
    ApiError::unrecognized_url(method.as_str(), uri.path()).into_response()
}

fn list(url: &str, data: Vec<Value>, has_more: bool) -> Json<Value> {
    Json(json!({ "object": "list", "data": data, "has_more": has_more, "url": url }))
}

/// `Err` with the right 404 unless the caller's key is of the sim's mode.
fn same_mode(
    store: &Store,
    caller: &Caller,
    kind: &str,
    id: &str,
    exists: bool,
) -> Result<(), ApiError> {
    if caller.livemode == store.livemode {
        return Ok(());
    }
    Err(ApiError::no_such(
        kind,
        id,
        exists.then_some(store.livemode),
    ))
}

/// Resolves the list cursor to a key with `find`, or answers 400.
fn cursor(
    lp: &ListParams,
    kind: &str,
    find: impl Fn(&str) -> Option<Key>,
) -> Result<Cursor<Key>, ApiError> {
    let Some((id, param)) = lp.cursor_id() else {
        return Ok(Cursor::Start);
    };
    let k = find(id).ok_or_else(|| ApiError::no_such_param(kind, id, param))?;
    Ok(if lp.starting_after.is_some() {
        Cursor::After(k)
    } else {
        Cursor::Before(k)
    })
}

async fn account(State(app): State<App>, Extension(caller): Extension<Caller>) -> ApiResult {
    let store = app.sim.store();
    if !caller.account_access {
        return Err(ApiError::forbidden(&caller.redacted_key, &store.account_id));
    }
    Ok(Json(store.account_json()))
}

async fn get_customer(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult {
    let store = app.sim.store();
    let found = store.find_customer(&id);
    same_mode(&store, &caller, "customer", &id, found.is_some())?;
    let c = found.ok_or_else(|| ApiError::no_such("customer", &id, None))?;
    Ok(Json(store.customer_json(c)))
}

async fn list_customers(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let params = Params::parse(q.as_deref());
    let lp = ListParams::parse(&params)?;
    let store = app.sim.store();
    let visible = caller.livemode == store.livemode;
    let cursor = cursor(&lp, "customer", |id| {
        let c = store.find_customer(id).filter(|_| visible)?;
        Some(key(store.customers[c as usize].created, c))
    })?;
    if !visible {
        return Ok(list("/v1/customers", Vec::new(), false));
    }
    let email = params.get("email");
    let (keys, has_more) = page(&store.customer_index, cursor, lp.limit, |k| {
        email.is_none_or(|e| store.customers[(k.1).0 as usize].email == e)
    });
    let data = keys.iter().map(|k| store.customer_json((k.1).0)).collect();
    Ok(list("/v1/customers", data, has_more))
}

async fn get_subscription(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let params = Params::parse(q.as_deref());
    let store = app.sim.store();
    let found = store.find_sub(&id);
    same_mode(&store, &caller, "subscription", &id, found.is_some())?;
    let s = found.ok_or_else(|| ApiError::no_such("subscription", &id, None))?;
    Ok(Json(store.subscription_json(
        s,
        Expand::parse(params.all("expand"), false),
    )))
}

async fn list_subscriptions(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let params = Params::parse(q.as_deref());
    let lp = ListParams::parse(&params)?;
    let filter = StatusFilter::parse(params.get("status")).ok_or_else(|| {
        ApiError::invalid(
            "Invalid status: must be one of active, past_due, unpaid, canceled, incomplete, \
             incomplete_expired, trialing, paused, all, or ended",
            "status",
        )
    })?;
    let expand = Expand::parse(params.all("expand"), true);
    // Stripe filters subscription lists by `created` too; a scanner uses it
    // to page disjoint time ranges in parallel.
    let created = created_filter(&params)?;
    let store = app.sim.store();
    let visible = caller.livemode == store.livemode;
    let customer = match params.get("customer") {
        None => None,
        Some(id) => Some(
            store
                .find_customer(id)
                .filter(|_| visible)
                .ok_or_else(|| ApiError::no_such_param("customer", id, "customer"))?,
        ),
    };
    let cursor = cursor(&lp, "subscription", |id| {
        let s = store.find_sub(id).filter(|_| visible)?;
        Some(key(store.subs[s as usize].created, s))
    })?;
    if !visible {
        return Ok(list("/v1/subscriptions", Vec::new(), false));
    }
    let (keys, has_more) = match customer {
        // A customer's subscriptions are few; index them on the fly.
        Some(c) => {
            let own: BTreeSet<Key> = store.customers[c as usize]
                .subs
                .iter()
                .map(|&s| (s, &store.subs[s as usize]))
                .filter(|(_, sub)| filter.matches(sub.status))
                .filter(|(_, sub)| created(sub.created))
                .map(|(s, sub)| key(sub.created, s))
                .collect();
            page(&own, cursor, lp.limit, |_| true)
        }
        None => match (created_range(&params), cursor) {
            // Like Stripe's own index: a `created` range starts and stops on
            // the ordered keys instead of walking the whole list.
            (Some((gte, lt)), Cursor::Start | Cursor::After(_)) => ranged_page(
                store.sub_index.for_filter(filter),
                cursor,
                lp.limit,
                gte,
                lt,
            ),
            _ => page(store.sub_index.for_filter(filter), cursor, lp.limit, |k| {
                created((k.0).0)
            }),
        },
    };
    let data = keys
        .iter()
        .map(|k| store.subscription_json((k.1).0, expand))
        .collect();
    Ok(list("/v1/subscriptions", data, has_more))
}

async fn get_invoice(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult {
    let store = app.sim.store();
    let found = store.find_invoice(&id);
    same_mode(&store, &caller, "invoice", &id, found.is_some())?;
    let i = found.ok_or_else(|| ApiError::no_such("invoice", &id, None))?;
    Ok(Json(store.invoice_json(i)))
}

async fn get_product(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult {
    let store = app.sim.store();
    let found = store.find_product(&id);
    same_mode(&store, &caller, "product", &id, found.is_some())?;
    let p = found.ok_or_else(|| ApiError::no_such("product", &id, None))?;
    Ok(Json(store.product_json(p)))
}

async fn get_price(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult {
    let store = app.sim.store();
    let found = store.find_price(&id);
    same_mode(&store, &caller, "price", &id, found.is_some())?;
    let p = found.ok_or_else(|| ApiError::no_such("price", &id, None))?;
    Ok(Json(store.price_json(p, false)))
}

async fn list_entitlements(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let params = Params::parse(q.as_deref());
    let lp = ListParams::parse(&params)?;
    let id = params
        .get("customer")
        .ok_or_else(|| ApiError::invalid("Missing required param: customer.", "customer"))?;
    let store = app.sim.store();
    let c = store
        .find_customer(id)
        .filter(|_| caller.livemode == store.livemode)
        .ok_or_else(|| ApiError::no_such_param("customer", id, "customer"))?;
    let all = store.active_entitlements(c);
    let (start, end) = match lp.cursor_id() {
        None => (0, all.len().min(lp.limit)),
        Some((cursor_id, param)) => {
            let position = store
                .find_entitlement(cursor_id)
                .filter(|&(owner, _)| owner == c)
                .and_then(|(_, f)| all.iter().position(|(feature, _)| *feature == f))
                .ok_or_else(|| ApiError::no_such_param("active entitlement", cursor_id, param))?;
            if lp.starting_after.is_some() {
                (position + 1, (position + 1 + lp.limit).min(all.len()))
            } else {
                (position.saturating_sub(lp.limit), position)
            }
        }
    };
    let has_more = if lp.ending_before.is_some() {
        start > 0
    } else {
        end < all.len()
    };
    let data = all[start..end].iter().map(|(_, v)| v.clone()).collect();
    Ok(list("/v1/entitlements/active_entitlements", data, has_more))
}

async fn get_event(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult {
    let store = app.sim.store();
    let found = store.find_event(&id);
    same_mode(&store, &caller, "event", &id, found.is_some())?;
    let e = found.ok_or_else(|| ApiError::no_such("event", &id, None))?;
    Ok(Json(store.events[e as usize].json.clone()))
}

/// `created[gte]` / `created[lt]` as a half-open range, when those are the
/// only `created` filters given.
fn created_range(params: &Params) -> Option<(Option<i64>, Option<i64>)> {
    if ["created", "created[gt]", "created[lte]"]
        .iter()
        .any(|n| params.get(n).is_some())
    {
        return None;
    }
    let gte = params.get("created[gte]").and_then(|v| v.parse().ok());
    let lt = params.get("created[lt]").and_then(|v| v.parse().ok());
    (gte.is_some() || lt.is_some()).then_some((gte, lt))
}

/// One newest-first page inside `[gte, lt)`, touching only keys in range.
fn ranged_page(
    set: &BTreeSet<Key>,
    cursor: Cursor<Key>,
    limit: usize,
    gte: Option<i64>,
    lt: Option<i64>,
) -> (Vec<Key>, bool) {
    use std::ops::Bound;
    // Keys run newest first; key(lt, 0) is the last key created at `lt`.
    let start = match (cursor, lt) {
        (Cursor::After(c), _) => Bound::Excluded(c),
        (_, Some(lt)) => Bound::Excluded(key(lt, 0)),
        _ => Bound::Unbounded,
    };
    let mut found: Vec<Key> = set
        .range((start, Bound::Unbounded))
        .filter(|k| lt.is_none_or(|lt| (k.0).0 < lt))
        .take_while(|k| gte.is_none_or(|g| (k.0).0 >= g))
        .take(limit + 1)
        .copied()
        .collect();
    let has_more = found.len() > limit;
    found.truncate(limit);
    (found, has_more)
}

/// `created` filters: `created=N` or `created[gt|gte|lt|lte]=N`.
fn created_filter(params: &Params) -> Result<impl Fn(i64) -> bool, ApiError> {
    let mut bounds: Vec<(&str, i64)> = Vec::new();
    for op in ["", "[gt]", "[gte]", "[lt]", "[lte]"] {
        let name = format!("created{op}");
        if let Some(text) = params.get(&name) {
            let n = text
                .parse::<i64>()
                .map_err(|_| ApiError::invalid(format!("Invalid integer: {text}"), &name))?;
            bounds.push((op, n));
        }
    }
    Ok(move |t: i64| {
        bounds.iter().all(|&(op, n)| match op {
            "[gt]" => t > n,
            "[gte]" => t >= n,
            "[lt]" => t < n,
            "[lte]" => t <= n,
            _ => t == n,
        })
    })
}

async fn list_events(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let params = Params::parse(q.as_deref());
    let lp = ListParams::parse(&params)?;
    let created = created_filter(&params)?;
    let mut types: Vec<&str> = params.all("types").collect();
    types.extend(params.get("type"));
    let store = app.sim.store();
    let visible = caller.livemode == store.livemode;
    let cursor = cursor(&lp, "event", |id| {
        let e = store.find_event(id).filter(|_| visible)?;
        let created = store.events[e as usize].json["created"].as_i64()?;
        Some(key(created, e))
    })?;
    if !visible {
        return Ok(list("/v1/events", Vec::new(), false));
    }
    let (keys, has_more) = page(&store.event_index, cursor, lp.limit, |k| {
        let kind = &store.events[(k.1).0 as usize].kind;
        created((k.0).0) && (types.is_empty() || types.iter().any(|t| type_matches(t, kind)))
    });
    let data = keys
        .iter()
        .map(|k| store.events[(k.1).0 as usize].json.clone())
        .collect();
    Ok(list("/v1/events", data, has_more))
}
