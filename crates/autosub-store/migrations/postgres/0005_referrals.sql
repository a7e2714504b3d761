-- Referrals: a user who came through another's invitation link (`/start ref_CODE`). When the invited user first
-- pays, both get a bonus, once (rewarded_at set in the payment's transaction).
CREATE TABLE referrals (
    invited_id  BIGINT NOT NULL PRIMARY KEY REFERENCES users (id),
    inviter_id  BIGINT NOT NULL REFERENCES users (id),
    created_at  BIGINT NOT NULL,
    rewarded_at BIGINT,
    CHECK (invited_id <> inviter_id)
);
CREATE INDEX referrals_inviter_idx ON referrals (inviter_id);
