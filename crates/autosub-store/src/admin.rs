//! Reads for the operators' web page (`/admin`, docs/ADMIN.md): user search, recent payments with their users,
//! tasks per day. Portable SQL as everywhere in this crate (see the crate docs); nothing here writes.

use serde::Serialize;
use sqlx::{AssertSqlSafe, Row};

use crate::error::Result;
use crate::store::{
    parse_enum, parse_tier, user_from_row, PaymentPeriod, PaymentStatus, Store, User, DAY_MS,
    USER_COLUMNS,
};
use crate::tiers::Tier;

/// A payment as the operators' page lists it: the row's main columns and its user's Telegram id and name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PaymentListing {
    pub id: i64,
    pub telegram_id: i64,
    pub username: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub tier: Tier,
    pub period: PaymentPeriod,
    pub days: i64,
    pub status: PaymentStatus,
    pub external_id: Option<String>,
    pub created_at: i64,
    pub confirmed_at: Option<i64>,
    pub expires_at: Option<i64>,
}

/// Tasks created on one UTC day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DayTasks {
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    pub total: i64,
    pub completed: i64,
    pub failed: i64,
}

/// `%`, `_` and `\` taken literally in a `LIKE ... ESCAPE '\'` pattern.
fn like_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Store {
    /// Users whose Telegram id is `query` (a number) or whose username contains it (case-insensitive, a leading `@`
    /// ignored), newest first, at most `limit`. An empty query lists the newest users.
    pub async fn search_users(&self, query: &str, limit: i64) -> Result<Vec<User>> {
        let q = query.trim().trim_start_matches('@');
        let limit = limit.max(0);
        let rows = if q.is_empty() {
            let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY id DESC LIMIT $1");
            sqlx::query(AssertSqlSafe(sql))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
        } else {
            let pattern = format!("%{}%", like_literal(&q.to_lowercase()));
            // A number that is not an id still searches names; -1 matches no Telegram id.
            let id = q.parse::<i64>().unwrap_or(-1);
            let sql = format!(
                "SELECT {USER_COLUMNS} FROM users \
                 WHERE telegram_id = $1 OR LOWER(COALESCE(username, '')) LIKE $2 ESCAPE '\\' \
                 ORDER BY (CASE WHEN telegram_id = $1 THEN 0 ELSE 1 END), id DESC LIMIT $3"
            );
            sqlx::query(AssertSqlSafe(sql))
                .bind(id)
                .bind(pattern)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
        };
        rows.iter().map(user_from_row).collect()
    }

    /// The newest `limit` payments with their users, newest first.
    pub async fn recent_payments(&self, limit: i64) -> Result<Vec<PaymentListing>> {
        let rows = sqlx::query(
            "SELECT p.id, u.telegram_id, u.username, p.amount, p.currency, p.tier, p.period, p.days, p.status, \
               p.external_id, p.created_at, p.confirmed_at, p.expires_at \
             FROM payments p JOIN users u ON u.id = p.user_id ORDER BY p.id DESC LIMIT $1",
        )
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PaymentListing {
                    id: row.try_get("id")?,
                    telegram_id: row.try_get("telegram_id")?,
                    username: row.try_get("username")?,
                    amount: row.try_get("amount")?,
                    currency: row.try_get("currency")?,
                    tier: parse_tier(&row.try_get::<String, _>("tier")?)?,
                    period: parse_enum(&row.try_get::<String, _>("period")?)?,
                    days: row.try_get("days")?,
                    status: parse_enum(&row.try_get::<String, _>("status")?)?,
                    external_id: row.try_get("external_id")?,
                    created_at: row.try_get("created_at")?,
                    confirmed_at: row.try_get("confirmed_at")?,
                    expires_at: row.try_get("expires_at")?,
                })
            })
            .collect()
    }

    /// Tasks created on each of the `days` UTC days ending with `now`'s, oldest first, every day present (zeros
    /// when none): all of them, and how many are completed and failed now.
    pub async fn tasks_per_day(&self, days: i64, now: i64) -> Result<Vec<DayTasks>> {
        let days = days.clamp(1, 366);
        let last = now.div_euclid(DAY_MS);
        let first = last - days + 1;
        // The day length is a constant of the SQL (not a parameter) so that PostgreSQL sees one expression in the
        // select list and the GROUP BY.
        let sql = format!(
            "SELECT created_at / {DAY_MS} AS day, status, CAST(COUNT(*) AS BIGINT) AS n FROM tasks \
             WHERE created_at >= $1 AND created_at < $2 GROUP BY created_at / {DAY_MS}, status"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(first * DAY_MS)
            .bind((last + 1) * DAY_MS)
            .fetch_all(&self.pool)
            .await?;
        let mut out: Vec<DayTasks> = (first..=last)
            .map(|day| DayTasks {
                day,
                ..Default::default()
            })
            .collect();
        for row in rows {
            let day: i64 = row.try_get("day")?;
            let status: String = row.try_get("status")?;
            let n: i64 = row.try_get("n")?;
            if let Some(d) = out.iter_mut().find(|d| d.day == day) {
                d.total += n;
                match status.as_str() {
                    "completed" => d.completed += n,
                    "failed" => d.failed += n,
                    _ => {}
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewPayment, NewTask};

    #[test]
    fn like_patterns_take_wildcards_literally() {
        assert_eq!(like_literal("a%b_c\\d"), "a\\%b\\_c\\\\d");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn searches_users_lists_payments_and_counts_tasks_per_day_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_default(dir.path()).await.unwrap();
        exercise(&store).await;
        store.close().await;
    }

    /// The same on a fresh PostgreSQL database (`postgres://postgres@127.0.0.1:5432/postgres` or
    /// `$AUTOSUB_TEST_PG_URL`, as the crate's integration tests), dropped at the end.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn searches_users_lists_payments_and_counts_tasks_per_day_postgres() {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let base = std::env::var("AUTOSUB_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("autosub_store_admin_{}", std::process::id());
        let mut admin = sqlx::AnyConnection::connect(&base)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {base} (set AUTOSUB_TEST_PG_URL): {e}"));
        let drop_db = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        sqlx::query(AssertSqlSafe(drop_db.clone()))
            .execute(&mut admin)
            .await
            .unwrap();
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        let url = match base.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("{base}: no database name"),
        };
        let store = Store::connect(&url).await.unwrap();
        exercise(&store).await;
        store.close().await;
        sqlx::query(AssertSqlSafe(drop_db))
            .execute(&mut admin)
            .await
            .unwrap();
    }

    async fn exercise(store: &Store) {
        let now = 100 * DAY_MS + 5_000;
        store
            .upsert_user(4242, Some("Alice_Smith"), None, now)
            .await
            .unwrap();
        store
            .upsert_user(77, Some("bob%"), None, now)
            .await
            .unwrap();
        let found = store.search_users("4242", 10).await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].telegram_id, 4242);
        let found = store.search_users("@alice", 10).await.unwrap();
        assert_eq!(found[0].telegram_id, 4242);
        // `%` is literal: it matches bob% only, not everyone.
        let found = store.search_users("%", 10).await.unwrap();
        assert_eq!(
            found.iter().map(|u| u.telegram_id).collect::<Vec<_>>(),
            [77]
        );
        assert_eq!(store.search_users("", 10).await.unwrap().len(), 2);
        assert!(store.search_users("nobody", 10).await.unwrap().is_empty());

        let user = store.get_user(4242).await.unwrap().unwrap();
        store
            .insert_payment(
                &NewPayment {
                    user_id: user.id,
                    amount: 299,
                    currency: "RUB".into(),
                    tier: Tier::Pro,
                    period: PaymentPeriod::Month,
                    days: 30,
                    status: PaymentStatus::Pending,
                    external_id: Some("ext-1".into()),
                    payload: None,
                    request_key: None,
                    redirect_url: None,
                    expires_at: None,
                },
                now,
            )
            .await
            .unwrap();
        let p = store.recent_payments(10).await.unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(
            (p[0].telegram_id, p[0].username.as_deref(), p[0].amount),
            (4242, Some("Alice_Smith"), 299)
        );

        let task = |n: i64| NewTask {
            kind: "sleep".into(),
            spec: "{}".into(),
            spec_version: 1,
            input_type: "test".into(),
            idem_key: Some(format!("k{n}")),
            ..Default::default()
        };
        store.enqueue(&task(1), now - DAY_MS).await.unwrap();
        store.enqueue(&task(2), now).await.unwrap();
        store.enqueue(&task(3), now).await.unwrap();
        let days = store.tasks_per_day(3, now).await.unwrap();
        assert_eq!(
            days.iter().map(|d| (d.day, d.total)).collect::<Vec<_>>(),
            [(98, 0), (99, 1), (100, 2)]
        );
    }
}
