//! Every shell command of the README and `docs/` runs (issue 9), as a
//! newcomer types it, against the Stripe simulator and the sample app. Each
//! document is walked in order from a fresh database; its placeholders
//! (`prj_…`, `rk_test_…`, `https://app.example.com/…`) are filled with the
//! walk's own values, `cargo run … --` is the built binary, and `curl`
//! fails on an HTTP error. The few commands that cannot run here are in
//! `ELSEWHERE` with the story or script that runs them; a command in
//! neither fails `every_shell_line_is_walked_or_run_elsewhere`.

use std::time::Duration;

use sample_app::{SampleApp, SampleHandle};
use stripe_sim::{SimHandle, StripeSim};

use crate::{
    docs::{ShellLine, shell_lines},
    process::{BIN, Server, database_url, free_port},
    support::{Backend, TestDb},
};

/// Commands run by another story or script, by how their line starts.
const ELSEWHERE: &[(&str, &str)] = &[
    (
        "cargo run --release -- demo",
        "demo::the_demo_shows_its_mismatches_ignores_live_traffic_and_stops_on_ctrl_c",
    ),
    ("cargo test --workspace", "this suite"),
    ("cargo bench ", ".ci/run: every benchmark line with --check"),
    (
        "SCAN_BENCH_LOG=",
        ".ci/run: every benchmark line with --check",
    ),
    (
        "stripe listen ",
        "stripe_cli::what_the_stripe_cli_forwards_is_verified_stored_and_checked",
    ),
    (
        "PROBE_SECRET=",
        "probe_examples::the_python_and_node_probe_examples_answer_checks_and_scans",
    ),
];

/// The documents walked here, each by its own story.
const WALKED: &[&str] = &[
    "README.md",
    "docs/quickstart.md",
    "docs/api.md",
    "docs/operations.md",
    "docs/connecting-stripe.md",
];

fn elsewhere(line: &ShellLine) -> Option<&'static str> {
    ELSEWHERE
        .iter()
        .find(|(start, _)| line.text.starts_with(start))
        .map(|(_, by)| *by)
}

pub fn lines_of(file: &str) -> Vec<ShellLine> {
    shell_lines()
        .into_iter()
        .filter(|l| l.file == file && elsewhere(l).is_none())
        .collect()
}

#[test]
fn every_shell_line_is_walked_or_run_elsewhere() {
    let lines = shell_lines();
    assert!(lines.len() >= 30, "only {} shell lines found", lines.len());
    for line in &lines {
        assert!(
            WALKED.contains(&line.file.as_str()) || elsewhere(line).is_some(),
            "{}:{}: `{}` is neither walked by docs_run nor run elsewhere",
            line.file,
            line.line,
            line.text
        );
    }
    for (start, _) in ELSEWHERE {
        assert!(
            lines.iter().any(|l| l.text.starts_with(start)),
            "ELSEWHERE lists `{start}`, which no document has any more"
        );
    }
}

pub const KEY: &str = "rk_test_docs_walk_key_0001";
/// The secret key `docs/connecting-stripe.md` connects with.
const SECRET_KEY: &str = "sk_test_docs_walk_key_0002";
pub const WEBHOOK_SECRET: &str = "whsec_docs_walk_secret_0001";
const PROBE_SECRET: &str = "docs_walk_probe_secret_0001";

/// The Stripe account and the app a document's commands talk to: one
/// customer paying for `pro`, which the app grants.
pub struct Fixture {
    _sim: StripeSim,
    sim_handle: SimHandle,
    _app: SampleApp,
    app_handle: SampleHandle,
    pub price: String,
    pub customer: String,
}

impl Fixture {
    pub async fn new() -> Fixture {
        let sim = StripeSim::new();
        sim.add_api_key(KEY);
        sim.add_api_key(SECRET_KEY);
        let product = sim.create_product("App");
        let price = sim.create_price(&product, Some("pro_monthly"), 3000);
        let customer = sim.create_customer("ada@example.com", &[]);
        sim.create_subscription(
            &customer,
            &[&price],
            "active",
            &[("parityrail_user_id", "usr_docs")],
        );
        let sim_handle = sim.start().await;
        let app = SampleApp::new(PROBE_SECRET);
        app.grant(
            &customer,
            "usr_docs",
            Some("pro"),
            &["sso"],
            &[("seats", 10)],
        );
        app.set_deploy_sha("docs-walk");
        let app_handle = app.start().await;
        Fixture {
            _sim: sim,
            sim_handle,
            _app: app,
            app_handle,
            price,
            customer,
        }
    }
}

/// One document's walk: its environment, its placeholders, its servers.
pub struct Walk {
    _db: TestDb,
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    subs: Vec<(String, String)>,
    servers: Vec<Server>,
    unready: bool,
    /// Where the first `serve` listens, known before it starts.
    pub base: String,
    port: u16,
    /// Holds `port` until the first `serve` takes it, so no other test
    /// is given it meanwhile.
    reserved: Option<std::net::TcpListener>,
}

impl Walk {
    /// A fresh database (SQLite unless `backend` says otherwise) and the
    /// fixture's values for the docs' placeholders.
    pub async fn new(backend: Backend, fixture: &Fixture) -> Option<Walk> {
        let db = TestDb::create(backend).await?;
        let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = reserved.local_addr().unwrap().port();
        let base = format!("http://127.0.0.1:{port}");
        let mut walk = Walk {
            env: Vec::new(),
            subs: Vec::new(),
            servers: Vec::new(),
            unready: false,
            dir: tempfile::tempdir().unwrap(),
            base: base.clone(),
            port,
            reserved: Some(reserved),
            _db: db,
        };
        walk.set("PATH", &std::env::var("PATH").unwrap_or_default());
        walk.set("DATABASE_URL", &database_url(&walk._db.url));
        walk.set("STRIPE_API_BASE", &fixture.sim_handle.base_url());
        walk.set("PROBE_SECRET", PROBE_SECRET);
        for (from, to) in [
            ("cargo run -q --", BIN),
            ("cargo run --release --", BIN),
            ("curl ", "curl -fsS "),
            ("127.0.0.1:8080", &base["http://".len()..]),
            ("https://parityrail.example.com", &base),
            ("rk_test_…", KEY),
            ("sk_test_…", SECRET_KEY),
            ("whsec_…", WEBHOOK_SECRET),
            ("price_…", &fixture.price),
            ("cus_…", &fixture.customer),
            (
                "https://app.example.com/parityrail/access",
                &fixture.app_handle.probe_url(),
            ),
        ] {
            walk.sub(from, to);
        }
        Some(walk)
    }

    pub fn set(&mut self, name: &str, value: &str) {
        self.env.retain(|(n, _)| n != name);
        self.env.push((name.to_string(), value.to_string()));
    }

    /// From now on `from` in a document's line reads `to`.
    pub fn sub(&mut self, from: &str, to: &str) {
        self.subs.retain(|(f, _)| f != from);
        self.subs.push((from.to_string(), to.to_string()));
    }

    fn fill(&self, line: &ShellLine) -> String {
        let mut text = match line.text.strip_prefix("parityrail ") {
            Some(rest) => format!("{BIN} {rest}"),
            None => line.text.clone(),
        };
        for (from, to) in &self.subs {
            text = text.replace(from, to);
        }
        let command = text.split(" #").next().unwrap_or(&text);
        assert!(
            !command.contains('…'),
            "{}:{}: a placeholder is still unfilled in `{command}`",
            line.file,
            line.line
        );
        text
    }

    /// `bash -c` in the walk's environment (and nothing else).
    pub async fn bash(&self, script: &str) -> std::process::Output {
        tokio::process::Command::new("bash")
            .args(["-c", &format!("set -euo pipefail\n{script}")])
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .await
            .expect("run bash")
    }

    /// `bash` that must succeed; its standard output.
    pub async fn ok(&mut self, what: &str, script: &str) -> String {
        self.settle().await;
        let out = self.bash(script).await;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{what}: `{script}` failed ({}):\n{stdout}\n{}\nserver log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        stdout
    }

    /// Runs one line of a document; its standard output.
    pub async fn run(&mut self, line: &ShellLine) -> String {
        let text = self.fill(line);
        let at = format!("{}:{}", line.file, line.line);
        if let Some(assignment) = text.strip_prefix("export ") {
            let name = assignment.split('=').next().unwrap().to_string();
            let value = self
                .ok(&at, &format!("{text}\nprintf %s \"${name}\""))
                .await;
            assert!(!value.is_empty(), "{at}: {name} is empty");
            self.set(&name, &value);
            return String::new();
        }
        let words: Vec<&str> = text.split_whitespace().collect();
        if words.first() == Some(&BIN) && words.get(1) == Some(&"serve") {
            self.serve();
            return String::new();
        }
        self.ok(&at, &text).await
    }

    /// `parityrail serve` in the walk's environment: the first on the port
    /// `base` names, any further one ("on each machine") on its own.
    pub fn serve(&mut self) {
        let port = match self.reserved.take() {
            // Released just before the server binds it.
            Some(_held) => self.port,
            None => free_port(),
        };
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let log = self.dir.path().join("serve.log");
        self.servers.push(Server::spawn_logged(&env, port, &log));
        self.unready = true;
    }

    /// Waits until every started server is ready.
    pub async fn settle(&mut self) {
        if std::mem::take(&mut self.unready) {
            for server in &mut self.servers {
                server.ready().await;
            }
        }
    }

    pub fn stop_servers(&mut self) {
        self.servers.clear();
    }

    pub fn env_value(&self, name: &str) -> String {
        self.env
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    pub fn server_count(&self) -> usize {
        self.servers.len()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    /// The project the README's commands make: created, connected, with
    /// its probe and plan map; its id.
    pub async fn project(&mut self) -> String {
        let create = self
            .ok(
                "setup",
                &format!("{BIN} project create --name Docs --mode test --json"),
            )
            .await;
        let created: serde_json::Value = serde_json::from_str(&create).unwrap();
        let id = created["id"].as_str().unwrap().to_string();
        for args in [
            format!("stripe connect {id} --api-key {KEY} --webhook-secret {WEBHOOK_SECRET}"),
            format!(
                "probe set {id} --url {} --secret \"$PROBE_SECRET\"",
                self.filled("https://app.example.com/parityrail/access")
            ),
            format!(
                "plan set {id} --price {} --plan pro --rank 2 --feature sso --limit seats=10",
                self.filled("price_…")
            ),
        ] {
            self.ok("setup", &format!("{BIN} {args}")).await;
        }
        id
    }

    fn filled(&self, placeholder: &str) -> String {
        self.subs
            .iter()
            .find(|(from, _)| from == placeholder)
            .map(|(_, to)| to.clone())
            .unwrap()
    }
}

/// Whether `program` runs here. Without it a walk that needs it skips,
/// except under `CI=true`, where it fails.
pub fn have(program: &str) -> bool {
    let found = std::process::Command::new(program)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{program} is needed under CI=true"
        );
        eprintln!("skipping a docs walk: no {program}");
    }
    found
}

/// The first `prefix…` word of `text`, e.g. the `prj_…` a command printed.
pub fn first_id(text: &str, prefix: &str) -> String {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .find(|w| w.starts_with(prefix) && w.len() > prefix.len())
        .unwrap_or_else(|| panic!("no {prefix}… in {text}"))
        .to_string()
}

/// Polls `done` until it holds, for at most 30 s.
pub async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
