//! Retries: exponential backoff with jitter, `Retry-After`, attempt and time caps.
//!
//! reqwest's own retry has no backoff and reqwest-retry refuses streaming
//! bodies, so the client retries itself: whole requests for small bodies,
//! whole uploads (re-opening the [`BlobSource`](super::BlobSource)) for blobs,
//! and a resumed download (`Range`) for a blob body that drops mid-way.

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime};

/// How often and how long to retry.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (1 = no retries).
    pub max_attempts: u32,
    /// The delay before the first retry; it doubles each time.
    pub initial_delay: Duration,
    /// The largest delay between two attempts (also caps `Retry-After`).
    pub max_delay: Duration,
    /// No retry starts after this much time since the first attempt.
    pub total: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            total: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        Self { max_attempts: 1, ..Self::default() }
    }

    /// The delay after failed attempt number `attempt` (1-based): a random
    /// value in `[d/2, d]` with `d = min(max_delay, initial_delay * 2^(attempt-1))`
    /// ("equal jitter"), or `retry_after` when the server said, capped at
    /// `max_delay`.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(d) = retry_after {
            return d.min(self.max_delay);
        }
        let exp = self.initial_delay.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let d = exp.min(self.max_delay);
        let half = d / 2;
        half + half.mul_f64(random_unit())
    }
}

/// A random number in `[0, 1)`, good enough for jitter (no extra crate).
fn random_unit() -> f64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Parses `Retry-After`: delta-seconds, or an HTTP date (RFC 9110 IMF-fixdate),
/// relative to `now`.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = jiff::fmt::rfc2822::parse(v).ok()?.timestamp();
    let now = jiff::Timestamp::try_from(now).ok()?;
    let secs = when.as_second() - now.as_second();
    Some(Duration::from_secs(secs.max(0).unsigned_abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_table() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_887_151); // Tue, 15 Nov 1994 08:12:31 GMT
        let cases = [
            ("3", Some(3)),
            (" 120 ", Some(120)),
            ("0", Some(0)),
            ("Tue, 15 Nov 1994 08:12:41 GMT", Some(10)),
            ("Tue, 15 Nov 1994 08:12:21 GMT", Some(0)),
            ("-1", None),
            ("soon", None),
            ("", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_retry_after(input, now), want.map(Duration::from_secs), "{input:?}");
        }
    }

    #[test]
    fn backoff_bounds() {
        let p = RetryPolicy {
            max_attempts: 10,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            total: Duration::from_secs(60),
        };
        for _ in 0..50 {
            for (attempt, full_ms) in [(1u32, 100u64), (2, 200), (3, 400), (5, 1600), (6, 2000), (30, 2000)] {
                let d = p.delay(attempt, None);
                let full = Duration::from_millis(full_ms);
                assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
            }
        }
        assert_eq!(p.delay(1, Some(Duration::from_secs(1))), Duration::from_secs(1));
        assert_eq!(p.delay(1, Some(Duration::from_secs(100))), Duration::from_secs(2));
    }
}
