//! Billing against the Platega stand-in and a real database (each test on SQLite and on PostgreSQL): payment links,
//! callbacks verified by read-back, exactly-once activation, chargebacks, reconciliation, and no secret in the
//! journal.

#[path = "../../autosub-store/tests/common/mod.rs"]
#[macro_use]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use autosub_billing::standin::{Creds, Failure, StandIn};
use autosub_billing::{Billing, BillingConfig, BuyError};
use autosub_store::{now_ms, Level, PaymentPeriod, PaymentStatus, Store, Tier};
use serde_json::json;

const MERCHANT: &str = "3fa85f64-5717-4562-b3fc-2c963f66afa6";
const SECRET: &str = "sk_live_TOPSECRET_0123456789";
const DAY: i64 = 86_400_000;

on_both!(
    links_are_made_once_per_press,
    callbacks_are_verified_by_reading_back,
    reconcile_closes_payments_left_pending,
);

struct Setup {
    billing: Arc<Billing>,
    platega: StandIn,
    callback: String,
    /// A second billing server on the same database (another process, as far as the database can tell).
    other_callback: String,
}

/// Serves `billing`'s router on a free port; returns its callback URL.
async fn serve(billing: Arc<Billing>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = billing.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}/billing/platega/callback")
}

fn config(api: &str, creds: bool) -> BillingConfig {
    config_with_plans(api, creds, None)
}

fn config_with_plans(api: &str, creds: bool, plans: Option<&str>) -> BillingConfig {
    let api = api.to_owned();
    let plans = plans.map(str::to_owned);
    BillingConfig::from_vars(
        move |k| match k {
            "AUTOSUB_PLATEGA_API_URL" => Some(api.clone()),
            "AUTOSUB_PLANS" => plans.clone(),
            "AUTOSUB_PLATEGA_MERCHANT_ID" if creds => Some(MERCHANT.into()),
            "AUTOSUB_PLATEGA_SECRET" if creds => Some(SECRET.into()),
            _ => None,
        },
        Some("https://autosub.test".into()),
    )
    .unwrap()
}

async fn setup(store: &Store) -> Setup {
    let platega = StandIn::spawn(MERCHANT, SECRET).await.unwrap();
    let mut billing = Billing::new(store.clone(), config(&platega.url(), true))
        .unwrap()
        .with_create_backoff(vec![Duration::from_millis(10); 3]);
    billing.create_deadline = Duration::from_secs(2);
    let billing = Arc::new(billing);
    // Its price list differs (as after a change, or a misconfigured second process): payments made by the first
    // keep their own days and price.
    let other = Arc::new(
        Billing::new(
            store.clone(),
            config_with_plans(
                &platega.url(),
                true,
                Some("pro:month=349/31,pro:year=3490/400"),
            ),
        )
        .unwrap(),
    );
    Setup {
        callback: serve(billing.clone()).await,
        other_callback: serve(other).await,
        billing,
        platega,
    }
}

async fn assert_no_secret_in_journal(store: &Store) {
    for row in store.recent_logs(Level::Info, 1000).await.unwrap() {
        assert!(!row.message.contains(SECRET), "{}", row.message);
        assert!(!row.message.contains("TOPSECRET"), "{}", row.message);
    }
}

async fn links_are_made_once_per_press(store: Store) {
    let s = setup(&store).await;
    let now = now_ms();
    let link = s
        .billing
        .buy(100, Tier::Pro, PaymentPeriod::Month, "tg:1", now)
        .await
        .unwrap();
    let txs = s.platega.transactions();
    assert_eq!(txs.len(), 1);
    let tx = &txs[0];
    assert_eq!((tx.amount, tx.currency.as_str()), (299.0, "RUB"));
    assert_eq!(link.url, s.platega.redirect_url(&tx.id));
    assert_eq!(tx.return_url, "https://autosub.test/billing/return");
    assert_eq!(tx.failed_url, "https://autosub.test/billing/fail");
    let payload: serde_json::Value = serde_json::from_str(tx.payload.as_deref().unwrap()).unwrap();
    assert_eq!(
        payload,
        json!({"user": 100, "tier": "pro", "period": "month", "key": "tg:1"})
    );
    // The row exists before the link is handed out, pending, with Platega's id.
    let p = store
        .get_payment_by_external_id(&tx.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (p.status, p.amount, p.tier, p.period, p.id),
        (
            PaymentStatus::Pending,
            299,
            Tier::Pro,
            PaymentPeriod::Month,
            link.payment_id
        )
    );
    // Platega's 15 minutes, counted from its answer.
    let expires = p.expires_at.unwrap() - now;
    assert!(
        (15 * 60_000..15 * 60_000 + 8_000).contains(&expires),
        "{expires}"
    );
    assert_eq!(p.days, 30);
    // The same press again (a redelivered update), or the same plan pressed again: the same link.
    for key in ["tg:1", "tg:2"] {
        let again = s
            .billing
            .buy(100, Tier::Pro, PaymentPeriod::Month, key, now + 1000)
            .await
            .unwrap();
        assert_eq!(again, link);
    }
    assert_eq!(s.platega.transactions().len(), 1);
    // Another plan: another payment. A yearly CREATOR costs 5990.
    let year = s
        .billing
        .buy(100, Tier::Creator, PaymentPeriod::Year, "tg:3", now)
        .await
        .unwrap();
    assert_ne!(year.url, link.url);
    assert_eq!(s.platega.transactions()[1].amount, 5990.0);
    // No such plan (the free tier is not sold).
    assert!(matches!(
        s.billing
            .buy(100, Tier::Free, PaymentPeriod::Month, "tg:4", now)
            .await,
        Err(BuyError::NoSuchPlan)
    ));
    // Platega failing twice: retried with backoff, then the link.
    s.platega.fail_next(1, Failure::ServerError);
    s.platega.fail_next(1, Failure::Drop);
    s.billing
        .buy(101, Tier::Pro, PaymentPeriod::Month, "tg:5", now)
        .await
        .unwrap();
    assert_eq!(s.platega.transactions().len(), 3);
    // Failing on every attempt: a clear error, no payment row.
    s.platega.fail_next(4, Failure::ServerError);
    let e = s
        .billing
        .buy(102, Tier::Pro, PaymentPeriod::Month, "tg:6", now)
        .await
        .unwrap_err();
    assert!(matches!(e, BuyError::Unavailable(_)), "{e}");
    assert!(store
        .payment_by_request_key("tg:6")
        .await
        .unwrap()
        .is_none());
    let user = store.get_user(102).await.unwrap().unwrap();
    assert!(store.user_payments(user.id, 10).await.unwrap().is_empty());
    // Platega too slow: the link gives up at the deadline (the bot waits for it), nothing recorded.
    s.platega
        .fail_next(1, Failure::Slow(Duration::from_secs(6)));
    let t = Instant::now();
    let e = s
        .billing
        .buy(103, Tier::Pro, PaymentPeriod::Month, "tg:9", now)
        .await
        .unwrap_err();
    assert!(matches!(e, BuyError::Unavailable(_)), "{e}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(store
        .payment_by_request_key("tg:9")
        .await
        .unwrap()
        .is_none());
    // Without credentials: not configured; with wrong ones: refused, and the journal says so without the secret.
    let off = Billing::new(store.clone(), config(&s.platega.url(), false)).unwrap();
    assert!(!off.configured());
    assert!(matches!(
        off.buy(100, Tier::Pro, PaymentPeriod::Month, "tg:7", now)
            .await,
        Err(BuyError::NotConfigured)
    ));
    let other = StandIn::spawn(MERCHANT, "another-secret").await.unwrap();
    let wrong = Billing::new(store.clone(), config(&other.url(), true)).unwrap();
    let e = wrong
        .buy(100, Tier::Pro, PaymentPeriod::Year, "tg:8", now)
        .await
        .unwrap_err();
    assert!(matches!(e, BuyError::Refused(_)), "{e}");
    assert!(!e.to_string().contains(SECRET));
    assert!(store
        .recent_logs(Level::Error, 10)
        .await
        .unwrap()
        .iter()
        .any(|l| l.message.contains("AUTOSUB_PLATEGA_SECRET")));
    assert_no_secret_in_journal(&store).await;
}

async fn callbacks_are_verified_by_reading_back(store: Store) {
    let s = setup(&store).await;
    let month = s
        .billing
        .buy(200, Tier::Pro, PaymentPeriod::Month, "tg:10", now_ms())
        .await
        .unwrap();
    let id = s.platega.transactions()[0].id.clone();
    let tier_of = |store: Store| async move {
        let u = store.get_user(200).await.unwrap().unwrap();
        (u.tier, u.tier_expires_at)
    };
    // Forged credentials: 401, nothing read back, nothing changed.
    s.platega.set_status(&id, "CONFIRMED");
    for creds in [
        Creds::Wrong,
        Creds::Missing,
        Creds::Custom {
            merchant_id: MERCHANT.into(),
            secret: format!("{SECRET}x"),
        },
        Creds::Custom {
            merchant_id: "00000000-0000-0000-0000-000000000000".into(),
            secret: SECRET.into(),
        },
    ] {
        let (status, _) = s.platega.fire_callback(&s.callback, &id, creds).await;
        assert_eq!(status, 401);
    }
    assert_eq!(s.platega.gets_of(&id), 0);
    assert_eq!(tier_of(store.clone()).await, (Tier::Free, None));
    // Rows about forged callbacks: at most one a minute.
    let forged = store.recent_logs(Level::Warning, 100).await.unwrap();
    assert_eq!(
        forged
            .iter()
            .filter(|l| l.message.contains("wrong credentials"))
            .count(),
        1
    );

    // A claim the read-back contradicts: still PENDING at Platega.
    s.platega.set_status(&id, "PENDING");
    let claim = json!({"id": id, "amount": 299, "currency": "RUB", "status": "CONFIRMED", "paymentMethod": 2});
    let (status, _) = s
        .platega
        .fire_callback_with(&s.callback, &id, Creds::Right, claim.clone())
        .await;
    assert_eq!(status, 200);
    assert_eq!(tier_of(store.clone()).await, (Tier::Free, None));
    assert_eq!(
        store
            .get_payment_by_external_id(&id)
            .await
            .unwrap()
            .unwrap()
            .status,
        PaymentStatus::Pending
    );
    assert!(store
        .recent_logs(Level::Warning, 100)
        .await
        .unwrap()
        .iter()
        .any(|l| l.message.contains("Platega says PENDING")));

    // Wrong amount (and wrong currency): nothing activated, an ERROR row.
    for (amount, currency) in [(1.0, "RUB"), (299.0, "USD")] {
        s.platega.set_amount(&id, amount, currency);
        s.platega.set_status(&id, "CONFIRMED");
        let (status, _) = s
            .platega
            .fire_callback(&s.callback, &id, Creds::Right)
            .await;
        assert_eq!(status, 200);
        assert_eq!(tier_of(store.clone()).await, (Tier::Free, None));
    }
    let errors = store.recent_logs(Level::Error, 100).await.unwrap();
    assert_eq!(
        errors
            .iter()
            .filter(|l| l.message.contains("nothing activated"))
            .count(),
        2
    );
    s.platega.set_amount(&id, 299.0, "RUB");

    // The same valid callback 10 times at once, to two billing servers on the one database: one activation, one
    // confirmed payment, one notice.
    let before = now_ms();
    let mut calls = vec![];
    for i in 0..10 {
        let url = if i % 2 == 0 {
            &s.callback
        } else {
            &s.other_callback
        };
        let (p, url, id) = (s.platega.clone(), url.clone(), id.clone());
        calls.push(tokio::spawn(async move {
            let t = Instant::now();
            let r = p.fire_callback(&url, &id, Creds::Right).await;
            (r.0, t.elapsed())
        }));
    }
    let mut slowest = Duration::ZERO;
    for c in calls {
        let (status, took) = c.await.unwrap();
        assert_eq!(status, 200);
        slowest = slowest.max(took);
    }
    let after = now_ms();
    eprintln!("10 concurrent callbacks: slowest answer {slowest:?}");
    assert!(slowest < Duration::from_secs(5), "{slowest:?}");
    let (tier, until) = tier_of(store.clone()).await;
    assert_eq!(tier, Tier::Pro);
    let until = until.unwrap();
    assert!((before + 30 * DAY..=after + 30 * DAY).contains(&until));
    let p = store
        .get_payment_by_external_id(&id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (p.status, p.granted_ms, p.id),
        (PaymentStatus::Confirmed, 30 * DAY, month.payment_id)
    );
    let notices = store.user_notices(200).await.unwrap();
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].kind, "tier_active");
    // Platega's later retries (and an attacker's replays) change nothing and need no read-back.
    let gets = s.platega.gets_of(&id);
    for _ in 0..3 {
        assert_eq!(
            s.platega
                .fire_callback(&s.callback, &id, Creds::Right)
                .await
                .0,
            200
        );
    }
    assert_eq!(s.platega.gets_of(&id), gets);
    assert_eq!(tier_of(store.clone()).await, (Tier::Pro, Some(until)));

    // A year bought while the month runs: 365 days more.
    s.billing
        .buy(200, Tier::Pro, PaymentPeriod::Year, "tg:11", now_ms())
        .await
        .unwrap();
    let year = s.platega.transactions()[1].id.clone();
    s.platega.set_status(&year, "CONFIRMED");
    assert_eq!(
        s.platega
            .fire_callback(&s.callback, &year, Creds::Right)
            .await
            .0,
        200
    );
    assert_eq!(
        tier_of(store.clone()).await,
        (Tier::Pro, Some(until + 365 * DAY))
    );

    // The year charged back: its 365 days are taken back, the month stays.
    s.platega.set_status(&year, "CHARGEBACKED");
    assert_eq!(
        s.platega
            .fire_callback(&s.callback, &year, Creds::Right)
            .await
            .0,
        200
    );
    assert_eq!(tier_of(store.clone()).await, (Tier::Pro, Some(until)));
    assert_eq!(
        store
            .get_payment_by_external_id(&year)
            .await
            .unwrap()
            .unwrap()
            .status,
        PaymentStatus::Chargebacked
    );
    // And the month too: FREE.
    s.platega.set_status(&id, "CHARGEBACKED");
    assert_eq!(
        s.platega
            .fire_callback(&s.callback, &id, Creds::Right)
            .await
            .0,
        200
    );
    assert_eq!(tier_of(store.clone()).await, (Tier::Free, None));
    let kinds: Vec<String> = store
        .user_notices(200)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.kind)
        .collect();
    assert_eq!(
        kinds,
        ["tier_active", "tier_active", "tier_revoked", "tier_revoked"]
    );

    // CANCELED closes a pending payment.
    s.billing
        .buy(200, Tier::Creator, PaymentPeriod::Month, "tg:12", now_ms())
        .await
        .unwrap();
    let canceled = s.platega.transactions()[2].id.clone();
    s.platega.set_status(&canceled, "CANCELED");
    assert_eq!(
        s.platega
            .fire_callback(&s.callback, &canceled, Creds::Right)
            .await
            .0,
        200
    );
    assert_eq!(
        store
            .get_payment_by_external_id(&canceled)
            .await
            .unwrap()
            .unwrap()
            .status,
        PaymentStatus::Canceled
    );

    // Unknown ids and garbage: refused, logged, nothing changes.
    let unknown = json!({"id": "9b2f0000-0000-4000-8000-000000000000", "amount": 299, "currency": "RUB", "status": "CONFIRMED"});
    let (status, _) = s
        .platega
        .fire_callback_with(&s.callback, "x", Creds::Right, unknown)
        .await;
    assert_eq!(status, 404);
    for body in [
        b"not json at all".to_vec(),
        b"{\"amount\": 299}".to_vec(),
        b"{\"id\": \"../../etc/passwd\", \"status\": \"CONFIRMED\"}".to_vec(),
        b"{\"id\": 12345}".to_vec(),
        vec![0xff; 1000],
    ] {
        let (status, _) = s.platega.fire_raw(&s.callback, Creds::Right, body).await;
        assert_eq!(status, 400);
    }
    let (status, _) = s
        .platega
        .fire_raw(&s.callback, Creds::Right, vec![b' '; 100_000])
        .await;
    assert_eq!(status, 413);
    let logs = store.recent_logs(Level::Warning, 100).await.unwrap();
    assert!(logs
        .iter()
        .any(|l| l.message.contains("unknown transaction")));
    assert!(logs
        .iter()
        .any(|l| l.message.contains("not a Platega notification")));
    assert_eq!(tier_of(store.clone()).await, (Tier::Free, None));
    assert_eq!(store.user_notices(200).await.unwrap().len(), 4);

    // Platega unreachable for the read-back: 503, so that it calls again; the next call activates.
    s.billing
        .buy(201, Tier::Pro, PaymentPeriod::Month, "tg:13", now_ms())
        .await
        .unwrap();
    let late = s.platega.transactions()[3].id.clone();
    s.platega.set_status(&late, "CONFIRMED");
    s.platega.fail_next(1, Failure::ServerError);
    assert_eq!(
        s.platega
            .fire_callback(&s.callback, &late, Creds::Right)
            .await
            .0,
        503
    );
    assert_eq!(store.get_user(201).await.unwrap().unwrap().tier, Tier::Free);
    assert_eq!(
        s.platega
            .fire_callback(&s.callback, &late, Creds::Right)
            .await
            .0,
        200
    );
    assert_eq!(store.get_user(201).await.unwrap().unwrap().tier, Tier::Pro);
    // Revenue: the two charged-back payments do not count, the last one does.
    let r = store.revenue(0, i64::MAX).await.unwrap();
    assert_eq!((r.payments, r.amount), (1, 299));
    assert_no_secret_in_journal(&store).await;
}

async fn reconcile_closes_payments_left_pending(store: Store) {
    let s = setup(&store).await;
    let now = now_ms();
    for (user, key) in [(300, "a"), (301, "b"), (302, "c"), (303, "d")] {
        s.billing
            .buy(user, Tier::Pro, PaymentPeriod::Month, key, now)
            .await
            .unwrap();
    }
    let ids: Vec<String> = s.platega.transactions().into_iter().map(|t| t.id).collect();
    // a, c: never paid; b: paid (its callback lost); d: canceled.
    s.platega.set_status(&ids[1], "CONFIRMED");
    s.platega.set_status(&ids[3], "CANCELED");
    // Before the expiry nothing is looked at.
    assert_eq!(s.billing.reconcile(now + 60_000).await.unwrap(), 0);
    assert!(s.platega.requests().iter().all(|r| r.method != "GET"));
    let later = now + 18 * 60_000; // past the expiry (15 min) and the grace (2 min)
    let billing = s.billing.clone();
    let status = |ext: String| {
        let store = store.clone();
        async move {
            store
                .get_payment_by_external_id(&ext)
                .await
                .unwrap()
                .unwrap()
                .status
        }
    };
    let first = billing.reconcile(later).await.unwrap();
    assert_eq!(first, 4);
    assert_eq!(status(ids[0].clone()).await, PaymentStatus::Expired);
    assert_eq!(status(ids[1].clone()).await, PaymentStatus::Confirmed);
    assert_eq!(status(ids[2].clone()).await, PaymentStatus::Expired);
    assert_eq!(status(ids[3].clone()).await, PaymentStatus::Canceled);
    assert_eq!(store.get_user(301).await.unwrap().unwrap().tier, Tier::Pro);
    // Checked once: the next round asks Platega nothing.
    let gets = s
        .platega
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .count();
    assert_eq!(billing.reconcile(later + 60_000).await.unwrap(), 0);
    assert_eq!(
        s.platega
            .requests()
            .iter()
            .filter(|r| r.method == "GET")
            .count(),
        gets
    );
    // A payment whose read-back fails stays pending for the next round.
    s.billing
        .buy(304, Tier::Pro, PaymentPeriod::Month, "e", now)
        .await
        .unwrap();
    let e = s.platega.transactions()[4].id.clone();
    s.platega.fail_next(1, Failure::Drop);
    assert_eq!(billing.reconcile(later).await.unwrap(), 0);
    assert_eq!(status(e.clone()).await, PaymentStatus::Pending);
    assert_eq!(billing.reconcile(later).await.unwrap(), 1);
    assert_eq!(status(e).await, PaymentStatus::Expired);
    // A wrong amount and a status this code does not know: logged, closed, not read again.
    for (user, key) in [(305, "f"), (306, "g")] {
        s.billing
            .buy(user, Tier::Pro, PaymentPeriod::Month, key, now)
            .await
            .unwrap();
    }
    let (f, g) = (
        s.platega.transactions()[5].id.clone(),
        s.platega.transactions()[6].id.clone(),
    );
    s.platega.set_status(&f, "CONFIRMED");
    s.platega.set_amount(&f, 2.99, "RUB");
    s.platega.set_status(&g, "REFUNDED");
    assert_eq!(billing.reconcile(later).await.unwrap(), 2);
    assert_eq!(status(f.clone()).await, PaymentStatus::Expired);
    assert_eq!(status(g.clone()).await, PaymentStatus::Expired);
    assert_eq!(store.get_user(305).await.unwrap().unwrap().tier, Tier::Free);
    assert_eq!(billing.reconcile(later + 60_000).await.unwrap(), 0);
    // An expired payment paid after all (a late callback): still activates.
    s.platega.set_status(&ids[0], "CONFIRMED");
    assert_eq!(
        s.platega
            .fire_callback(&s.callback, &ids[0], Creds::Right)
            .await
            .0,
        200
    );
    assert_eq!(store.get_user(300).await.unwrap().unwrap().tier, Tier::Pro);
    assert_no_secret_in_journal(&store).await;
}
