//! Payments, subscriptions and notices.
//!
//! A payment's state changes and what it does to its user happen in ONE transaction each: confirming marks the
//! payment confirmed only if it was not, extends the user's tier, records what was granted (for a chargeback) and
//! writes the user's notice, all or nothing. A replay finds the payment already confirmed and changes nothing.
//! See docs/BILLING.md for the state machine.
//!
//! Notices are messages for users written by processes that do not talk to Telegram (billing, workers); the bot
//! sends each once. Schedules let any number of processes share a periodic job: the one that moves a schedule's
//! `next_run_at` first runs it for that period.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row};

use crate::error::{Result, StoreError};
use crate::store::{
    insert_log, parse_enum, parse_tier, user_from_row, Level, PaymentPeriod, PaymentStatus, Store,
    User, DAY_MS, USER_COLUMNS,
};
use crate::tiers::Tier;

/// A payment to record with [`Store::insert_payment`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewPayment {
    /// `users.id` (not the Telegram id).
    pub user_id: i64,
    /// Amount in whole roubles.
    pub amount: i64,
    pub currency: String,
    pub tier: Tier,
    pub period: PaymentPeriod,
    /// Days of `tier` the payment buys (fixed when it is made: a price list changed meanwhile does not change it).
    pub days: i64,
    pub status: PaymentStatus,
    /// The provider's id of the payment; unique.
    pub external_id: Option<String>,
    /// What was sent to the provider to tie the payment to its user and plan (JSON text).
    pub payload: Option<String>,
    /// The request (button press) that asked for it; unique, so a redelivered press finds this payment.
    pub request_key: Option<String>,
    /// The provider's payment page.
    pub redirect_url: Option<String>,
    /// When the provider stops accepting the payment.
    pub expires_at: Option<i64>,
}

/// A row of `payments`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Payment {
    pub id: i64,
    pub user_id: i64,
    pub amount: i64,
    pub currency: String,
    pub tier: Tier,
    pub period: PaymentPeriod,
    pub days: i64,
    pub status: PaymentStatus,
    pub external_id: Option<String>,
    pub payload: Option<String>,
    pub request_key: Option<String>,
    pub redirect_url: Option<String>,
    pub expires_at: Option<i64>,
    pub confirmed_at: Option<i64>,
    /// The tier whose time confirming extended, and by how much (ms); a chargeback takes it back.
    pub granted_tier: Option<Tier>,
    pub granted_ms: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

const PAYMENT_COLUMNS: &str = "id, user_id, amount, currency, tier, period, days, status, external_id, payload, \
    request_key, redirect_url, expires_at, confirmed_at, granted_tier, granted_ms, created_at, updated_at";

fn payment_from_row(row: &AnyRow) -> Result<Payment> {
    Ok(Payment {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        amount: row.try_get("amount")?,
        currency: row.try_get("currency")?,
        tier: parse_tier(&row.try_get::<String, _>("tier")?)?,
        period: parse_enum(&row.try_get::<String, _>("period")?)?,
        days: row.try_get("days")?,
        status: parse_enum(&row.try_get::<String, _>("status")?)?,
        external_id: row.try_get("external_id")?,
        payload: row.try_get("payload")?,
        request_key: row.try_get("request_key")?,
        redirect_url: row.try_get("redirect_url")?,
        expires_at: row.try_get("expires_at")?,
        confirmed_at: row.try_get("confirmed_at")?,
        granted_tier: row
            .try_get::<Option<String>, _>("granted_tier")?
            .as_deref()
            .map(parse_tier)
            .transpose()?,
        granted_ms: row.try_get("granted_ms")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// What one day of each paid tier is worth (its monthly price over the month's days): time moves between tiers
/// at equal value. Upgrading PRO -> CREATOR with 20 PRO days left at 299 and 599 RUB a month gives
/// 20 * 299/599 = 9.98 CREATOR days on top of the new period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DayValues {
    pub pro: f64,
    pub creator: f64,
}

impl DayValues {
    fn of(&self, tier: Tier) -> f64 {
        match tier {
            Tier::Free => 0.0,
            Tier::Pro => self.pro,
            Tier::Creator => self.creator,
        }
    }

    /// `ms` of tier `from` expressed as time of tier `to`.
    pub fn convert(&self, ms: i64, from: Tier, to: Tier) -> i64 {
        let (a, b) = (self.of(from), self.of(to));
        if from == to || a <= 0.0 || b <= 0.0 {
            return if from == to { ms } else { 0 };
        }
        (ms as f64 * a / b).round() as i64
    }
}

/// The result of [`Store::confirm_payment`]. (Returned once per call, never stored in bulk: the size of the
/// rows it carries does not matter.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Activation {
    /// This call confirmed the payment: the user as extended, the payment as recorded.
    Activated { user: User, payment: Payment },
    /// Nothing changed: the payment was already in this state (a replay, or confirmed by another process).
    Unchanged(PaymentStatus),
}

/// The result of [`Store::chargeback_payment`].
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Revocation {
    /// This call marked the payment charged back and took back what it granted (the user as now).
    Revoked {
        user: User,
        payment: Payment,
    },
    Unchanged(PaymentStatus),
}

/// A message for a user, sent by the bot once.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notice {
    pub id: i64,
    pub telegram_id: i64,
    /// `tier_active`, `tier_expiring`, `tier_expired`, `tier_revoked`.
    pub kind: String,
    /// JSON object of the values the text needs (`tier`, `until` in ms).
    pub args: String,
    pub created_at: i64,
}

fn notice_from_row(r: &AnyRow) -> Result<Notice> {
    Ok(Notice {
        id: r.try_get("id")?,
        telegram_id: r.try_get("telegram_id")?,
        kind: r.try_get("kind")?,
        args: r.try_get("args")?,
        created_at: r.try_get("created_at")?,
    })
}

/// What one [`Store::sweep_subscriptions`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Sweep {
    /// Users moved to FREE (each told once).
    pub expired: usize,
    /// Users told their tier ends within the warning window (each expiry once).
    pub warned: usize,
}

/// Payments confirmed in a period (charged back ones excluded).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Revenue {
    pub payments: i64,
    /// Whole roubles.
    pub amount: i64,
}

async fn add_notice(
    conn: &mut AnyConnection,
    telegram_id: i64,
    kind: &str,
    args: &serde_json::Value,
    dedup_key: &str,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO notices (telegram_id, kind, args, dedup_key, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (dedup_key) DO NOTHING",
    )
    .bind(telegram_id)
    .bind(kind)
    .bind(args.to_string())
    .bind(dedup_key)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// `user`'s tier and expiry after `ms` of `tier` are added at `now`, and what was added (tier, ms): from the current
/// expiry when that tier runs, else from now; a higher tier converts the running one's time left at equal value; a
/// lower one adds its time, converted, to the running higher tier; a tier without end stays so.
fn extended(
    user: &User,
    tier: Tier,
    ms: i64,
    values: DayValues,
    now: i64,
) -> (Tier, Option<i64>, Tier, i64) {
    let running = user.effective_tier(now);
    if !running.is_paid() {
        (tier, Some(now + ms), tier, ms)
    } else if running == tier {
        match user.tier_expires_at {
            None => (running, None, running, 0),
            Some(at) => (running, Some(at + ms), running, ms),
        }
    } else if running < tier {
        let left = user.tier_expires_at.map_or(0, |at| at - now);
        let carried = values.convert(left, running, tier);
        (tier, Some(now + ms + carried), tier, ms)
    } else {
        let added = values.convert(ms, tier, running);
        match user.tier_expires_at {
            None => (running, None, running, 0),
            Some(at) => (running, Some(at + added), running, added),
        }
    }
}

/// Days of PRO that an invited user's first payment gives them and their inviter.
pub const REFERRAL_BONUS_DAYS: i64 = 7;

fn tier_name(t: Tier) -> String {
    t.as_str().to_ascii_uppercase()
}

impl Store {
    /// Records a payment; returns its id. A duplicate `external_id` or `request_key` is
    /// [`StoreError::Database`] (use [`Store::payment_by_request_key`] to find the first).
    pub async fn insert_payment(&self, p: &NewPayment, now: i64) -> Result<i64> {
        let id = sqlx::query_scalar::<_, i64>(
            "INSERT INTO payments \
               (user_id, amount, currency, tier, period, days, status, external_id, payload, request_key, \
                redirect_url, expires_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) RETURNING id",
        )
        .bind(p.user_id)
        .bind(p.amount)
        .bind(p.currency.as_str())
        .bind(p.tier.as_str())
        .bind(p.period.as_str())
        .bind(p.days)
        .bind(p.status.as_str())
        .bind(p.external_id.as_deref())
        .bind(p.payload.as_deref())
        .bind(p.request_key.as_deref())
        .bind(p.redirect_url.as_deref())
        .bind(p.expires_at)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    async fn payment_where(&self, condition: &str, value: &str) -> Result<Option<Payment>> {
        let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE {condition} = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(value)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(payment_from_row).transpose()
    }

    /// The payment the provider knows as `external_id`.
    pub async fn get_payment_by_external_id(&self, external_id: &str) -> Result<Option<Payment>> {
        self.payment_where("external_id", external_id).await
    }

    /// The payment asked for by the request `key`.
    pub async fn payment_by_request_key(&self, key: &str) -> Result<Option<Payment>> {
        self.payment_where("request_key", key).await
    }

    /// A pending payment of this user for this plan that the provider still accepts at `now + margin_ms`:
    /// pressing the same plan again sends its link instead of opening another payment.
    pub async fn open_payment(
        &self,
        user_id: i64,
        tier: Tier,
        period: PaymentPeriod,
        at: i64,
    ) -> Result<Option<Payment>> {
        let sql = format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE user_id = $1 AND tier = $2 AND period = $3 \
             AND status = 'pending' AND redirect_url IS NOT NULL AND expires_at > $4 ORDER BY id DESC LIMIT 1"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(user_id)
            .bind(tier.as_str())
            .bind(period.as_str())
            .bind(at)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(payment_from_row).transpose()
    }

    /// A user's payments, newest first.
    pub async fn user_payments(&self, user_id: i64, limit: i64) -> Result<Vec<Payment>> {
        let sql = format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE user_id = $1 ORDER BY id DESC LIMIT $2"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(user_id)
            .bind(limit.max(0))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(payment_from_row).collect()
    }

    /// Pending payments the provider no longer accepts at `now` (to be checked once and closed).
    pub async fn payments_past_expiry(&self, now: i64, limit: i64) -> Result<Vec<Payment>> {
        let sql = format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE status = 'pending' AND expires_at <= $1 \
             ORDER BY id LIMIT $2"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(now)
            .bind(limit.max(0))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(payment_from_row).collect()
    }

    /// Confirms the payment `external_id` and gives its user the payment's days of its tier, in one transaction,
    /// once.
    ///
    /// The time is added from the current expiry when the user's paid tier is still running, else from `now`.
    /// Buying a higher tier than the running one converts the remaining time into the new tier at equal value
    /// (`values`); buying a lower one while a higher one runs adds the bought time to the higher tier, converted
    /// the same way. A tier granted without end stays without end when the same tier is bought. Also writes the
    /// user's `tier_active` notice and an INFO log row. Any state but `confirmed` and `chargebacked` may be
    /// confirmed (a payment that expired or was cancelled here, then paid after all, still activates).
    pub async fn confirm_payment(
        &self,
        external_id: &str,
        values: DayValues,
        now: i64,
    ) -> Result<Activation> {
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE external_id = $1{}",
            self.for_update()
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(external_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("payment {external_id}")))?;
        let payment = payment_from_row(&row)?;
        if matches!(
            payment.status,
            PaymentStatus::Confirmed | PaymentStatus::Chargebacked
        ) {
            return Ok(Activation::Unchanged(payment.status));
        }
        if !payment.tier.is_paid() || payment.days <= 0 {
            return Err(StoreError::InvalidInput(format!(
                "payment {} buys {} days of {}",
                payment.id, payment.days, payment.tier
            )));
        }
        let days = payment.days;
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id = $1{}",
            self.for_update()
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(payment.user_id)
            .fetch_one(&mut *tx)
            .await?;
        let user = user_from_row(&row)?;
        let bought = days.saturating_mul(DAY_MS);
        let (tier, expires_at, granted_tier, granted_ms) =
            extended(&user, payment.tier, bought, values, now);
        sqlx::query(
            "UPDATE payments SET status = 'confirmed', confirmed_at = $2, granted_tier = $3, granted_ms = $4, \
             updated_at = $2 WHERE id = $1",
        )
        .bind(payment.id)
        .bind(now)
        .bind(granted_tier.as_str())
        .bind(granted_ms)
        .execute(&mut *tx)
        .await?;
        let sql = format!(
            "UPDATE users SET tier = $2, tier_expires_at = $3, updated_at = $4 WHERE id = $1 RETURNING {USER_COLUMNS}"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(user.id)
            .bind(tier.as_str())
            .bind(expires_at)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
        let user = user_from_row(&row)?;
        add_notice(
            &mut tx,
            user.telegram_id,
            "tier_active",
            &serde_json::json!({"tier": tier.as_str(), "until": expires_at, "payment": payment.id}),
            &format!("payment:{}:confirmed", payment.id),
            now,
        )
        .await?;
        let message = format!(
            "payment {} ({} {} {}, {}) confirmed: user {} has {} until {}",
            payment.id,
            tier_name(payment.tier),
            payment.period,
            payment.amount,
            payment.currency,
            user.telegram_id,
            tier_name(tier),
            expires_at.map_or_else(|| "no end".to_owned(), |at| at.to_string())
        );
        insert_log(&mut tx, Level::Info, "billing", None, &message, now).await?;
        let user = self.reward_referral(&mut tx, user, values, now).await?;
        let payment = Payment {
            status: PaymentStatus::Confirmed,
            confirmed_at: Some(now),
            granted_tier: Some(granted_tier),
            granted_ms,
            updated_at: now,
            ..payment
        };
        tx.commit().await?;
        Ok(Activation::Activated { user, payment })
    }

    /// In a confirming transaction: if `invited` came through an invitation not rewarded yet, both get
    /// [`REFERRAL_BONUS_DAYS`] of PRO (added as a purchase would be), a notice each, once. Returns `invited` as now.
    async fn reward_referral(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        invited: User,
        values: DayValues,
        now: i64,
    ) -> Result<User> {
        let done = sqlx::query(
            "UPDATE referrals SET rewarded_at = $2 WHERE invited_id = $1 AND rewarded_at IS NULL \
             RETURNING inviter_id",
        )
        .bind(invited.id)
        .bind(now)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(row) = done else {
            return Ok(invited);
        };
        let inviter_id: i64 = row.try_get("inviter_id")?;
        let mut invited_now = invited;
        for id in [invited_now.id, inviter_id] {
            let sql = format!(
                "SELECT {USER_COLUMNS} FROM users WHERE id = $1{}",
                self.for_update()
            );
            let row = sqlx::query(AssertSqlSafe(sql))
                .bind(id)
                .fetch_one(&mut **tx)
                .await?;
            let user = user_from_row(&row)?;
            let (tier, until, _, _) =
                extended(&user, Tier::Pro, REFERRAL_BONUS_DAYS * DAY_MS, values, now);
            let sql = format!(
                "UPDATE users SET tier = $2, tier_expires_at = $3, updated_at = $4 WHERE id = $1 RETURNING {USER_COLUMNS}"
            );
            let row = sqlx::query(AssertSqlSafe(sql))
                .bind(id)
                .bind(tier.as_str())
                .bind(until)
                .bind(now)
                .fetch_one(&mut **tx)
                .await?;
            let user = user_from_row(&row)?;
            add_notice(
                tx,
                user.telegram_id,
                "referral_bonus",
                &serde_json::json!({"tier": tier.as_str(), "until": until, "days": REFERRAL_BONUS_DAYS}),
                &format!("referral:{}:{}", invited_now.id, user.id),
                now,
            )
            .await?;
            if id == invited_now.id {
                invited_now = user;
            }
        }
        let message = format!(
            "referral: user {} paid for the first time; both they and their inviter got {REFERRAL_BONUS_DAYS} days of PRO",
            invited_now.telegram_id
        );
        insert_log(tx, Level::Info, "billing", None, &message, now).await?;
        Ok(invited_now)
    }

    /// Records that `invited` (users.id) came through the invitation `code` of another user. Only for a user who
    /// is new (first seen less than an hour before `now`, nothing paid) and only the first invitation counts;
    /// one's own code, an unknown code, or an old user: `false`, nothing recorded.
    pub async fn record_referral(&self, invited: i64, code: &str, now: i64) -> Result<bool> {
        let Some(inviter) = referral_user(code) else {
            return Ok(false);
        };
        if inviter == invited {
            return Ok(false);
        }
        let done = sqlx::query(
            "INSERT INTO referrals (invited_id, inviter_id, created_at) \
             SELECT u.id, i.id, $3 FROM users u, users i \
             WHERE u.id = $1 AND i.id = $2 AND u.created_at >= $4 \
               AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.user_id = u.id AND p.status = 'confirmed') \
             ON CONFLICT (invited_id) DO NOTHING",
        )
        .bind(invited)
        .bind(inviter)
        .bind(now)
        .bind(now - 3_600_000)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// How many users a user invited, and how many of them paid (for `/invite`).
    pub async fn referral_counts(&self, inviter: i64) -> Result<(i64, i64)> {
        let row = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n, \
               CAST(COALESCE(SUM(CASE WHEN rewarded_at IS NULL THEN 0 ELSE 1 END), 0) AS BIGINT) AS paid \
             FROM referrals WHERE inviter_id = $1",
        )
        .bind(inviter)
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get("n")?, row.try_get("paid")?))
    }

    /// Marks the payment charged back and takes back the time confirming it granted (converted at equal value if
    /// the user has moved to another paid tier since); a user left with no time is FREE. Writes the
    /// `tier_revoked` notice and a WARNING log row. A payment never confirmed is only marked.
    pub async fn chargeback_payment(
        &self,
        external_id: &str,
        values: DayValues,
        now: i64,
    ) -> Result<Revocation> {
        let mut tx = self.begin_write().await?;
        let sql = format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE external_id = $1{}",
            self.for_update()
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(external_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("payment {external_id}")))?;
        let payment = payment_from_row(&row)?;
        if payment.status == PaymentStatus::Chargebacked {
            return Ok(Revocation::Unchanged(payment.status));
        }
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id = $1{}",
            self.for_update()
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(payment.user_id)
            .fetch_one(&mut *tx)
            .await?;
        let mut user = user_from_row(&row)?;
        let granted = payment
            .granted_tier
            .filter(|_| payment.status == PaymentStatus::Confirmed && payment.granted_ms > 0);
        if let (Some(granted), Some(at)) = (granted, user.tier_expires_at) {
            let running = user.effective_tier(now);
            if running.is_paid() && running >= granted {
                let back = values.convert(payment.granted_ms, granted, running);
                let left = at - back;
                let (tier, expires_at) = if left <= now {
                    (Tier::Free, None)
                } else {
                    (running, Some(left))
                };
                let sql = format!(
                    "UPDATE users SET tier = $2, tier_expires_at = $3, updated_at = $4 WHERE id = $1 \
                     RETURNING {USER_COLUMNS}"
                );
                let row = sqlx::query(AssertSqlSafe(sql))
                    .bind(user.id)
                    .bind(tier.as_str())
                    .bind(expires_at)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                user = user_from_row(&row)?;
            }
        }
        sqlx::query("UPDATE payments SET status = 'chargebacked', updated_at = $2 WHERE id = $1")
            .bind(payment.id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        if granted.is_some() {
            let tier = user.effective_tier(now);
            add_notice(
                &mut tx,
                user.telegram_id,
                "tier_revoked",
                &serde_json::json!({"tier": tier.as_str(), "until": user.tier_expires_at, "payment": payment.id}),
                &format!("payment:{}:chargeback", payment.id),
                now,
            )
            .await?;
        }
        let message = format!(
            "payment {} ({} {} {}) charged back: user {} now has {}",
            payment.id,
            tier_name(payment.tier),
            payment.period,
            payment.amount,
            user.telegram_id,
            tier_name(user.effective_tier(now))
        );
        insert_log(&mut tx, Level::Warning, "billing", None, &message, now).await?;
        let payment = Payment {
            status: PaymentStatus::Chargebacked,
            updated_at: now,
            ..payment
        };
        tx.commit().await?;
        Ok(Revocation::Revoked { user, payment })
    }

    /// Closes a payment that was not paid: `to` is `Canceled` (the provider says so) or `Expired` (still pending
    /// at the provider after its expiry). Only a pending payment (or an expired one being cancelled) changes;
    /// true when this call changed it.
    pub async fn close_payment(
        &self,
        external_id: &str,
        to: PaymentStatus,
        now: i64,
    ) -> Result<bool> {
        let from: &[&str] = match to {
            PaymentStatus::Canceled => &["pending", "expired"],
            PaymentStatus::Expired => &["pending"],
            other => {
                return Err(StoreError::InvalidInput(format!(
                    "a payment cannot be closed as {other}"
                )))
            }
        };
        let sql = format!(
            "UPDATE payments SET status = $2, updated_at = $3 WHERE external_id = $1 AND status IN ({})",
            from.iter()
                .map(|s| format!("'{s}'"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(external_id)
            .bind(to.as_str())
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Confirmed payments (not charged back since) with `confirmed_at` in `[since, until)`.
    pub async fn revenue(&self, since: i64, until: i64) -> Result<Revenue> {
        let row = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS n, CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS total \
             FROM payments WHERE status = 'confirmed' AND confirmed_at >= $1 AND confirmed_at < $2",
        )
        .bind(since)
        .bind(until)
        .fetch_one(&self.pool)
        .await?;
        Ok(Revenue {
            payments: row.try_get("n")?,
            amount: row.try_get("total")?,
        })
    }

    /// Moves users whose paid tier ended to FREE (telling them: `tier_expired`) and tells those whose tier ends
    /// within `warn_ms` (`tier_expiring`, once per expiry date). Safe to run from many processes at once and as
    /// often as wanted: each user is moved and told once.
    pub async fn sweep_subscriptions(&self, now: i64, warn_ms: i64) -> Result<Sweep> {
        let rows = sqlx::query(
            "SELECT id, telegram_id, tier, tier_expires_at FROM users WHERE tier <> 'free' \
             AND tier_expires_at IS NOT NULL AND tier_expires_at <= $1 ORDER BY id",
        )
        .bind(now.saturating_add(warn_ms))
        .fetch_all(&self.pool)
        .await?;
        let mut sweep = Sweep::default();
        for row in rows {
            let id: i64 = row.try_get("id")?;
            let telegram_id: i64 = row.try_get("telegram_id")?;
            let tier = parse_tier(&row.try_get::<String, _>("tier")?)?;
            let at: i64 = row.try_get("tier_expires_at")?;
            let mut tx = self.begin_write().await?;
            // Read again under the lock: a payment confirmed since the first read moved the date, and wins.
            let sql = format!(
                "SELECT tier_expires_at FROM users WHERE id = $1{}",
                self.for_update()
            );
            let current: Option<i64> = sqlx::query_scalar(AssertSqlSafe(sql))
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            if current != Some(at) {
                continue;
            }
            if at <= now {
                let done = sqlx::query(
                    "UPDATE users SET tier = 'free', tier_expires_at = NULL, updated_at = $3 \
                     WHERE id = $1 AND tier_expires_at = $2",
                )
                .bind(id)
                .bind(at)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 1 {
                    add_notice(
                        &mut tx,
                        telegram_id,
                        "tier_expired",
                        &serde_json::json!({"tier": tier.as_str(), "until": at}),
                        &format!("expired:{id}:{at}"),
                        now,
                    )
                    .await?;
                    let message =
                        format!("user {telegram_id}: {} ended, now FREE", tier_name(tier));
                    insert_log(&mut tx, Level::Info, "billing", None, &message, now).await?;
                    sweep.expired += 1;
                }
            } else if add_notice(
                &mut tx,
                telegram_id,
                "tier_expiring",
                &serde_json::json!({"tier": tier.as_str(), "until": at}),
                &format!("expiring:{id}:{at}"),
                now,
            )
            .await?
            {
                sweep.warned += 1;
            }
            tx.commit().await?;
        }
        Ok(sweep)
    }

    /// Claims the run of the periodic job `name` due at `now`: true for exactly one caller per period (the one
    /// that moved `next_run_at` to `now + period_ms`), false while the period runs or when another got it.
    pub async fn claim_schedule(&self, name: &str, now: i64, period_ms: i64) -> Result<bool> {
        let next = now.saturating_add(period_ms);
        let done = sqlx::query(
            "UPDATE schedules SET next_run_at = $3 WHERE name = $1 AND next_run_at <= $2",
        )
        .bind(name)
        .bind(now)
        .bind(next)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(true);
        }
        // The first run ever: whoever creates the row has it (a write only then, not on every look).
        let created = sqlx::query(
            "INSERT INTO schedules (name, next_run_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(next)
        .execute(&self.pool)
        .await?;
        Ok(created.rows_affected() == 1)
    }

    /// Notices not sent yet, oldest first.
    pub async fn notices_unsent(&self, limit: i64) -> Result<Vec<Notice>> {
        let rows = sqlx::query(
            "SELECT id, telegram_id, kind, args, created_at FROM notices WHERE sent_at IS NULL \
             ORDER BY id LIMIT $1",
        )
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(notice_from_row).collect()
    }

    /// Records a notice as sent (or given up on).
    pub async fn notice_sent(&self, id: i64, now: i64) -> Result<()> {
        sqlx::query("UPDATE notices SET sent_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Notices of a user, oldest first (for tests and `/user`).
    pub async fn user_notices(&self, telegram_id: i64) -> Result<Vec<Notice>> {
        let rows = sqlx::query(
            "SELECT id, telegram_id, kind, args, created_at FROM notices WHERE telegram_id = $1 ORDER BY id",
        )
        .bind(telegram_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(notice_from_row).collect()
    }
}

/// A user's invitation code (`ref_CODE` in `t.me/BOT?start=ref_CODE`): their `users.id` in base 36.
pub fn referral_code(user_id: i64) -> String {
    let mut n = user_id.unsigned_abs();
    let mut out = Vec::new();
    loop {
        out.push(b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// The `users.id` an invitation code names (`None` for anything that is not one).
pub fn referral_user(code: &str) -> Option<i64> {
    if code.is_empty() || code.len() > 13 {
        return None;
    }
    i64::from_str_radix(code, 36).ok().filter(|n| *n > 0)
}

/// The first millisecond of the UTC month that `now` falls in.
pub fn utc_month_start(now: i64) -> i64 {
    let (y, m, _) = crate::store::utc_date(now);
    crate::store::utc_day_start(y, m, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referral_codes_round_trip() {
        for id in [1, 35, 36, 123_456_789, i64::MAX] {
            assert_eq!(referral_user(&referral_code(id)), Some(id));
        }
        for bad in ["", "0", "-5", "x y", "zzzzzzzzzzzzzzzz", "ref_1"] {
            assert_eq!(referral_user(bad), None, "{bad}");
        }
    }

    #[test]
    fn month_starts() {
        // 2026-12-04T21:00Z -> 2026-12-01; 2024-03-01 stays; 2024-02-29 -> 2024-02-01.
        assert_eq!(utc_month_start(1_796_418_000_000), 1_796_083_200_000);
        assert_eq!(utc_month_start(1_709_251_200_000), 1_709_251_200_000);
        assert_eq!(utc_month_start(1_709_164_800_000 + 5), 1_706_745_600_000);
        assert_eq!(utc_month_start(0), 0);
    }

    #[test]
    fn time_converts_at_equal_value() {
        let v = DayValues {
            pro: 299.0 / 30.0,
            creator: 599.0 / 30.0,
        };
        let day = DAY_MS;
        assert_eq!(v.convert(20 * day, Tier::Pro, Tier::Pro), 20 * day);
        let c = v.convert(20 * day, Tier::Pro, Tier::Creator);
        assert_eq!(c, (20.0 * day as f64 * 299.0 / 599.0).round() as i64);
        // And back: the same value.
        assert!((v.convert(c, Tier::Creator, Tier::Pro) - 20 * day).abs() <= 1);
        assert_eq!(v.convert(day, Tier::Free, Tier::Pro), 0);
    }
}
