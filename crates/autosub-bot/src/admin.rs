//! Admin commands (only for ids in `AUTOSUB_ADMINS`; the caller checks) and the admin loop: alerts of new
//! ERROR/CRITICAL system logs (at most one message a minute), and broadcasts (throttled under Telegram's 30
//! messages a second, resumable: the cursor is saved after every message).

use std::sync::Arc;
use std::time::{Duration, Instant};

use autosub_store::{now_ms, Level, StoreError, Tier};
use tokio::sync::watch;

use crate::handle::{date_utc, plan_name, say};
use crate::i18n::{t, Lang};
use crate::{BotError, Ctx, TgError};

/// Messages a second a broadcast sends (Telegram allows about 30 to different chats).
pub const BROADCAST_PER_SECOND: u32 = 25;
/// Least time between two alerts to an admin.
pub const ALERT_EVERY: Duration = Duration::from_secs(60);

fn parse_id(s: Option<&&str>) -> Option<i64> {
    s.and_then(|s| s.trim_start_matches('@').parse().ok())
}

/// Runs an admin command. `rest` is the words after the command, `raw_rest` the text after it as typed.
pub async fn command(
    ctx: &Ctx,
    lang: Lang,
    admin: i64,
    chat: i64,
    cmd: &str,
    rest: &[&str],
    raw_rest: &str,
) -> Result<(), BotError> {
    let now = now_ms();
    match cmd {
        "stats" => {
            let s = ctx.store.bot_stats(now).await?;
            let today = if s.tasks_today.is_empty() {
                "0".to_owned()
            } else {
                s.tasks_today
                    .iter()
                    .map(|(st, n)| format!("{st} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let queue = ctx
                .store
                .queue_depth()
                .await?
                .iter()
                .map(|(tier, n)| format!("{} {n}", plan_name(lang, *tier)))
                .collect::<Vec<_>>()
                .join(", ");
            let busy = ctx.store.processing_count().await?;
            let day = autosub_store::utc_day(now) * 86_400_000;
            let today_rev = ctx.store.revenue(day, i64::MAX).await?;
            let month_rev = ctx
                .store
                .revenue(autosub_store::utc_month_start(now), i64::MAX)
                .await?;
            let m = ctx.store.metrics(now - 30 * 86_400_000, now).await?;
            let text = t(
                lang,
                "stats",
                &[
                    ("users", &s.users.to_string()),
                    ("paid", &s.paid_users.to_string()),
                    ("today", &today),
                    ("queue", &queue),
                    ("busy", &busy.to_string()),
                    ("failures", &s.failures_24h.to_string()),
                    ("pay_today", &today_rev.payments.to_string()),
                    ("rev_today", &today_rev.amount.to_string()),
                    ("pay_month", &month_rev.payments.to_string()),
                    ("rev_month", &month_rev.amount.to_string()),
                    ("dau", &m.dau.to_string()),
                    ("wau", &m.wau.to_string()),
                    ("mau", &m.mau.to_string()),
                    ("conversion", &format!("{:.1}%", m.conversion * 100.0)),
                ],
            );
            say(ctx, chat, &text).await
        }
        "logs" => {
            let n = rest
                .first()
                .and_then(|s| s.parse::<i64>().ok())
                .unwrap_or(10)
                .clamp(1, 50);
            let logs = ctx.store.recent_logs(Level::Error, n).await?;
            if logs.is_empty() {
                return say(ctx, chat, &t(lang, "logs_none", &[])).await;
            }
            let text = logs
                .iter()
                .map(|l| {
                    let task = l.task_id.map(|i| format!(" task {i}")).unwrap_or_default();
                    format!(
                        "{} {} [{}{task}] {}",
                        date_time(l.created_at),
                        l.level.as_str(),
                        l.source,
                        l.message
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            say(ctx, chat, &clip(&text, 4000)).await
        }
        "user" => {
            let Some(id) = parse_id(rest.first()) else {
                return say(ctx, chat, &t(lang, "usage_user", &[])).await;
            };
            let Some(u) = ctx.store.get_user(id).await? else {
                return say(
                    ctx,
                    chat,
                    &t(lang, "user_unknown", &[("id", &id.to_string())]),
                )
                .await;
            };
            let tier = u.effective_tier(now);
            let tasks = ctx
                .store
                .user_tasks(id, 5)
                .await?
                .iter()
                .map(|t| {
                    format!(
                        "#{} {} {}",
                        t.id,
                        t.status.as_str(),
                        date_time(t.created_at)
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            let until = match u.tier_expires_at {
                Some(at) if tier != Tier::Free => date_utc(at),
                _ => t(lang, "until_never", &[]),
            };
            let text = t(
                lang,
                "user",
                &[
                    ("id", &id.to_string()),
                    ("username", u.username.as_deref().unwrap_or("—")),
                    ("plan", &plan_name(lang, tier)),
                    ("until", &until),
                    ("today", &u.tasks_today_at(now).to_string()),
                    ("total", &u.tasks_total.to_string()),
                    ("banned", &t(lang, if u.banned { "yes" } else { "no" }, &[])),
                    ("tasks", if tasks.is_empty() { "—" } else { &tasks }),
                ],
            );
            say(ctx, chat, &text).await
        }
        "grant" => {
            let id = parse_id(rest.first());
            let tier = rest
                .get(1)
                .and_then(|s| s.to_ascii_lowercase().parse::<Tier>().ok());
            let days = rest.get(2).and_then(|s| s.parse::<i64>().ok());
            let (Some(id), Some(tier), Some(days)) =
                (id, tier, days.or((tier == Some(Tier::Free)).then_some(0)))
            else {
                return say(ctx, chat, &t(lang, "usage_grant", &[])).await;
            };
            if tier.is_paid() && days <= 0 {
                return say(ctx, chat, &t(lang, "usage_grant", &[])).await;
            }
            let u = ctx.store.grant(id, tier, days, now).await?;
            let _ = ctx
                .store
                .log(
                    Level::Info,
                    "bot",
                    None,
                    &format!(
                        "admin {admin} granted {} for {days} days to {id}",
                        tier.as_str()
                    ),
                    now,
                )
                .await;
            let until = u
                .tier_expires_at
                .map(date_utc)
                .unwrap_or_else(|| t(lang, "until_never", &[]));
            let text = t(
                lang,
                "granted",
                &[
                    ("id", &id.to_string()),
                    ("plan", &plan_name(lang, tier)),
                    ("until", &until),
                ],
            );
            say(ctx, chat, &text).await
        }
        "ban" | "unban" => {
            let Some(id) = parse_id(rest.first()) else {
                return say(ctx, chat, &t(lang, "usage_ban", &[])).await;
            };
            let ban = cmd == "ban";
            match ctx.store.set_banned(id, ban).await {
                Ok(()) => {}
                Err(StoreError::NotFound(_)) => {
                    return say(
                        ctx,
                        chat,
                        &t(lang, "user_unknown", &[("id", &id.to_string())]),
                    )
                    .await
                }
                Err(e) => return Err(e.into()),
            }
            let _ = ctx
                .store
                .log(
                    Level::Info,
                    "bot",
                    None,
                    &format!("admin {admin} {cmd}ned {id}"),
                    now,
                )
                .await;
            say(
                ctx,
                chat,
                &t(
                    lang,
                    if ban { "banned" } else { "unbanned" },
                    &[("id", &id.to_string())],
                ),
            )
            .await
        }
        "broadcast" => {
            if raw_rest.is_empty() {
                return say(ctx, chat, &t(lang, "usage_broadcast", &[])).await;
            }
            let b = ctx.store.broadcast_create(admin, raw_rest, now).await?;
            say(
                ctx,
                chat,
                &t(lang, "broadcast_started", &[("id", &b.id.to_string())]),
            )
            .await
        }
        _ => say(ctx, chat, &t(lang, "unknown_command", &[])).await,
    }
}

fn clip(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max_chars - 1).collect();
    out.push('…');
    out
}

/// "2026-12-04 17:42" (UTC).
fn date_time(ms: i64) -> String {
    let m = ms.rem_euclid(86_400_000) / 60_000;
    format!("{} {:02}:{:02}", date_utc(ms), m / 60, m % 60)
}

/// Runs until `stop`: alerts and broadcasts.
pub async fn admin_loop(ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    let mut last_alert: Option<Instant> = None;
    loop {
        if crate::pause(&mut stop, Duration::from_secs(1)).await {
            return;
        }
        if let Err(e) = alerts(&ctx, &mut last_alert).await {
            tracing::warn!("alerts: {e}");
        }
        if let Err(e) = broadcasts(&ctx, &mut stop).await {
            tracing::warn!("broadcast: {e}");
        }
    }
}

const ALERT_CURSOR: &str = "alert_log_id";

async fn alerts(ctx: &Ctx, last: &mut Option<Instant>) -> Result<(), BotError> {
    if ctx.cfg.admins.is_empty() || last.is_some_and(|l| l.elapsed() < ALERT_EVERY) {
        return Ok(());
    }
    let logs = ctx.store.recent_logs(Level::Error, 50).await?;
    let newest = logs.iter().map(|l| l.id).max().unwrap_or(0);
    let cursor = match ctx.store.bot_state_get(ALERT_CURSOR).await? {
        Some(c) => c.parse::<i64>().unwrap_or(0),
        None => {
            // First start: what was logged before the bot ran is not news.
            ctx.store
                .bot_state_set(ALERT_CURSOR, &newest.to_string())
                .await?;
            return Ok(());
        }
    };
    let mut fresh: Vec<_> = logs.iter().filter(|l| l.id > cursor).collect();
    if fresh.is_empty() {
        return Ok(());
    }
    fresh.sort_by_key(|l| l.id);
    let lines = fresh
        .iter()
        .rev()
        .take(5)
        .map(|l| {
            let task = l.task_id.map(|i| format!(" task {i}")).unwrap_or_default();
            clip(
                &format!("{} [{}{task}] {}", l.level.as_str(), l.source, l.message),
                300,
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    // The cursor moves first: an alert is at most lost, never repeated in a loop.
    ctx.store
        .bot_state_set(ALERT_CURSOR, &newest.to_string())
        .await?;
    *last = Some(Instant::now());
    for admin in &ctx.cfg.admins {
        let chat = ctx
            .store
            .bot_chat(*admin)
            .await?
            .map_or(*admin, |c| c.chat_id);
        let lang = ctx.lang_of(*admin, None).await;
        let text = t(
            lang,
            "alert",
            &[("count", &fresh.len().to_string()), ("lines", &lines)],
        );
        if let Err(e) = ctx.tg.send(chat, &text, None).await {
            tracing::warn!("alert to an admin not sent: {e}");
        }
    }
    Ok(())
}

async fn broadcasts(ctx: &Ctx, stop: &mut watch::Receiver<bool>) -> Result<(), BotError> {
    for mut b in ctx.store.broadcasts_running().await? {
        let gap = Duration::from_millis(1000 / u64::from(BROADCAST_PER_SECOND));
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            let batch = ctx.store.bot_chats_after(b.cursor, 100).await?;
            if batch.is_empty() {
                break;
            }
            for (user, chat) in batch {
                if *stop.borrow() {
                    return Ok(());
                }
                let t0 = Instant::now();
                match ctx.tg.send(chat, &b.text, None).await {
                    Ok(_) => b.delivered += 1,
                    Err(TgError::Blocked) => b.blocked += 1,
                    Err(TgError::RetryAfter(d)) => {
                        // Flood control: wait as asked, then the same user again.
                        crate::pause(stop, d).await;
                        continue;
                    }
                    Err(TgError::Network(e)) => return Err(TgError::Network(e).into()),
                    Err(_) => b.failed += 1,
                }
                b.cursor = user;
                ctx.store.broadcast_progress(&b).await?;
                if let Some(rest) = gap.checked_sub(t0.elapsed()) {
                    tokio::time::sleep(rest).await;
                }
            }
        }
        if ctx.store.broadcast_finish(b.id, now_ms()).await? {
            let lang = ctx.lang_of(b.admin_id, None).await;
            let chat = ctx
                .store
                .bot_chat(b.admin_id)
                .await?
                .map_or(b.admin_id, |c| c.chat_id);
            let text = t(
                lang,
                "broadcast_done",
                &[
                    ("id", &b.id.to_string()),
                    ("delivered", &b.delivered.to_string()),
                    ("blocked", &b.blocked.to_string()),
                    ("failed", &b.failed.to_string()),
                ],
            );
            let _ = ctx.tg.send(chat, &text, None).await;
        }
    }
    Ok(())
}
