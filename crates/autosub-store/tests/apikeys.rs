//! API keys and their request counts, on SQLite and on PostgreSQL.

#[macro_use]
mod common;

use autosub_store::{Store, StoreError};

/// 2024-01-01 00:00 UTC, the start of a minute.
const T0: i64 = 1_704_067_200_000;

on_both!(
    keys_are_made_found_listed_and_revoked,
    requests_are_counted_per_key_and_minute
);

async fn keys_are_made_found_listed_and_revoked(store: Store) {
    let a = store.upsert_user(1, None, None, T0).await.unwrap();
    let b = store.upsert_user(2, None, None, T0).await.unwrap();
    let k1 = store
        .create_api_key(a.id, "hash1", "ask_11111111", Some("ci"), 2, T0)
        .await
        .unwrap();
    assert_eq!((k1.user_id, k1.prefix.as_str()), (a.id, "ask_11111111"));
    assert_eq!(k1.name.as_deref(), Some("ci"));
    let (found, owner) = store.api_key_by_hash("hash1").await.unwrap().unwrap();
    assert_eq!((found.id, owner.telegram_id), (k1.id, 1));
    assert!(store.api_key_by_hash("hash9").await.unwrap().is_none());
    // The same hash cannot be stored twice (a unique column), and a user's active keys are capped.
    assert!(store
        .create_api_key(b.id, "hash1", "ask_11111111", None, 2, T0)
        .await
        .is_err());
    store
        .create_api_key(a.id, "hash2", "ask_22222222", None, 2, T0 + 1)
        .await
        .unwrap();
    match store
        .create_api_key(a.id, "hash3", "ask_33333333", None, 2, T0 + 2)
        .await
    {
        Err(StoreError::InvalidState(m)) => assert!(m.contains("at most 2"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store
            .create_api_key(9999, "hash4", "ask_44444444", None, 2, T0)
            .await,
        Err(StoreError::NotFound(_))
    ));
    // Concurrent creations cannot pass the cap together.
    let mut handles = Vec::new();
    for i in 0..6 {
        let s = store.clone();
        let user = b.id;
        handles.push(tokio::spawn(async move {
            s.create_api_key(user, &format!("b{i}"), &format!("ask_b{i}"), None, 3, T0)
                .await
                .is_ok()
        }));
    }
    let mut made = 0;
    for h in handles {
        made += usize::from(h.await.unwrap());
    }
    assert_eq!(made, 3);
    // Newest first; revoking by prefix touches only that user's key.
    let keys = store.api_keys_of(a.id).await.unwrap();
    assert_eq!(
        keys.iter().map(|k| k.prefix.as_str()).collect::<Vec<_>>(),
        ["ask_22222222", "ask_11111111"]
    );
    assert_eq!(
        store
            .revoke_api_keys(b.id, Some("ask_11111111"), T0 + 5)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .revoke_api_keys(a.id, Some("ask_11111111"), T0 + 5)
            .await
            .unwrap(),
        1
    );
    assert!(store.api_key_by_hash("hash1").await.unwrap().is_none());
    assert!(store.api_key_by_hash("hash2").await.unwrap().is_some());
    let keys = store.api_keys_of(a.id).await.unwrap();
    assert_eq!(keys[1].revoked_at, Some(T0 + 5));
    // A revoked key frees its place under the cap; revoking all.
    store
        .create_api_key(a.id, "hash5", "ask_55555555", None, 2, T0 + 6)
        .await
        .unwrap();
    assert_eq!(store.revoke_api_keys(a.id, None, T0 + 7).await.unwrap(), 2);
    assert_eq!(store.revoke_api_keys(a.id, None, T0 + 8).await.unwrap(), 0);
    let logs = store
        .recent_logs(autosub_store::Level::Info, 100)
        .await
        .unwrap();
    assert!(logs
        .iter()
        .any(|l| l.source == "api" && l.message.contains("revoked")));
    assert!(
        logs.iter().all(|l| !l.message.contains("hash")),
        "no hash in the journal"
    );
}

async fn requests_are_counted_per_key_and_minute(store: Store) {
    let a = store.upsert_user(1, None, None, T0).await.unwrap();
    let k = store
        .create_api_key(a.id, "h1", "ask_1", None, 5, T0)
        .await
        .unwrap();
    let other = store
        .create_api_key(a.id, "h2", "ask_2", None, 5, T0)
        .await
        .unwrap();
    for n in 1..=3 {
        assert_eq!(store.api_hit(k.id, 60_000, T0 + n * 100).await.unwrap(), n);
    }
    // Another key has its own count; the next minute starts again.
    assert_eq!(store.api_hit(other.id, 60_000, T0 + 500).await.unwrap(), 1);
    assert_eq!(store.api_hit(k.id, 60_000, T0 + 59_999).await.unwrap(), 4);
    assert_eq!(store.api_hit(k.id, 60_000, T0 + 60_000).await.unwrap(), 1);
    let (key, _) = store.api_key_by_hash("h1").await.unwrap().unwrap();
    assert_eq!(key.last_used_at, Some(T0 + 60_000));
    // 20 requests at once in one minute: every one counted once.
    let mut handles = Vec::new();
    for _ in 0..20 {
        let s = store.clone();
        let id = k.id;
        handles.push(tokio::spawn(async move {
            s.api_hit(id, 60_000, T0 + 120_000).await.unwrap()
        }));
    }
    let mut counts = Vec::new();
    for h in handles {
        counts.push(h.await.unwrap());
    }
    counts.sort_unstable();
    assert_eq!(counts, (1..=20).collect::<Vec<i64>>());
}
