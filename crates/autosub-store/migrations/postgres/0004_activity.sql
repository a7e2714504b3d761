-- Activity by day, for the business metrics (DAU/WAU/MAU, retention): a row per user and UTC day on which they
-- wrote to the bot (a message, a command, a button). Tasks count as activity from the tasks table itself.
CREATE TABLE user_days (
    user_id BIGINT NOT NULL REFERENCES users (id),
    day     BIGINT NOT NULL,
    PRIMARY KEY (user_id, day)
);
CREATE INDEX user_days_day_idx ON user_days (day);
CREATE INDEX tasks_created_at_idx ON tasks (created_at);
CREATE INDEX users_created_at_idx ON users (created_at);
