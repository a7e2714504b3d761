//! The billing configuration and the plans table, read once from the environment.
//!
//! | variable | default |
//! |---|---|
//! | `AUTOSUB_PLATEGA_API_URL` | `https://app.platega.io` |
//! | `AUTOSUB_PLATEGA_MERCHANT_ID` | none: payments are off (`/plans` says so) |
//! | `AUTOSUB_PLATEGA_SECRET` | none |
//! | `AUTOSUB_PLATEGA_METHOD` | 2 (SBP QR; 11 cards, 13 crypto, 14 SberPay) |
//! | `AUTOSUB_PLANS` | the table below; e.g. `pro:month=349,creator:year=5490/365` changes two prices (and a duration) |
//!
//! Payments also need `AUTOSUB_PUBLIC_URL` (the service's config): the payer returns to
//! `$AUTOSUB_PUBLIC_URL/billing/return` or `/billing/fail`.

use std::fmt;
use std::str::FromStr;

pub use autosub_service::config::{ConfigError, Secret};
use autosub_store::{DayValues, PaymentPeriod, Tier};

/// Platega's API.
pub const DEFAULT_API_URL: &str = "https://app.platega.io";

/// One plan: a tier for a period at a price.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    pub tier: Tier,
    pub period: PaymentPeriod,
    /// Whole roubles.
    pub price: i64,
    /// Days of the tier the plan gives (a month is 30, a year 365).
    pub days: i64,
}

/// The plans sold, prices in RUB. The one place prices and durations are written.
pub const DEFAULT_PLANS: [Plan; 4] = [
    Plan {
        tier: Tier::Pro,
        period: PaymentPeriod::Month,
        price: 299,
        days: 30,
    },
    Plan {
        tier: Tier::Pro,
        period: PaymentPeriod::Year,
        price: 2990,
        days: 365,
    },
    Plan {
        tier: Tier::Creator,
        period: PaymentPeriod::Month,
        price: 599,
        days: 30,
    },
    Plan {
        tier: Tier::Creator,
        period: PaymentPeriod::Year,
        price: 5990,
        days: 365,
    },
];

/// The currency of every plan.
pub const CURRENCY: &str = "RUB";

/// The plans on sale.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plans(Vec<Plan>);

impl Default for Plans {
    fn default() -> Self {
        Plans(DEFAULT_PLANS.to_vec())
    }
}

impl Plans {
    pub fn all(&self) -> &[Plan] {
        &self.0
    }

    pub fn get(&self, tier: Tier, period: PaymentPeriod) -> Option<&Plan> {
        self.0.iter().find(|p| p.tier == tier && p.period == period)
    }

    /// What a day of each tier is worth (its monthly price over the month's days), for moving time between
    /// tiers at equal value.
    pub fn day_values(&self) -> DayValues {
        let per_day = |tier| {
            self.get(tier, PaymentPeriod::Month)
                .or_else(|| self.get(tier, PaymentPeriod::Year))
                .map_or(0.0, |p| p.price as f64 / p.days as f64)
        };
        DayValues {
            pro: per_day(Tier::Pro),
            creator: per_day(Tier::Creator),
        }
    }

    /// The defaults with `spec`'s changes: comma-separated `TIER:PERIOD=PRICE[/DAYS]`.
    pub fn with_overrides(spec: &str) -> Result<Plans, String> {
        let mut plans = Plans::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| format!("{item:?}: expected TIER:PERIOD=PRICE[/DAYS]"))?;
            let (tier, period) = key
                .split_once(':')
                .ok_or_else(|| format!("{item:?}: expected TIER:PERIOD=PRICE[/DAYS]"))?;
            let tier = Tier::from_str(tier).map_err(|e| format!("{item:?}: {e}"))?;
            if !tier.is_paid() {
                return Err(format!("{item:?}: the free tier is not sold"));
            }
            let period = PaymentPeriod::from_str(period.trim())
                .map_err(|_| format!("{item:?}: the period is month or year"))?;
            let (price, days) = match value.split_once('/') {
                Some((p, d)) => (p, Some(d)),
                None => (value, None),
            };
            let price = price
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|p| (1..=10_000_000).contains(p))
                .ok_or_else(|| format!("{item:?}: the price is whole roubles from 1"))?;
            let default_days = match period {
                PaymentPeriod::Month => 30,
                PaymentPeriod::Year => 365,
            };
            let days = match days {
                None => default_days,
                Some(d) => d
                    .trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|d| (1..=3660).contains(d))
                    .ok_or_else(|| format!("{item:?}: days from 1 to 3660"))?,
            };
            let plan = Plan {
                tier,
                period,
                price,
                days,
            };
            match plans
                .0
                .iter_mut()
                .find(|p| p.tier == tier && p.period == period)
            {
                Some(p) => *p = plan,
                None => plans.0.push(plan),
            }
        }
        Ok(plans)
    }
}

/// Billing's settings.
#[derive(Clone)]
pub struct BillingConfig {
    pub api_url: String,
    /// Merchant id and API key; `None`: payments are not configured.
    pub credentials: Option<(String, Secret)>,
    /// Platega's `paymentMethod` for new payments.
    pub method: i64,
    /// `AUTOSUB_PUBLIC_URL`, without a trailing slash.
    pub public_url: Option<String>,
    pub plans: Plans,
}

impl fmt::Debug for BillingConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BillingConfig")
            .field("api_url", &self.api_url)
            .field(
                "merchant_id",
                &self.credentials.as_ref().map(|(m, _)| m.as_str()),
            )
            .field("secret", &self.credentials.as_ref().map(|(_, s)| s))
            .field("method", &self.method)
            .field("public_url", &self.public_url)
            .field("plans", &self.plans)
            .finish()
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

impl BillingConfig {
    /// Reads the environment; `public_url` is the service's `AUTOSUB_PUBLIC_URL`.
    pub fn from_env(public_url: Option<String>) -> Result<Self, ConfigError> {
        Self::from_vars(var, public_url)
    }

    /// As [`BillingConfig::from_env`], with variables from `get` (tests).
    pub fn from_vars(
        get: impl Fn(&str) -> Option<String>,
        public_url: Option<String>,
    ) -> Result<Self, ConfigError> {
        let bad = |var: &'static str, message: String| ConfigError { var, message };
        let api_url = get("AUTOSUB_PLATEGA_API_URL")
            .unwrap_or_else(|| DEFAULT_API_URL.to_owned())
            .trim_end_matches('/')
            .to_owned();
        if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
            return Err(bad(
                "AUTOSUB_PLATEGA_API_URL",
                format!("{api_url:?} must start with https:// or http://"),
            ));
        }
        let credentials = match (
            get("AUTOSUB_PLATEGA_MERCHANT_ID"),
            get("AUTOSUB_PLATEGA_SECRET"),
        ) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(bad(
                    "AUTOSUB_PLATEGA_SECRET",
                    "is not set but AUTOSUB_PLATEGA_MERCHANT_ID is: set both (Platega's cabinet, API settings)"
                        .into(),
                ))
            }
            (None, Some(_)) => {
                return Err(bad(
                    "AUTOSUB_PLATEGA_MERCHANT_ID",
                    "is not set but AUTOSUB_PLATEGA_SECRET is: set both (Platega's cabinet, API settings)"
                        .into(),
                ))
            }
            (Some(m), Some(s)) => {
                if m.len() > 100 || !m.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    return Err(bad(
                        "AUTOSUB_PLATEGA_MERCHANT_ID",
                        "must be the merchant's id (a UUID)".into(),
                    ));
                }
                Some((m, Secret::new(s)))
            }
        };
        let public_url = public_url.map(|u| u.trim_end_matches('/').to_owned());
        if credentials.is_some() && public_url.is_none() {
            return Err(bad(
                "AUTOSUB_PUBLIC_URL",
                "is needed for payments: payers return to $AUTOSUB_PUBLIC_URL/billing/return, and Platega calls \
                 $AUTOSUB_PUBLIC_URL/billing/platega/callback (docs/BILLING.md)"
                    .into(),
            ));
        }
        let method = match get("AUTOSUB_PLATEGA_METHOD") {
            None => 2,
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|m| (1..=1000).contains(m))
                .ok_or_else(|| {
                    bad(
                        "AUTOSUB_PLATEGA_METHOD",
                        format!("{v:?} is not a payment method number (2 SBP QR, 11 cards, 13 crypto, 14 SberPay)"),
                    )
                })?,
        };
        let plans = match get("AUTOSUB_PLANS") {
            None => Plans::default(),
            Some(spec) => Plans::with_overrides(&spec).map_err(|m| bad("AUTOSUB_PLANS", m))?,
        };
        Ok(BillingConfig {
            api_url,
            credentials,
            method,
            public_url,
            plans,
        })
    }

    /// Whether payments can be taken.
    pub fn configured(&self) -> bool {
        self.credentials.is_some()
    }

    /// Every setting with its value, the secret masked, for `autosub doctor`.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let plans = self
            .plans
            .all()
            .iter()
            .map(|p| format!("{}:{}={}/{}", p.tier, p.period, p.price, p.days))
            .collect::<Vec<_>>()
            .join(",");
        vec![
            ("AUTOSUB_PLATEGA_API_URL", self.api_url.clone()),
            (
                "AUTOSUB_PLATEGA_MERCHANT_ID",
                self.credentials
                    .as_ref()
                    .map_or_else(|| "(not set: payments are off)".into(), |(m, _)| m.clone()),
            ),
            (
                "AUTOSUB_PLATEGA_SECRET",
                self.credentials
                    .as_ref()
                    .map_or_else(|| "(not set)".into(), |(_, s)| s.to_string()),
            ),
            ("AUTOSUB_PLATEGA_METHOD", self.method.to_string()),
            ("AUTOSUB_PLANS", plans),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)], public: Option<&str>) -> Result<BillingConfig, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        BillingConfig::from_vars(|k| map.get(k).cloned(), public.map(str::to_owned))
    }

    #[test]
    fn the_table_is_the_product_price_list() {
        let p = Plans::default();
        let price = |t, per| p.get(t, per).map(|p: &Plan| (p.price, p.days));
        assert_eq!(price(Tier::Pro, PaymentPeriod::Month), Some((299, 30)));
        assert_eq!(price(Tier::Pro, PaymentPeriod::Year), Some((2990, 365)));
        assert_eq!(price(Tier::Creator, PaymentPeriod::Month), Some((599, 30)));
        assert_eq!(price(Tier::Creator, PaymentPeriod::Year), Some((5990, 365)));
        assert_eq!(price(Tier::Free, PaymentPeriod::Month), None);
        let v = p.day_values();
        assert!((v.pro - 299.0 / 30.0).abs() < 1e-9 && (v.creator - 599.0 / 30.0).abs() < 1e-9);
    }

    #[test]
    fn overrides_change_prices_and_days_and_refuse_nonsense() {
        let p = Plans::with_overrides("pro:month=349, creator:year=5490/366").unwrap();
        assert_eq!(p.get(Tier::Pro, PaymentPeriod::Month).unwrap().price, 349);
        let y = p.get(Tier::Creator, PaymentPeriod::Year).unwrap();
        assert_eq!((y.price, y.days), (5490, 366));
        assert_eq!(p.get(Tier::Pro, PaymentPeriod::Year).unwrap().price, 2990);
        for bad in [
            "free:month=1",
            "pro:week=1",
            "pro:month",
            "pro=1",
            "pro:month=-5",
            "pro:month=abc",
            "pro:month=10/0",
            "gold:month=5",
        ] {
            assert!(Plans::with_overrides(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn credentials_come_in_pairs_need_a_public_url_and_never_print() {
        let off = cfg(&[], None).unwrap();
        assert!(!off.configured());
        assert_eq!(off.api_url, DEFAULT_API_URL);
        let e = cfg(&[("AUTOSUB_PLATEGA_MERCHANT_ID", "m-1")], Some("https://x")).unwrap_err();
        assert_eq!(e.var, "AUTOSUB_PLATEGA_SECRET");
        let e = cfg(&[("AUTOSUB_PLATEGA_SECRET", "s3cr3t")], Some("https://x")).unwrap_err();
        assert_eq!(e.var, "AUTOSUB_PLATEGA_MERCHANT_ID");
        let both = [
            ("AUTOSUB_PLATEGA_MERCHANT_ID", "m-1"),
            ("AUTOSUB_PLATEGA_SECRET", "s3cr3t-value"),
        ];
        let e = cfg(&both, None).unwrap_err();
        assert_eq!(e.var, "AUTOSUB_PUBLIC_URL");
        assert!(!e.to_string().contains("s3cr3t"));
        let on = cfg(&both, Some("https://autosub.example/")).unwrap();
        assert!(on.configured());
        assert_eq!(on.public_url.as_deref(), Some("https://autosub.example"));
        let shown = format!("{on:?} {:?}", on.describe());
        assert!(!shown.contains("s3cr3t"), "{shown}");
        let e = cfg(&[("AUTOSUB_PLATEGA_API_URL", "ftp://x")], None).unwrap_err();
        assert_eq!(e.var, "AUTOSUB_PLATEGA_API_URL");
        let e = cfg(&[("AUTOSUB_PLANS", "pro:month=x")], None).unwrap_err();
        assert_eq!(e.var, "AUTOSUB_PLANS");
    }
}
