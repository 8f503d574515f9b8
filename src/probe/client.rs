//! The outbound probe client: signs every request, retries transient
//! failures a few times with jittered backoff, and hands strict parsing to
//! `answer`.

use std::time::Duration;

use reqwest::{Method, StatusCode, Url, header, redirect};
use serde_json::{Value, json};
use url::Position;

use super::answer::{self, ListPage, ProbeAnswer};
use super::signature::{SIGNATURE_HEADER, sign, unix_now};
use super::{ProbeError, ProbeTarget};
use crate::access::ObservedAccess;
use crate::backoff::Backoff;
use crate::config::Secret;

const USER_AGENT: &str = concat!("ParityRail/", env!("CARGO_PKG_VERSION"));

/// The most customers one batch probe may carry (SPEC §5).
pub const MAX_BATCH: usize = 500;

/// The largest answer read from the app: a batch of 500 full answers fits
/// many times over; anything bigger is a broken or hostile app.
pub const MAX_ANSWER_BYTES: usize = 8 << 20;

/// Transient failures within one call: two retries after 250 ms and 500 ms
/// (jittered into their upper half); a `Retry-After` over 10 s ends the call.
fn default_retry() -> Backoff {
    Backoff::exponential(Duration::from_millis(250), Duration::from_secs(10))
        .retries(2)
        .jitter(0.5, 1.0)
        .give_up_beyond(Duration::from_secs(10))
}

/// The app probe client; cheap to clone.
#[derive(Clone, Debug)]
pub struct ProbeClient {
    http: reqwest::Client,
    timeout: Duration,
    retry: Backoff,
}

/// One response the caller interprets: any status but 408, 429 and 5xx.
struct Reply {
    status: StatusCode,
    body: Vec<u8>,
}

impl ProbeClient {
    /// A client whose every request (connect to last body byte) must finish
    /// within `timeout`, with the default [`RetryPolicy`].
    pub fn new(timeout: Duration) -> Self {
        crate::install_crypto_provider();
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .timeout(timeout)
            // A redirect would change the signed target; treat it as an answer.
            .redirect(redirect::Policy::none())
            .build()
            .expect("the TLS backend is installed");
        Self {
            http,
            timeout,
            retry: default_retry(),
        }
    }

    /// The same client with another retry policy.
    pub fn with_retry(mut self, retry: Backoff) -> Self {
        self.retry = retry;
        self
    }

    /// Asks the app about one customer. A 404 is `found: false`.
    pub async fn probe(
        &self,
        target: &ProbeTarget,
        customer: &str,
        user: &str,
    ) -> Result<ObservedAccess, ProbeError> {
        Ok(self.probe_answer(target, customer, user).await?.0)
    }

    /// [`probe`](Self::probe), with the HTTP status the app answered (200
    /// or 404) for the evidence.
    pub async fn probe_answer(
        &self,
        target: &ProbeTarget,
        customer: &str,
        user: &str,
    ) -> Result<(ObservedAccess, u16), ProbeError> {
        let url = endpoint(&target.url, None, &[("customer", customer), ("user", user)])?;
        let reply = self.call(Method::GET, &url, &target.secret, None).await?;
        match reply.status {
            StatusCode::OK => Ok((answer::parse_single(&reply.body, customer)?.observed, 200)),
            StatusCode::NOT_FOUND => Ok((ObservedAccess::default(), 404)),
            status => Err(ProbeError::status(status)),
        }
    }

    /// Asks the app about up to [`MAX_BATCH`] `(customer, user)` pairs in one
    /// request. Answers come back in the order asked; a customer the app left
    /// out is `Malformed`. More than [`MAX_BATCH`] is `TooMany`, unsent.
    pub async fn probe_batch(
        &self,
        target: &ProbeTarget,
        pairs: &[(String, String)],
    ) -> Result<Vec<ProbeAnswer>, ProbeError> {
        if pairs.len() > MAX_BATCH {
            return Err(ProbeError::TooMany { count: pairs.len() });
        }
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let url = endpoint(&target.url, Some("batch"), &[])?;
        let customers: Vec<Value> = pairs
            .iter()
            .map(|(customer, user)| json!({ "customer": customer, "user": user }))
            .collect();
        let body = serde_json::to_vec(&json!({ "customers": customers }))
            .expect("JSON of strings serializes");
        let reply = self
            .call(Method::POST, &url, &target.secret, Some(body))
            .await?;
        match reply.status {
            StatusCode::OK => answer::parse_batch(&reply.body, pairs),
            status => Err(ProbeError::status(status)),
        }
    }

    /// One page of the app's optional user listing, from the start when
    /// `cursor` is `None`. `Ok(None)` means the app does not offer `/list`
    /// (it answered 404).
    pub async fn list_page(
        &self,
        target: &ProbeTarget,
        cursor: Option<&str>,
    ) -> Result<Option<ListPage>, ProbeError> {
        let query: Vec<(&str, &str)> = cursor.map(|c| ("cursor", c)).into_iter().collect();
        let url = endpoint(&target.url, Some("list"), &query)?;
        let reply = self.call(Method::GET, &url, &target.secret, None).await?;
        match reply.status {
            StatusCode::OK => answer::parse_list(&reply.body, cursor).map(Some),
            StatusCode::NOT_FOUND => Ok(None),
            status => Err(ProbeError::status(status)),
        }
    }

    /// POSTs `body` to the app's reconcile hook, signed like a probe, and
    /// returns the app's 2xx status. The hook sets access to what is expected,
    /// so a transient failure is retried like a probe.
    pub async fn reconcile(
        &self,
        url: &str,
        secret: &Secret,
        body: &Value,
    ) -> Result<u16, ProbeError> {
        let url = endpoint(url, None, &[])?;
        let body = serde_json::to_vec(body).expect("a JSON value serializes");
        let reply = self.call(Method::POST, &url, secret, Some(body)).await?;
        if reply.status.is_success() {
            Ok(reply.status.as_u16())
        } else {
            Err(ProbeError::status(reply.status))
        }
    }

    /// Sends with retries; transient errors come back only once retries are spent.
    async fn call(
        &self,
        method: Method,
        url: &Url,
        secret: &Secret,
        body: Option<Vec<u8>>,
    ) -> Result<Reply, ProbeError> {
        let mut retry = 0;
        loop {
            let error = match self
                .attempt(method.clone(), url, secret, body.as_deref())
                .await
            {
                Ok(reply) => return Ok(reply),
                Err(e) if !e.is_transient() => return Err(e),
                Err(e) => e,
            };
            let Some(delay) = self.retry.delay(retry, error.retry_after()) else {
                return Err(error);
            };
            tracing::debug!(path = url.path(), %error, ?delay, "probe failed; retrying");
            tokio::time::sleep(delay).await;
            retry += 1;
        }
    }

    async fn attempt(
        &self,
        method: Method,
        url: &Url,
        secret: &Secret,
        body: Option<&[u8]>,
    ) -> Result<Reply, ProbeError> {
        // Re-signed per attempt so a retry after a long Retry-After is fresh.
        let path_and_query = &url[Position::BeforePath..Position::AfterQuery];
        let signature = sign(
            secret.expose(),
            unix_now(),
            path_and_query,
            body.unwrap_or_default(),
        );
        let mut request = self
            .http
            .request(method, url.clone())
            .header(SIGNATURE_HEADER, signature)
            .header(header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        let response = request.send().await.map_err(|e| self.transport(e))?;
        let status = response.status();
        let retryable = matches!(status.as_u16(), 408 | 429) || status.is_server_error();
        if retryable {
            let retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Err(ProbeError::Status {
                status: status.as_u16(),
                retry_after,
            });
        }
        let body = self.read_limited(response).await?;
        Ok(Reply { status, body })
    }

    /// The body, up to [`MAX_ANSWER_BYTES`]: a larger answer is refused
    /// without reading it all.
    async fn read_limited(&self, mut response: reqwest::Response) -> Result<Vec<u8>, ProbeError> {
        let too_large = ProbeError::TooLarge {
            limit: MAX_ANSWER_BYTES,
        };
        if response
            .content_length()
            .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
        {
            return Err(too_large);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport(e))? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(too_large);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn transport(&self, error: reqwest::Error) -> ProbeError {
        if error.is_timeout() {
            ProbeError::Timeout {
                after: self.timeout,
            }
        } else {
            // reqwest quotes the URL, which may carry credentials or a query.
            ProbeError::Transport(error.without_url())
        }
    }
}

/// `base` (+ `/suffix`) with `query` appended, form-encoded by `url`. The
/// signed target is cut from this same `Url`, so it matches the wire byte
/// for byte.
fn endpoint(base: &str, suffix: Option<&str>, query: &[(&str, &str)]) -> Result<Url, ProbeError> {
    let invalid = |reason: &str| ProbeError::InvalidUrl {
        reason: reason.to_string(),
    };
    let mut url = Url::parse(base).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    url.set_fragment(None);
    if let Some(suffix) = suffix {
        url.path_segments_mut()
            .map_err(|()| invalid("the URL cannot have a path"))?
            .pop_if_empty()
            .push(suffix);
    }
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_keep_the_base_and_encode_the_query() {
        let url = endpoint("http://h/app/access/", Some("batch"), &[]).unwrap();
        assert_eq!(url.as_str(), "http://h/app/access/batch");
        let url = endpoint("http://h/a?tenant=1#x", None, &[("user", "a b+c")]).unwrap();
        assert_eq!(&url[Position::BeforePath..], "/a?tenant=1&user=a+b%2Bc");
        assert!(matches!(
            endpoint("ftp://h/a", None, &[]),
            Err(ProbeError::InvalidUrl { .. })
        ));
        assert!(endpoint("not a url", None, &[]).is_err());
    }
}
