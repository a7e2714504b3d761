//! Payments end to end across real processes: users play through the stand-in Bot API server, Platega is the
//! project's stand-in (`autosub_billing::standin`). `autosub serve` on SQLite, and `autosub bot` + `autosub billing`
//! + `autosub worker` on PostgreSQL with billing killed by SIGKILL and restarted between a payment and its callback.

mod common;

use autosub_billing::standin::{Creds, StandIn as Platega};
use autosub_bot::standin::{StandIn, TgUser};
use autosub_store::{PaymentStatus, Store, Tier};
use common::service::{free_port, Db, Service};
use common::telegram::*;
use serde_json::json;
use std::time::{Duration, Instant};

const MERCHANT: &str = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
const SECRET: &str = "pk_live_MERCHANT_SECRET_5f2b9c";
const DAY: i64 = 86_400_000;

fn now() -> i64 {
    autosub_store::now_ms()
}

struct World {
    s: Service,
    si: StandIn,
    platega: Platega,
    prt: tokio::runtime::Runtime,
    /// The billing HTTP server (AUTOSUB_PUBLIC_URL points at it).
    addr: String,
    billing: Option<usize>,
}

impl World {
    fn callback(&self) -> String {
        format!("http://{}/billing/platega/callback", self.addr)
    }

    fn fire(&self, id: &str, creds: Creds) -> u16 {
        self.prt
            .block_on(self.platega.fire_callback(&self.callback(), id, creds))
            .0
    }

    fn store(&self) -> Store {
        self.s.store()
    }

    fn user(&self, id: i64) -> (Tier, Option<i64>) {
        let u = self
            .s
            .rt
            .block_on(self.store().get_user(id))
            .unwrap()
            .unwrap();
        (u.tier, u.tier_expires_at)
    }

    fn payment_status(&self, ext: &str) -> PaymentStatus {
        self.s
            .rt
            .block_on(self.store().get_payment_by_external_id(ext))
            .unwrap()
            .unwrap()
            .status
    }

    fn start_billing(&mut self) {
        let env = self.billing_env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut extra = env.clone();
        extra.push(("AUTOSUB_HTTP_ADDR", &self.addr));
        let i = spawn(&mut self.s, "billing", &["billing"], &extra);
        self.billing = Some(i);
        wait_healthy(&self.addr);
    }

    fn billing_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AUTOSUB_PLATEGA_API_URL", self.platega.url()),
            ("AUTOSUB_PLATEGA_MERCHANT_ID", MERCHANT.into()),
            ("AUTOSUB_PLATEGA_SECRET", SECRET.into()),
            ("AUTOSUB_PUBLIC_URL", format!("http://{}", self.addr)),
            ("AUTOSUB_SUBSCRIPTION_SWEEP_SECS", "1".into()),
        ]
    }
}

fn wait_healthy(addr: &str) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(60) {
        if std::net::TcpStream::connect(addr).is_ok() && http_get(addr, "/healthz").0 == 200 {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no HTTP server on {addr}");
}

fn world(db: Db) -> World {
    let si = StandIn::spawn(TOKEN);
    let s = service(db, &si);
    let prt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let platega = prt.block_on(Platega::spawn(MERCHANT, SECRET)).unwrap();
    let mut w = World {
        s,
        si,
        platega,
        prt,
        addr: format!("127.0.0.1:{}", free_port()),
        billing: None,
    };
    let t0 = Instant::now();
    let env = w.billing_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    match db {
        Db::Sqlite => {
            let mut extra = env.clone();
            let addr = w.addr.clone();
            extra.push(("AUTOSUB_HTTP_ADDR", &addr));
            extra.push(("AUTOSUB_WORKERS", "1"));
            spawn(&mut w.s, "serve", &["serve"], &extra);
            wait_healthy(&w.addr);
        }
        Db::Postgres => {
            spawn(&mut w.s, "bot", &["bot"], &env);
            spawn(&mut w.s, "worker", &["worker"], &env);
            w.start_billing();
        }
    }
    wait_polling(&w.si, t0);
    w
}

/// The Pay button's link in the message of `chat` that contains `needle`.
fn pay_link(si: &StandIn, chat: i64, needle: &str) -> String {
    let c = wait_text(si, chat, needle, SHORT);
    let mid = sent_message(&c, chat, needle);
    let m = si.message(chat, mid).unwrap();
    let kb = m.reply_markup.expect("a Pay button");
    kb["inline_keyboard"][0][0]["url"]
        .as_str()
        .expect("a URL button")
        .to_owned()
}

fn count_text(si: &StandIn, chat: i64, needle: &str) -> usize {
    texts(&si.calls(), chat)
        .iter()
        .filter(|t| t.contains(needle))
        .count()
}

fn payments_activate_a_subscription_exactly_once(db: Db) {
    let mut w = world(db);
    let u = TgUser::new(501, "en");

    // /plans -> a button per plan -> a payment link; the row is written before the link is sent.
    w.si.send_text(&u, "/plans");
    let c = wait_text(&w.si, 501, "CREATOR: videos up to 30 min", SHORT);
    let plans = sent_message(&c, 501, "Your plan: FREE");
    let month = button(&w.si, 501, plans, "PRO · 1 month · 299 RUB");
    w.si.press(&u, plans, &month);
    let link = pay_link(&w.si, 501, "PRO for 1 month: 299 RUB");
    let txs = w.platega.transactions();
    assert_eq!(txs.len(), 1);
    let tx = txs[0].clone();
    assert_eq!(link, w.platega.redirect_url(&tx.id));
    assert_eq!((tx.amount, tx.currency.as_str()), (299.0, "RUB"));
    assert_eq!(tx.return_url, format!("http://{}/billing/return", w.addr));
    assert_eq!(w.payment_status(&tx.id), PaymentStatus::Pending);
    assert_eq!(http_get(&w.addr, "/billing/return").0, 200);

    // Forged credentials: 401, nothing changes.
    w.platega.set_status(&tx.id, "CONFIRMED");
    assert_eq!(w.fire(&tx.id, Creds::Wrong), 401);
    assert_eq!(w.fire(&tx.id, Creds::Missing), 401);
    assert_eq!(w.user(501), (Tier::Free, None));
    // A claim the read-back contradicts (still PENDING).
    w.platega.set_status(&tx.id, "PENDING");
    let claim = json!({"id": tx.id, "amount": 299, "currency": "RUB", "status": "CONFIRMED", "paymentMethod": 2});
    let (status, _) =
        w.prt.block_on(
            w.platega
                .fire_callback_with(&w.callback(), &tx.id, Creds::Right, claim),
        );
    assert_eq!(status, 200);
    assert_eq!(w.user(501), (Tier::Free, None));
    // Paid, but a wrong amount: nothing activated.
    w.platega.set_status(&tx.id, "CONFIRMED");
    w.platega.set_amount(&tx.id, 29.9, "RUB");
    assert_eq!(w.fire(&tx.id, Creds::Right), 200);
    assert_eq!(w.user(501), (Tier::Free, None));
    assert_eq!(w.payment_status(&tx.id), PaymentStatus::Pending);
    w.platega.set_amount(&tx.id, 299.0, "RUB");

    // The same valid callback 10 times at once: one activation, one message.
    let before = now();
    let statuses = w.prt.block_on(async {
        let mut calls = vec![];
        for _ in 0..10 {
            let (p, url, id) = (w.platega.clone(), w.callback(), tx.id.clone());
            calls.push(tokio::spawn(async move {
                let t = Instant::now();
                let (s, _) = p.fire_callback(&url, &id, Creds::Right).await;
                (s, t.elapsed())
            }));
        }
        let mut out = vec![];
        for c in calls {
            out.push(c.await.unwrap());
        }
        out
    });
    let after = now();
    let slowest = statuses.iter().map(|s| s.1).max().unwrap();
    eprintln!("10 concurrent callbacks through {db:?}: slowest answer {slowest:?}");
    assert!(statuses.iter().all(|s| s.0 == 200), "{statuses:?}");
    let (tier, until) = w.user(501);
    let until = until.unwrap();
    assert_eq!(tier, Tier::Pro);
    assert!((before + 30 * DAY..=after + 30 * DAY).contains(&until));
    assert_eq!(w.payment_status(&tx.id), PaymentStatus::Confirmed);
    let date = autosub_bot::handle::date_utc(until);
    wait_text(&w.si, 501, &format!("PRO is active until {date}"), SHORT);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(count_text(&w.si, 501, "is active until"), 1, "told once");

    // A year after the month: 365 days more. On PostgreSQL billing is killed by SIGKILL before the callback and
    // restarted: Platega's retry is answered by the new process.
    w.si.press(&u, plans, &button(&w.si, 501, plans, "PRO · 1 year"));
    pay_link(&w.si, 501, "PRO for 1 year: 2990 RUB");
    let year = w.platega.transactions()[1].id.clone();
    w.platega.set_status(&year, "CONFIRMED");
    if let Some(b) = w.billing {
        w.s.signal(b, "-KILL");
        w.s.wait_exit(b, SHORT);
        assert_eq!(w.fire(&year, Creds::Right), 0, "nobody answers");
        assert_eq!(w.user(501), (Tier::Pro, Some(until)));
        w.start_billing();
    }
    assert_eq!(w.fire(&year, Creds::Right), 200);
    assert_eq!(w.user(501), (Tier::Pro, Some(until + 365 * DAY)));
    let date = autosub_bot::handle::date_utc(until + 365 * DAY);
    wait_text(&w.si, 501, &format!("PRO is active until {date}"), SHORT);

    // The year charged back: its days are taken back, the user told.
    w.platega.set_status(&year, "CHARGEBACKED");
    assert_eq!(w.fire(&year, Creds::Right), 200);
    assert_eq!(w.user(501), (Tier::Pro, Some(until)));
    assert_eq!(w.payment_status(&year), PaymentStatus::Chargebacked);
    wait_text(&w.si, 501, "charged back", SHORT);

    // Unknown ids and garbage: refused, nothing changes.
    let unknown = json!({"id": "00000000-0000-4000-8000-000000000001", "status": "CONFIRMED", "amount": 299, "currency": "RUB"});
    let (status, _) =
        w.prt.block_on(
            w.platega
                .fire_callback_with(&w.callback(), "x", Creds::Right, unknown),
        );
    assert_eq!(status, 404);
    let (status, _) = w.prt.block_on(w.platega.fire_raw(
        &w.callback(),
        Creds::Right,
        b"{{{ garbage".to_vec(),
    ));
    assert_eq!(status, 400);
    assert_eq!(w.user(501), (Tier::Pro, Some(until)));

    // Admins see the payments: the month counts, the charged-back year does not.
    let admin = TgUser::new(ADMIN, "en");
    w.si.send_text(&admin, "/stats");
    wait_text(
        &w.si,
        ADMIN,
        "Payments this month (UTC): 1 (299 RUB)",
        SHORT,
    );

    // Expiry: a tier that ended goes back to FREE and its user is told; one ending within 3 days is reminded.
    // (They talk to the bot first, so that it knows their languages.)
    w.si.send_text(&TgUser::new(502, "ru"), "/me");
    w.si.send_text(&TgUser::new(503, "en"), "/me");
    wait_text(&w.si, 502, "Тариф", SHORT);
    wait_text(&w.si, 503, "Plan:", SHORT);
    let store = w.store();
    w.s.rt
        .block_on(store.grant(502, Tier::Pro, 1, now() - 2 * DAY))
        .unwrap();
    w.s.rt
        .block_on(store.grant(503, Tier::Creator, 2, now()))
        .unwrap();
    wait_text(&w.si, 502, "закончился; теперь у вас FREE", SHORT);
    wait_text(&w.si, 503, "Your CREATOR plan ends on", SHORT);
    assert_eq!(w.user(502), (Tier::Free, None));
    assert_eq!(w.user(503).0, Tier::Creator);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(count_text(&w.si, 503, "plan ends on"), 1, "reminded once");
    assert_eq!(count_text(&w.si, 502, "закончился"), 1, "told once");

    // The business metrics over the same history: four users today (all wrote to the bot), one of them paid;
    // revenue is the month (the year was charged back).
    let r = w.s.run(&["stats", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    // (The 30 days and the counts of new users hold even if the run crosses midnight UTC; today's count may not.)
    assert_eq!(v["mau"], 4, "{v}");
    assert!(v["dau"].as_i64().unwrap() <= 4, "{v}");
    assert_eq!(
        (v["new_users"].as_i64(), v["new_paying"].as_i64()),
        (Some(4), Some(1))
    );
    assert_eq!(v["conversion"], 0.25);
    assert_eq!(v["revenue"], 299);
    assert_eq!(v["arpu"], 74.75);
    assert_eq!(
        v["revenue_by_plan"],
        json!([{"tier": "pro", "period": "month", "payments": 1, "amount": 299}])
    );
    for k in ["wau", "mau", "tasks", "retention"] {
        assert!(!v[k].is_null(), "{k} in {v}");
    }
    assert_eq!(v["retention"]["d1"], 0.0);
    let r = w.s.run(&["stats"]).ok();
    assert!(r.stdout.contains("revenue      299 RUB"), "{}", r.stdout);
    assert_eq!(w.s.run(&["stats", "--since", "2026-02-30"]).code, 2);

    // Referrals: 501's link from /invite; a newcomer who comes through it and pays gets 7 more days, and so does 501
    // (once).
    w.si.send_text(&u, "/invite");
    let c = wait_text(
        &w.si,
        501,
        "https://t.me/autosub_test_bot?start=ref_",
        SHORT,
    );
    let text = texts(&c, 501)
        .into_iter()
        .find(|t| t.contains("?start=ref_"))
        .unwrap();
    let start = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix("https://t.me/autosub_test_bot?start="))
        .unwrap()
        .to_owned();
    let friend = TgUser::new(504, "en");
    w.si.send_text(&friend, &format!("/start {start}"));
    wait_text(&w.si, 504, "Hi!", SHORT);
    let before_501 = w.user(501).1.unwrap();
    w.si.send_text(&friend, "/plans");
    let c = wait_text(&w.si, 504, "CREATOR: videos up to 30 min", SHORT);
    let plans = sent_message(&c, 504, "CREATOR: videos up to 30 min");
    w.si.press(&friend, plans, &button(&w.si, 504, plans, "PRO · 1 month"));
    pay_link(&w.si, 504, "PRO for 1 month: 299 RUB");
    let tx = w.platega.transactions().last().unwrap().id.clone();
    w.platega.set_status(&tx, "CONFIRMED");
    let paid_at = now();
    assert_eq!(w.fire(&tx, Creds::Right), 200);
    let (tier, until) = w.user(504);
    assert_eq!(tier, Tier::Pro);
    let until = until.unwrap();
    assert!(
        (paid_at - 5_000 + 37 * DAY..=now() + 37 * DAY).contains(&until),
        "30 + 7 days"
    );
    assert_eq!(w.user(501), (Tier::Pro, Some(before_501 + 7 * DAY)));
    wait_text(&w.si, 501, "7 days of PRO for an invitation", SHORT);
    wait_text(&w.si, 504, "7 days of PRO for an invitation", SHORT);
    w.si.send_text(&u, "/invite");
    wait_text(&w.si, 501, "Joined through it: 1, paid: 1.", SHORT);

    // The payment series the Grafana dashboard queries are exported (all in one process with serve).
    if matches!(db, Db::Sqlite) {
        let (code, body) = http_get(&w.addr, "/metrics");
        assert_eq!(code, 200);
        let m = String::from_utf8_lossy(&body);
        for series in common::dashboard_series() {
            if ["autosub_payments", "autosub_billing", "autosub_revenue"]
                .iter()
                .any(|p| series.starts_with(p))
            {
                assert!(
                    m.lines().any(|l| l.starts_with(&format!("{series}{{"))
                        || l.starts_with(&format!("{series} "))),
                    "the dashboard queries {series}, not in:\n{m}"
                );
            }
        }
    }

    // No secret in any process's log.
    let secret = TOKEN.split_once(':').unwrap().1;
    for name in ["serve", "bot", "worker", "billing"] {
        let log = w.s.log(name);
        assert!(
            !log.contains(SECRET),
            "the merchant secret is in {name}.log"
        );
        assert!(!log.contains(secret), "the bot token is in {name}.log");
    }
    for row in
        w.s.rt
            .block_on(store.recent_logs(autosub_store::Level::Info, 1000))
            .unwrap()
    {
        assert!(!row.message.contains(SECRET) && !row.message.contains(secret));
    }
}

#[test]
fn payments_through_serve_on_sqlite() {
    payments_activate_a_subscription_exactly_once(Db::Sqlite);
}

#[test]
fn payments_through_bot_billing_and_worker_on_postgres_with_billing_killed() {
    payments_activate_a_subscription_exactly_once(Db::Postgres);
}

#[test]
fn plans_say_when_payments_are_not_configured() {
    let si = StandIn::spawn(TOKEN);
    let mut s = service(Db::Sqlite, &si);
    let t0 = Instant::now();
    let addr = format!("127.0.0.1:{}", free_port());
    spawn(&mut s, "serve", &["serve"], &[("AUTOSUB_HTTP_ADDR", &addr)]);
    wait_polling(&si, t0);
    let u = TgUser::new(601, "ru");
    si.send_text(&u, "/subscribe");
    let c = wait_text(&si, 601, "Оплата в этом боте пока не настроена", SHORT);
    let mid = sent_message(&c, 601, "не настроена");
    // A forged buy button: the same answer, no payment.
    si.press(&u, mid, "b:pro:month");
    si.wait_until(SHORT, |c| {
        texts(c, 601)
            .iter()
            .filter(|t| t.contains("не настроена"))
            .count()
            == 2
    });
    // The callback refuses while payments are off; the return page is there.
    let platega = tokio::runtime::Runtime::new().unwrap();
    let (status, _) = platega.block_on(async {
        let p = Platega::spawn(MERCHANT, SECRET).await.unwrap();
        p.fire_raw(
            &format!("http://{addr}/billing/platega/callback"),
            Creds::Right,
            b"{}".to_vec(),
        )
        .await
    });
    assert_eq!(status, 503);
    assert_eq!(http_get(&addr, "/billing/return").0, 200);
    // A merchant id without its secret is refused at start, naming the variable.
    let out = s
        .cmd(&["billing"])
        .env("AUTOSUB_PLATEGA_MERCHANT_ID", MERCHANT)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("AUTOSUB_PLATEGA_SECRET"), "{err}");
    let out = s
        .cmd(&["billing"])
        .env("AUTOSUB_PLATEGA_MERCHANT_ID", MERCHANT)
        .env("AUTOSUB_PLATEGA_SECRET", SECRET)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("AUTOSUB_PUBLIC_URL"), "{err}");
    assert!(!err.contains(SECRET), "{err}");
    let out = s
        .cmd(&["doctor"])
        .env("AUTOSUB_PLATEGA_MERCHANT_ID", MERCHANT)
        .env("AUTOSUB_PLATEGA_SECRET", SECRET)
        .env("AUTOSUB_PUBLIC_URL", "https://autosub.example")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("AUTOSUB_PLATEGA_SECRET=<redacted>"), "{text}");
    assert!(!text.contains(SECRET));
}
