//! Payments, subscriptions, notices and schedules, every test run on SQLite and on PostgreSQL.

#[macro_use]
mod common;

use autosub_store::{
    referral_code, utc_month_start, Activation, DayValues, Level, NewPayment, PaymentPeriod,
    PaymentStatus, Revocation, Store, StoreError, Tier,
};

const DAY: i64 = 86_400_000;
/// 2024-01-01 12:00 UTC.
const T0: i64 = 1_704_110_400_000;
const VALUES: DayValues = DayValues {
    pro: 299.0 / 30.0,
    creator: 599.0 / 30.0,
};

on_both!(
    confirming_activates_once_and_extends,
    concurrent_confirmations_activate_once,
    upgrades_convert_and_chargebacks_take_back,
    the_sweep_ends_tiers_and_reminds_once,
    payments_close_and_are_found,
    referrals_reward_both_once,
);

async fn payment(
    store: &Store,
    telegram_id: i64,
    ext: &str,
    tier: Tier,
    period: PaymentPeriod,
    amount: i64,
) -> i64 {
    let user = store
        .upsert_user(telegram_id, None, None, T0)
        .await
        .unwrap();
    store
        .insert_payment(
            &NewPayment {
                user_id: user.id,
                amount,
                currency: "RUB".into(),
                tier,
                period,
                days: match period {
                    PaymentPeriod::Month => 30,
                    PaymentPeriod::Year => 365,
                },
                status: PaymentStatus::Pending,
                external_id: Some(ext.into()),
                payload: None,
                request_key: Some(format!("key-{ext}")),
                redirect_url: Some(format!("https://pay.example/{ext}")),
                expires_at: Some(T0 + 15 * 60_000),
            },
            T0,
        )
        .await
        .unwrap()
}

async fn confirming_activates_once_and_extends(store: Store) {
    payment(&store, 1, "m1", Tier::Pro, PaymentPeriod::Month, 299).await;
    payment(&store, 1, "y1", Tier::Pro, PaymentPeriod::Year, 2990).await;
    let Activation::Activated { user, payment: p } =
        store.confirm_payment("m1", VALUES, T0).await.unwrap()
    else {
        panic!("not activated")
    };
    assert_eq!(
        (user.tier, user.tier_expires_at),
        (Tier::Pro, Some(T0 + 30 * DAY))
    );
    assert_eq!(
        (p.status, p.granted_tier, p.granted_ms, p.confirmed_at),
        (
            PaymentStatus::Confirmed,
            Some(Tier::Pro),
            30 * DAY,
            Some(T0)
        )
    );
    // A replay changes nothing.
    assert_eq!(
        store.confirm_payment("m1", VALUES, T0 + 5).await.unwrap(),
        Activation::Unchanged(PaymentStatus::Confirmed)
    );
    // A year bought a day later adds to the running month.
    let Activation::Activated { user, .. } =
        store.confirm_payment("y1", VALUES, T0 + DAY).await.unwrap()
    else {
        panic!("not activated")
    };
    assert_eq!(user.tier_expires_at, Some(T0 + 395 * DAY));
    let notices = store.user_notices(1).await.unwrap();
    assert_eq!(
        notices.iter().map(|n| n.kind.as_str()).collect::<Vec<_>>(),
        ["tier_active", "tier_active"]
    );
    let args: serde_json::Value = serde_json::from_str(&notices[1].args).unwrap();
    assert_eq!(args["until"], serde_json::json!(T0 + 395 * DAY));
    assert_eq!(args["tier"], "pro");
    let r = store.revenue(T0 - 1, T0 + 2 * DAY).await.unwrap();
    assert_eq!((r.payments, r.amount), (2, 3289));
    assert_eq!(
        store
            .revenue(T0 + 2 * DAY, T0 + 3 * DAY)
            .await
            .unwrap()
            .payments,
        0
    );
    assert_eq!(utc_month_start(T0), T0 - 12 * 3_600_000);
    // Expired before the second purchase: it starts from now.
    payment(&store, 2, "m2", Tier::Pro, PaymentPeriod::Month, 299).await;
    store.confirm_payment("m2", VALUES, T0).await.unwrap();
    payment(&store, 2, "m3", Tier::Pro, PaymentPeriod::Month, 299).await;
    let Activation::Activated { user, .. } = store
        .confirm_payment("m3", VALUES, T0 + 40 * DAY)
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(user.tier_expires_at, Some(T0 + 70 * DAY));
    assert!(matches!(
        store.confirm_payment("nope", VALUES, T0).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn concurrent_confirmations_activate_once(store: Store) {
    payment(&store, 7, "c1", Tier::Pro, PaymentPeriod::Month, 299).await;
    let mut handles = vec![];
    for i in 0..10 {
        let s = store.clone();
        handles.push(tokio::spawn(async move {
            s.confirm_payment("c1", VALUES, T0 + i).await.unwrap()
        }));
    }
    let mut activated = 0;
    for h in handles {
        if matches!(h.await.unwrap(), Activation::Activated { .. }) {
            activated += 1;
        }
    }
    assert_eq!(activated, 1);
    let user = store.get_user(7).await.unwrap().unwrap();
    let at = user.tier_expires_at.unwrap();
    assert!((T0 + 30 * DAY..T0 + 30 * DAY + 10).contains(&at), "{at}");
    assert_eq!(store.user_notices(7).await.unwrap().len(), 1);
    let logs = store.recent_logs(Level::Info, 50).await.unwrap();
    assert_eq!(
        logs.iter()
            .filter(|l| l.message.contains("confirmed"))
            .count(),
        1
    );
}

async fn upgrades_convert_and_chargebacks_take_back(store: Store) {
    payment(&store, 3, "p", Tier::Pro, PaymentPeriod::Month, 299).await;
    payment(&store, 3, "c", Tier::Creator, PaymentPeriod::Month, 599).await;
    store.confirm_payment("p", VALUES, T0).await.unwrap();
    // Ten days later, CREATOR: the 20 PRO days left become 20 * 299/599 CREATOR days on top of the 30 bought.
    let now = T0 + 10 * DAY;
    let Activation::Activated { user, .. } = store.confirm_payment("c", VALUES, now).await.unwrap()
    else {
        panic!()
    };
    let carried = (20.0 * DAY as f64 * 299.0 / 599.0).round() as i64;
    assert_eq!(
        (user.tier, user.tier_expires_at),
        (Tier::Creator, Some(now + 30 * DAY + carried))
    );
    // The CREATOR payment charged back: its 30 days go, the carried PRO value stays.
    let Revocation::Revoked { user, payment: p } = store
        .chargeback_payment("c", VALUES, now + DAY)
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(p.status, PaymentStatus::Chargebacked);
    assert_eq!(
        (user.tier, user.tier_expires_at),
        (Tier::Creator, Some(now + carried))
    );
    assert_eq!(
        store
            .chargeback_payment("c", VALUES, now + DAY)
            .await
            .unwrap(),
        Revocation::Unchanged(PaymentStatus::Chargebacked)
    );
    // Then the PRO one: its 30 days, worth 15 CREATOR days, exceed what is left: FREE.
    store
        .chargeback_payment("p", VALUES, now + DAY)
        .await
        .unwrap();
    let user = store.get_user(3).await.unwrap().unwrap();
    assert_eq!((user.tier, user.tier_expires_at), (Tier::Free, None));
    let kinds: Vec<String> = store
        .user_notices(3)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.kind)
        .collect();
    assert_eq!(
        kinds,
        ["tier_active", "tier_active", "tier_revoked", "tier_revoked"]
    );
    // A payment never confirmed: only marked, nobody told, nothing taken.
    payment(&store, 4, "n", Tier::Pro, PaymentPeriod::Month, 299).await;
    store.grant(4, Tier::Pro, 5, T0).await.unwrap();
    store.chargeback_payment("n", VALUES, T0).await.unwrap();
    let user = store.get_user(4).await.unwrap().unwrap();
    assert_eq!(user.tier_expires_at, Some(T0 + 5 * DAY));
    assert!(store.user_notices(4).await.unwrap().is_empty());
    // A charged-back payment cannot be confirmed afterwards; revenue leaves it out.
    assert_eq!(
        store.confirm_payment("n", VALUES, T0).await.unwrap(),
        Activation::Unchanged(PaymentStatus::Chargebacked)
    );
    assert_eq!(store.revenue(0, i64::MAX).await.unwrap().payments, 0);
}

async fn the_sweep_ends_tiers_and_reminds_once(store: Store) {
    store.grant(11, Tier::Pro, 2, T0 - DAY).await.unwrap(); // ends T0 + DAY: reminded
    store.grant(12, Tier::Pro, 1, T0 - 2 * DAY).await.unwrap(); // ended T0 - DAY: moved to FREE
    store.grant(13, Tier::Creator, 10, T0).await.unwrap(); // far away
    store.grant(14, Tier::Free, 0, T0).await.unwrap();
    let warn = 3 * DAY;
    let s = store.sweep_subscriptions(T0, warn).await.unwrap();
    assert_eq!((s.expired, s.warned), (1, 1));
    let s = store.sweep_subscriptions(T0 + 60_000, warn).await.unwrap();
    assert_eq!((s.expired, s.warned), (0, 0), "told once");
    let u12 = store.get_user(12).await.unwrap().unwrap();
    assert_eq!((u12.tier, u12.tier_expires_at), (Tier::Free, None));
    assert_eq!(
        store.user_notices(11).await.unwrap()[0].kind,
        "tier_expiring"
    );
    assert_eq!(
        store.user_notices(12).await.unwrap()[0].kind,
        "tier_expired"
    );
    assert!(store.user_notices(13).await.unwrap().is_empty());
    // Renewed: a new expiry date is reminded again when it comes near.
    store.grant(11, Tier::Pro, 30, T0).await.unwrap();
    let s = store
        .sweep_subscriptions(T0 + 29 * DAY, warn)
        .await
        .unwrap();
    assert_eq!((s.expired, s.warned), (1, 1)); // 13 ended (T0 + 10 days), 11's new date is near
                                               // Three days later 11 has ended.
    let s = store
        .sweep_subscriptions(T0 + 32 * DAY, warn)
        .await
        .unwrap();
    assert_eq!((s.expired, s.warned), (1, 0));
    // The bot's side: unsent, then sent.
    let unsent = store.notices_unsent(100).await.unwrap();
    assert_eq!(unsent.len(), 5);
    for n in &unsent {
        store.notice_sent(n.id, T0).await.unwrap();
    }
    assert!(store.notices_unsent(100).await.unwrap().is_empty());
    // Schedules: one claimant per period.
    assert!(store.claim_schedule("sweep", T0, DAY).await.unwrap());
    assert!(!store.claim_schedule("sweep", T0 + 1, DAY).await.unwrap());
    assert!(store.claim_schedule("sweep", T0 + DAY, DAY).await.unwrap());
    let mut handles = vec![];
    for _ in 0..8 {
        let s = store.clone();
        handles.push(tokio::spawn(async move {
            s.claim_schedule("sweep", T0 + 5 * DAY, DAY).await.unwrap()
        }));
    }
    let mut won = 0;
    for h in handles {
        won += usize::from(h.await.unwrap());
    }
    assert_eq!(won, 1);
}

async fn payments_close_and_are_found(store: Store) {
    let id = payment(&store, 5, "x1", Tier::Pro, PaymentPeriod::Month, 299).await;
    let user = store.get_user(5).await.unwrap().unwrap();
    let p = store
        .payment_by_request_key("key-x1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (p.id, p.redirect_url.as_deref()),
        (id, Some("https://pay.example/x1"))
    );
    // Open while the provider accepts it.
    let open = store
        .open_payment(user.id, Tier::Pro, PaymentPeriod::Month, T0)
        .await
        .unwrap();
    assert_eq!(open.map(|p| p.id), Some(id));
    assert!(store
        .open_payment(user.id, Tier::Pro, PaymentPeriod::Year, T0)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .open_payment(user.id, Tier::Pro, PaymentPeriod::Month, T0 + 15 * 60_000)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store
            .payments_past_expiry(T0 + 15 * 60_000, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store.payments_past_expiry(T0, 10).await.unwrap().is_empty());
    assert!(store
        .close_payment("x1", PaymentStatus::Expired, T0)
        .await
        .unwrap());
    assert!(!store
        .close_payment("x1", PaymentStatus::Expired, T0)
        .await
        .unwrap());
    assert!(store
        .close_payment("x1", PaymentStatus::Canceled, T0)
        .await
        .unwrap());
    assert!(store
        .close_payment("x1", PaymentStatus::Confirmed, T0)
        .await
        .is_err());
    // Paid after all: a cancelled payment still activates when the provider says CONFIRMED.
    assert!(matches!(
        store.confirm_payment("x1", VALUES, T0).await.unwrap(),
        Activation::Activated { .. }
    ));
    assert!(!store
        .close_payment("x1", PaymentStatus::Canceled, T0)
        .await
        .unwrap());
    // The request key is unique.
    let again = NewPayment {
        user_id: user.id,
        amount: 1,
        currency: "RUB".into(),
        tier: Tier::Pro,
        period: PaymentPeriod::Month,
        days: 30,
        status: PaymentStatus::Pending,
        external_id: Some("x2".into()),
        payload: None,
        request_key: Some("key-x1".into()),
        redirect_url: None,
        expires_at: None,
    };
    assert!(matches!(
        store.insert_payment(&again, T0).await,
        Err(StoreError::Database(_))
    ));
    assert_eq!(store.user_payments(user.id, 10).await.unwrap().len(), 1);
}

async fn referrals_reward_both_once(store: Store) {
    // The inviter (CREATOR for 10 more days) and three newcomers.
    store.grant(20, Tier::Creator, 10, T0).await.unwrap();
    let inviter = store.get_user(20).await.unwrap().unwrap();
    let code = referral_code(inviter.id);
    let a = store.upsert_user(21, None, None, T0).await.unwrap();
    let b = store.upsert_user(22, None, None, T0).await.unwrap();
    let old = store
        .upsert_user(23, None, None, T0 - 2 * DAY)
        .await
        .unwrap();
    assert!(store
        .record_referral(a.id, &code, T0 + 60_000)
        .await
        .unwrap());
    // Only the first invitation counts; not one's own code, an unknown one, or a user who was already here.
    assert!(!store
        .record_referral(a.id, &referral_code(b.id), T0 + 60_000)
        .await
        .unwrap());
    assert!(!store.record_referral(inviter.id, &code, T0).await.unwrap());
    assert!(!store.record_referral(b.id, "zzzzzz", T0).await.unwrap());
    assert!(!store.record_referral(b.id, "", T0).await.unwrap());
    assert!(!store.record_referral(old.id, &code, T0).await.unwrap());
    assert!(store
        .record_referral(b.id, &code, T0 + 60_000)
        .await
        .unwrap());
    assert_eq!(store.referral_counts(inviter.id).await.unwrap(), (2, 0));

    // A's first payment: A gets PRO for 30 + 7 days; the inviter 7 PRO days as CREATOR time (7 * 299/599).
    payment(&store, 21, "r1", Tier::Pro, PaymentPeriod::Month, 299).await;
    let Activation::Activated { user, .. } =
        store.confirm_payment("r1", VALUES, T0 + DAY).await.unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (user.tier, user.tier_expires_at),
        (Tier::Pro, Some(T0 + DAY + 37 * DAY))
    );
    let bonus = (7.0 * DAY as f64 * 299.0 / 599.0).round() as i64;
    let inv = store.get_user(20).await.unwrap().unwrap();
    assert_eq!(
        (inv.tier, inv.tier_expires_at),
        (Tier::Creator, Some(T0 + 10 * DAY + bonus))
    );
    // A's second payment: no second bonus.
    payment(&store, 21, "r2", Tier::Pro, PaymentPeriod::Month, 299).await;
    let Activation::Activated { user, .. } = store
        .confirm_payment("r2", VALUES, T0 + 2 * DAY)
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(user.tier_expires_at, Some(T0 + DAY + 67 * DAY));
    assert_eq!(
        store.get_user(20).await.unwrap().unwrap().tier_expires_at,
        Some(T0 + 10 * DAY + bonus)
    );
    assert_eq!(store.referral_counts(inviter.id).await.unwrap(), (2, 1));
    let kinds = |id| {
        let store = store.clone();
        async move {
            store
                .user_notices(id)
                .await
                .unwrap()
                .into_iter()
                .map(|n| n.kind)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        kinds(21).await,
        ["tier_active", "referral_bonus", "tier_active"]
    );
    assert_eq!(kinds(20).await, ["referral_bonus"]);
    // The inviter could not pay with it: a referral cannot be recorded for a user who already paid.
    let c = store.upsert_user(24, None, None, T0).await.unwrap();
    payment(&store, 24, "r3", Tier::Pro, PaymentPeriod::Month, 299).await;
    store.confirm_payment("r3", VALUES, T0).await.unwrap();
    assert!(!store
        .record_referral(c.id, &code, T0 + 60_000)
        .await
        .unwrap());
}
