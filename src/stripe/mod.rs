//! Stripe: the events it sends and the reads ParityRail makes.

pub mod budget;
pub mod client;
mod error;
pub mod event;
pub mod model;

pub use client::StripeClient;
pub use error::StripeError;
