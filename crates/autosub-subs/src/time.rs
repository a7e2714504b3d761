//! Millisecond timestamps: formatting and tolerant parsing shared by the format modules.

/// Splits milliseconds into (hours, minutes, seconds, milliseconds).
fn split(ms: u64) -> (u64, u64, u64, u64) {
    (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}

/// `HH:MM:SS,mmm` (SRT).
pub(crate) fn fmt_srt(ms: u64) -> String {
    let (h, m, s, f) = split(ms);
    format!("{h:02}:{m:02}:{s:02},{f:03}")
}

/// `HH:MM:SS.mmm` (WebVTT, and the human form used in lint messages).
pub(crate) fn fmt_vtt(ms: u64) -> String {
    let (h, m, s, f) = split(ms);
    format!("{h:02}:{m:02}:{s:02}.{f:03}")
}

/// `H:MM:SS.cc` (ASS) from centiseconds.
pub(crate) fn fmt_ass_cs(cs: u64) -> String {
    let (h, m, s, f) = split(cs * 10);
    format!("{h}:{m:02}:{s:02}.{:02}", f / 10)
}

/// Milliseconds to centiseconds, rounding to nearest (monotone, so order is kept).
pub(crate) fn ms_to_cs(ms: u64) -> u64 {
    ms / 10 + u64::from(ms % 10 >= 5)
}

/// Parses a clock value such as `01:02:03,456`, `1:02:03.45`, `0:0:0.04` or (when `allow_no_hours`)
/// `02:03.456`, the way pysubs2 reads SRT and ASS times.
///
/// Hours have 1 to 6 digits. With a fraction, minutes and seconds have 1 or 2 digits; without one
/// (`0:01:02`), exactly 2, so a timestamp cut off in the middle (`00:00:0`) is not read as a time.
/// Minutes and seconds must be below 60.
///
/// The fraction may have 1 to 9 digits and is read as a decimal fraction of a second, as pysubs2 does
/// (`.5` and `.50` are 500 ms, `,04` is 40 ms; ffmpeg's SRT reader would take `,5` as 5 ms); digits beyond
/// milliseconds are dropped. A leading `-` is an error here; see [`parse_time`].
pub(crate) fn parse_clock(s: &str, allow_no_hours: bool) -> Result<u64, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("missing timestamp".into());
    }
    if s.starts_with('-') {
        return Err(format!("negative timestamp {s:?}"));
    }
    let (clock, frac) = match s.find([',', '.']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    let bad = || format!("malformed timestamp {s:?}");
    let num = |p: &str, min_digits: usize, max_digits: usize| -> Result<u64, String> {
        if p.len() < min_digits || p.len() > max_digits || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        p.parse::<u64>().map_err(|_| bad())
    };
    let ms_digits = if frac.is_some() { 1 } else { 2 };
    let (h, m, sec) = match parts.as_slice() {
        [h, m, sec] => (
            num(h, 1, 6)?,
            num(m, ms_digits, 2)?,
            num(sec, ms_digits, 2)?,
        ),
        [m, sec] if allow_no_hours => (0, num(m, ms_digits, 2)?, num(sec, ms_digits, 2)?),
        _ => return Err(bad()),
    };
    if m >= 60 || sec >= 60 {
        return Err(format!(
            "timestamp out of range {s:?} (minutes and seconds must be below 60)"
        ));
    }
    let ms = match frac {
        None => 0,
        Some(f) => {
            if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let mut digits: String = f.chars().take(3).collect();
            while digits.len() < 3 {
                digits.push('0');
            }
            digits.parse::<u64>().map_err(|_| bad())?
        }
    };
    Ok(((h * 60 + m) * 60 + sec) * 1000 + ms)
}

/// [`parse_clock`], but a negative time (`-00:00:01,000`, written by some tools after shifting a file) is
/// read as 0: the result is `(ms, clamped)`, `clamped` true when the time was negative.
pub(crate) fn parse_time(s: &str, allow_no_hours: bool) -> Result<(u64, bool), String> {
    match s.trim().strip_prefix('-') {
        Some(rest) if !rest.trim_start().starts_with('-') => {
            parse_clock(rest, allow_no_hours).map(|_| (0, true))
        }
        _ => parse_clock(s, allow_no_hours).map(|ms| (ms, false)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(fmt_srt(3_723_456), "01:02:03,456");
        assert_eq!(fmt_vtt(3_723_456), "01:02:03.456");
        assert_eq!(fmt_ass_cs(372_345), "1:02:03.45");
        assert_eq!(fmt_srt(100 * 3_600_000), "100:00:00,000");
    }

    #[test]
    fn rounding_is_monotone() {
        let mut prev = 0;
        for ms in 0..2000 {
            let cs = ms_to_cs(ms);
            assert!(cs >= prev);
            assert!((cs * 10).abs_diff(ms) <= 5);
            prev = cs;
        }
    }

    #[test]
    fn parses() {
        assert_eq!(parse_clock("01:02:03,456", false), Ok(3_723_456));
        assert_eq!(parse_clock("1:02:03.45", false), Ok(3_723_450));
        assert_eq!(parse_clock("02:03.456", true), Ok(123_456));
        assert!(parse_clock("02:03.456", false).is_err());
        assert_eq!(parse_clock("00:00:01.5", false), Ok(1500));
        assert_eq!(parse_clock("00:00:01.123456", false), Ok(1123));
        assert!(parse_clock("-00:00:01,000", false)
            .unwrap_err()
            .contains("negative"));
        assert!(parse_clock("00:61:01,000", false)
            .unwrap_err()
            .contains("out of range"));
        assert!(parse_clock("00:00:60,000", false).is_err());
        assert!(parse_clock("99999999999:00:00,000", false).is_err());
        assert!(parse_clock("aa:bb:cc,ddd", false).is_err());
        assert!(parse_clock("00:00:01,", false).is_err());
        assert!(parse_clock("", false).is_err());
        assert!(parse_clock("00:00:0", false).is_err());
        // One-digit minutes and seconds with a fraction, and no fraction with two digits (pysubs2).
        assert_eq!(parse_clock("0:0:01,000", false), Ok(1000));
        assert_eq!(parse_clock("0:0:0.04", false), Ok(40));
        assert_eq!(parse_clock("0:01:00,00", false), Ok(60_000));
        assert_eq!(parse_clock("00:01:39", false), Ok(99_000));
        assert!(parse_clock("0:1:39", false).is_err());
        assert_eq!(parse_clock("1:2.5", true), Ok(62_500));
        // Fractions are decimal: ,5 = ,50 = ,500.
        for f in ["5", "50", "500", "5000"] {
            assert_eq!(parse_clock(&format!("00:00:01,{f}"), false), Ok(1500));
        }
        assert_eq!(parse_time("-00:00:01,000", false), Ok((0, true)));
        assert_eq!(parse_time(" 00:00:01,000", false), Ok((1000, false)));
        assert!(parse_time("--00:00:01,000", false).is_err());
        assert!(parse_time("-00:0x:01,000", false).is_err());
    }
}
