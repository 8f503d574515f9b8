//! Stripe-shaped API errors: the one `IntoResponse` for failures.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

/// An error answered as `{"error": {type, code?, message, param?, doc_url?}}`.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    status: StatusCode,
    kind: &'static str,
    code: Option<&'static str>,
    message: String,
    param: Option<String>,
    doc_url: Option<&'static str>,
    retry_after: Option<u64>,
}

const INVALID: &str = "invalid_request_error";

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: String) -> ApiError {
        ApiError {
            status,
            kind,
            code: None,
            message,
            param: None,
            doc_url: None,
            retry_after: None,
        }
    }

    fn code(mut self, code: &'static str, doc_url: &'static str) -> ApiError {
        self.code = Some(code);
        self.doc_url = Some(doc_url);
        self
    }

    fn param(mut self, param: &str) -> ApiError {
        self.param = Some(param.to_owned());
        self
    }

    /// 400 for a malformed or invalid parameter.
    pub(crate) fn invalid(message: impl Into<String>, param: &str) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, INVALID, message.into()).param(param)
    }

    /// 400 for a parameter naming an object that does not exist.
    pub(crate) fn no_such_param(kind: &str, id: &str, param: &str) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            INVALID,
            format!("No such {kind}: '{id}'"),
        )
        .code(
            "resource_missing",
            "https://stripe.com/docs/error-codes/resource-missing",
        )
        .param(param)
    }

    /// 404 for a path id that does not exist; `other_mode` names the mode
    /// the object lives in when the key was of the other mode, as Stripe's
    /// message does.
    pub(crate) fn no_such(kind: &str, id: &str, other_mode: Option<bool>) -> ApiError {
        let message = match other_mode {
            None => format!("No such {kind}: '{id}'"),
            Some(object_live) => {
                let (object_mode, key_mode) = if object_live {
                    ("live", "test")
                } else {
                    ("test", "live")
                };
                format!(
                    "No such {kind}: '{id}'; a similar object exists in {object_mode} mode, \
                     but a {key_mode} mode key was used to make this request."
                )
            }
        };
        ApiError::new(StatusCode::NOT_FOUND, INVALID, message)
            .code(
                "resource_missing",
                "https://stripe.com/docs/error-codes/resource-missing",
            )
            .param("id")
    }

    pub(crate) fn unrecognized_url(method: &str, path: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            INVALID,
            format!(
                "Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs \
                 or we can help at https://support.stripe.com/."
            ),
        )
    }

    pub(crate) fn no_key() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            INVALID,
            "You did not provide an API key. You need to provide your API key in the Authorization \
             header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See \
             https://stripe.com/docs/api#authentication for details, or we can help at \
             https://support.stripe.com/."
                .to_owned(),
        )
    }

    pub(crate) fn invalid_key(redacted: &str) -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            INVALID,
            format!("Invalid API Key provided: {redacted}"),
        )
    }

    pub(crate) fn expired_key(redacted: &str) -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            INVALID,
            format!("Expired API Key provided: {redacted}. Platform access may have been revoked."),
        )
        .code(
            "api_key_expired",
            "https://stripe.com/docs/error-codes/api-key-expired",
        )
    }

    pub(crate) fn forbidden(redacted: &str, account: &str) -> ApiError {
        ApiError::lacks_permission(redacted, account, "rak_accounts_kyc_basic_read")
    }

    /// Stripe's answer to a restricted key without `permission`.
    pub(crate) fn lacks_permission(redacted: &str, account: &str, permission: &str) -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            INVALID,
            format!(
                "The provided key '{redacted}' does not have the required permissions for this \
                 endpoint on account '{account}'. Having the '{permission}' permission would allow \
                 this request to continue."
            ),
        )
    }

    pub(crate) fn rate_limited(retry_after: u64) -> ApiError {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            INVALID,
            "Request rate limit exceeded. Learn more about rate limits here \
             https://stripe.com/docs/rate-limits."
                .to_owned(),
        )
        .code(
            "rate_limit",
            "https://stripe.com/docs/error-codes/rate-limit",
        );
        e.retry_after = Some(retry_after.max(1));
        e
    }

    /// Verbatim message of Stripe's lock timeout (see
    /// `api-responses/error.lock_timeout.429.json`).
    pub(crate) fn lock_timeout() -> ApiError {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            INVALID,
            "This object cannot be accessed right now because another API request or Stripe \
             process is currently accessing it. If you see this error intermittently, retry the \
             request. If you see this error frequently and are making multiple concurrent \
             requests to a single object, make your requests serially or at a lower rate."
                .to_owned(),
        )
        .code(
            "lock_timeout",
            "https://stripe.com/docs/error-codes/lock-timeout",
        )
    }

    pub(crate) fn server_error() -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "Sorry, something went wrong. We've already been notified of the problem, but if you \
             need any help, you can reach us at support.stripe.com/contact."
                .to_owned(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = Map::new();
        error.insert("type".into(), self.kind.into());
        error.insert("message".into(), self.message.into());
        if let Some(code) = self.code {
            error.insert("code".into(), code.into());
        }
        if let Some(param) = self.param {
            error.insert("param".into(), param.into());
        }
        if let Some(doc_url) = self.doc_url {
            error.insert("doc_url".into(), doc_url.into());
        }
        let body = Value::Object(Map::from_iter([("error".to_owned(), Value::Object(error))]));
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
