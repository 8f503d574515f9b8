//! ParityRail's integration tests: one binary, real server, real databases.

mod support;

mod ingress;
mod signature_vectors;
mod worker;
