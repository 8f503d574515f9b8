//! Members and API tokens over real HTTP (issue 8): an admin invites by
//! creating a user with a role, changes roles (the last admin stays), and
//! creates a token shown once and revokes it; bad input comes back beside
//! its field and changes nothing; viewers get 403 and change nothing.

use parityrail::domain::Role;
use reqwest::StatusCode;

use crate::{
    dashboard::{Dash, PASSWORD, Page, member},
    support::Backend,
    world::{Options, World, world},
};

crate::backend_tests!(
    admins_invite_members_and_change_roles_but_never_remove_the_last_admin,
    bad_invites_come_back_beside_their_field_and_create_no_user,
    tokens_are_shown_once_work_on_the_api_and_stop_working_when_revoked,
    viewers_get_403_on_members_and_tokens_and_change_nothing,
);

async fn admin(w: &World) -> Dash {
    member(w, "ada@example.com", Role::Admin).await;
    let mut d = Dash::new(&w.t);
    d.sign_in("ada@example.com", PASSWORD).await;
    d
}

fn members(w: &World) -> String {
    format!("/projects/{}/members", w.project)
}

/// The value a page shows once.
fn shown_once(page: &Page) -> String {
    let at = page
        .body
        .find("id=\"once-value\">")
        .expect("a value shown once")
        + "id=\"once-value\">".len();
    page.body[at..].split('<').next().unwrap().to_string()
}

async fn roles(w: &World) -> Vec<(String, Role)> {
    let project = w.t.project_of(&w.project).await;
    parityrail::usecase::members::members(&w.t.app, &project)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.user.email, m.role))
        .collect()
}

fn role_of(roles: &[(String, Role)], email: &str) -> Role {
    roles.iter().find(|r| r.0 == email).unwrap().1
}

async fn user_id(w: &World, email: &str) -> String {
    let project = w.t.project_of(&w.project).await;
    parityrail::usecase::members::members(&w.t.app, &project)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.user.email == email)
        .unwrap()
        .user
        .id
}

async fn admins_invite_members_and_change_roles_but_never_remove_the_last_admin(backend: Backend) {
    let Some(w) = world(backend, Options::default()).await else {
        return;
    };
    let mut d = admin(&w).await;
    let page = d.get(&members(&w)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains("ada@example.com <span class=\"muted\">(you)</span>")
    );

    // A blank password is generated and shown once; it signs in.
    let invited = d
        .post(
            &members(&w),
            &[
                ("email", "Bob@Example.com"),
                ("password", ""),
                ("role", "viewer"),
            ],
        )
        .await;
    assert_eq!(invited.status, StatusCode::CREATED, "{}", invited.body);
    assert!(
        invited
            .body
            .contains("bob@example.com can now sign in as viewer.")
    );
    let password = shown_once(&invited);
    assert!(password.len() >= 12);
    let mut bob = Dash::new(&w.t);
    // (sign_in asserts the 303 of a good sign-in.)
    let home = bob.sign_in("bob@example.com", &password).await;
    assert!(home.body.contains("bob@example.com"));
    assert!(
        !d.get(&members(&w)).await.body.contains(&password),
        "shown once"
    );
    // A typed password works too.
    let typed = d
        .post(
            &members(&w),
            &[
                ("email", "cy@example.com"),
                ("password", PASSWORD),
                ("role", "admin"),
            ],
        )
        .await;
    assert_eq!(typed.status, StatusCode::CREATED);
    assert!(!typed.body.contains("id=\"shown-once\""));
    assert_eq!(role_of(&roles(&w).await, "cy@example.com"), Role::Admin);

    let bob_id = user_id(&w, "bob@example.com").await;
    let promote = format!("{}/{bob_id}/role", members(&w));
    let changed = d.post(&promote, &[("role", "admin")]).await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER);
    assert_eq!(role_of(&roles(&w).await, "bob@example.com"), Role::Admin);
    let bad_role = d.post(&promote, &[("role", "owner")]).await;
    assert_eq!(bad_role.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad_role.body.contains("choose a role: admin or viewer"));
    assert_eq!(role_of(&roles(&w).await, "bob@example.com"), Role::Admin);

    // Demote everyone else; the last admin cannot demote themselves.
    for email in ["bob@example.com", "cy@example.com"] {
        let id = user_id(&w, email).await;
        let to = format!("{}/{id}/role", members(&w));
        assert_eq!(
            d.post(&to, &[("role", "viewer")]).await.status,
            StatusCode::SEE_OTHER
        );
    }
    let ada = user_id(&w, "ada@example.com").await;
    let last = d
        .post(
            &format!("{}/{ada}/role", members(&w)),
            &[("role", "viewer")],
        )
        .await;
    assert_eq!(last.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(last.body.contains("last admin"), "{}", last.body);
    assert_eq!(role_of(&roles(&w).await, "ada@example.com"), Role::Admin);
    let nobody = d
        .post(
            &format!("{}/usr_nosuchuser/role", members(&w)),
            &[("role", "viewer")],
        )
        .await;
    assert_eq!(nobody.status, StatusCode::NOT_FOUND);
}

async fn bad_invites_come_back_beside_their_field_and_create_no_user(backend: Backend) {
    let Some(w) = world(backend, Options::default()).await else {
        return;
    };
    let mut d = admin(&w).await;
    member(&w, "taken@example.com", Role::Viewer).await;
    let before = w.t.store().user_count().await.unwrap();
    let cases: [(&str, &str, &str, &str, &str); 4] = [
        (
            "taken@example.com",
            PASSWORD,
            "viewer",
            "email",
            "already exists",
        ),
        (
            "not-an-email",
            PASSWORD,
            "viewer",
            "email",
            "is not an email address",
        ),
        (
            "new@example.com",
            "short",
            "viewer",
            "password",
            "at least 12 characters",
        ),
        (
            "new@example.com",
            PASSWORD,
            "owner",
            "role",
            "choose a role",
        ),
    ];
    for (email, password, role, field, message) in cases {
        let page = d
            .post(
                &members(&w),
                &[("email", email), ("password", password), ("role", role)],
            )
            .await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{email}");
        assert!(page.body.contains(message), "{email}: {}", page.body);
        if field != "role" {
            let at = page.body.find(&format!("id=\"{field}\"")).unwrap();
            let error = page.body[at..].find("field-error").expect("a field error");
            assert!(
                !page.body[at..at + error].contains("<input"),
                "{email}: beside {field}"
            );
        }
        assert!(
            page.body.contains(&format!("value=\"{email}\"")),
            "kept in the form"
        );
        assert!(
            !page.body.contains(password) || password == "short",
            "no password echoed"
        );
        assert_eq!(
            w.t.store().user_count().await.unwrap(),
            before,
            "{email}: no user"
        );
    }
}

async fn tokens_are_shown_once_work_on_the_api_and_stop_working_when_revoked(backend: Backend) {
    let Some(w) = world(backend, Options::default()).await else {
        return;
    };
    let mut d = admin(&w).await;
    let tokens = format!("/projects/{}/tokens", w.project);
    let count = || async {
        let project = w.t.project_of(&w.project).await;
        parityrail::usecase::tokens::list(&w.t.app, &project)
            .await
            .unwrap()
            .len()
    };
    let before = count().await;
    let bad = d.post(&tokens, &[("role", "root")]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("choose a role"));
    assert_eq!(count().await, before, "no token");

    let created = d.post(&tokens, &[("role", "viewer")]).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let token = shown_once(&created);
    assert!(token.starts_with("prt_"), "{token}");
    assert!(created.body.contains("it is not shown again"));
    assert_eq!(count().await, before + 1);
    let again = d.get(&members(&w)).await;
    assert!(!again.body.contains(&token), "shown once only");

    let http = reqwest::Client::new();
    let api = w.t.url(&format!("/api/v1/projects/{}/events", w.project));
    let call = || http.get(&api).bearer_auth(&token).send();
    assert_eq!(call().await.unwrap().status(), StatusCode::OK);

    let project = w.t.project_of(&w.project).await;
    let id = parityrail::usecase::tokens::list(&w.t.app, &project)
        .await
        .unwrap()
        .into_iter()
        .last()
        .unwrap()
        .id;
    let revoked = d.post(&format!("{tokens}/{id}/revoke"), &[]).await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    assert_eq!(call().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let page = d.get(revoked.location()).await;
    assert!(page.body.contains("Token revoked"));
    assert!(page.body.contains("st-dead\">revoked"));
    let unknown = d
        .post(&format!("{tokens}/tok_nosuchtoken/revoke"), &[])
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

async fn viewers_get_403_on_members_and_tokens_and_change_nothing(backend: Backend) {
    let Some(w) = world(backend, Options::default()).await else {
        return;
    };
    member(&w, "vera@example.com", Role::Viewer).await;
    let mut d = Dash::new(&w.t);
    d.sign_in("vera@example.com", PASSWORD).await;
    let overview = d.get(&format!("/projects/{}", w.project)).await;
    assert!(
        !overview.body.contains("/members\""),
        "no Members tab for a viewer"
    );
    assert_eq!(d.get(&members(&w)).await.status, StatusCode::FORBIDDEN);
    let users = w.t.store().user_count().await.unwrap();
    let invite = d
        .post(
            &members(&w),
            &[
                ("email", "mallory@example.com"),
                ("password", PASSWORD),
                ("role", "admin"),
            ],
        )
        .await;
    assert_eq!(invite.status, StatusCode::FORBIDDEN);
    assert_eq!(w.t.store().user_count().await.unwrap(), users);
    let vera = user_id(&w, "vera@example.com").await;
    let promote = d
        .post(
            &format!("{}/{vera}/role", members(&w)),
            &[("role", "admin")],
        )
        .await;
    assert_eq!(promote.status, StatusCode::FORBIDDEN);
    assert_eq!(role_of(&roles(&w).await, "vera@example.com"), Role::Viewer);
    let project = w.t.project_of(&w.project).await;
    let tokens = parityrail::usecase::tokens::list(&w.t.app, &project)
        .await
        .unwrap()
        .len();
    let token = d
        .post(
            &format!("/projects/{}/tokens", w.project),
            &[("role", "admin")],
        )
        .await;
    assert_eq!(token.status, StatusCode::FORBIDDEN);
    assert_eq!(
        parityrail::usecase::tokens::list(&w.t.app, &project)
            .await
            .unwrap()
            .len(),
        tokens
    );
}
