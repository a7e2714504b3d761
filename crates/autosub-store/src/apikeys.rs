//! Keys of the HTTP API (`/v1/jobs`) and their request counts.
//!
//! A key is made by the service (random, shown once to its owner); the store keeps only its SHA-256 (hex) and its
//! first characters, the prefix that tells keys apart in lists and names one to revoke. Requests are counted per key
//! and fixed window in `api_usage`, one row per key and window shared by every process on the database, so a rate
//! limit holds however many processes serve the API.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::error::{Result, StoreError};
use crate::store::{insert_log, user_from_row, Level, Store, User, USER_COLUMNS};

/// A row of `api_keys` (never the key itself: only its owner saw that, once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    pub id: i64,
    /// `users.id` of the owner.
    pub user_id: i64,
    pub prefix: String,
    pub name: Option<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const KEY_COLUMNS: &str = "id, user_id, prefix, name, created_at, last_used_at, revoked_at";

fn key_from_row(row: &AnyRow) -> Result<ApiKey> {
    Ok(ApiKey {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        prefix: row.try_get("prefix")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

impl Store {
    /// Records a new key of user `user_id` (by its hash and prefix). Refuses with
    /// [`StoreError::InvalidState`] when the user already has `max_active` keys that are not revoked, and with
    /// [`StoreError::NotFound`] when the user does not exist.
    pub async fn create_api_key(
        &self,
        user_id: i64,
        key_hash: &str,
        prefix: &str,
        name: Option<&str>,
        max_active: i64,
        now: i64,
    ) -> Result<ApiKey> {
        let mut tx = self.begin_write().await?;
        // The user's row is locked so that two requests at once cannot both pass the count.
        let sql = format!("SELECT id FROM users WHERE id = $1{}", self.for_update());
        if sqlx::query(AssertSqlSafe(sql))
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?
            .is_none()
        {
            return Err(StoreError::NotFound(format!("user {user_id}")));
        }
        let active: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM api_keys WHERE user_id = $1 AND revoked_at IS NULL",
        )
        .bind(user_id)
        .fetch_one(&mut *tx)
        .await?;
        if active >= max_active {
            return Err(StoreError::InvalidState(format!(
                "{active} API keys are active (at most {max_active}): revoke one first"
            )));
        }
        let sql = format!(
            "INSERT INTO api_keys (user_id, key_hash, prefix, name, created_at) VALUES ($1, $2, $3, $4, $5) \
             RETURNING {KEY_COLUMNS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(user_id)
            .bind(key_hash)
            .bind(prefix)
            .bind(name)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
        let key = key_from_row(&row)?;
        insert_log(
            &mut tx,
            Level::Info,
            "api",
            None,
            &format!("API key {prefix}… made for user {user_id}"),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(key)
    }

    /// The key whose hash is `key_hash` and its owner, unless it was revoked.
    pub async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<(ApiKey, User)>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"
        );
        let Some(row) = sqlx::query(AssertSqlSafe(sql))
            .bind(key_hash)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let key = key_from_row(&row)?;
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        let user = sqlx::query(AssertSqlSafe(sql))
            .bind(key.user_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(Some((key, user_from_row(&user)?)))
    }

    /// The keys of user `user_id`, revoked ones included, newest first.
    pub async fn api_keys_of(&self, user_id: i64) -> Result<Vec<ApiKey>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE user_id = $1 ORDER BY created_at DESC, id DESC"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(key_from_row)
            .collect()
    }

    /// Revokes the active keys of user `user_id` whose prefix is `prefix` (every active key when `None`); how many.
    /// A revoked key is refused from the next request on, by every process.
    pub async fn revoke_api_keys(
        &self,
        user_id: i64,
        prefix: Option<&str>,
        now: i64,
    ) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let q = match prefix {
            Some(p) => sqlx::query(
                "UPDATE api_keys SET revoked_at = $2 \
                 WHERE user_id = $1 AND revoked_at IS NULL AND prefix = $3",
            )
            .bind(user_id)
            .bind(now)
            .bind(p),
            None => sqlx::query(
                "UPDATE api_keys SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
            )
            .bind(user_id)
            .bind(now),
        };
        let n = q.execute(&mut *tx).await?.rows_affected();
        if n > 0 {
            insert_log(
                &mut tx,
                Level::Info,
                "api",
                None,
                &format!(
                    "{n} API key(s) of user {user_id} revoked{}",
                    prefix.map(|p| format!(" ({p}…)")).unwrap_or_default()
                ),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(n)
    }

    /// Counts a request of key `key_id` in the window of `window_ms` that holds `now` and returns the window's count
    /// so far (this request included); the key's `last_used_at` becomes `now`. Windows older than an hour are
    /// dropped on the way.
    pub async fn api_hit(&self, key_id: i64, window_ms: i64, now: i64) -> Result<i64> {
        let window_ms = window_ms.max(1);
        let start = now - now.rem_euclid(window_ms);
        let mut tx = self.pool.begin().await?;
        let n: i64 = sqlx::query_scalar(
            "INSERT INTO api_usage (key_id, window_start, requests) VALUES ($1, $2, 1) \
             ON CONFLICT (key_id, window_start) DO UPDATE SET requests = api_usage.requests + 1 \
             RETURNING requests",
        )
        .bind(key_id)
        .bind(start)
        .fetch_one(&mut *tx)
        .await?;
        if n == 1 {
            sqlx::query("DELETE FROM api_usage WHERE key_id = $1 AND window_start < $2")
                .bind(key_id)
                .bind(start - window_ms.max(3_600_000))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
            .bind(key_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(n)
    }
}
