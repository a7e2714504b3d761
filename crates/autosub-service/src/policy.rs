//! Tiers applied to jobs: what a user may ask for, checked before a task is queued (from what they declared) and
//! again by the worker on the real file ([`autosub_core::job::JobLimits`]). Every refusal names the limit and the
//! tier that lifts it. Tasks per day count from midnight UTC.

use autosub_core::job::{Job, JobLimits, WatermarkSpec};
use autosub_store::{Tier, TierLimits, User};

/// The text drawn on FREE users' videos.
pub const FREE_WATERMARK: &str = "AutoSub";

/// A feature a tier may lack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    Translation,
    Voiceover,
    Styles,
}

impl Feature {
    fn name(self) -> &'static str {
        match self {
            Feature::Translation => "translation",
            Feature::Voiceover => "voice-over",
            Feature::Styles => "subtitle styles",
        }
    }
}

/// Why a request is refused before it is queued. Each names the limit and the tier that lifts it, so a frontend
/// can say it in the user's language; `Display` is the English text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("this account is blocked")]
    Banned,
    #[error("you have used today's {limit} tasks of the {} plan (the count starts again at midnight UTC){}",
        name(*tier), lift.map(|(t, n)| format!("; {} allows {n} a day", name(t))).unwrap_or_default())]
    DailyLimit {
        limit: u32,
        tier: Tier,
        /// The tier that allows more, and how many.
        lift: Option<(Tier, u32)>,
    },
    #[error("{}", match lift { Some(t) => format!("{} is not part of the {} plan; {} includes it", feature.name(), name(*tier), name(*t)), None => format!("{} is not available", feature.name()) })]
    Lacks {
        feature: Feature,
        tier: Tier,
        lift: Option<Tier>,
    },
    #[error("the video is {} long; the {} plan takes up to {}{}", minutes(*duration_s), name(*tier), minutes(*max_s),
        lift.map(|(t, s)| format!("; {} allows {}", name(t), minutes(s))).unwrap_or_default())]
    TooLong {
        duration_s: u32,
        max_s: u32,
        tier: Tier,
        lift: Option<(Tier, u32)>,
    },
    #[error("the file is {} MB; the {} plan takes files up to {} MB", size / 1_000_000, name(*tier), max / 1_000_000)]
    TooBig { size: u64, max: u64, tier: Tier },
}

/// What a user says about their file before it is fetched or probed.
#[derive(Clone, Copy, Debug, Default)]
pub struct Declared {
    pub duration_s: Option<u64>,
    pub size_bytes: Option<u64>,
}

/// The cheapest tier that allows `ok`, for "PRO allows 10 minutes" hints.
fn lifted_by(from: Tier, ok: impl Fn(&TierLimits) -> bool) -> Option<Tier> {
    Tier::ALL
        .into_iter()
        .filter(|t| t.limits().priority > from.limits().priority)
        .find(|t| ok(t.limits()))
}

/// The plan's name as users see it.
pub fn name(t: Tier) -> &'static str {
    match t {
        Tier::Free => "FREE",
        Tier::Pro => "PRO",
        Tier::Creator => "CREATOR",
    }
}

fn minutes(s: u32) -> String {
    if s < 120 {
        format!("{s} s")
    } else {
        format!("{} min", s / 60)
    }
}

/// Refusal for a feature the tier lacks.
fn lacks(tier: Tier, feature: Feature, ok: impl Fn(&TierLimits) -> bool) -> Refusal {
    Refusal::Lacks {
        feature,
        tier,
        lift: lifted_by(tier, ok),
    }
}

/// The limits the worker re-checks on the real file for `tier`, with the hint that lifts them.
pub fn job_limits(tier: Tier) -> JobLimits {
    let l = tier.limits();
    let hint = lifted_by(tier, |x| x.max_duration_s > l.max_duration_s).map(|t| {
        format!(
            "{} allows {} and {}p",
            name(t),
            minutes(t.limits().max_duration_s),
            t.limits().max_height
        )
    });
    JobLimits {
        max_duration_s: Some(u64::from(l.max_duration_s)),
        max_height: Some(l.max_height),
        max_filesize: Some(l.max_upload_bytes),
        plan: Some(format!("the {} plan", name(tier))),
        upgrade_hint: hint,
    }
}

/// The refusal for a user who has used the tier's tasks of the day (also what a front end says when the store's
/// in-transaction count refuses).
pub fn daily_limit(tier: Tier) -> Refusal {
    let l = tier.limits();
    Refusal::DailyLimit {
        limit: l.tasks_per_day,
        tier,
        lift: lifted_by(tier, |x| x.tasks_per_day > l.tasks_per_day)
            .map(|t| (t, t.limits().tasks_per_day)),
    }
}

/// Refuses the features of `job` that `tier` lacks (translation, voice-over, styles other than the defaults).
pub fn check_features(job: &Job, tier: Tier) -> Result<(), Refusal> {
    let l = tier.limits();
    if job.translate.is_some() && !l.translate {
        return Err(lacks(tier, Feature::Translation, |x| x.translate));
    }
    if job.voiceover.is_some() && !l.voiceover {
        return Err(lacks(tier, Feature::Voiceover, |x| x.voiceover));
    }
    if let Some(v) = &job.video {
        let custom_style = v
            .style
            .as_deref()
            .is_some_and(|s| s != "clean" && s != "karaoke");
        if custom_style && !l.styles {
            return Err(lacks(tier, Feature::Styles, |x| x.styles));
        }
    }
    Ok(())
}

/// Checks `job` against `tier` and shapes it: refuses features, sizes, durations and counts over the tier's
/// limits; sets the limits the worker re-checks; adds the watermark of tiers that carry one. `user` is the
/// requester (banned users and the daily count), `now` the time in ms.
pub fn apply_tier(
    job: &mut Job,
    tier: Tier,
    user: Option<&User>,
    declared: Declared,
    now: i64,
) -> Result<(), Refusal> {
    let l = tier.limits();
    if let Some(u) = user {
        if u.banned {
            return Err(Refusal::Banned);
        }
        let today = u.tasks_today_at(now);
        if today >= i64::from(l.tasks_per_day) {
            return Err(daily_limit(tier));
        }
    }
    check_features(job, tier)?;
    if let Some(d) = declared.duration_s {
        if d > u64::from(l.max_duration_s) {
            return Err(Refusal::TooLong {
                duration_s: d.min(u64::from(u32::MAX)) as u32,
                max_s: l.max_duration_s,
                tier,
                lift: lifted_by(tier, |x| u64::from(x.max_duration_s) >= d)
                    .map(|t| (t, t.limits().max_duration_s)),
            });
        }
    }
    if let Some(s) = declared.size_bytes {
        if s > l.max_upload_bytes {
            return Err(Refusal::TooBig {
                size: s,
                max: l.max_upload_bytes,
                tier,
            });
        }
    }
    job.limits = job_limits(tier);
    if l.watermark {
        if let Some(v) = job.video.as_mut() {
            v.watermark = Some(WatermarkSpec {
                value: FREE_WATERMARK.into(),
                ..WatermarkSpec::default()
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use autosub_core::job::{JobInput, TranslateSpec, VoiceSpec};

    fn job() -> Job {
        Job::new(JobInput::File {
            path: "a.mp4".into(),
        })
    }

    #[test]
    fn free_gets_limits_and_a_watermark_and_no_translation() {
        let mut j = job();
        apply_tier(&mut j, Tier::Free, None, Declared::default(), 0).unwrap();
        assert_eq!(j.limits.max_duration_s, Some(60));
        assert_eq!(j.limits.max_height, Some(720));
        assert_eq!(
            j.video.as_ref().unwrap().watermark.as_ref().unwrap().value,
            FREE_WATERMARK
        );
        assert_eq!(
            j.limits.upgrade_hint.as_deref(),
            Some("PRO allows 10 min and 1080p")
        );
        let mut t = job();
        t.translate = Some(TranslateSpec {
            targets: vec!["en".into()],
            ..Default::default()
        });
        let e = apply_tier(&mut t, Tier::Free, None, Declared::default(), 0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "translation is not part of the FREE plan; PRO includes it"
        );
        assert!(apply_tier(&mut t, Tier::Pro, None, Declared::default(), 0).is_ok());
        let mut v = job();
        v.voiceover = Some(VoiceSpec::default());
        let e = apply_tier(&mut v, Tier::Pro, None, Declared::default(), 0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "voice-over is not part of the PRO plan; CREATOR includes it"
        );
    }

    #[test]
    fn a_long_video_is_refused_naming_the_tier_that_takes_it() {
        let mut j = job();
        let d = Declared {
            duration_s: Some(900),
            size_bytes: None,
        };
        let e = apply_tier(&mut j, Tier::Free, None, d, 0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the video is 15 min long; the FREE plan takes up to 60 s; CREATOR allows 30 min"
        );
        assert!(apply_tier(&mut j, Tier::Creator, None, d, 0).is_ok());
        assert!(j.video.as_ref().unwrap().watermark.is_none());
    }
}
