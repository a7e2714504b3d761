//! Plans and payments in the bot: `/plans` (`/subscribe`) with a button per plan, a press turned into a Platega
//! payment link (through `autosub_billing`, the only code that talks to Platega), and the notices billing and the
//! workers write for users ("PRO active until ...", reminders), sent once each.

use autosub_billing::BuyError;
use autosub_store::{now_ms, Notice, PaymentPeriod, Tier, User};
use teloxide_core::types::{InlineKeyboardButton, InlineKeyboardMarkup};

use crate::handle::{date_utc, plan_name, say, soft};
use crate::i18n::{t, Lang};
use crate::options::Press;
use crate::{BotError, Ctx, TgError};

fn period_name(lang: Lang, p: PaymentPeriod) -> String {
    t(
        lang,
        match p {
            PaymentPeriod::Month => "period_month",
            PaymentPeriod::Year => "period_year",
        },
        &[],
    )
}

fn until_text(lang: Lang, tier: Tier, until: Option<i64>) -> String {
    match (tier, until) {
        (Tier::Free, _) | (_, None) => t(lang, "until_never", &[]),
        (_, Some(at)) => date_utc(at),
    }
}

/// `/plans`: the user's plan, what PRO and CREATOR give, a button per plan with its price.
pub(crate) async fn plans(ctx: &Ctx, lang: Lang, user: &User, chat: i64) -> Result<(), BotError> {
    let Some(billing) = ctx.billing.as_ref().filter(|b| b.configured()) else {
        return say(ctx, chat, &t(lang, "plans_off", &[])).await;
    };
    let now = now_ms();
    let tier = user.effective_tier(now);
    let text = t(
        lang,
        "plans",
        &[
            ("plan", &plan_name(lang, tier)),
            ("until", &until_text(lang, tier, user.tier_expires_at)),
            (
                "pro",
                &crate::handle::tier_text(lang, "plan_offer", Tier::Pro),
            ),
            (
                "creator",
                &crate::handle::tier_text(lang, "plan_offer", Tier::Creator),
            ),
        ],
    );
    let rows = billing
        .plans()
        .all()
        .iter()
        .map(|p| {
            vec![InlineKeyboardButton::callback(
                t(
                    lang,
                    "btn_plan",
                    &[
                        ("plan", &plan_name(lang, p.tier)),
                        ("period", &period_name(lang, p.period)),
                        ("price", &p.price.to_string()),
                    ],
                ),
                Press::Buy {
                    tier: p.tier,
                    period: p.period,
                }
                .data(),
            )]
        })
        .collect::<Vec<_>>();
    soft(
        ctx.tg
            .send(chat, &text, Some(InlineKeyboardMarkup::new(rows)))
            .await
            .map(|_| ()),
    )
}

/// A plan's button pressed (update `update_id`): the payment link, or why there is none. A redelivered press
/// sends the same link (the payment is keyed by the update).
pub(crate) async fn buy(
    ctx: &Ctx,
    lang: Lang,
    uid: i64,
    chat: i64,
    update_id: i64,
    tier: Tier,
    period: PaymentPeriod,
) -> Result<(), BotError> {
    let Some(billing) = ctx.billing.as_ref().filter(|b| b.configured()) else {
        return say(ctx, chat, &t(lang, "plans_off", &[])).await;
    };
    let key = format!("tg-update:{update_id}");
    match billing.buy(uid, tier, period, &key, now_ms()).await {
        Ok(link) => {
            let price = link.plan.price.to_string();
            let text = t(
                lang,
                "pay_link",
                &[
                    ("plan", &plan_name(lang, tier)),
                    ("period", &period_name(lang, period)),
                    ("price", &price),
                ],
            );
            let markup = reqwest::Url::parse(&link.url).ok().map(|url| {
                InlineKeyboardMarkup::new(vec![vec![InlineKeyboardButton::url(
                    t(lang, "btn_pay", &[("price", &price)]),
                    url,
                )]])
            });
            let text = if markup.is_some() {
                text
            } else {
                format!("{text}\n{}", link.url)
            };
            soft(ctx.tg.send(chat, &text, markup).await.map(|_| ()))
        }
        Err(BuyError::NotConfigured) => say(ctx, chat, &t(lang, "plans_off", &[])).await,
        Err(BuyError::NoSuchPlan) => say(ctx, chat, &t(lang, "stale_button", &[])).await,
        Err(BuyError::Unavailable(_)) => say(ctx, chat, &t(lang, "pay_unavailable", &[])).await,
        Err(BuyError::Refused(_)) => say(ctx, chat, &t(lang, "pay_refused", &[])).await,
        Err(BuyError::Store(e)) => Err(e.into()),
    }
}

/// `/invite`: the user's invitation link and how many came and paid through it.
pub(crate) async fn invite(ctx: &Ctx, lang: Lang, user: &User, chat: i64) -> Result<(), BotError> {
    let bot = match ctx.username.get() {
        Some(name) => name.clone(),
        None => ctx.tg.get_me().await?,
    };
    let (invited, paid) = ctx.store.referral_counts(user.id).await?;
    let link = format!(
        "https://t.me/{bot}?start=ref_{}",
        autosub_store::referral_code(user.id)
    );
    let text = t(
        lang,
        "invite",
        &[
            ("days", &autosub_store::REFERRAL_BONUS_DAYS.to_string()),
            ("link", &link),
            ("invited", &invited.to_string()),
            ("paid", &paid.to_string()),
        ],
    );
    say(ctx, chat, &text).await
}

/// The text of a notice in `lang`; `None` for a kind this bot does not know.
pub fn notice_text(lang: Lang, n: &Notice) -> Option<String> {
    let args: serde_json::Value = serde_json::from_str(&n.args).unwrap_or_default();
    let tier = args
        .get("tier")
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse::<Tier>().ok())
        .unwrap_or_default();
    let until = args.get("until").and_then(serde_json::Value::as_i64);
    let key = match n.kind.as_str() {
        "tier_active" => "notice_tier_active",
        "tier_expiring" => "notice_tier_expiring",
        "tier_expired" => "notice_tier_expired",
        "tier_revoked" => "notice_tier_revoked",
        "referral_bonus" => "notice_referral_bonus",
        _ => return None,
    };
    Some(t(
        lang,
        key,
        &[
            ("plan", &plan_name(lang, tier)),
            ("until", &until_text(lang, tier, until)),
            (
                "days",
                &args
                    .get("days")
                    .and_then(serde_json::Value::as_i64)
                    .unwrap_or(autosub_store::REFERRAL_BONUS_DAYS)
                    .to_string(),
            ),
        ],
    ))
}

/// Sends the notices not sent yet, each recorded as sent after Telegram took it (or refused it for good).
/// Stops at the first failure that may pass (flood control, network): the rest wait for the next round.
///
/// `unrecorded` holds notices Telegram took whose record failed (the database refusing writes): they are not sent
/// again while the record is retried.
pub(crate) async fn deliver_notices(
    ctx: &Ctx,
    unrecorded: &mut std::collections::HashSet<i64>,
) -> Result<(), BotError> {
    for id in unrecorded.clone() {
        ctx.store.notice_sent(id, now_ms()).await?;
        unrecorded.remove(&id);
    }
    for n in ctx.store.notices_unsent(50).await? {
        if ctx.tg.paused() {
            break;
        }
        let chat = ctx.store.bot_chat(n.telegram_id).await?;
        let language = ctx
            .store
            .get_user(n.telegram_id)
            .await?
            .and_then(|u| u.language);
        let lang = match chat.as_ref().and_then(|c| c.lang.as_deref()) {
            Some(l) => Lang::from_code(Some(l)),
            None => Lang::from_code(language.as_deref()),
        };
        let chat_id = chat.map_or(n.telegram_id, |c| c.chat_id);
        let Some(text) = notice_text(lang, &n) else {
            tracing::warn!(notice = n.id, kind = %n.kind, "a notice of an unknown kind: not sent");
            ctx.store.notice_sent(n.id, now_ms()).await?;
            continue;
        };
        match ctx.tg.send(chat_id, &text, None).await {
            Ok(_) => {
                if let Err(e) = ctx.store.notice_sent(n.id, now_ms()).await {
                    unrecorded.insert(n.id);
                    return Err(e.into());
                }
            }
            Err(e @ (TgError::RetryAfter(_) | TgError::Network(_))) => {
                tracing::warn!(notice = n.id, "notice: {e}");
                break;
            }
            Err(e) => {
                tracing::warn!(notice = n.id, "notice not delivered: {e}");
                ctx.store.notice_sent(n.id, now_ms()).await?;
            }
        }
    }
    Ok(())
}
