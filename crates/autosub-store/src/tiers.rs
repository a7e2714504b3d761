//! Subscription tiers as data: one `const` table that the bot, the billing code and the queue
//! all read, so that a limit is changed in exactly one place.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

const MINUTE_MS: i64 = 60_000;
const MIB: u64 = 1024 * 1024;

/// A user's subscription tier. Stored in the database as its lowercase name.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    #[default]
    Free,
    Pro,
    Creator,
}

/// What a tier allows. Every field is a limit the service enforces somewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TierLimits {
    /// Longest input video accepted, in seconds.
    pub max_duration_s: u32,
    /// Tallest output frame, in pixels (720 = 720p).
    pub max_height: u32,
    /// Tasks a user may enqueue per UTC day.
    pub tasks_per_day: u32,
    /// Subtitle translation allowed.
    pub translate: bool,
    /// Synthetic voice-over allowed.
    pub voiceover: bool,
    /// Custom subtitle styles allowed.
    pub styles: bool,
    /// The output carries a watermark.
    pub watermark: bool,
    /// Rank of the tier in the queue; stored in `tasks.priority` for operators.
    pub priority: i64,
    /// How far ahead of an equally old FREE job this tier's jobs are ordered, in ms.
    /// See the crate docs ("Priority without starvation").
    pub boost_ms: i64,
    /// Wall-clock budget of one processing attempt, in ms.
    pub timeout_ms: i64,
    /// Largest uploaded file accepted, in bytes. Telegram's public Bot API lets bots download
    /// at most 20 MB, which is why FREE stops there; larger files need a local Bot API server.
    pub max_upload_bytes: u64,
}

/// The FREE tier: short clips, watermark, no extras, lowest priority.
pub const FREE_LIMITS: TierLimits = TierLimits {
    max_duration_s: 60,
    max_height: 720,
    tasks_per_day: 3,
    translate: false,
    voiceover: false,
    styles: false,
    watermark: true,
    priority: 0,
    boost_ms: 0,
    timeout_ms: 10 * MINUTE_MS,
    max_upload_bytes: 20 * MIB,
};

/// The PRO tier.
pub const PRO_LIMITS: TierLimits = TierLimits {
    max_duration_s: 600,
    max_height: 1080,
    tasks_per_day: 50,
    translate: true,
    voiceover: false,
    styles: false,
    watermark: false,
    priority: 1,
    boost_ms: 120_000,
    timeout_ms: 30 * MINUTE_MS,
    max_upload_bytes: 500 * MIB,
};

/// The CREATOR tier.
pub const CREATOR_LIMITS: TierLimits = TierLimits {
    max_duration_s: 1800,
    max_height: 1080,
    tasks_per_day: 200,
    translate: true,
    voiceover: true,
    styles: true,
    watermark: false,
    priority: 2,
    boost_ms: 300_000,
    timeout_ms: 90 * MINUTE_MS,
    max_upload_bytes: 2000 * MIB,
};

impl Tier {
    /// Every tier, lowest first.
    pub const ALL: [Tier; 3] = [Tier::Free, Tier::Pro, Tier::Creator];

    /// The limits of this tier.
    pub const fn limits(self) -> &'static TierLimits {
        match self {
            Tier::Free => &FREE_LIMITS,
            Tier::Pro => &PRO_LIMITS,
            Tier::Creator => &CREATOR_LIMITS,
        }
    }

    /// The name stored in the database and shown to operators.
    pub const fn as_str(self) -> &'static str {
        match self {
            Tier::Free => "free",
            Tier::Pro => "pro",
            Tier::Creator => "creator",
        }
    }

    /// Whether this tier is paid for (and so can expire).
    pub const fn is_paid(self) -> bool {
        !matches!(self, Tier::Free)
    }
}

/// The tier a user actually has at `now`: a paid tier whose expiry has passed counts as FREE.
/// `expires_at = None` on a paid tier means "granted without end" (e.g. by an operator).
pub fn effective_tier(tier: Tier, expires_at: Option<i64>, now: i64) -> Tier {
    match expires_at {
        Some(at) if tier.is_paid() && at <= now => Tier::Free,
        _ => tier,
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Returned when a string names no tier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown tier {0:?} (expected free, pro or creator)")]
pub struct UnknownTier(pub String);

impl FromStr for Tier {
    type Err = UnknownTier;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "free" => Ok(Tier::Free),
            "pro" => Ok(Tier::Pro),
            "creator" => Ok(Tier::Creator),
            _ => Err(UnknownTier(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_the_product_rules() {
        let free = Tier::Free.limits();
        assert_eq!(
            (free.max_duration_s, free.max_height, free.tasks_per_day),
            (60, 720, 3)
        );
        assert!(!free.translate && !free.voiceover && !free.styles && free.watermark);
        assert_eq!((free.priority, free.boost_ms), (0, 0));
        assert_eq!(free.timeout_ms, 600_000);

        let pro = Tier::Pro.limits();
        assert_eq!(
            (pro.max_duration_s, pro.max_height, pro.tasks_per_day),
            (600, 1080, 50)
        );
        assert!(pro.translate && !pro.voiceover && !pro.styles && !pro.watermark);
        assert_eq!((pro.priority, pro.boost_ms), (1, 120_000));
        assert_eq!(pro.timeout_ms, 1_800_000);

        let creator = Tier::Creator.limits();
        assert_eq!(
            (
                creator.max_duration_s,
                creator.max_height,
                creator.tasks_per_day
            ),
            (1800, 1080, 200)
        );
        assert!(creator.translate && creator.voiceover && creator.styles && !creator.watermark);
        assert_eq!((creator.priority, creator.boost_ms), (2, 300_000));
        assert_eq!(creator.timeout_ms, 5_400_000);
    }

    #[test]
    fn higher_tiers_never_allow_less() {
        for pair in Tier::ALL.windows(2) {
            let (lo, hi) = (pair[0].limits(), pair[1].limits());
            assert!(hi.max_duration_s >= lo.max_duration_s);
            assert!(hi.max_height >= lo.max_height);
            assert!(hi.tasks_per_day >= lo.tasks_per_day);
            assert!(hi.priority > lo.priority);
            assert!(hi.boost_ms > lo.boost_ms || lo.boost_ms == 0 && hi.boost_ms > 0);
            assert!(hi.timeout_ms >= lo.timeout_ms);
            assert!(hi.max_upload_bytes >= lo.max_upload_bytes);
        }
    }

    #[test]
    fn names_round_trip() {
        for tier in Tier::ALL {
            assert_eq!(tier.as_str().parse::<Tier>(), Ok(tier));
            assert_eq!(tier.to_string(), tier.as_str());
            let json = serde_json::to_string(&tier).unwrap();
            assert_eq!(json, format!("\"{}\"", tier.as_str()));
        }
        assert_eq!("CREATOR".parse::<Tier>(), Ok(Tier::Creator));
        assert!("gold".parse::<Tier>().is_err());
    }

    #[test]
    fn expired_paid_tier_counts_as_free() {
        assert_eq!(effective_tier(Tier::Pro, Some(1_000), 999), Tier::Pro);
        assert_eq!(effective_tier(Tier::Pro, Some(1_000), 1_000), Tier::Free);
        assert_eq!(effective_tier(Tier::Creator, Some(5), 10), Tier::Free);
        assert_eq!(effective_tier(Tier::Creator, None, 10), Tier::Creator);
        assert_eq!(effective_tier(Tier::Free, Some(5), 10), Tier::Free);
    }
}
