//! The configuration reference (`docs/configuration.md`, issue 9) cannot
//! rot: it names every setting the code reads, every setting it names is
//! read, and every literal default it shows is the code's default.

use std::collections::BTreeSet;

use parityrail::config::Config;

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md");

/// Whether `name` looks like one of ParityRail's settings.
fn is_setting(name: &str) -> bool {
    let shaped = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    shaped
        && (name.starts_with("PARITYRAIL_")
            || ["DATABASE_URL", "CRON_SECRET", "STRIPE_API_BASE"].contains(&name))
}

/// Every quoted setting name in the source: what `get("…")`, `env::var`
/// and clap's `env = "…"` read.
fn read_by_code() -> BTreeSet<String> {
    fn walk(dir: &std::path::Path, found: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for quoted in text.split('"').skip(1).step_by(2) {
                    if is_setting(quoted) {
                        found.insert(quoted.to_string());
                    }
                }
            }
        }
    }
    let mut found = BTreeSet::new();
    walk(
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src")),
        &mut found,
    );
    found
}

/// (name, default) of every row of the page's tables.
fn documented() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(DOC).unwrap();
    text.lines()
        .filter(|l| l.starts_with("| `"))
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let unquote = |cell: &str| cell.trim_matches('`').to_string();
            (unquote(cells[1]), unquote(cells[2]))
        })
        .collect()
}

#[test]
fn the_configuration_reference_names_every_setting_the_code_reads() {
    let code = read_by_code();
    assert!(code.len() >= 15, "only {code:?} found in src/");
    let doc: BTreeSet<String> = documented().into_iter().map(|(n, _)| n).collect();
    let missing: Vec<_> = code.difference(&doc).collect();
    assert!(
        missing.is_empty(),
        "read by the code, not in {DOC}: {missing:?}"
    );
    let stale: Vec<_> = doc.difference(&code).collect();
    assert!(stale.is_empty(), "in {DOC}, read by no code: {stale:?}");
}

#[test]
fn every_default_the_reference_shows_is_the_codes() {
    let default = format!("{:?}", Config::from_lookup(|_| None).unwrap());
    let mut compared = 0;
    for (name, value) in documented() {
        // Only settings `Config` reads, with a literal default.
        let literal = !value.contains('{') && value != "unset";
        if !literal || name.starts_with("PARITYRAIL_LOG") || name == "PARITYRAIL_CONFIG" {
            continue;
        }
        let set = Config::from_lookup(|n| (n == name).then(|| value.clone()))
            .unwrap_or_else(|e| panic!("{name}={value}: {e}"));
        assert_eq!(
            format!("{set:?}"),
            default,
            "{name}: the page says the default is {value}, the code differs"
        );
        compared += 1;
    }
    assert!(compared >= 10, "only {compared} defaults compared");
}
