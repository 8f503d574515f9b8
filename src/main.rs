//! Thin entry point: parse, start tracing, run the command.

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = parityrail::cli::Cli::parse();
    let filter = EnvFilter::try_from_env("PARITYRAIL_LOG").unwrap_or_else(|_| {
        // CLI commands speak through their output; the server logs at info.
        let level = if matches!(cli.command, parityrail::cli::Command::Serve) {
            "info"
        } else {
            "warn"
        };
        EnvFilter::new(format!("{level},sqlx=warn"))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("PARITYRAIL_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
    match parityrail::cli::execute(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // The failed verdict is the output; nothing more to say.
        Err(err) if err.is::<parityrail::cli::CheckFailed>() => std::process::ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
