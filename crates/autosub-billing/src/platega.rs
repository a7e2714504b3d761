//! The Platega API client: create a transaction, read one back. The only code that talks to Platega.
//!
//! Every request carries `X-MerchantId` and `X-Secret`. Errors never contain the secret (it is only ever a header
//! value, and every message is scrubbed of it anyway).

use std::time::Duration;

use serde_json::{json, Value};

use crate::config::Secret;

/// Why a call to Platega failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlategaError {
    /// No answer (connection refused or dropped, timeout) or a 5xx/429: worth trying again later.
    #[error("Platega did not answer: {0}")]
    Unavailable(String),
    /// 401/403: the merchant id or API key is wrong.
    #[error("Platega refused the merchant credentials (HTTP {0}): check AUTOSUB_PLATEGA_MERCHANT_ID and AUTOSUB_PLATEGA_SECRET")]
    Unauthorized(u16),
    /// 404 on a transaction.
    #[error("Platega does not know transaction {0}")]
    NotFound(String),
    /// Any other 4xx: the request itself is wrong.
    #[error("Platega refused the request (HTTP {status}): {message}")]
    Refused { status: u16, message: String },
    /// A 2xx whose body is not what the API documents.
    #[error("Platega's answer is not understood: {0}")]
    BadAnswer(String),
}

impl PlategaError {
    /// Whether trying again may help.
    pub fn transient(&self) -> bool {
        matches!(self, PlategaError::Unavailable(_))
    }
}

/// A transaction's status as Platega reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxStatus {
    Pending,
    Canceled,
    Confirmed,
    Chargebacked,
    /// A status this code does not know: changes nothing.
    Other(String),
}

impl TxStatus {
    pub fn parse(s: &str) -> TxStatus {
        match s.trim().to_ascii_uppercase().as_str() {
            "PENDING" => TxStatus::Pending,
            "CANCELED" | "CANCELLED" => TxStatus::Canceled,
            "CONFIRMED" => TxStatus::Confirmed,
            "CHARGEBACKED" => TxStatus::Chargebacked,
            other => TxStatus::Other(other.chars().take(32).collect()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            TxStatus::Pending => "PENDING",
            TxStatus::Canceled => "CANCELED",
            TxStatus::Confirmed => "CONFIRMED",
            TxStatus::Chargebacked => "CHARGEBACKED",
            TxStatus::Other(s) => s,
        }
    }
}

/// What to create.
#[derive(Debug, Clone)]
pub struct NewTransaction {
    /// Whole roubles.
    pub amount: i64,
    pub currency: String,
    pub description: String,
    pub return_url: String,
    pub failed_url: String,
    /// Ties the transaction to its user and plan (JSON text).
    pub payload: String,
    pub method: i64,
}

/// A created transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub id: String,
    /// The payment page.
    pub redirect: String,
    /// How long Platega accepts the payment (`expiresIn`, 15 minutes when absent).
    pub expires_in: Duration,
}

/// A transaction as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxState {
    pub id: String,
    pub status: TxStatus,
    /// In kopecks (hundredths), so that 299 and 299.00 compare equal.
    pub amount_minor: Option<i64>,
    pub currency: Option<String>,
}

/// The client.
#[derive(Clone)]
pub struct Platega {
    http: reqwest::Client,
    base: String,
    merchant_id: String,
    secret: Secret,
    /// Waits between the attempts of a create (after a failure that may pass).
    pub create_backoff: Vec<Duration>,
}

/// An amount as Platega writes it (number or string) in kopecks.
pub fn amount_minor(v: &Value) -> Option<i64> {
    let x = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    (x.is_finite() && (0.0..1e13).contains(&x)).then(|| (x * 100.0).round() as i64)
}

/// `HH:MM:SS` (Platega's `expiresIn`).
pub fn parse_hms(s: &str) -> Option<Duration> {
    let mut parts = s.trim().split(':');
    let (h, m, sec) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let n = |x: &str| x.parse::<u64>().ok();
    let sec = sec.split('.').next()?;
    Some(Duration::from_secs(n(h)? * 3600 + n(m)? * 60 + n(sec)?))
}

impl Platega {
    pub fn new(base: &str, merchant_id: &str, secret: Secret) -> Result<Platega, PlategaError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .no_proxy()
            .build()
            .map_err(|e| PlategaError::Unavailable(e.to_string()))?;
        Ok(Platega {
            http,
            base: base.trim_end_matches('/').to_owned(),
            merchant_id: merchant_id.to_owned(),
            secret,
            create_backoff: vec![
                Duration::from_millis(500),
                Duration::from_secs(1),
                Duration::from_secs(2),
            ],
        })
    }

    /// The merchant id (checked against callbacks).
    pub fn merchant_id(&self) -> &str {
        &self.merchant_id
    }

    /// The API key (checked against callbacks).
    pub(crate) fn secret(&self) -> &Secret {
        &self.secret
    }

    fn scrub(&self, s: String) -> String {
        self.secret.scrub(&s)
    }

    async fn call(&self, req: reqwest::RequestBuilder) -> Result<Value, (u16, PlategaError)> {
        let resp = req
            .header("X-MerchantId", &self.merchant_id)
            .header("X-Secret", self.secret.expose())
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| {
                (
                    0,
                    PlategaError::Unavailable(self.scrub(e.without_url().to_string())),
                )
            })?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| {
            (
                status,
                PlategaError::Unavailable(self.scrub(e.without_url().to_string())),
            )
        })?;
        let text =
            || self.scrub(String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned());
        match status {
            200..=299 => serde_json::from_slice(&body)
                .map_err(|e| (status, PlategaError::BadAnswer(format!("{e}: {}", text())))),
            401 | 403 => Err((status, PlategaError::Unauthorized(status))),
            429 | 500..=599 => Err((
                status,
                PlategaError::Unavailable(format!("HTTP {status}: {}", text())),
            )),
            _ => Err((
                status,
                PlategaError::Refused {
                    status,
                    message: text(),
                },
            )),
        }
    }

    /// `POST /transaction/process`, tried again after failures that may pass (no answer, 5xx, 429) with the
    /// waits of `create_backoff`.
    pub async fn create(&self, t: &NewTransaction) -> Result<Created, PlategaError> {
        let body = json!({
            "paymentMethod": t.method,
            "paymentDetails": {"amount": t.amount, "currency": t.currency},
            "description": t.description,
            "return": t.return_url,
            "failedUrl": t.failed_url,
            "payload": t.payload,
        });
        let url = format!("{}/transaction/process", self.base);
        let mut waits = self.create_backoff.iter();
        loop {
            match self.call(self.http.post(&url).json(&body)).await {
                Ok(v) => return created_of(&v),
                Err((_, e)) if e.transient() => match waits.next() {
                    Some(w) => {
                        tracing::warn!("Platega create: {e}; trying again in {w:?}");
                        tokio::time::sleep(*w).await;
                    }
                    None => return Err(e),
                },
                Err((_, e)) => return Err(e),
            }
        }
    }

    /// [`Platega::create`] given `deadline` in all (a timeout is [`PlategaError::Unavailable`]). A transaction
    /// Platega made after the deadline has no row and its link is never sent: nobody can pay it.
    pub async fn create_within(
        &self,
        deadline: Duration,
        t: &NewTransaction,
    ) -> Result<Created, PlategaError> {
        tokio::time::timeout(deadline, self.create(t))
            .await
            .unwrap_or_else(|_| {
                Err(PlategaError::Unavailable(format!(
                    "no transaction within {deadline:?}"
                )))
            })
    }

    /// `GET /transaction/{id}`: the transaction as Platega has it now. One attempt (callers retry later).
    pub async fn status(&self, id: &str) -> Result<TxState, PlategaError> {
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(PlategaError::NotFound(id.chars().take(64).collect()));
        }
        let url = format!("{}/transaction/{id}", self.base);
        match self.call(self.http.get(&url)).await {
            Ok(v) => state_of(&v, id),
            Err((404, _)) => Err(PlategaError::NotFound(id.to_owned())),
            Err((_, e)) => Err(e),
        }
    }
}

fn created_of(v: &Value) -> Result<Created, PlategaError> {
    let id = v
        .get("transactionId")
        .or_else(|| v.get("id"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= 100)
        .ok_or_else(|| PlategaError::BadAnswer("no transactionId".into()))?;
    let redirect = v
        .get("redirect")
        .or_else(|| v.get("url"))
        .and_then(Value::as_str)
        .filter(|s| s.starts_with("https://") || s.starts_with("http://"))
        .ok_or_else(|| PlategaError::BadAnswer("no redirect link".into()))?;
    let expires_in = v
        .get("expiresIn")
        .and_then(Value::as_str)
        .and_then(parse_hms)
        .filter(|d| !d.is_zero())
        .unwrap_or(Duration::from_secs(15 * 60));
    Ok(Created {
        id: id.to_owned(),
        redirect: redirect.to_owned(),
        expires_in,
    })
}

fn state_of(v: &Value, asked: &str) -> Result<TxState, PlategaError> {
    let id = v
        .get("id")
        .or_else(|| v.get("transactionId"))
        .and_then(Value::as_str)
        .ok_or_else(|| PlategaError::BadAnswer("no id".into()))?;
    if id != asked {
        return Err(PlategaError::BadAnswer(format!(
            "asked for {asked}, got {}",
            id.chars().take(64).collect::<String>()
        )));
    }
    let status = v
        .get("status")
        .and_then(Value::as_str)
        .map(TxStatus::parse)
        .ok_or_else(|| PlategaError::BadAnswer("no status".into()))?;
    let details = v.get("paymentDetails");
    let field = |k: &str| details.and_then(|d| d.get(k)).or_else(|| v.get(k));
    Ok(TxState {
        id: id.to_owned(),
        status,
        amount_minor: field("amount").and_then(amount_minor),
        currency: field("currency")
            .and_then(Value::as_str)
            .map(|c| c.trim().to_ascii_uppercase()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_compare_in_kopecks() {
        assert_eq!(amount_minor(&json!(299)), Some(29_900));
        assert_eq!(amount_minor(&json!(299.0)), Some(29_900));
        assert_eq!(amount_minor(&json!("299.00")), Some(29_900));
        assert_eq!(amount_minor(&json!(298.999)), Some(29_900));
        assert_eq!(amount_minor(&json!(1.5)), Some(150));
        assert_eq!(amount_minor(&json!(-1)), None);
        assert_eq!(amount_minor(&json!("x")), None);
        assert_eq!(amount_minor(&json!(null)), None);
    }

    #[test]
    fn expiry_and_statuses() {
        assert_eq!(parse_hms("00:15:00"), Some(Duration::from_secs(900)));
        assert_eq!(parse_hms("01:00:30.5"), Some(Duration::from_secs(3630)));
        assert_eq!(parse_hms("15"), None);
        assert_eq!(TxStatus::parse("confirmed"), TxStatus::Confirmed);
        assert_eq!(TxStatus::parse("CANCELED"), TxStatus::Canceled);
        assert_eq!(TxStatus::parse("weird"), TxStatus::Other("WEIRD".into()));
    }

    #[test]
    fn answers_are_read_as_documented() {
        let c = created_of(&json!({"transactionId": "t-1", "redirect": "https://pay/x", "status": "PENDING", "expiresIn": "00:10:00"})).unwrap();
        assert_eq!(c.expires_in, Duration::from_secs(600));
        assert!(created_of(&json!({"transactionId": "t-1"})).is_err());
        assert!(created_of(&json!({"transactionId": "t-1", "redirect": "javascript:x"})).is_err());
        let s = state_of(&json!({"id": "t-1", "status": "CONFIRMED", "paymentDetails": {"amount": 299, "currency": "rub"}}), "t-1").unwrap();
        assert_eq!(
            (s.status, s.amount_minor, s.currency.as_deref()),
            (TxStatus::Confirmed, Some(29_900), Some("RUB"))
        );
        assert!(state_of(&json!({"id": "t-2", "status": "CONFIRMED"}), "t-1").is_err());
    }
}
