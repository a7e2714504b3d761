//! AutoSub's billing: the plans, Platega payments, and the subscriptions they activate exactly once.
//!
//! - [`Billing::buy`] (called by the bot when a plan's button is pressed): creates a Platega transaction and records
//!   the `payments` row (pending, `external_id` = Platega's id) before returning the payment link. A redelivered
//!   press (same request key) or pressing the same plan again while its payment is open gives the same link.
//! - [`Billing::callback`] (`POST /billing/platega/callback`): credentials compared in constant time (401), the body
//!   used only to find the transaction, which is read back with `GET /transaction/{id}`: only that answer counts,
//!   and its amount and currency must equal the payment's. CONFIRMED activates (one transaction in the store:
//!   [`autosub_store::Store::confirm_payment`]), CANCELED closes, CHARGEBACKED revokes. Replays change nothing.
//! - [`Billing::reconcile`] (every minute, [`Billing::run`]): a payment still pending after its expiry is read back
//!   once and closed (or activated, if it was paid after all).
//!
//! Processes that are not the bot never talk to Telegram: what the user is told is written as a notice in the same
//! transaction, and the bot sends it. See docs/BILLING.md.

pub mod config;
pub mod platega;
pub mod standin;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;
use tokio::sync::watch;

use autosub_store::{
    now_ms, Activation, Level, NewPayment, Payment, PaymentPeriod, PaymentStatus, Revocation,
    Store, StoreError, Tier,
};

pub use config::{BillingConfig, Plan, Plans, CURRENCY, DEFAULT_PLANS};
pub use platega::{Platega, PlategaError, TxState, TxStatus};

/// A pending payment is read back this long after Platega's expiry of it (clocks and the create's own time differ).
pub const RECONCILE_GRACE_MS: i64 = 2 * 60_000;

/// How long making a payment link may take in all, retries included: the bot waits for it.
pub const CREATE_DEADLINE: Duration = Duration::from_secs(8);

/// The path Platega posts its callbacks to (set `$AUTOSUB_PUBLIC_URL` + this in Platega's cabinet).
pub const CALLBACK_PATH: &str = "/billing/platega/callback";

/// Why a payment link could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BuyError {
    #[error("payments are not configured (AUTOSUB_PLATEGA_MERCHANT_ID, AUTOSUB_PLATEGA_SECRET)")]
    NotConfigured,
    #[error("no such plan")]
    NoSuchPlan,
    /// Platega did not answer after the retries: try again in a few minutes.
    #[error("the payment service is not reachable: {0}")]
    Unavailable(String),
    /// Platega refused (wrong credentials, a bad request): the operator must look.
    #[error("the payment service refused: {0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A payment link for a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub url: String,
    pub plan: Plan,
    pub payment_id: i64,
}

/// The answer to a callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    fn new(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            body: body.into(),
        }
    }
}

/// What a verified transaction state did to its payment.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    Activated {
        tier: Tier,
        until: Option<i64>,
    },
    Revoked,
    Closed(PaymentStatus),
    /// Already in that state (a replay): nothing changed.
    Unchanged,
    /// Platega still says PENDING.
    StillPending,
    /// Amount or currency differ from the payment's: nothing done (logged as an ERROR).
    Mismatch,
    /// A status this code does not act on.
    Ignored(String),
}

/// The billing service: shared by the HTTP handler, the bot and the reconciliation loop.
pub struct Billing {
    store: Store,
    cfg: BillingConfig,
    client: Option<Platega>,
    /// One callback per transaction at a time in this process (the database makes it once across processes;
    /// this only spares Platega the read-backs of a burst of replays).
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// When a noisy kind of journal row (forged or garbage callbacks) was last written, to keep an attacker from
    /// filling `system_logs`: at most one row a minute per kind (every one still goes to the process log).
    noisy: Mutex<HashMap<&'static str, i64>>,
    /// How often [`Billing::run`] reconciles.
    pub reconcile_every: Duration,
    /// The whole time a payment link may take ([`CREATE_DEADLINE`]).
    pub create_deadline: Duration,
}

/// Constant-time equality of two byte strings (the length is not secret).
fn same(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}

/// A transaction id as written in a callback: short, plain characters (anything else is garbage).
fn plain_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn period_text(p: PaymentPeriod) -> &'static str {
    match p {
        PaymentPeriod::Month => "1 month",
        PaymentPeriod::Year => "1 year",
    }
}

fn tier_name(t: Tier) -> String {
    t.as_str().to_ascii_uppercase()
}

impl Billing {
    pub fn new(store: Store, cfg: BillingConfig) -> Result<Billing, PlategaError> {
        let client = match &cfg.credentials {
            Some((merchant, secret)) => Some(Platega::new(&cfg.api_url, merchant, secret.clone())?),
            None => None,
        };
        Ok(Billing {
            store,
            cfg,
            client,
            locks: Mutex::new(HashMap::new()),
            noisy: Mutex::new(HashMap::new()),
            reconcile_every: Duration::from_secs(60),
            create_deadline: CREATE_DEADLINE,
        })
    }

    /// Sets the waits between attempts to create a transaction (tests shorten them).
    pub fn with_create_backoff(mut self, waits: Vec<Duration>) -> Billing {
        if let Some(c) = &mut self.client {
            c.create_backoff = waits;
        }
        self
    }

    /// Whether payments can be taken.
    pub fn configured(&self) -> bool {
        self.client.is_some()
    }

    pub fn plans(&self) -> &Plans {
        &self.cfg.plans
    }

    pub fn config(&self) -> &BillingConfig {
        &self.cfg
    }

    /// Writes a journal row (and a process log line), at most one a minute for `noisy_kind`s.
    async fn journal(
        &self,
        level: Level,
        noisy_kind: Option<&'static str>,
        message: &str,
        now: i64,
    ) {
        match level {
            Level::Info => tracing::info!("{message}"),
            Level::Warning => tracing::warn!("{message}"),
            _ => tracing::error!("{message}"),
        }
        if let Some(kind) = noisy_kind {
            let mut last = self.noisy.lock().unwrap_or_else(PoisonError::into_inner);
            match last.get(kind) {
                Some(at) if now - at < 60_000 => return,
                _ => {
                    last.insert(kind, now);
                }
            }
        }
        if let Err(e) = self.store.log(level, "billing", None, message, now).await {
            tracing::error!("cannot write the billing journal: {e}");
        }
    }

    /// A payment link for `tier`/`period`, for the user `telegram_id`, asked for by the request `request_key`
    /// (the bot's update id of the button press).
    pub async fn buy(
        &self,
        telegram_id: i64,
        tier: Tier,
        period: PaymentPeriod,
        request_key: &str,
        now: i64,
    ) -> Result<Link, BuyError> {
        let client = self.client.as_ref().ok_or(BuyError::NotConfigured)?;
        let plan = *self
            .cfg
            .plans
            .get(tier, period)
            .ok_or(BuyError::NoSuchPlan)?;
        // A payment already made keeps its own price and days (the price list may have changed since).
        let link = |p: &Payment| {
            p.redirect_url.clone().map(|url| Link {
                url,
                plan: Plan {
                    tier: p.tier,
                    period: p.period,
                    price: p.amount,
                    days: p.days,
                },
                payment_id: p.id,
            })
        };
        if let Some(l) = self
            .store
            .payment_by_request_key(request_key)
            .await?
            .as_ref()
            .and_then(link)
        {
            return Ok(l);
        }
        let user = self.store.upsert_user(telegram_id, None, None, now).await?;
        // The same plan pressed again while its payment is open (5 minutes to spare): the same link.
        if let Some(l) = self
            .store
            .open_payment(user.id, tier, period, now + 5 * 60_000)
            .await?
            .as_ref()
            .and_then(link)
        {
            return Ok(l);
        }
        let public = self.cfg.public_url.as_deref().unwrap_or_default();
        let payload = json!({
            "user": telegram_id,
            "tier": tier.as_str(),
            "period": period.as_str(),
            "key": request_key,
        })
        .to_string();
        let started = std::time::Instant::now();
        let created = client
            .create_within(
                self.create_deadline,
                &platega::NewTransaction {
                    amount: plan.price,
                    currency: CURRENCY.to_owned(),
                    description: format!("AutoSub {} — {}", tier_name(tier), period_text(period)),
                    return_url: format!("{public}/billing/return"),
                    failed_url: format!("{public}/billing/fail"),
                    payload: payload.clone(),
                    method: self.cfg.method,
                },
            )
            .await;
        // Platega's expiry counts from its answer, not from the press.
        let now = now + started.elapsed().as_millis() as i64;
        let created = match created {
            Ok(c) => c,
            Err(e) => {
                metrics::counter!("autosub_payments_created_total", "result" => "failed")
                    .increment(1);
                let level = if e.transient() {
                    Level::Warning
                } else {
                    Level::Error
                };
                self.journal(
                    level,
                    None,
                    &format!("cannot create a payment for user {telegram_id}: {e}"),
                    now,
                )
                .await;
                return Err(if e.transient() {
                    BuyError::Unavailable(e.to_string())
                } else {
                    BuyError::Refused(e.to_string())
                });
            }
        };
        let row = NewPayment {
            user_id: user.id,
            amount: plan.price,
            currency: CURRENCY.to_owned(),
            tier,
            period,
            days: plan.days,
            status: PaymentStatus::Pending,
            external_id: Some(created.id.clone()),
            payload: Some(payload),
            request_key: Some(request_key.to_owned()),
            redirect_url: Some(created.redirect.clone()),
            expires_at: Some(now + created.expires_in.as_millis() as i64),
        };
        let id = match self.store.insert_payment(&row, now).await {
            Ok(id) => id,
            Err(StoreError::Database(e)) => {
                // The same press handled twice at once: the first row wins, its link is sent.
                match self.store.payment_by_request_key(request_key).await? {
                    Some(p) => return link(&p).ok_or(StoreError::Database(e).into()),
                    None => return Err(StoreError::Database(e).into()),
                }
            }
            Err(e) => return Err(e.into()),
        };
        metrics::counter!("autosub_payments_created_total", "result" => "created").increment(1);
        self.journal(
            Level::Info,
            None,
            &format!(
                "payment {id} created: user {telegram_id}, {} {}, {} {CURRENCY}, transaction {}",
                tier_name(tier),
                period,
                plan.price,
                created.id
            ),
            now,
        )
        .await;
        Ok(Link {
            url: created.redirect,
            plan,
            payment_id: id,
        })
    }

    fn lock_for(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry(id.to_owned()).or_default().clone()
    }

    /// Handles one callback: `headers` and raw `body` as received.
    pub async fn callback(&self, headers: &HeaderMap, body: &[u8], now: i64) -> Reply {
        let reply = self.callback_inner(headers, body, now).await;
        let result = match reply.status {
            200 => "ok",
            401 => "unauthorized",
            400 => "bad_request",
            404 => "unknown",
            _ => "error",
        };
        metrics::counter!("autosub_billing_callbacks_total", "result" => result).increment(1);
        reply
    }

    async fn callback_inner(&self, headers: &HeaderMap, body: &[u8], now: i64) -> Reply {
        let Some(client) = &self.client else {
            return Reply::new(503, "payments are not configured\n");
        };
        let header = |name: &str| headers.get(name).map_or(&b""[..], |v| v.as_bytes());
        let merchant_ok = same(header("X-MerchantId"), client.merchant_id().as_bytes());
        let secret_ok = same(header("X-Secret"), client.secret().expose().as_bytes());
        if !(merchant_ok & secret_ok) {
            self.journal(
                Level::Warning,
                Some("forged"),
                "a payment callback with wrong credentials was refused (401)",
                now,
            )
            .await;
            return Reply::new(401, "unauthorized\n");
        }
        let parsed = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
            let id = v.get("id")?.as_str().filter(|s| plain_id(s))?.to_owned();
            let claim = v.get("status").and_then(Value::as_str).map(TxStatus::parse);
            Some((id, claim))
        });
        let Some((id, claim)) = parsed else {
            self.journal(
                Level::Warning,
                Some("garbage"),
                &format!(
                    "a payment callback whose body is not a Platega notification ({} bytes) was refused (400)",
                    body.len()
                ),
                now,
            )
            .await;
            return Reply::new(400, "not a Platega notification\n");
        };
        let lock = self.lock_for(&id);
        let _one_at_a_time = lock.lock().await;
        let payment = match self.store.get_payment_by_external_id(&id).await {
            Ok(Some(p)) => p,
            Ok(None) => {
                self.journal(
                    Level::Warning,
                    Some("unknown"),
                    &format!("a payment callback for unknown transaction {id} was ignored (404)"),
                    now,
                )
                .await;
                return Reply::new(404, "unknown transaction\n");
            }
            Err(e) => {
                tracing::error!("payment callback: {e}");
                return Reply::new(503, "try again later\n");
            }
        };
        // The claim only saves a read-back when it is what the payment already is; it never changes anything.
        let settled = matches!(
            (&claim, payment.status),
            (Some(TxStatus::Confirmed), PaymentStatus::Confirmed)
                | (Some(TxStatus::Canceled), PaymentStatus::Canceled)
                | (Some(TxStatus::Chargebacked), PaymentStatus::Chargebacked)
        );
        if settled {
            return Reply::new(200, "ok\n");
        }
        let state = match client.status(&id).await {
            Ok(s) => s,
            Err(e) => {
                self.journal(
                    Level::Warning,
                    None,
                    &format!("payment {}: cannot read transaction {id} back from Platega ({e}); answered 503 so that Platega calls again", payment.id),
                    now,
                )
                .await;
                return Reply::new(503, "try again later\n");
            }
        };
        match self.apply(&payment, &state, claim.as_ref(), now).await {
            Ok(applied) => {
                tracing::info!(payment = payment.id, transaction = %id, ?applied, "payment callback");
                Reply::new(200, "ok\n")
            }
            Err(e) => {
                tracing::error!("payment callback for {id}: {e}");
                Reply::new(503, "try again later\n")
            }
        }
    }

    /// Acts on a transaction state read back from Platega (never on a callback's claim).
    pub async fn apply(
        &self,
        payment: &Payment,
        state: &TxState,
        claim: Option<&TxStatus>,
        now: i64,
    ) -> Result<Applied, StoreError> {
        let ext = payment.external_id.as_deref().unwrap_or_default();
        let expected = (
            Some(payment.amount * 100),
            Some(payment.currency.to_ascii_uppercase()),
        );
        if (state.amount_minor, state.currency.clone()) != expected {
            let got = format!(
                "{} {}",
                state.amount_minor.map_or_else(
                    || "no amount".to_owned(),
                    |a| format!("{:.2}", a as f64 / 100.0)
                ),
                state.currency.as_deref().unwrap_or("no currency")
            );
            self.journal(
                Level::Error,
                None,
                &format!(
                    "payment {}: Platega reports {got} ({}) for transaction {ext}, expected {} {}: nothing activated",
                    payment.id,
                    state.status.as_str(),
                    payment.amount,
                    payment.currency
                ),
                now,
            )
            .await;
            return Ok(Applied::Mismatch);
        }
        let values = self.cfg.plans.day_values();
        Ok(match &state.status {
            TxStatus::Confirmed => match self.store.confirm_payment(ext, values, now).await? {
                Activation::Activated { user, .. } => {
                    metrics::counter!("autosub_payments_confirmed_total", "tier" => payment.tier.as_str(), "period" => payment.period.as_str()).increment(1);
                    metrics::counter!("autosub_revenue_rub_total")
                        .increment(payment.amount.max(0) as u64);
                    Applied::Activated {
                        tier: user.tier,
                        until: user.tier_expires_at,
                    }
                }
                Activation::Unchanged(_) => Applied::Unchanged,
            },
            TxStatus::Chargebacked => {
                match self.store.chargeback_payment(ext, values, now).await? {
                    Revocation::Revoked { .. } => {
                        metrics::counter!("autosub_payments_chargebacked_total").increment(1);
                        Applied::Revoked
                    }
                    Revocation::Unchanged(_) => Applied::Unchanged,
                }
            }
            TxStatus::Canceled => {
                if self
                    .store
                    .close_payment(ext, PaymentStatus::Canceled, now)
                    .await?
                {
                    self.journal(
                        Level::Info,
                        None,
                        &format!("payment {} canceled at Platega", payment.id),
                        now,
                    )
                    .await;
                    Applied::Closed(PaymentStatus::Canceled)
                } else {
                    Applied::Unchanged
                }
            }
            TxStatus::Pending => {
                if let Some(c) = claim.filter(|c| **c != TxStatus::Pending) {
                    self.journal(
                        Level::Warning,
                        None,
                        &format!(
                            "payment {}: a callback claims {} but Platega says PENDING: ignored",
                            payment.id,
                            c.as_str()
                        ),
                        now,
                    )
                    .await;
                }
                Applied::StillPending
            }
            TxStatus::Other(s) => {
                self.journal(
                    Level::Warning,
                    None,
                    &format!(
                        "payment {}: Platega reports unknown status {s:?}: ignored",
                        payment.id
                    ),
                    now,
                )
                .await;
                Applied::Ignored(s.clone())
            }
        })
    }

    /// Pending payments past their expiry (and a grace of [`RECONCILE_GRACE_MS`]), each read back once and
    /// closed: activated if it was paid after all (its callback lost), cancelled if Platega says so, else expired
    /// (still pending, a wrong amount, a status this code does not know: each logged by [`Billing::apply`]).
    /// Those Platega cannot be asked about now stay for the next round. Returns how many were settled.
    pub async fn reconcile(&self, now: i64) -> Result<usize, StoreError> {
        let Some(client) = &self.client else {
            return Ok(0);
        };
        let started = std::time::Instant::now();
        let mut settled = 0;
        for p in self
            .store
            .payments_past_expiry(now - RECONCILE_GRACE_MS, 100)
            .await?
        {
            let ext = p.external_id.clone().unwrap_or_default();
            let lock = self.lock_for(&ext);
            let _one_at_a_time = lock.lock().await;
            let state = client.status(&ext).await;
            // Each payment at its own time: a round of slow read-backs may take minutes.
            let now = now + started.elapsed().as_millis() as i64;
            match state {
                Ok(state) => {
                    let applied = self.apply(&p, &state, None, now).await?;
                    if matches!(
                        applied,
                        Applied::StillPending | Applied::Mismatch | Applied::Ignored(_)
                    ) && self
                        .store
                        .close_payment(&ext, PaymentStatus::Expired, now)
                        .await?
                    {
                        tracing::info!(payment = p.id, ?applied, "payment closed as expired");
                    }
                    settled += 1;
                }
                Err(PlategaError::NotFound(_)) => {
                    self.store
                        .close_payment(&ext, PaymentStatus::Expired, now)
                        .await?;
                    self.journal(
                        Level::Warning,
                        None,
                        &format!("payment {}: Platega does not know transaction {ext}; closed as expired", p.id),
                        now,
                    )
                    .await;
                    settled += 1;
                }
                Err(e) => tracing::warn!(payment = p.id, "reconcile: {e}"),
            }
        }
        Ok(settled)
    }

    /// Reconciles every [`Billing::reconcile_every`] until `stop` turns true.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        if !self.configured() {
            return;
        }
        loop {
            if let Err(e) = self.reconcile(now_ms()).await {
                tracing::error!("reconcile: {e}");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.reconcile_every) => {}
                r = stop.changed() => if r.is_err() || *stop.borrow() { return },
            }
        }
    }

    /// `POST /billing/platega/callback`, and the pages payers return to (`/billing/return`, `/billing/fail`).
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route(CALLBACK_PATH, post(callback_handler))
            .route("/billing/return", get(|| async { Html(RETURN_PAGE) }))
            .route("/billing/fail", get(|| async { Html(FAIL_PAGE) }))
            .layer(DefaultBodyLimit::max(64 * 1024))
            .with_state(self)
    }
}

async fn callback_handler(
    State(billing): State<Arc<Billing>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let reply = billing.callback(&headers, &body, now_ms()).await;
    (
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        reply.body,
    )
        .into_response()
}

const RETURN_PAGE: &str = "<!doctype html><meta charset=utf-8><title>AutoSub</title>\
<p>Спасибо! Оплата принята: бот напишет, как только подписка включится. Можно вернуться в Telegram.</p>\
<p>Thank you! The payment went through: the bot will tell you as soon as your plan is on. You can go back to Telegram.</p>";

const FAIL_PAGE: &str = "<!doctype html><meta charset=utf-8><title>AutoSub</title>\
<p>Оплата не прошла, деньги не списаны. Попробуйте ещё раз: /plans в боте.</p>\
<p>The payment did not go through and nothing was charged. Try again with /plans in the bot.</p>";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_compare_whole_values() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
        assert!(!same(b"", b"x"));
    }

    #[test]
    fn ids_in_callbacks_are_plain() {
        assert!(plain_id("3fa85f64-5717-4562-b3fc-2c963f66afa6"));
        assert!(!plain_id(""));
        assert!(!plain_id("a/../b"));
        assert!(!plain_id("x y"));
        assert!(!plain_id(&"a".repeat(101)));
    }
}
