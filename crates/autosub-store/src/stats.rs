//! Business metrics, computed by SQL over the tables (the same on SQLite and PostgreSQL).
//!
//! Definitions (docs/OPERATIONS.md says the same):
//! - a user is **active** on a UTC day when they wrote to the bot that day (`user_days`) or a task of theirs was
//!   created that day; **DAU** counts the day of `until`, **WAU** the 7 days ending with it, **MAU** the 30;
//! - **conversion**: of the users who first appeared in `[since, until)`, the share with a confirmed payment;
//! - **revenue**: confirmed payments (charged-back ones excluded) with `confirmed_at` in the period, in RUB, by tier
//!   and period; **ARPU**: revenue over the users active in the period;
//! - **retention dN**: of the users who first appeared in the period on a day at least N days before `until`'s day,
//!   the share active N days after their first day;
//! - **tasks**: created in the period, by status, tier and feature; **processing time**: completed tasks finished
//!   in the period, `finished_at - started_at` of the last attempt, median and p95 (nearest rank) per tier.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row;

use crate::error::Result;
use crate::store::{utc_day, Store, DAY_MS};
use crate::tiers::Tier;

/// Users active at least once in a period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Retention {
    /// Users old enough to be counted.
    pub cohort: i64,
    /// Of them, active N days after their first day.
    pub retained: i64,
    /// `retained / cohort` (0 for an empty cohort).
    pub rate: f64,
}

/// Revenue of one plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanRevenue {
    pub tier: String,
    pub period: String,
    pub payments: i64,
    /// RUB.
    pub amount: i64,
}

/// Processing time of one tier's completed tasks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Timing {
    pub tasks: i64,
    pub median_s: f64,
    pub p95_s: f64,
}

/// Tasks created in the period.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TaskCounts {
    pub total: i64,
    pub by_status: BTreeMap<String, i64>,
    pub by_tier: BTreeMap<String, i64>,
    /// `translate`, `voiceover`, `vertical`: tasks that asked for it.
    pub by_feature: BTreeMap<String, i64>,
}

/// The business metrics of `[since, until)`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Metrics {
    pub since: i64,
    pub until: i64,
    pub dau: i64,
    pub wau: i64,
    pub mau: i64,
    /// Users active in the period.
    pub active: i64,
    /// Users who first appeared in the period, and how many of them paid.
    pub new_users: i64,
    pub new_paying: i64,
    pub conversion: f64,
    /// RUB.
    pub revenue: i64,
    pub revenue_by_plan: Vec<PlanRevenue>,
    /// RUB per active user.
    pub arpu: f64,
    pub retention: BTreeMap<String, Retention>,
    pub tasks: TaskCounts,
    pub processing: BTreeMap<String, Timing>,
}

fn ratio(a: i64, b: i64) -> f64 {
    if b <= 0 {
        0.0
    } else {
        (a as f64 / b as f64 * 10_000.0).round() / 10_000.0
    }
}

/// Users active on the UTC days `[from_day, to_day)` (bot activity or a task created).
const ACTIVE: &str = "SELECT CAST(COUNT(*) AS BIGINT) FROM ( \
       SELECT user_id FROM user_days WHERE day >= $1 AND day < $2 \
       UNION \
       SELECT user_id FROM tasks WHERE user_id IS NOT NULL AND created_at >= $3 AND created_at < $4 \
     ) AS active";

impl Store {
    /// Records that the user (`users.id`) was active on `now`'s UTC day (idempotent).
    pub async fn record_activity(&self, user_id: i64, now: i64) -> Result<()> {
        sqlx::query("INSERT INTO user_days (user_id, day) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(user_id)
            .bind(utc_day(now))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn active_between_days(&self, from_day: i64, to_day: i64) -> Result<i64> {
        Ok(sqlx::query_scalar::<_, i64>(ACTIVE)
            .bind(from_day)
            .bind(to_day)
            .bind(from_day * DAY_MS)
            .bind(to_day * DAY_MS)
            .fetch_one(&self.pool)
            .await?)
    }

    /// The business metrics of `[since, until)` (see the module docs for the definitions).
    pub async fn metrics(&self, since: i64, until: i64) -> Result<Metrics> {
        let today = utc_day(until - 1);
        let mut m = Metrics {
            since,
            until,
            dau: self.active_between_days(today, today + 1).await?,
            wau: self.active_between_days(today - 6, today + 1).await?,
            mau: self.active_between_days(today - 29, today + 1).await?,
            ..Metrics::default()
        };
        m.active = sqlx::query_scalar::<_, i64>(ACTIVE)
            .bind(utc_day(since))
            .bind(today + 1)
            .bind(since)
            .bind(until)
            .fetch_one(&self.pool)
            .await?;
        m.new_users = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM users WHERE created_at >= $1 AND created_at < $2",
        )
        .bind(since)
        .bind(until)
        .fetch_one(&self.pool)
        .await?;
        m.new_paying = sqlx::query_scalar(
            "SELECT CAST(COUNT(DISTINCT u.id) AS BIGINT) FROM users u JOIN payments p ON p.user_id = u.id \
             WHERE u.created_at >= $1 AND u.created_at < $2 AND p.status = 'confirmed' AND p.confirmed_at < $2",
        )
        .bind(since)
        .bind(until)
        .fetch_one(&self.pool)
        .await?;
        m.conversion = ratio(m.new_paying, m.new_users);
        for row in sqlx::query(
            "SELECT tier, period, CAST(COUNT(*) AS BIGINT) AS n, CAST(SUM(amount) AS BIGINT) AS total \
             FROM payments WHERE status = 'confirmed' AND confirmed_at >= $1 AND confirmed_at < $2 \
             GROUP BY tier, period ORDER BY tier, period",
        )
        .bind(since)
        .bind(until)
        .fetch_all(&self.pool)
        .await?
        {
            let p = PlanRevenue {
                tier: row.try_get("tier")?,
                period: row.try_get("period")?,
                payments: row.try_get("n")?,
                amount: row.try_get("total")?,
            };
            m.revenue += p.amount;
            m.revenue_by_plan.push(p);
        }
        m.arpu = if m.active > 0 {
            (m.revenue as f64 / m.active as f64 * 100.0).round() / 100.0
        } else {
            0.0
        };
        for n in [1_i64, 7, 30] {
            let cohort_sql = "FROM users u WHERE u.created_at >= $1 AND u.created_at < $2 \
                 AND u.created_at / 86400000 + $3 < $4";
            let cohort: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT CAST(COUNT(*) AS BIGINT) {cohort_sql}"
            )))
            .bind(since)
            .bind(until)
            .bind(n)
            .bind(today + 1)
            .fetch_one(&self.pool)
            .await?;
            let retained: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT CAST(COUNT(*) AS BIGINT) {cohort_sql} AND ( \
                   EXISTS (SELECT 1 FROM user_days a WHERE a.user_id = u.id AND a.day = u.created_at / 86400000 + $3) \
                   OR EXISTS (SELECT 1 FROM tasks t WHERE t.user_id = u.id \
                     AND t.created_at >= (u.created_at / 86400000 + $3) * 86400000 \
                     AND t.created_at < (u.created_at / 86400000 + $3 + 1) * 86400000))"
            )))
            .bind(since)
            .bind(until)
            .bind(n)
            .bind(today + 1)
            .fetch_one(&self.pool)
            .await?;
            m.retention.insert(
                format!("d{n}"),
                Retention {
                    cohort,
                    retained,
                    rate: ratio(retained, cohort),
                },
            );
        }
        let row = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS total, \
               CAST(COALESCE(SUM(CASE WHEN translate IS NOT NULL AND translate <> '' THEN 1 ELSE 0 END), 0) AS BIGINT) AS tr, \
               CAST(COALESCE(SUM(voiceover), 0) AS BIGINT) AS vo, \
               CAST(COALESCE(SUM(vertical_format), 0) AS BIGINT) AS ve \
             FROM tasks WHERE created_at >= $1 AND created_at < $2",
        )
        .bind(since)
        .bind(until)
        .fetch_one(&self.pool)
        .await?;
        m.tasks.total = row.try_get("total")?;
        m.tasks
            .by_feature
            .insert("translate".into(), row.try_get("tr")?);
        m.tasks
            .by_feature
            .insert("voiceover".into(), row.try_get("vo")?);
        m.tasks
            .by_feature
            .insert("vertical".into(), row.try_get("ve")?);
        for (column, into) in [
            ("status", &mut m.tasks.by_status),
            ("tier", &mut m.tasks.by_tier),
        ] {
            let sql = format!(
                "SELECT {column} AS k, CAST(COUNT(*) AS BIGINT) AS n FROM tasks \
                 WHERE created_at >= $1 AND created_at < $2 GROUP BY {column}"
            );
            for row in sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(since)
                .bind(until)
                .fetch_all(&self.pool)
                .await?
            {
                into.insert(row.try_get("k")?, row.try_get("n")?);
            }
        }
        for tier in Tier::ALL {
            let done = "FROM tasks WHERE status = 'completed' AND tier = $1 AND finished_at >= $2 \
                 AND finished_at < $3 AND started_at IS NOT NULL";
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT CAST(COUNT(*) AS BIGINT) {done}"
            )))
            .bind(tier.as_str())
            .bind(since)
            .bind(until)
            .fetch_one(&self.pool)
            .await?;
            if n == 0 {
                continue;
            }
            // Nearest rank: the smallest value with at least p of the values at or below it.
            let at = |p: f64| {
                let k = ((p * n as f64).ceil() as i64 - 1).clamp(0, n - 1);
                let sql = format!(
                    "SELECT finished_at - started_at {done} ORDER BY finished_at - started_at LIMIT 1 OFFSET $4"
                );
                let pool = self.pool.clone();
                async move {
                    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
                        .bind(tier.as_str())
                        .bind(since)
                        .bind(until)
                        .bind(k)
                        .fetch_one(&pool)
                        .await
                }
            };
            let median = at(0.5).await?;
            let p95 = at(0.95).await?;
            m.processing.insert(
                tier.as_str().to_owned(),
                Timing {
                    tasks: n,
                    median_s: median as f64 / 1000.0,
                    p95_s: p95 as f64 / 1000.0,
                },
            );
        }
        Ok(m)
    }
}
