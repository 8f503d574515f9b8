//! The `parityrail` command: JSON shapes, and bad input that gets a clear
//! error, a non-zero exit, and changes nothing.

use parityrail::{crypto::MasterKey, ids::ProjectId, store::Store};
use serde_json::Value;
use stripe_sim::StripeSim;

use crate::{
    process::{Server, cli, database_url, free_port, stderr, stdout},
    support::{Backend, TestDb},
};

crate::backend_tests!(
    project_create_and_list_with_json,
    duplicate_project_names_are_refused,
    stripe_connect_checks_the_key_and_stores_nothing_on_error,
    wrong_master_key_is_refused_and_changes_nothing,
    serve_needs_a_master_key_unless_all_projects_are_demo,
    user_create_makes_a_member_who_can_sign_in_and_refuses_bad_input,
);

struct Env {
    db: TestDb,
    url: String,
    key: String,
}

impl Env {
    async fn new(backend: Backend) -> Option<Self> {
        let db = TestDb::create(backend).await?;
        let url = database_url(&db.url);
        Some(Self {
            db,
            url,
            key: MasterKey::generate_hex(),
        })
    }
    fn vars(&self) -> Vec<(&str, &str)> {
        vec![
            ("DATABASE_URL", self.url.as_str()),
            ("PARITYRAIL_MASTER_KEY", self.key.as_str()),
        ]
    }
    fn run(&self, args: &[&str]) -> std::process::Output {
        cli(&self.vars(), args)
    }
    /// The command with `input` on its standard input.
    fn run_with_stdin(&self, args: &[&str], input: &str) -> std::process::Output {
        use std::io::Write;
        let mut child = std::process::Command::new(crate::process::BIN)
            .args(args)
            .env_clear()
            .envs(self.vars())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }
    fn create(&self, name: &str, mode: &str) -> String {
        let out = self.run(&[
            "project", "create", "--name", name, "--mode", mode, "--json",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
        v["id"].as_str().unwrap().to_string()
    }
    async fn store(&self) -> Store {
        Store::connect(&self.db.url).await.unwrap()
    }
}

async fn project_create_and_list_with_json(backend: Backend) {
    let Some(env) = Env::new(backend).await else {
        return;
    };
    let out = env.run(&["project", "create", "--name", "Acme", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let created: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let id = created["id"].as_str().unwrap();
    assert!(ProjectId::parse(id).is_some(), "{id}");
    assert_eq!(
        (created["name"].as_str(), created["mode"].as_str()),
        (Some("Acme"), Some("test"))
    );
    // Plain output is just the id, for scripts: `P=$(parityrail project create …)`.
    let out = env.run(&["project", "create", "--name", "Demo", "--mode", "demo"]);
    assert!(ProjectId::parse(stdout(&out).trim()).is_some());
    let out = env.run(&["project", "list", "--json"]);
    let list: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(list.len(), 2);
    // Empty events log and incidents list, as JSON arrays.
    for args in [["events", "list", id], ["incidents", "list", id]] {
        let out = env.run(&[args[0], args[1], args[2], "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out).trim(), "[]");
    }
    let out = env.run(&["events", "list", "prj_aaaaaaaaaaaaaaaaaaaa"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no project"));
    let out = env.run(&["project", "create", "--name", "  ", "--json"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--name"));
    let out = env.run(&["project", "create", "--name", "x", "--mode", "prod"]);
    assert!(!out.status.success());
    assert_eq!(env.store().await.list_projects().await.unwrap().len(), 2);
}

async fn duplicate_project_names_are_refused(backend: Backend) {
    let Some(env) = Env::new(backend).await else {
        return;
    };
    env.create("Acme", "test");
    let out = env.run(&["project", "create", "--name", "Acme", "--mode", "live"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("a project named \"Acme\" already exists"),
        "{}",
        stderr(&out)
    );
    let projects = env.store().await.list_projects().await.unwrap();
    assert_eq!(projects.len(), 1);
    assert_eq!(projects[0].mode.as_str(), "test");
}

async fn stripe_connect_checks_the_key_and_stores_nothing_on_error(backend: Backend) {
    let Some(env) = Env::new(backend).await else {
        return;
    };
    let sim = StripeSim::new();
    sim.add_api_key("sk_test_good_key_1234");
    sim.add_restricted_key_without_account_access("rk_test_restricted_5678");
    sim.add_api_key("sk_test_revoked_0000");
    sim.revoke_api_key("sk_test_revoked_0000");
    let handle = sim.start().await;
    let base = handle.base_url();
    let id = env.create("Acme", "test");
    let mut vars = env.vars();
    vars.push(("STRIPE_API_BASE", base.as_str()));
    let run = |args: &[&str]| cli(&vars, args);
    let store = env.store().await;
    let pid = ProjectId::parse(&id).unwrap();

    for (args, needle) in [
        (
            vec!["--api-key", "sk_test_revoked_0000"],
            "Test & connect failed",
        ),
        (
            vec!["--api-key", "sk_test_unknown_9999"],
            "Test & connect failed",
        ),
        (
            vec!["--api-key", "pk_test_publishable_1"],
            "secret (sk_test_",
        ),
        (
            vec![
                "--api-key",
                "sk_test_good_key_1234",
                "--webhook-secret",
                "nope_1234",
            ],
            "whsec_",
        ),
        (
            vec![
                "--api-key",
                "sk_test_good_key_1234",
                "--webhook-secret",
                "whsec_",
            ],
            "whsec_",
        ),
    ] {
        let mut full = vec!["stripe", "connect", id.as_str()];
        full.extend(args.iter().copied());
        let out = run(&full);
        assert!(!out.status.success(), "{args:?} must fail");
        let err = stderr(&out);
        assert!(err.contains(needle), "{args:?}: {err}");
        for secret in [
            "revoked_0000",
            "unknown_9999",
            "publishable_1",
            "good_key_1234",
        ] {
            assert!(!err.contains(secret), "secret echoed in: {err}");
        }
        assert!(
            store.integration(&pid).await.unwrap().is_none(),
            "{args:?} stored something"
        );
    }

    let out = run(&[
        "stripe",
        "connect",
        &id,
        "--api-key",
        "sk_test_good_key_1234",
        "--webhook-secret",
        "whsec_first_secret",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["account_id"].as_str(), Some(sim.account_id().as_str()));
    assert_eq!(v["api_key_last4"], "1234");
    assert_eq!(v["mode"], "test");
    assert!(
        v["webhook_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/api/webhooks/stripe/{id}"))
    );
    assert!(
        !stdout(&out).contains("good_key"),
        "only the last 4 may show"
    );

    // A restricted key without account access is fine; a second secret (a roll) is added.
    let out = run(&[
        "stripe",
        "connect",
        &id,
        "--api-key",
        "rk_test_restricted_5678",
        "--webhook-secret",
        "whsec_second_secret",
        "--webhook-secret",
        "whsec_first_secret",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["account_id"], Value::Null);
    assert_eq!(
        v["webhook_secrets"], 2,
        "a secret already held is kept once"
    );
    let integration = store.integration(&pid).await.unwrap().unwrap();
    assert_eq!(integration.api_key_last4, "5678");
    // Sealed at rest: the stored bytes do not contain the secret.
    let raw = String::from_utf8_lossy(&integration.api_key_sealed).into_owned();
    assert!(!raw.contains("restricted"));

    // A live key on a test project: the key decides the mode.
    let demo = env.create("Demo", "demo");
    let out = run(&[
        "stripe",
        "connect",
        &demo,
        "--api-key",
        "sk_test_good_key_1234",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("demo project"));
}

async fn wrong_master_key_is_refused_and_changes_nothing(backend: Backend) {
    let Some(env) = Env::new(backend).await else {
        return;
    };
    let id = env.create("Acme", "test");
    let out = env.run(&[
        "stripe",
        "connect",
        &id,
        "--api-key",
        "sk_test_abcdefgh",
        "--webhook-secret",
        "whsec_one",
        "--no-verify",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let other = MasterKey::generate_hex();
    let wrong = [
        ("DATABASE_URL", env.url.as_str()),
        ("PARITYRAIL_MASTER_KEY", other.as_str()),
    ];
    let out = cli(
        &wrong,
        &[
            "stripe",
            "connect",
            &id,
            "--api-key",
            "sk_test_zzzzzzzz",
            "--webhook-secret",
            "whsec_two",
            "--no-verify",
        ],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("PARITYRAIL_MASTER_KEY is not the key"),
        "{}",
        stderr(&out)
    );
    let integration = env
        .store()
        .await
        .integration(&ProjectId::parse(&id).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(integration.api_key_last4, "efgh");
    let last4: Vec<&str> = integration
        .webhook_secrets
        .iter()
        .map(|s| s.last4.as_str())
        .collect();
    assert_eq!(last4, vec!["_one"]);
    // `serve` refuses to start with the wrong key.
    let port = free_port();
    let mut server = Server::spawn(&wrong, port);
    let status = server.child.wait().unwrap();
    assert!(!status.success());
    let out = cli(&wrong, &["serve"]);
    assert!(
        stderr(&out).contains("PARITYRAIL_MASTER_KEY is not the key"),
        "{}",
        stderr(&out)
    );
    let bad_hex = [
        ("DATABASE_URL", env.url.as_str()),
        ("PARITYRAIL_MASTER_KEY", "1234"),
    ];
    let out = cli(&bad_hex, &["project", "list"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("64 hex"), "{}", stderr(&out));
}

async fn serve_needs_a_master_key_unless_all_projects_are_demo(backend: Backend) {
    let Some(env) = Env::new(backend).await else {
        return;
    };
    let no_key = [("DATABASE_URL", env.url.as_str())];
    env.create("Demo", "demo");
    let port = free_port();
    let mut server = Server::spawn(&no_key, port);
    server.ready().await;
    drop(server);
    env.create("Real", "live");
    let listen = format!("127.0.0.1:{}", free_port());
    let out = cli(
        &[
            ("DATABASE_URL", env.url.as_str()),
            ("PARITYRAIL_LISTEN", listen.as_str()),
        ],
        &["serve"],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("PARITYRAIL_MASTER_KEY is required"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_database_urls_are_explained() {
    for (url, needle) in [
        ("mysql://root:hunter2@127.0.0.1/db", "unsupported scheme"),
        ("sqlite://", "no file path"),
        (
            "postgres://nobody:hunter2@127.0.0.1:1/none",
            "cannot open the database",
        ),
        (
            "sqlite:///nonexistent-dir/sub/x.db",
            "cannot open the database",
        ),
    ] {
        let out = cli(&[("DATABASE_URL", url)], &["project", "list"]);
        assert!(!out.status.success(), "{url}");
        let err = stderr(&out);
        assert!(err.contains(needle), "{url}: {err}");
        assert!(!err.contains("hunter2"), "password leaked: {err}");
    }
}

#[test]
fn keygen_prints_a_usable_key() {
    let out = cli(&[], &["keygen"]);
    let key = stdout(&out);
    assert!(MasterKey::from_hex(key.trim()).is_ok());
    assert_eq!(key.trim().len(), 64);
}

async fn user_create_makes_a_member_who_can_sign_in_and_refuses_bad_input(backend: Backend) {
    let Some(env) = Env::new(backend).await else {
        return;
    };
    let project = env.create("Acme", "test");
    let create = |email: &str, role: &str| {
        vec![
            "user".to_string(),
            "create".into(),
            email.into(),
            "--role".into(),
            role.into(),
            "--project".into(),
            project.clone(),
        ]
    };
    let args = |v: &[String], extra: &[&str]| {
        v.iter()
            .map(String::as_str)
            .chain(extra.iter().copied())
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let run_in = |v: Vec<String>, input: &str| {
        let refs: Vec<&str> = v.iter().map(String::as_str).collect();
        env.run_with_stdin(&refs, input)
    };
    // Bad input: a clear error, a non-zero exit, no user.
    let short = run_in(
        args(&create("ada@example.com", "admin"), &["--password-stdin"]),
        "too short\n",
    );
    assert!(!short.status.success());
    assert!(
        stderr(&short).contains("at least 12 characters"),
        "{}",
        stderr(&short)
    );
    let bad = run_in(
        args(&create("ada-at-example", "admin"), &["--password-stdin"]),
        "long enough password\n",
    );
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("is not an email address"),
        "{}",
        stderr(&bad)
    );
    let no_project = env.run(&[
        "user",
        "create",
        "ada@example.com",
        "--role",
        "admin",
        "--project",
        "nope",
    ]);
    assert!(!no_project.status.success());
    assert!(
        stderr(&no_project).contains("no project"),
        "{}",
        stderr(&no_project)
    );
    let role = env.run(&[
        "user",
        "create",
        "ada@example.com",
        "--role",
        "owner",
        "--project",
        &project,
    ]);
    assert!(!role.status.success());
    assert_eq!(env.store().await.user_count().await.unwrap(), 0);

    // The password from stdin; never echoed.
    let ok = run_in(
        args(
            &create("Ada@Example.com", "admin"),
            &["--password-stdin", "--json"],
        ),
        "long enough password\n",
    );
    assert!(ok.status.success(), "{}", stderr(&ok));
    let made: Value = serde_json::from_str(&stdout(&ok)).unwrap();
    assert_eq!(made["email"], "ada@example.com");
    assert_eq!(made["role"], "admin");
    assert!(made.get("password").is_none());
    assert!(!stdout(&ok).contains("long enough password"));
    // Without --password-stdin: a random password, printed once.
    let generated = env.run(
        &args(&create("vera@example.com", "viewer"), &["--json"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(generated.status.success(), "{}", stderr(&generated));
    let made: Value = serde_json::from_str(&stdout(&generated)).unwrap();
    let password = made["password"].as_str().unwrap();
    assert!(password.len() >= 20, "{password}");
    let taken = run_in(
        args(&create("ada@example.com", "viewer"), &["--password-stdin"]),
        "another long password\n",
    );
    assert!(!taken.status.success());
    assert!(
        stderr(&taken).contains("already exists"),
        "{}",
        stderr(&taken)
    );

    let store = env.store().await;
    assert_eq!(store.user_count().await.unwrap(), 2);
    let (user, hash) = store
        .user_by_email("vera@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(hash.starts_with("$argon2id$") && !hash.contains(password));
    let roles = store.memberships_of(&user.id).await.unwrap();
    assert_eq!(roles.len(), 1);
    assert_eq!(roles[0].role.as_str(), "viewer");
}
