//! OpenAI's rate-limit response headers, from the tightest limit of each dimension:
//! `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`. Reset times are durations in
//! OpenAI's style (`250ms`, `1s`, `6m0s`).

use super::rules::{Dimension, Rule};
use super::{Check, Decision};

/// The headers for an answer (admitted) or a 429 (denied).
pub fn rate_limit_headers(
    rules: &[Rule],
    checks: &[Check],
    d: &Decision,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for (dim, names) in [
        (
            Dimension::Requests,
            [
                "x-ratelimit-limit-requests",
                "x-ratelimit-remaining-requests",
                "x-ratelimit-reset-requests",
            ],
        ),
        (
            Dimension::Tokens,
            [
                "x-ratelimit-limit-tokens",
                "x-ratelimit-remaining-tokens",
                "x-ratelimit-reset-tokens",
            ],
        ),
    ] {
        let tightest = rules
            .iter()
            .zip(checks)
            .zip(&d.verdicts)
            .filter(|((r, _), _)| r.dim == dim)
            .map(|((_, c), v)| {
                let taken = if d.denied.is_none() { c.cost } else { 0 };
                let remaining = v.limit.saturating_sub(v.used + taken);
                (remaining, v.limit, v.reset_ms)
            })
            .min_by_key(|(remaining, limit, _)| (*remaining, *limit));
        if let Some((remaining, limit, reset_ms)) = tightest {
            out.push((names[0], limit.to_string()));
            out.push((names[1], remaining.to_string()));
            out.push((names[2], duration(reset_ms)));
        }
    }
    out
}

/// `250ms`, `1s`, `1.5s`, `6m0s`.
pub fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (m, rest) = (ms / 60_000, ms % 60_000);
    let secs = if rest % 1000 == 0 {
        format!("{}s", rest / 1000)
    } else {
        let s = format!("{:.3}", rest as f64 / 1000.0);
        format!("{}s", s.trim_end_matches('0').trim_end_matches('.'))
    };
    if m > 0 { format!("{m}m{secs}") } else { secs }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_openai_style() {
        assert_eq!(duration(-5), "0ms");
        assert_eq!(duration(250), "250ms");
        assert_eq!(duration(1000), "1s");
        assert_eq!(duration(1500), "1.5s");
        assert_eq!(duration(59_999), "59.999s");
        assert_eq!(duration(360_000), "6m0s");
        assert_eq!(duration(61_250), "1m1.25s");
    }
}
