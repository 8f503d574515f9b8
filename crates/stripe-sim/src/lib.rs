//! Stripe simulator: filled in by the next commit.
