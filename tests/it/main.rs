//! ParityRail's integration tests: one binary, real server, real databases.

mod support;
mod world;

mod api;
mod api_config;
mod browser;
mod checks;
mod cli;
mod cli_checks;
mod crash;
mod dashboard;
mod demo;
mod docs;
mod docs_run;
mod docs_walks;
mod drill;
mod drill_after_scan;
mod edges;
mod ingress;
mod logs;
mod members;
mod no_secret;
mod onboarding;
mod probe_examples;
mod process;
mod resolve;
mod scan;
mod scan_once;
mod security;
mod settings;
mod setup_steps;
mod signature_vectors;
mod stripe_cli;
mod stripe_payloads;
mod trust;
mod worker;
