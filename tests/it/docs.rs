//! The docs cannot rot (issue 9): every `parityrail …` or `cargo run … --`
//! command in a shell block of the README or `docs/` parses with today's
//! CLI, so a renamed command or flag fails here. `docs_run` runs them.

use clap::Parser;
use parityrail::cli::Cli;

/// Words of a shell line, double and single quotes kept together.
fn words(line: &str) -> Vec<String> {
    let (mut out, mut word, mut quote) = (Vec::new(), String::new(), None);
    for ch in line.chars() {
        match (quote, ch) {
            (None, '"' | '\'') => quote = Some(ch),
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            (_, c) => word.push(c),
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// The ParityRail invocations of one shell line: what follows `parityrail`
/// or `cargo run [flags] --`, up to a `#` comment, `)` or a pipe.
fn invocations(line: &str) -> Vec<Vec<String>> {
    let line = line.split(" #").next().unwrap_or(line);
    let mut found = Vec::new();
    for part in line.split(['|', ';']).flat_map(|p| p.split("$(")) {
        let part = part.split(')').next().unwrap_or(part);
        let w = words(part);
        let start = if let Some(i) = w.iter().position(|x| x == "parityrail") {
            i + 1
        } else if let (Some(c), Some(dd)) = (
            w.windows(2).position(|p| p[0] == "cargo" && p[1] == "run"),
            w.iter().position(|x| x == "--"),
        ) && dd > c
        {
            dd + 1
        } else {
            continue;
        };
        found.push(w[start..].to_vec());
    }
    found
}

/// One line of a `sh` block of the README or a `docs/` page.
pub struct ShellLine {
    /// `README.md` or `docs/….md`.
    pub file: String,
    /// 1-based.
    pub line: usize,
    pub text: String,
}

/// `README.md` and every `docs/*.md`, sorted.
fn doc_files() -> Vec<String> {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut pages: Vec<String> = std::fs::read_dir(format!("{root}/docs"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    pages.sort();
    std::iter::once("README.md".to_string())
        .chain(pages)
        .collect()
}

/// Every line of every `sh` block of the README and `docs/`, in file order.
pub fn shell_lines() -> Vec<ShellLine> {
    let root = env!("CARGO_MANIFEST_DIR");
    let files = doc_files();
    let mut lines = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(format!("{root}/{file}")).unwrap();
        let mut in_sh = false;
        for (n, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.starts_with("```") {
                in_sh = !in_sh && trimmed == "```sh";
                continue;
            }
            if in_sh && !trimmed.is_empty() {
                lines.push(ShellLine {
                    file: file.clone(),
                    line: n + 1,
                    text: trimmed.to_string(),
                });
            }
        }
    }
    lines
}

#[test]
fn every_command_in_the_readme_and_docs_parses_with_todays_cli() {
    let mut checked = 0;
    for line in shell_lines() {
        for args in invocations(&line.text) {
            let argv = std::iter::once("parityrail".to_string()).chain(args.clone());
            if let Err(e) = Cli::try_parse_from(argv) {
                panic!(
                    "{}:{}: `parityrail {}` does not parse:\n{e}",
                    line.file,
                    line.line,
                    args.join(" ")
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} commands found");
}

#[test]
fn the_splitter_reads_quotes_substitutions_and_comments() {
    assert_eq!(
        invocations(r#"export K=$(cargo run -q -- keygen)      # keep it"#),
        [vec!["keygen".to_string()]]
    );
    assert_eq!(
        invocations(
            r#"cargo run -q -- project create --name "My app" --mode test  # prints prj_…"#
        ),
        [["project", "create", "--name", "My app", "--mode", "test"]
            .map(String::from)
            .to_vec()]
    );
    assert!(invocations("stripe listen --forward-to localhost:8080").is_empty());
    // A command that does not exist is caught.
    let argv = ["parityrail", "stripe", "conect", "p"];
    assert!(Cli::try_parse_from(argv).is_err());
}

/// The `parityrail …` commands written inline in the prose of the README
/// and `docs/` (outside code blocks); usage lines with `[`, `|`, `{` or
/// `<` are synopses, not commands.
fn inline_commands() -> Vec<(String, String)> {
    let root = env!("CARGO_MANIFEST_DIR");
    let files = doc_files();
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(format!("{root}/{file}")).unwrap();
        let mut prose = String::new();
        let mut in_block = false;
        for line in text.lines() {
            if line.trim_start().starts_with("```") {
                in_block = !in_block;
            } else if !in_block {
                prose.push_str(line);
                prose.push(' ');
            }
        }
        for span in prose.split('`').skip(1).step_by(2) {
            let span = span.split_whitespace().collect::<Vec<_>>().join(" ");
            if span.starts_with("parityrail ") && !span.contains(['[', '|', '{', '<']) {
                found.push((file.clone(), span));
            }
        }
    }
    found
}

#[test]
fn every_inline_command_in_the_prose_parses_too() {
    let commands = inline_commands();
    assert!(commands.len() >= 15, "only {commands:?}");
    for (file, command) in commands {
        let mut argv = words(&command);
        // `parityrail stripe secrets …`: any command under that path.
        if argv.last().is_some_and(|w| w == "…") {
            argv.pop();
        }
        // `parityrail scan` names a command: its path must exist.
        let names_only = argv[1..]
            .iter()
            .all(|w| w.chars().all(|c| c.is_ascii_lowercase()));
        match Cli::try_parse_from(&argv) {
            Ok(_) => {}
            Err(e)
                if names_only
                    && matches!(
                        e.kind(),
                        clap::error::ErrorKind::MissingRequiredArgument
                            | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
                            | clap::error::ErrorKind::MissingSubcommand
                    ) => {}
            // `… --help` asks for the help, which is an Err in clap.
            Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => {}
            Err(e) => panic!("{file}: `{command}` does not parse:\n{e}"),
        }
    }
}

#[test]
fn the_seven_events_of_connecting_stripe_are_the_ones_handled() {
    let page = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/connecting-stripe.md"
    ))
    .unwrap();
    let section = page
        .split("## The seven events")
        .nth(1)
        .expect("the section")
        .split("\n## ")
        .next()
        .unwrap();
    let mut listed: Vec<&str> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .collect();
    listed.sort_unstable();
    let mut handled = parityrail::stripe::event::HANDLED_TYPES.to_vec();
    handled.sort_unstable();
    assert_eq!(listed, handled);
}
