//! Onboarding step 2 over real HTTP against the Stripe simulator (issue 8):
//! "Test & connect" checks the key with Stripe, the "Stripe connected" card
//! survives a reconnect, signing secrets are added and removed, the
//! "Webhook endpoint" block names the full URL, and every bad input comes
//! back next to its field with the stored connection unchanged.

use parityrail::{domain::Role, usecase::connection};
use reqwest::StatusCode;

use crate::{
    dashboard::{Dash, PASSWORD, member},
    support::{Backend, TEST_KEY},
    world::{Options, World, world},
};

crate::backend_tests!(
    test_and_connect_checks_the_key_and_the_card_survives_a_reconnect,
    bad_keys_and_secrets_come_back_beside_their_field_and_change_nothing,
    signing_secrets_are_added_and_the_last_is_removed_only_when_forced,
    viewers_see_the_connection_but_no_secret_form_and_forged_posts_are_403,
);

/// What is stored for the world's project: key's last 4, account,
/// connected-at and the signing secrets' last 4.
async fn stored(w: &World) -> (String, Option<String>, i64, Vec<String>) {
    let project = w.t.project_of(&w.project).await;
    let c = connection::connection(&w.t.app, &project)
        .await
        .unwrap()
        .expect("a connection");
    (
        c.api_key_last4,
        c.account_id,
        c.connected_at,
        c.webhook_secrets.into_iter().map(|s| s.last4).collect(),
    )
}

async fn admin(w: &World) -> Dash {
    member(w, "ada@example.com", Role::Admin).await;
    let mut d = Dash::new(&w.t);
    d.sign_in("ada@example.com", PASSWORD).await;
    d
}

fn step2(w: &World) -> String {
    format!("/projects/{}/onboarding/stripe", w.project)
}

async fn test_and_connect_checks_the_key_and_the_card_survives_a_reconnect(backend: Backend) {
    let Some(w) = world(backend, Options::default()).await else {
        return;
    };
    let mut d = admin(&w).await;
    let page = d.get(&step2(&w)).await;
    assert_eq!(page.status, StatusCode::OK);
    // The world connected without a Stripe check: the card is there.
    assert!(page.body.contains("Stripe connected"), "{}", page.body);
    assert!(page.body.contains("Reconnect"));
    assert!(page.body.contains("Webhook signing secret (optional)"));
    assert!(page.body.contains("Test &#38; connect") || page.body.contains("Test &amp; connect"));
    // The "Webhook endpoint" block: the full URL, a copy control, the
    // seven event types and the Stripe CLI command.
    let endpoint = format!("http://127.0.0.1:8080/api/webhooks/stripe/{}", w.project);
    assert!(
        page.body
            .contains(&format!("<code id=\"endpoint-url\">{endpoint}</code>")),
        "{}",
        page.body
    );
    assert!(page.body.contains(&format!("data-copy=\"{endpoint}\"")));
    assert!(page.body.contains(">Copy</button>"));
    for t in parityrail::stripe::event::HANDLED_TYPES {
        assert!(page.body.contains(&format!("<code>{t}</code>")), "{t}");
    }
    assert!(
        page.body
            .contains(&format!("stripe listen --forward-to {endpoint}"))
    );
    assert!(
        page.body.contains("Stripe cannot reach it"),
        "127.0.0.1 is flagged as unreachable"
    );

    // Reconnect with a second key Stripe knows, and a second secret.
    let key = "sk_test_second_parityrail_key_4242";
    w.sim.add_api_key(key);
    let before = stored(&w).await;
    let done = d
        .post(
            &step2(&w),
            &[
                ("api_key", key),
                ("webhook_secret", "whsec_second_secret_for_reconnect_9876"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location(), format!("{}?done=connected", step2(&w)));
    let (last4, account, _, secrets) = stored(&w).await;
    assert_eq!(last4, "4242");
    assert_eq!(account.as_deref(), Some(w.sim.account_id().as_str()));
    assert_eq!(secrets.len(), before.3.len() + 1, "the old secret stays");

    let card = d.get(&format!("{}?done=connected", step2(&w))).await;
    assert!(card.body.contains("Stripe connected."), "the notice");
    assert!(card.body.contains("id=\"stripe-connected\""));
    assert!(card.body.contains("<code>…4242</code>"));
    assert!(card.body.contains(&w.sim.account_id()));
    assert!(card.body.contains("<dd>test</dd>"), "the mode");
    assert!(card.body.contains("whsec_…9876"));
    assert!(card.body.contains("Reconnect"), "the card survives");
    assert!(
        !card.body.contains("second_parityrail_key"),
        "no secret on the page"
    );
    assert!(
        !card.body.contains("second_secret_for"),
        "no secret on the page"
    );
}

async fn bad_keys_and_secrets_come_back_beside_their_field_and_change_nothing(backend: Backend) {
    let Some(w) = world(backend, Options::default()).await else {
        return;
    };
    let mut d = admin(&w).await;
    let before = stored(&w).await;
    w.sim.add_api_key("sk_live_the_other_mode_key_1111");
    let cases: [(&str, &str, &str, &str); 5] = [
        (
            "pk_test_publishable_1234",
            "",
            "api_key",
            "must be a secret",
        ),
        ("", "", "api_key", "must be a secret"),
        (
            TEST_KEY,
            "not_a_signing_secret",
            "webhook_secret",
            "must start with whsec_",
        ),
        (
            "sk_test_stripe_never_issued_this_0000",
            "",
            "api_key",
            "Stripe did not accept this key: Stripe answered 401: Invalid API Key provided",
        ),
        (
            "sk_live_the_other_mode_key_1111",
            "",
            "api_key",
            "this is a live-mode key, but the project is a test-mode project",
        ),
    ];
    for (key, secret, field, message) in cases {
        let page = d
            .post(&step2(&w), &[("api_key", key), ("webhook_secret", secret)])
            .await;
        assert_eq!(
            page.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{key}: {}",
            page.body
        );
        assert!(page.body.contains(message), "{key}: {}", page.body);
        // The message sits right after its field: no other input between.
        let at = page.body.find(&format!("id=\"{field}\"")).expect(field);
        let rest = &page.body[at..];
        let error = rest.find("class=\"field-error\"").expect("a field error");
        assert!(
            rest[..error].matches("<input").count() == 0,
            "{key}: the message follows the {field} field"
        );
        assert!(page.body.contains(" open>"), "Reconnect stays open");
        assert_eq!(stored(&w).await, before, "{key}: the old connection stays");
    }
    // Stripe's reason reaches the page without the key it was given.
    let rejected = d
        .post(
            &step2(&w),
            &[("api_key", "sk_test_stripe_never_issued_this_0000")],
        )
        .await;
    assert!(!rejected.body.contains("never_issued"), "{}", rejected.body);
}

async fn signing_secrets_are_added_and_the_last_is_removed_only_when_forced(backend: Backend) {
    let Some(w) = world(backend, Options::default()).await else {
        return;
    };
    let mut d = admin(&w).await;
    let secrets = format!("{}/secrets", step2(&w));
    let bad = d.post(&secrets, &[("secret", "sk_test_wrong_field")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("must start with whsec_"));
    assert_eq!(stored(&w).await.3.len(), 1, "nothing added");

    let added = d
        .post(
            &secrets,
            &[("secret", "whsec_rolled_secret_for_tests_5555")],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    let page = d.get(&format!("{}?done=secret", step2(&w))).await;
    assert!(page.body.contains("Signing secret added."));
    assert!(page.body.contains("whsec_…5555"));
    assert!(page.body.contains("never"), "not matched yet");

    let project = w.t.project_of(&w.project).await;
    let ids: Vec<String> = connection::connection(&w.t.app, &project)
        .await
        .unwrap()
        .unwrap()
        .webhook_secrets
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids.len(), 2);
    let remove = |id: &str| format!("{secrets}/{id}/remove");
    let first = d.post(&remove(&ids[0]), &[]).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.body);
    assert_eq!(stored(&w).await.3, vec!["5555".to_string()]);

    let page = d.get(&step2(&w)).await;
    assert!(page.body.contains("it is the last one: remove anyway"));
    let last = d.post(&remove(&ids[1]), &[]).await;
    assert_eq!(last.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(last.body.contains("last signing secret"), "{}", last.body);
    assert_eq!(stored(&w).await.3.len(), 1, "the last one stays");
    let missing = d.post(&remove("whs_999999"), &[("force", "1")]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let forced = d.post(&remove(&ids[1]), &[("force", "1")]).await;
    assert_eq!(forced.status, StatusCode::SEE_OTHER);
    assert!(stored(&w).await.3.is_empty());
    let page = d.get(&step2(&w)).await;
    assert!(page.body.contains("every webhook is refused"));
}

async fn viewers_see_the_connection_but_no_secret_form_and_forged_posts_are_403(backend: Backend) {
    let Some(w) = world(backend, Options::default()).await else {
        return;
    };
    member(&w, "vera@example.com", Role::Viewer).await;
    let mut d = Dash::new(&w.t);
    d.sign_in("vera@example.com", PASSWORD).await;
    let page = d.get(&step2(&w)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Stripe connected"));
    assert!(page.body.contains("id=\"endpoint-url\""));
    for form in [
        "id=\"connect-form\"",
        "name=\"secret\"",
        "/remove\"",
        "Reconnect",
    ] {
        assert!(!page.body.contains(form), "a viewer sees no {form}");
    }
    let before = stored(&w).await;
    let key = "sk_test_second_parityrail_key_4242";
    w.sim.add_api_key(key);
    let secrets = format!("{}/secrets", step2(&w));
    let forged = [
        d.post(&step2(&w), &[("api_key", key)]).await,
        d.post(&secrets, &[("secret", "whsec_viewer_forged_secret_0000")])
            .await,
        d.post(&format!("{secrets}/whs_1/remove"), &[("force", "1")])
            .await,
    ];
    for page in forged {
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
        assert!(page.body.contains("a viewer may not"), "{}", page.body);
    }
    assert_eq!(stored(&w).await, before, "nothing changed");
}
