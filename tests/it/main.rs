//! ParityRail's integration tests: one binary, real server, real databases.

mod support;

mod checks;
mod cli;
mod crash;
mod ingress;
mod process;
mod signature_vectors;
mod stripe_payloads;
mod worker;
