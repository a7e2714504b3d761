-- Billing (conventions as in 0001_init.sql): what a payment needs for exactly-once activation and its revocation,
-- messages to users written by processes that do not talk to Telegram, and periodic jobs run once per period.

-- The button press that asked for the payment: a redelivered press finds the first payment instead of a second.
ALTER TABLE payments ADD COLUMN request_key TEXT;
CREATE UNIQUE INDEX payments_request_key_idx ON payments (request_key);
-- The days of the tier the payment buys (the plan's when it was made), the provider's payment page sent to the
-- user, and when the provider stops accepting the payment.
ALTER TABLE payments ADD COLUMN days BIGINT NOT NULL DEFAULT 0;
ALTER TABLE payments ADD COLUMN redirect_url TEXT;
ALTER TABLE payments ADD COLUMN expires_at BIGINT;
-- Set when confirmed: the tier and the time (ms) that confirming added, taken back by a chargeback.
ALTER TABLE payments ADD COLUMN confirmed_at BIGINT;
ALTER TABLE payments ADD COLUMN granted_tier TEXT CHECK (granted_tier IN ('free', 'pro', 'creator'));
ALTER TABLE payments ADD COLUMN granted_ms BIGINT NOT NULL DEFAULT 0;
CREATE INDEX payments_status_idx ON payments (status, expires_at);
CREATE INDEX payments_confirmed_at_idx ON payments (confirmed_at);

-- Messages for users written by billing and workers ("PRO active until ...", expiry reminders); the bot sends
-- each once. dedup_key makes writing the same notice twice (a replayed callback, two sweeps) a no-op.
CREATE TABLE notices (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    telegram_id BIGINT NOT NULL,
    kind        TEXT   NOT NULL,
    args        TEXT   NOT NULL DEFAULT '{}',
    dedup_key   TEXT   NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    sent_at     BIGINT
);
CREATE INDEX notices_sent_at_idx ON notices (sent_at);

-- Periodic jobs (the subscription sweep): the process that moves next_run_at first runs the job for that period.
CREATE TABLE schedules (
    name        TEXT   PRIMARY KEY,
    next_run_at BIGINT NOT NULL
);
