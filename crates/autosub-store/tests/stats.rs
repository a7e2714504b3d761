//! Business metrics on a seeded history with known answers, on SQLite and on PostgreSQL.

#[macro_use]
mod common;

use autosub_store::{DayValues, NewPayment, NewTask, PaymentPeriod, PaymentStatus, Store, Tier};

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;
/// 2024-01-01 12:00 UTC: day D0.
const T0: i64 = 1_704_110_400_000;
const VALUES: DayValues = DayValues {
    pro: 299.0 / 30.0,
    creator: 599.0 / 30.0,
};

on_both!(metrics_on_a_known_history);

async fn pay(
    store: &Store,
    user_id: i64,
    ext: &str,
    tier: Tier,
    period: PaymentPeriod,
    amount: i64,
    at: i64,
) {
    store
        .insert_payment(
            &NewPayment {
                user_id,
                amount,
                currency: "RUB".into(),
                tier,
                period,
                days: 30,
                status: PaymentStatus::Pending,
                external_id: Some(ext.into()),
                payload: None,
                request_key: None,
                redirect_url: None,
                expires_at: None,
            },
            at,
        )
        .await
        .unwrap();
    store.confirm_payment(ext, VALUES, at).await.unwrap();
}

/// A task of `user` created at `at`, run for `secs` seconds (`None`: left queued).
async fn task(
    store: &Store,
    user: Option<i64>,
    tier: Tier,
    at: i64,
    secs: Option<i64>,
    translate: bool,
    vertical: bool,
) {
    let id = store
        .enqueue(
            &NewTask {
                user_telegram_id: user,
                kind: "sleep".into(),
                spec: "{}".into(),
                spec_version: 1,
                input_type: "file".into(),
                generate_subtitles: true,
                translate: translate.then(|| "en".to_owned()),
                vertical_format: vertical,
                tier,
                ..NewTask::default()
            },
            at,
        )
        .await
        .unwrap();
    if let Some(secs) = secs {
        let c = store
            .claim("w", &["sleep"], 10 * DAY, at)
            .await
            .unwrap()
            .expect("the task just queued");
        assert_eq!(c.id, id);
        assert!(store
            .complete(id, "w", "{}", at + secs * 1000)
            .await
            .unwrap());
    }
}

async fn metrics_on_a_known_history(store: Store) {
    let a = store.upsert_user(1, None, None, T0).await.unwrap();
    let b = store.upsert_user(2, None, None, T0 + HOUR).await.unwrap();
    let c = store
        .upsert_user(3, None, None, T0 + 5 * DAY)
        .await
        .unwrap();
    let _d = store
        .upsert_user(4, None, None, T0 + 9 * DAY)
        .await
        .unwrap();
    let e = store
        .upsert_user(5, None, None, T0 - 40 * DAY)
        .await
        .unwrap();
    // Bot activity.
    for (u, at) in [
        (a.id, T0),
        (a.id, T0 + DAY),
        (a.id, T0 + DAY + HOUR), // the same day twice: once
        (b.id, T0 + HOUR),
        (c.id, T0 + 5 * DAY),
        (c.id, T0 + 6 * DAY),
        (e.id, T0 + 10 * DAY - HOUR),
    ] {
        store.record_activity(u, at).await.unwrap();
    }
    // Tasks: A's (PRO, translated, 60 s) on D0+7; ten operator tasks (FREE, 10..100 s) on D0+3; D's (FREE,
    // vertical, still queued) on D0+10.
    task(
        &store,
        Some(1),
        Tier::Pro,
        T0 + 7 * DAY,
        Some(60),
        true,
        false,
    )
    .await;
    for i in 1..=10 {
        task(
            &store,
            None,
            Tier::Free,
            T0 + 3 * DAY + i * HOUR,
            Some(i * 10),
            false,
            false,
        )
        .await;
    }
    task(
        &store,
        Some(4),
        Tier::Free,
        T0 + 10 * DAY - 2 * HOUR,
        None,
        false,
        true,
    )
    .await;
    // Payments: A a PRO month, C a CREATOR year; C's PRO month charged back (not revenue).
    pay(
        &store,
        a.id,
        "a1",
        Tier::Pro,
        PaymentPeriod::Month,
        299,
        T0 + 2 * DAY,
    )
    .await;
    pay(
        &store,
        c.id,
        "c1",
        Tier::Creator,
        PaymentPeriod::Year,
        5990,
        T0 + 6 * DAY,
    )
    .await;
    pay(
        &store,
        c.id,
        "c2",
        Tier::Pro,
        PaymentPeriod::Month,
        299,
        T0 + 6 * DAY,
    )
    .await;
    store
        .chargeback_payment("c2", VALUES, T0 + 7 * DAY)
        .await
        .unwrap();

    let until = T0 + 10 * DAY; // D0+10, 12:00
    let m = store.metrics(T0 - HOUR, until).await.unwrap();
    // Today D0+10: D (task) and E (bot). The 7 days D0+4..D0+10: A, C, D, E. The 30 days: everyone.
    assert_eq!((m.dau, m.wau, m.mau, m.active), (2, 4, 5, 5));
    assert_eq!((m.new_users, m.new_paying, m.conversion), (4, 2, 0.5));
    assert_eq!(m.revenue, 6289);
    let plans: Vec<(String, String, i64, i64)> = m
        .revenue_by_plan
        .iter()
        .map(|p| (p.tier.clone(), p.period.clone(), p.payments, p.amount))
        .collect();
    assert_eq!(
        plans,
        [
            ("creator".into(), "year".into(), 1, 5990),
            ("pro".into(), "month".into(), 1, 299)
        ]
    );
    assert_eq!(m.arpu, 1257.8);
    // d1: A (D0+1), C (D0+6), D (D0+10, a task) of A, B, C, D. d7: A (a task on D0+7) of A, B. d30: nobody yet.
    let r = |k: &str| {
        let x = &m.retention[k];
        (x.cohort, x.retained, x.rate)
    };
    assert_eq!(r("d1"), (4, 3, 0.75));
    assert_eq!(r("d7"), (2, 1, 0.5));
    assert_eq!(r("d30"), (0, 0, 0.0));
    assert_eq!(m.tasks.total, 12);
    assert_eq!(m.tasks.by_status["completed"], 11);
    assert_eq!(m.tasks.by_status["queued"], 1);
    assert_eq!((m.tasks.by_tier["free"], m.tasks.by_tier["pro"]), (11, 1));
    assert_eq!(m.tasks.by_feature["translate"], 1);
    assert_eq!(m.tasks.by_feature["vertical"], 1);
    assert_eq!(m.tasks.by_feature["voiceover"], 0);
    let free = m.processing["free"];
    assert_eq!((free.tasks, free.median_s, free.p95_s), (10, 50.0, 100.0));
    let pro = m.processing["pro"];
    assert_eq!((pro.tasks, pro.median_s, pro.p95_s), (1, 60.0, 60.0));
    assert!(!m.processing.contains_key("creator"));
    // A shorter period: only what happened in it.
    let m = store.metrics(T0 + 5 * DAY, until).await.unwrap();
    assert_eq!((m.new_users, m.new_paying), (2, 1)); // C and D; C paid
    assert_eq!(m.revenue, 5990);
    assert_eq!(m.tasks.total, 2);
    assert!(!m.processing.contains_key("free"));
    // An empty period: zeros, no division by zero.
    let m = store.metrics(T0 + 20 * DAY, T0 + 21 * DAY).await.unwrap();
    assert_eq!(
        (m.dau, m.new_users, m.conversion, m.arpu, m.revenue),
        (0, 0, 0.0, 0.0, 0)
    );
}
