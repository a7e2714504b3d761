//! `/apikey`: keys of the HTTP API for CREATOR users (`/apikey` makes one and shows it once, `/apikey list`,
//! `/apikey revoke PREFIX|all`). The keys themselves are `autosub_service::api`'s; the database keeps only hashes.

use crate::handle::{plan_name, say};
use crate::i18n::{t, Lang};
use crate::{BotError, Ctx};
use autosub_service::api::{self, KeyError};
use autosub_store::{now_ms, User};

/// `/apikey [list | revoke PREFIX | revoke all]`.
pub(crate) async fn command(
    ctx: &Ctx,
    lang: Lang,
    user: &User,
    chat: i64,
    rest: &[&str],
) -> Result<(), BotError> {
    let now = now_ms();
    match rest {
        [] | ["new"] => match api::create_key(&ctx.store, user.telegram_id, None, now).await {
            Ok((key, row)) => {
                let base = ctx
                    .public_url
                    .as_deref()
                    .unwrap_or("https://YOUR-AUTOSUB-SERVER")
                    .trim_end_matches('/');
                tracing::info!(user = user.telegram_id, prefix = %row.prefix, "API key made");
                let text = t(
                    lang,
                    "apikey_made",
                    &[("key", &key), ("base", base), ("prefix", &row.prefix)],
                );
                say(ctx, chat, &text).await
            }
            Err(KeyError::NotOnPlan { tier, .. }) => {
                let text = t(
                    lang,
                    "apikey_plan",
                    &[
                        ("plan", &plan_name(lang, tier)),
                        ("needed", &plan_name(lang, api::API_TIER)),
                    ],
                );
                say(ctx, chat, &text).await
            }
            Err(KeyError::TooMany(_)) => {
                let max = api::MAX_KEYS_PER_USER.to_string();
                say(ctx, chat, &t(lang, "apikey_too_many", &[("max", &max)])).await
            }
            Err(KeyError::Banned | KeyError::NoUser(_)) => {
                say(ctx, chat, &t(lang, "unknown_command", &[])).await
            }
            Err(KeyError::Store(e)) => Err(e.into()),
        },
        ["list"] => {
            let keys = ctx.store.api_keys_of(user.id).await?;
            let active: Vec<String> = keys
                .iter()
                .filter(|k| k.revoked_at.is_none())
                .map(|k| {
                    let used = k
                        .last_used_at
                        .map(autosub_store::iso_utc)
                        .unwrap_or_else(|| "—".into());
                    format!(
                        "{}…  {}  {}",
                        k.prefix,
                        autosub_store::iso_utc(k.created_at),
                        used
                    )
                })
                .collect();
            if active.is_empty() {
                say(ctx, chat, &t(lang, "apikey_none", &[])).await
            } else {
                say(
                    ctx,
                    chat,
                    &t(lang, "apikey_list", &[("keys", &active.join("\n"))]),
                )
                .await
            }
        }
        ["revoke", what] => {
            let prefix = match *what {
                "all" => None,
                p => Some(p.trim_end_matches('…')),
            };
            let n = ctx.store.revoke_api_keys(user.id, prefix, now).await?;
            if n == 0 {
                say(ctx, chat, &t(lang, "apikey_not_found", &[("prefix", what)])).await
            } else {
                say(
                    ctx,
                    chat,
                    &t(lang, "apikey_revoked", &[("n", &n.to_string())]),
                )
                .await
            }
        }
        _ => say(ctx, chat, &t(lang, "apikey_usage", &[])).await,
    }
}
