-- When a delivery to the project last failed signature verification (at
-- most one write per project every few seconds, so a forged flood costs
-- nothing). The drill (SPEC §8b) fails while Stripe's deliveries are refused.
ALTER TABLE projects ADD COLUMN last_signature_refusal_at BIGINT;
