//! What a probe never does: read an answer without bound, or quote its URL.

use super::*;

#[tokio::test]
async fn answers_over_the_limit_are_refused_with_or_without_a_length() {
    use axum::body::Body;
    let big = vec![b' '; MAX_ANSWER_BYTES + 1];
    let streamed = big.clone();
    let router = axum::Router::new()
        .route(
            "/sized",
            axum::routing::get(move || async move { big.clone() }),
        )
        .route(
            "/streamed",
            axum::routing::get(move || {
                let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                    streamed.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
                async move { Body::from_stream(futures::stream::iter(chunks)) }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    for path in ["/sized", "/streamed"] {
        let target = ProbeTarget {
            url: format!("{base}{path}"),
            secret: Secret::new(SECRET),
            reconcile_url: None,
        };
        let err = client().probe(&target, "cus_1", "u1").await.unwrap_err();
        assert!(
            matches!(err, ProbeError::TooLarge { .. }),
            "{path}: {err:?}"
        );
        assert!(!err.is_transient());
    }
    server.abort();
}

#[tokio::test]
async fn transport_errors_never_quote_the_url() {
    let target = ProbeTarget {
        url: "http://user:hunter2@127.0.0.1:9/p?token=sekrit".into(),
        secret: Secret::new(SECRET),
        reconcile_url: None,
    };
    let err = client().probe(&target, "cus_1", "u1").await.unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(matches!(err, ProbeError::Transport(_)), "{err:?}");
    assert!(
        !text.contains("hunter2") && !text.contains("sekrit"),
        "{text}"
    );
}
