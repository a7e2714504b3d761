//! Segmentation: recognised words -> timed, line-broken cues that satisfy a [`Profile`].
//!
//! 1. Words are grouped into *units* that can never be separated: punctuation-only words join the previous
//!    word (opening punctuation joins the next one), pieces without a leading space continue the previous
//!    word (except in scripts written without spaces, where every word is a unit).
//! 2. A dynamic programme picks cue boundaries between units. A cue must fit the line limits (with the best
//!    line breaks, see [`layout`](Segmenter::layout)), the word limit and the maximum duration; its cost adds a
//!    per-cue cost, the line-break cost (a break `lint` flags is taken only when nothing else fits), the
//!    quality of the boundary it ends on (sentence end and long pause best, then clause punctuation, then a
//!    plain word boundary; never after an article or preposition, inside a name or between a number and its
//!    unit), penalties for pauses and sentence ends inside it, and a large penalty when the earliest possible
//!    schedule (start up to `max_start_offset_ms` early, minimum duration, reading speed, minimum gap) cannot
//!    give the previous cue its full time. The programme keeps the cheapest path to each boundary; when that
//!    leaves a cue without its time, the cues around it are cut again keeping, per boundary, the cheapest path
//!    for each earliest end (see [`choose_cues`](Segmenter::choose_cues)).
//! 3. A timing pass places every cue: an earliest-possible forward schedule, then a backward pass that starts
//!    each cue at its first word unless it has to start earlier, ends it at its last word plus up to
//!    `max_linger_ms` (longer if the minimum duration or reading speed needs it), always leaving the minimum
//!    gap, and closes gaps shorter than `close_gap_ms`. A cue still short of its time takes the gap down to
//!    the exact `min_gap_ms` when that is enough (the schedule rounds the gap up to the 10 ms grid).

use crate::profile::round_up_10;
use crate::text::{
    char_len, classify_break, collapse_ws, count_words, is_no_space_script, is_opening_punct,
    is_punct_only, BreakKind,
};
use crate::{Cue, Profile, Word};

/// A pause between words longer than this is a natural cue boundary.
pub const LONG_PAUSE_MS: u64 = 700;

/// Cost of every cue (fewer, fuller cues are preferred).
const CUE_COST: f64 = 6.0;
/// Cost of a line longer than the limit (a single over-long word).
const OVERSIZE_COST: f64 = 50.0;
/// Cost of a boundary where the previous cue cannot get its minimum duration / reading time.
const INFEASIBLE_COST: f64 = 1000.0;
/// Cost of a line break `lint` flags (a line ending on an article, preposition or conjunction, a number split
/// from its unit). It is dearer than any timing compromise: fast speech makes cues too fast whatever their
/// line breaks are, so trading a clean break for a fuller cue only adds a violation.
const BAD_BREAK_COST: f64 = 100_000.0;
/// Paths kept per boundary when the cheapest path makes a cue too fast or too short (see
/// [`choose_cues`](Segmenter::choose_cues)).
const FRONTIER: usize = 16;
/// Chains on each side of a chain with a violation that are cut again with it (see
/// [`choose_cues`](Segmenter::choose_cues)).
const CONTEXT_CHAINS: usize = 2;
/// The earliest end of "no previous cue".
const EMIN_NONE: i64 = i64::MIN / 4;
/// Times and limits are clamped to this (about 35 years) so arithmetic can never overflow.
const MAX_MS: u64 = 1 << 40;

fn ms(x: u64) -> i64 {
    x.min(MAX_MS) as i64
}

/// Splits recognised words into cues for `profile`.
///
/// Every input word ends up in exactly one cue's `words`, in order; cue text is the words concatenated,
/// whitespace-collapsed and trimmed, broken into at most `max_lines` lines. Words without any visible text
/// are attached to their neighbours; if no word has visible text the result is empty.
///
/// For ordinary speech (up to ~15 characters per second with normal pauses) every cue passes
/// [`lint`](crate::lint) for the same profile. When speech is faster than the profile allows, the cue starts
/// up to `max_start_offset_ms` early, borrows silence, ends as late as the next cue and the minimum gap allow,
/// and the cues around it are cut differently if that gives every cue its time, before giving up; what still
/// cannot be met is left for `lint` to report as a cue that is too fast or too short. Cues never start after
/// their first word (they do not drift late) and never overlap.
///
/// The last cue lingers up to `max_linger_ms` past its last word; callers that know the media duration may
/// clamp it. Times stay on a 10 ms grid when word times are (Whisper's are), so ASS centiseconds lose nothing,
/// with one exception: a cue that meets its reading speed or minimum duration only by ending exactly
/// `min_gap_ms` before the next cue (84 ms for `standard`, where the grid would leave 90) ends there.
pub fn segment(words: &[Word], profile: &Profile) -> Vec<Cue> {
    let units = build_units(words);
    if units.iter().all(|u| u.body.is_empty()) {
        return Vec::new();
    }
    let seg = Segmenter::new(&units, profile);
    let ranges = seg.choose_cues();
    seg.timed_cues(words, &ranges)
}

/// Re-breaks a text into lines for `profile` (at most `max_lines` lines of at most `max_chars_per_line`
/// characters, preferring punctuation, balanced bottom-heavy lines and no dangling articles or prepositions).
/// If the text does not fit it is still returned whole, as few lines as the limits allow, with the overflow on
/// the last line; [`lint`](crate::lint) reports it.
pub fn wrap_text(text: &str, profile: &Profile) -> Vec<String> {
    let words: Vec<Word> = text
        .split_whitespace()
        .map(|t| Word {
            text: format!(" {t}"),
            start_ms: 0,
            end_ms: 0,
            prob: 1.0,
        })
        .collect();
    let units = build_units(&words);
    if units.is_empty() {
        return Vec::new();
    }
    let seg = Segmenter::new(&units, profile);
    match seg.layout(0, units.len()) {
        Some(l) => seg.lines(0, units.len(), &l.breaks),
        None => {
            // Greedy fill for text longer than a cue can hold.
            let max = profile.max_chars_per_line.max(1);
            let mut lines: Vec<String> = Vec::new();
            for u in &units {
                let full = lines.len() >= profile.max_lines.max(1);
                match lines.last_mut() {
                    Some(l) if char_len(l) + 1 + u.len <= max || full => {
                        if u.space_before {
                            l.push(' ');
                        }
                        l.push_str(&u.body);
                    }
                    _ => lines.push(u.body.clone()),
                }
            }
            lines
        }
    }
}

/// Words that can never be separated.
#[derive(Debug)]
struct Unit {
    /// Word index range `first..last` in the input.
    first: usize,
    last: usize,
    /// Whitespace-collapsed text without the leading space.
    body: String,
    /// Whether a space separates this unit from the previous one.
    space_before: bool,
    len: usize,
    words: usize,
    /// Start (made monotone over the input) and the latest word start or end in the unit.
    start: i64,
    end: i64,
}

fn build_units(words: &[Word]) -> Vec<Unit> {
    // Safety net for callers that trimmed Whisper's leading spaces: if no word has one, the text uses a
    // spaced script and there are several words, every word is taken to start a new word.
    let assume_spaces = !words
        .iter()
        .any(|w| w.text.starts_with(char::is_whitespace))
        && !words.iter().any(|w| w.text.chars().any(is_no_space_script))
        && words
            .iter()
            .filter(|w| w.text.chars().any(char::is_alphanumeric))
            .count()
            >= 2;
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    let mut pending: Option<usize> = None;
    for (i, w) in words.iter().enumerate() {
        let text = w.text.as_str();
        let trimmed = text.trim();
        let leading_ws =
            text.starts_with(char::is_whitespace) || assume_spaces && !is_punct_only(text);
        let extend_last = |ranges: &mut Vec<(usize, usize)>| {
            if let Some(r) = ranges.last_mut() {
                r.1 = i + 1;
            }
        };
        if trimmed.is_empty() || is_punct_only(text) {
            let opens =
                !trimmed.is_empty() && is_opening_punct(text) && (leading_ws || ranges.is_empty());
            if pending.is_some() || ranges.is_empty() || opens && i + 1 < words.len() {
                pending.get_or_insert(i);
            } else {
                extend_last(&mut ranges);
            }
            continue;
        }
        let first = trimmed.chars().next().unwrap_or(' ');
        let prev_no_space = ranges
            .last()
            .and_then(|r| words[r.1 - 1].text.trim_end().chars().last())
            .is_some_and(is_no_space_script);
        let continuation = !leading_ws
            && pending.is_none()
            && !ranges.is_empty()
            && !is_no_space_script(first)
            && !prev_no_space;
        if continuation {
            extend_last(&mut ranges);
        } else {
            ranges.push((pending.take().unwrap_or(i), i + 1));
        }
    }
    if let Some(p) = pending {
        match ranges.last_mut() {
            Some(r) => r.1 = words.len(),
            None => ranges.push((p, words.len())),
        }
    }
    let mut prev_start = 0i64;
    ranges
        .into_iter()
        .map(|(first, last)| {
            let slice = &words[first..last];
            let text: String = slice.iter().map(|w| w.text.as_str()).collect();
            let body = collapse_ws(&text);
            let start = ms(slice[0].start_ms).max(prev_start);
            prev_start = start;
            let end = slice
                .iter()
                .map(|w| ms(w.start_ms.max(w.end_ms)))
                .max()
                .unwrap_or(start);
            Unit {
                first,
                last,
                space_before: text.starts_with(char::is_whitespace) || assume_spaces,
                len: char_len(&body),
                words: count_words(&body),
                body,
                start,
                end,
            }
        })
        .collect()
}

/// Cues chosen by the dynamic programme, with what it knew about each.
#[derive(Default)]
struct Path {
    /// `(first unit, end unit, layout)` per cue.
    cues: Vec<(usize, usize, Layout)>,
    /// Earliest end of each cue.
    emin: Vec<i64>,
    /// Cost of the path up to and including each cue.
    cost: Vec<f64>,
    /// Whether the cue before each one cannot get its full time before it starts.
    deficit: Vec<bool>,
}

/// Chosen line breaks for one cue.
#[derive(Clone, Debug)]
struct Layout {
    /// Unit indices where a new line starts (absolute).
    breaks: Vec<usize>,
    cost: f64,
    /// Length of the text with lines joined by one space.
    chars: usize,
}

struct Segmenter<'a> {
    units: &'a [Unit],
    profile: &'a Profile,
    /// `kinds[k]`: break between unit k and k+1.
    kinds: Vec<BreakKind>,
    /// `pauses[k]`: silence between unit k and k+1.
    pauses: Vec<i64>,
    /// Prefix sums of unit lengths and of `space_before`.
    len_sum: Vec<usize>,
    space_sum: Vec<usize>,
    word_sum: Vec<usize>,
    max_chars: usize,
    max_lines: usize,
    gap: i64,
    offset: i64,
}

fn line_break_cost(kind: BreakKind) -> f64 {
    match kind {
        BreakKind::Sentence => 0.0,
        BreakKind::Clause => 1.0,
        BreakKind::Phrase => 2.5,
        BreakKind::Plain => 4.0,
        BreakKind::Name => 30.0,
        BreakKind::Dangling | BreakKind::NumberUnit => BAD_BREAK_COST,
    }
}

fn boundary_kind_cost(kind: BreakKind) -> f64 {
    match kind {
        BreakKind::Sentence => 0.0,
        BreakKind::Clause => 3.0,
        BreakKind::Phrase => 7.0,
        BreakKind::Plain => 12.0,
        BreakKind::Name => 40.0,
        BreakKind::Dangling | BreakKind::NumberUnit => 50.0,
    }
}

impl<'a> Segmenter<'a> {
    fn new(units: &'a [Unit], profile: &'a Profile) -> Self {
        let n = units.len();
        let mut kinds = Vec::with_capacity(n.saturating_sub(1));
        let mut pauses = Vec::with_capacity(n.saturating_sub(1));
        for k in 0..n.saturating_sub(1) {
            let left = match k {
                0 => units[0].body.clone(),
                _ => format!("{} {}", units[k - 1].body, units[k].body),
            };
            kinds.push(classify_break(&left, &units[k + 1].body));
            pauses.push((units[k + 1].start - units[k].end).max(0));
        }
        let mut len_sum = vec![0; n + 1];
        let mut space_sum = vec![0; n + 1];
        let mut word_sum = vec![0; n + 1];
        for (k, u) in units.iter().enumerate() {
            len_sum[k + 1] = len_sum[k] + u.len;
            space_sum[k + 1] = space_sum[k] + usize::from(u.space_before);
            word_sum[k + 1] = word_sum[k] + u.words;
        }
        Self {
            units,
            profile,
            kinds,
            pauses,
            len_sum,
            space_sum,
            word_sum,
            max_chars: profile.max_chars_per_line.max(1),
            max_lines: profile.max_lines.max(1),
            gap: ms(round_up_10(profile.min_gap_ms)),
            offset: ms(profile.max_start_offset_ms),
        }
    }

    /// Length of units `a..b` on one line.
    fn line_len(&self, a: usize, b: usize) -> usize {
        self.len_sum[b] - self.len_sum[a] + self.space_sum[b] - self.space_sum[a + 1]
    }

    fn lines(&self, i: usize, j: usize, breaks: &[usize]) -> Vec<String> {
        let mut bounds = vec![i];
        bounds.extend_from_slice(breaks);
        bounds.push(j);
        bounds
            .windows(2)
            .map(|w| {
                let mut s = String::new();
                for k in w[0]..w[1] {
                    if k > w[0] && self.units[k].space_before {
                        s.push(' ');
                    }
                    s.push_str(&self.units[k].body);
                }
                s
            })
            .collect()
    }

    /// Best line breaks for units `i..j`, or `None` if they cannot fit. A single unit always "fits" (an
    /// over-long word goes alone on its line, at a cost).
    fn layout(&self, i: usize, j: usize) -> Option<Layout> {
        let total = self.line_len(i, j);
        if total <= self.max_chars {
            return Some(Layout {
                breaks: Vec::new(),
                cost: 0.0,
                chars: total,
            });
        }
        if j - i == 1 {
            return Some(Layout {
                breaks: Vec::new(),
                cost: OVERSIZE_COST,
                chars: total,
            });
        }
        if self.max_lines == 1 {
            return None;
        }
        let fits = |a: usize, b: usize| self.line_len(a, b) <= self.max_chars || b - a == 1;
        let oversize = |a: usize, b: usize| {
            if self.line_len(a, b) > self.max_chars {
                OVERSIZE_COST
            } else {
                0.0
            }
        };
        // Two lines: try every break; prefer punctuation, then balance with a slightly shorter top line.
        let mut best: Option<Layout> = None;
        for b in i + 1..j {
            if !fits(i, b) || !fits(b, j) {
                continue;
            }
            let (l1, l2) = (self.line_len(i, b) as f64, self.line_len(b, j) as f64);
            let balance = if l1 <= l2 {
                0.12 * (l2 - l1)
            } else {
                0.25 * (l1 - l2)
            };
            let cost =
                line_break_cost(self.kinds[b - 1]) + balance + oversize(i, b) + oversize(b, j);
            if best.as_ref().is_none_or(|l| cost < l.cost) {
                let chars = self.line_len(i, b) + self.line_len(b, j) + 1;
                best = Some(Layout {
                    breaks: vec![b],
                    cost,
                    chars,
                });
            }
        }
        if best.is_some() || self.max_lines == 2 {
            return best;
        }
        // Three or more lines: dynamic programme over break positions for the fewest lines that fit.
        let m = j - i;
        for nlines in 3..=self.max_lines.min(m) {
            let target = total as f64 / nlines as f64;
            // dp[l][b]: best cost of putting units i..i+b on l lines.
            let mut dp = vec![vec![None::<(f64, usize)>; m + 1]; nlines + 1];
            dp[0][0] = Some((0.0, 0));
            for l in 1..=nlines {
                for b in 1..=m {
                    for a in (0..b).rev() {
                        if !fits(i + a, i + b) {
                            break;
                        }
                        let Some((c0, _)) = dp[l - 1][a] else {
                            continue;
                        };
                        if (a == 0) != (l == 1) {
                            continue;
                        }
                        let len = self.line_len(i + a, i + b) as f64;
                        let brk = if a > 0 {
                            line_break_cost(self.kinds[i + a - 1])
                        } else {
                            0.0
                        };
                        let c = c0 + brk + 0.15 * (len - target).abs() + oversize(i + a, i + b);
                        if dp[l][b].is_none_or(|(old, _)| c < old) {
                            dp[l][b] = Some((c, a));
                        }
                    }
                }
            }
            if let Some((cost, _)) = dp[nlines][m] {
                let mut breaks = Vec::new();
                let (mut l, mut b) = (nlines, m);
                while l > 1 {
                    let (_, a) = dp[l][b].unwrap_or((0.0, 0));
                    breaks.push(i + a);
                    b = a;
                    l -= 1;
                }
                breaks.reverse();
                let chars = self
                    .lines(i, j, &breaks)
                    .iter()
                    .map(|s| char_len(s))
                    .sum::<usize>()
                    + nlines
                    - 1;
                return Some(Layout {
                    breaks,
                    cost,
                    chars,
                });
            }
        }
        None
    }

    /// Cost of leaving the boundary after unit `k` inside a cue.
    fn internal_cost(&self, k: usize) -> f64 {
        let pause = self.pauses[k] as u64;
        let mut c = 0.0;
        if pause >= LONG_PAUSE_MS {
            c += (15.0 + 10.0 * (pause - LONG_PAUSE_MS) as f64 / 1000.0).min(100.0);
        }
        if self.kinds[k] == BreakKind::Sentence {
            c += 10.0;
        }
        c
    }

    /// Cost of ending a cue after unit `k` (when another cue follows).
    fn boundary_cost(&self, k: usize) -> f64 {
        let pause = self.pauses[k] as u64;
        let factor = if pause >= LONG_PAUSE_MS {
            0.3
        } else if pause >= 300 {
            0.6
        } else {
            1.0
        };
        boundary_kind_cost(self.kinds[k]) * factor
    }

    /// Dynamic programme over cue boundaries; returns `(first unit, end unit, layout)` per cue.
    ///
    /// The programme keeps one path per boundary, the cheapest. A path's cost depends on how early its last
    /// cue can end (a cue that cannot get its time before the next one starts costs [`INFEASIBLE_COST`]), so
    /// the cheapest path to a boundary may end too late for what follows while a dearer one would have let
    /// every cue get its time. So when the chosen cues accept such a violation, every *chain* holding one (a run
    /// of cues each of whose earliest start is held back by the previous cue, from a cue free to start up to
    /// `max_start_offset_ms` early to the next such cue) is cut again keeping up to [`FRONTIER`] paths per
    /// boundary: the cheapest for each earliest end. The new cuts replace the chain's if they cost less and
    /// end no later (what follows the chain is scheduled as before). Chains without a violation are kept.
    fn choose_cues(&self) -> Vec<(usize, usize, Layout)> {
        let n = self.units.len();
        let Some(path) = self.cheapest_path(1, 0, n, EMIN_NONE, None) else {
            return Vec::new();
        };
        if !path.deficit.iter().any(|&d| d) {
            return path.cues;
        }
        let k = path.cues.len();
        // Latest earliest end of a cue that leaves the cue starting at unit `u` free.
        let free_after = |u: usize| (self.units[u].start - self.offset).max(0) - self.gap;
        // Chains: `starts[m]..starts[m + 1]`; a chain's first cue is free, the others are held back.
        let mut starts: Vec<usize> = (0..k)
            .filter(|&c| c == 0 || path.emin[c - 1] <= free_after(path.cues[c].0))
            .collect();
        starts.push(k);
        let chains = starts.len() - 1;
        let violated: Vec<bool> = (0..chains)
            .map(|m| path.deficit[starts[m]..starts[m + 1]].iter().any(|&d| d))
            .collect();
        let mut out = Vec::with_capacity(k);
        let mut m = 0;
        while m < chains {
            // A window: the chains m..m2 within CONTEXT_CHAINS of a violated one.
            let near = |x: usize| {
                (x.saturating_sub(CONTEXT_CHAINS)..=(x + CONTEXT_CHAINS).min(chains - 1))
                    .any(|y| violated[y])
            };
            if !near(m) {
                out.extend_from_slice(&path.cues[starts[m]..starts[m + 1]]);
                m += 1;
                continue;
            }
            let mut m2 = m + 1;
            while m2 < chains && near(m2) {
                m2 += 1;
            }
            let (c0, c1) = (starts[m], starts[m2]);
            let (lo, hi) = (path.cues[c0].0, path.cues[c1 - 1].1);
            let before = if c0 == 0 {
                EMIN_NONE
            } else {
                path.emin[c0 - 1]
            };
            let old_cost = path.cost[c1 - 1] - if c0 == 0 { 0.0 } else { path.cost[c0 - 1] };
            let end_limit = (c1 < k).then(|| free_after(hi));
            match self
                .cheapest_path(FRONTIER, lo, hi, before, end_limit)
                .filter(|alt| alt.cost.last().is_some_and(|&c| c < old_cost - 1e-9))
            {
                Some(alt) => out.extend(alt.cues),
                None => out.extend_from_slice(&path.cues[c0..c1]),
            }
            m = m2;
        }
        out
    }

    /// The cheapest cuts of units `lo..hi` (the cue before them has earliest end `before`), keeping up to
    /// `width` paths per boundary, whose last cue ends no later than `end_limit`; costs are counted from `lo`.
    fn cheapest_path(
        &self,
        width: usize,
        lo: usize,
        hi: usize,
        before: i64,
        end_limit: Option<i64>,
    ) -> Option<Path> {
        #[derive(Clone)]
        struct Node {
            cost: f64,
            /// Earliest end of the last cue on this path.
            emin: i64,
            /// Previous boundary and the index of the path kept there.
            from: usize,
            from_path: usize,
            layout: Option<Layout>,
            /// The previous cue cannot get its full time before this one starts.
            deficit: bool,
        }
        /// Adds `node` to the paths kept at one boundary: at most `width`, cheapest first, none that costs as
        /// much as another and ends no earlier (with one path: the cheapest, on a tie the earlier end).
        fn keep(paths: &mut Vec<Node>, node: Node, width: usize) {
            let better = |a: &Node, b: &Node| {
                a.cost < b.cost - 1e-9 || (a.cost - b.cost).abs() <= 1e-9 && a.emin < b.emin
            };
            if width <= 1 {
                if paths.first().is_none_or(|c| better(&node, c)) {
                    paths.clear();
                    paths.push(node);
                }
                return;
            }
            if paths
                .iter()
                .any(|c| c.cost <= node.cost + 1e-9 && c.emin <= node.emin)
            {
                return;
            }
            paths.retain(|c| !(node.cost <= c.cost + 1e-9 && node.emin <= c.emin));
            let at = paths
                .iter()
                .position(|c| better(&node, c))
                .unwrap_or(paths.len());
            paths.insert(at, node);
            paths.truncate(width);
        }
        let n = self.units.len();
        let p = self.profile;
        let cap = self.max_chars * self.max_lines + self.max_lines - 1;
        let max_dur = ms(p.max_duration_ms);
        let max_words = p.max_words.unwrap_or(usize::MAX).max(1);
        // best[j - lo]: the paths kept to the boundary before unit j.
        let mut best: Vec<Vec<Node>> = vec![Vec::new(); hi - lo + 1];
        best[0].push(Node {
            cost: 0.0,
            emin: before,
            from: lo,
            from_path: 0,
            layout: None,
            deficit: false,
        });
        for j in lo + 1..=hi {
            let mut internal = 0.0;
            let mut last_end = i64::MIN;
            let mut cand: Vec<Node> = Vec::new();
            for i in (lo..j).rev() {
                last_end = last_end.max(self.units[i].end);
                if i + 1 < j {
                    internal += self.internal_cost(i);
                    let span = last_end - self.units[i].start;
                    if self.line_len(i, j) > cap
                        || span > max_dur
                        || self.word_sum[j] - self.word_sum[i] > max_words
                    {
                        break;
                    }
                }
                if best[i - lo].is_empty() {
                    continue;
                }
                let Some(layout) = self.layout(i, j) else {
                    continue;
                };
                let mut base = CUE_COST + layout.cost + internal;
                for &b in &layout.breaks {
                    if self.kinds[b - 1] == BreakKind::Sentence {
                        base -= 6.0;
                    }
                }
                if j < n {
                    base += self.boundary_cost(j - 1);
                }
                let s = self.units[i].start;
                let d = ms(p.required_duration_ms(layout.chars).min(p.max_duration_ms)).max(1);
                for (k, prev) in best[i - lo].iter().enumerate() {
                    let mut cost = prev.cost + base;
                    // The previous cue cannot get its full duration before this one starts at its first word.
                    let deficit = prev.emin + self.gap - s;
                    if deficit > 0 {
                        cost += INFEASIBLE_COST + deficit as f64;
                    }
                    let a = (s - self.offset).max((prev.emin + self.gap).min(s)).max(0);
                    let node = Node {
                        cost,
                        emin: a + d,
                        from: i,
                        from_path: k,
                        layout: Some(layout.clone()),
                        deficit: deficit > 0,
                    };
                    if j == hi && end_limit.is_some_and(|l| node.emin > l) {
                        continue;
                    }
                    keep(&mut cand, node, width);
                }
            }
            best[j - lo] = cand;
        }
        best[hi - lo].first()?;
        let mut path = Path::default();
        let (mut j, mut k) = (hi, 0);
        while j > lo {
            let node = &mut best[j - lo][k];
            path.cues.push((
                node.from,
                j,
                node.layout.take().unwrap_or(Layout {
                    breaks: Vec::new(),
                    cost: 0.0,
                    chars: 0,
                }),
            ));
            path.emin.push(node.emin);
            path.cost.push(node.cost);
            path.deficit.push(node.deficit);
            (j, k) = (node.from, node.from_path);
        }
        path.cues.reverse();
        path.emin.reverse();
        path.cost.reverse();
        path.deficit.reverse();
        Some(path)
    }

    /// The shortest time that lint accepts for a cue of `chars` characters: its minimum duration and reading
    /// time, not rounded to the 10 ms grid.
    fn exact_need(&self, chars: usize) -> i64 {
        let p = self.profile;
        let reading = if p.max_cps > 0.0 && p.max_cps.is_finite() {
            ms((chars as f64 * 1000.0 / p.max_cps).ceil() as u64)
        } else {
            0
        };
        reading.max(ms(p.min_duration_ms))
    }

    /// Places the chosen cues in time (see the module docs) and builds them.
    fn timed_cues(&self, words: &[Word], ranges: &[(usize, usize, Layout)]) -> Vec<Cue> {
        let p = self.profile;
        let k = ranges.len();
        let max_dur = ms(p.max_duration_ms).max(1);
        let linger = ms(p.max_linger_ms);
        let close = ms(p.close_gap_ms);
        let s: Vec<i64> = ranges.iter().map(|r| self.units[r.0].start).collect();
        let e: Vec<i64> = ranges
            .iter()
            .map(|r| {
                self.units[r.0..r.1]
                    .iter()
                    .map(|u| u.end)
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let d: Vec<i64> = ranges
            .iter()
            .map(|r| ms(p.required_duration_ms(r.2.chars)).clamp(1, max_dur))
            .collect();
        // Earliest schedule: up to `offset` before the first word, never after it (a cue that cannot get its
        // full duration is shortened rather than allowed to drift late).
        let mut a = vec![0i64; k];
        let mut prev_end = i64::MIN / 4;
        for c in 0..k {
            a[c] = (s[c] - self.offset)
                .max((prev_end + self.gap).min(s[c]))
                .max(0);
            prev_end = a[c] + d[c];
        }
        // Latest start not after the first word that keeps the following cues feasible.
        let mut b = vec![0i64; k];
        let mut limit = vec![ms(MAX_MS) * 4; k];
        for c in (0..k).rev() {
            if c + 1 < k {
                limit[c] = b[c + 1] - self.gap;
            }
            b[c] = s[c].min(limit[c] - d[c]).max(a[c]);
        }
        let mut times = Vec::with_capacity(k);
        for c in 0..k {
            let start = b[c];
            let hi = limit[c].min(start + max_dur);
            let mut end = (start + d[c]).max(e[c] + linger).min(hi);
            // Close a small gap, but only if the cue can really reach the next one (max duration).
            if c + 1 < k && b[c + 1] - end < close && limit[c] <= start + max_dur {
                end = limit[c];
            }
            times.push((start, end));
        }
        // Pathological input (many words at the same instant): keep every cue non-empty and non-overlapping.
        for c in 0..k {
            if times[c].1 <= times[c].0 {
                times[c].1 = times[c].0 + 1;
            }
            if c + 1 < k && times[c + 1].0 < times[c].1 + self.gap {
                times[c + 1].0 = times[c].1 + self.gap;
            }
        }
        // A cue still short of its reading time or minimum duration ends at most the rounded minimum gap
        // (`min_gap_ms` on the 10 ms grid, 90 ms for 84) before the next one. If the exact minimum gap leaves
        // it enough time, it takes that time (this end leaves the grid, by the few milliseconds the rounding
        // took). It stays within the maximum duration; lint's late-end rule allows any end the reading speed
        // or minimum duration needs, so the linger limit does not apply.
        let exact_gap = ms(p.min_gap_ms);
        for c in 0..k.saturating_sub(1) {
            let (start, end) = times[c];
            let need = self.exact_need(ranges[c].2.chars);
            if end - start < need {
                let room = (times[c + 1].0 - exact_gap).min(start + max_dur);
                if start + need <= room {
                    times[c].1 = (start + d[c]).min(room);
                }
            }
        }
        let mut cues = Vec::with_capacity(k);
        for ((i, j, layout), (start, end)) in ranges.iter().zip(times) {
            cues.push(Cue {
                start_ms: start as u64,
                end_ms: end as u64,
                lines: self.lines(*i, *j, &layout.breaks),
                words: words[self.units[*i].first..self.units[*j - 1].last].to_vec(),
            });
        }
        cues
    }
}
