//! Running the real `parityrail` binary: CLI commands and `serve` as a child.

use std::{
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

use parityrail::config::DatabaseUrl;

pub const BIN: &str = env!("CARGO_BIN_EXE_parityrail");

pub fn database_url(url: &DatabaseUrl) -> String {
    match url {
        DatabaseUrl::Sqlite(path) => format!("sqlite://{path}"),
        DatabaseUrl::Postgres(url) => url.expose().to_string(),
    }
}

/// A CLI invocation with a clean environment plus `env`.
pub fn cli(env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run parityrail")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `parityrail serve` as a child process, killed on drop.
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    pub fn spawn(env: &[(&str, &str)], port: u16) -> Self {
        Self::spawn_with(env, port, None)
    }

    /// As `spawn`, with standard output and error appended to `log`.
    pub fn spawn_logged(env: &[(&str, &str)], port: u16, log: &std::path::Path) -> Self {
        Self::spawn_with(env, port, Some(log))
    }

    fn spawn_with(env: &[(&str, &str)], port: u16, log: Option<&std::path::Path>) -> Self {
        let output = || match log {
            Some(path) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .unwrap(),
            ),
            None => Stdio::null(),
        };
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PARITYRAIL_LISTEN", format!("127.0.0.1:{port}"))
            .stdout(output())
            .stderr(output());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Self {
            child: cmd.spawn().expect("spawn parityrail serve"),
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Polls `/readyz` until it answers 200 (or the process exits).
    pub async fn ready(&mut self) {
        parityrail::install_crypto_provider();
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("parityrail serve exited early: {status}");
            }
            if let Ok(resp) = client.get(format!("{}/readyz", self.base)).send().await
                && resp.status() == 200
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "server never became ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
