//! The demo refuses, before writing anything (not even a migration), a
//! database that is not ParityRail's, an installation with dashboard users
//! of its own, and an older installation with real projects (issue 9).

use sqlx::{Connection, SqliteConnection};

use crate::{
    demo::demo_command,
    process::{cli, free_port, stderr},
    support::{Backend, TestApp},
};

async fn sqlite(path: &std::path::Path) -> SqliteConnection {
    SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap()
}

async fn tables(path: &std::path::Path) -> Vec<String> {
    let mut conn = sqlite(path).await;
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    rows.into_iter().map(|(n,)| n).collect()
}

/// Runs the demo on `url`; it must stop with one line containing `needle`.
fn refused(url: &str, needle: &str) {
    let mut child = demo_command(free_port())
        .env("DATABASE_URL", url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A demo that starts does not stop by itself: give it 30 s.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the demo ran on {url}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "the demo ran on {url}");
    let err = stderr(&out);
    assert!(err.contains(needle), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_writes_nothing_into_a_database_it_refuses() {
    let dir = tempfile::tempdir().unwrap();

    // Another program's database: refused, and its tables are all it holds.
    let foreign = dir.path().join("orders.db");
    let mut conn = sqlite(&foreign).await;
    sqlx::query("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    refused(
        &format!("sqlite://{}", foreign.display()),
        "tables that are not ParityRail's",
    );
    assert_eq!(tables(&foreign).await, ["orders"]);
    // Not even SQLite's journal mode changed.
    let mut conn = sqlite(&foreign).await;
    let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    assert_eq!(
        mode, "delete",
        "the demo switched another program's database to {mode}"
    );
    assert!(!dir.path().join("orders.db-wal").exists());

    // A table named `projects` does not make a database ParityRail's.
    let lookalike = dir.path().join("crm.db");
    let mut conn = sqlite(&lookalike).await;
    sqlx::query("CREATE TABLE projects (id INTEGER PRIMARY KEY, title TEXT)")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    refused(
        &format!("sqlite://{}", lookalike.display()),
        "tables that are not ParityRail's",
    );
    assert_eq!(tables(&lookalike).await, ["projects"]);

    // An older installation with a real project: refused, not migrated.
    let older = dir.path().join("older.db");
    let url = format!("sqlite://{}", older.display());
    let made = cli(
        &[("DATABASE_URL", url.as_str())],
        &["project", "create", "--name", "billing"],
    );
    assert!(made.status.success(), "{}", stderr(&made));
    let mut conn = sqlite(&older).await;
    let newest: (i64,) = sqlx::query_as("SELECT MAX(version) FROM _sqlx_migrations")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    // As if the newest migration had not been applied yet.
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = $1")
        .bind(newest.0)
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    refused(&url, "real projects (billing)");
    let mut conn = sqlite(&older).await;
    let applied: (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM _sqlx_migrations WHERE version = $1")
            .bind(newest.0)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(applied.0, 0, "the demo migrated a database it refused");
    conn.close().await.unwrap();

    // A fresh installation whose first admin exists, with no project yet.
    let t = TestApp::spawn(Backend::Sqlite).await.unwrap();
    parityrail::usecase::accounts::setup_first_admin(
        &t.app,
        "ops@example.com",
        "a long password 1",
    )
    .await
    .unwrap();
    let url = crate::process::database_url(&t.db.url);
    refused(&url, "dashboard users");
    assert!(t.store().list_projects().await.unwrap().is_empty());
    t.stop().await;
}
