//! The consumer's retry policy: exponential backoff with full jitter, from the message's
//! receive count, capped, and never sooner than a destination's `Retry-After`.
//!
//! Pure: the caller supplies the attempt number and a uniform random number in [0, 1).

/// The longest delay asked of SQS. Its limit is 12 hours counted from when the message was
/// received, and the consumer asks while still processing it: at most Lambda's 15-minute
/// timeout later. So 12 hours less 15 minutes is always accepted (a longer delay would be
/// refused and the queue's own timeout used instead).
pub const MAX_VISIBILITY_SECS: u32 = 43_200 - 900;

/// Backoff settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay ceiling for the first retry, seconds.
    pub base_secs: u32,
    /// Largest delay, seconds.
    pub cap_secs: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base_secs: 5,
            cap_secs: 900,
        }
    }
}

impl RetryPolicy {
    /// The exponential ceiling for `attempt` (1 = the first delivery attempt failed).
    pub fn ceiling_secs(&self, attempt: u32) -> u32 {
        let exp = attempt.saturating_sub(1).min(31);
        let grown = u64::from(self.base_secs) << exp;
        grown
            .min(u64::from(self.cap_secs))
            .min(u64::from(MAX_VISIBILITY_SECS)) as u32
    }

    /// How long the message should stay invisible before the next attempt: a uniformly
    /// random point below the ceiling ("full jitter"), but at least `retry_after_secs`.
    pub fn delay_secs(&self, attempt: u32, unit_random: f64, retry_after_secs: Option<u32>) -> u32 {
        let r = if unit_random.is_finite() {
            unit_random.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let jittered = (f64::from(self.ceiling_secs(attempt)) * r).floor() as u32;
        jittered
            .max(retry_after_secs.unwrap_or(0))
            .min(MAX_VISIBILITY_SECS)
    }
}

/// Parses a `Retry-After` header given in seconds (HTTP dates are not honoured).
pub fn parse_retry_after(value: &str) -> Option<u32> {
    value.trim().parse::<u32>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_grow_exponentially_and_cap() {
        let p = RetryPolicy {
            base_secs: 2,
            cap_secs: 60,
        };
        let c: Vec<u32> = (1..=7).map(|a| p.ceiling_secs(a)).collect();
        assert_eq!(c, vec![2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(p.ceiling_secs(1000), 60);
        let huge = RetryPolicy {
            base_secs: 1,
            cap_secs: u32::MAX,
        };
        assert_eq!(huge.ceiling_secs(64), MAX_VISIBILITY_SECS);
    }

    #[test]
    fn full_jitter_spans_zero_to_the_ceiling() {
        let p = RetryPolicy {
            base_secs: 10,
            cap_secs: 1000,
        };
        assert_eq!(p.delay_secs(3, 0.0, None), 0);
        assert_eq!(p.delay_secs(3, 0.5, None), 20);
        assert_eq!(p.delay_secs(3, 0.999_999, None), 39);
        assert_eq!(p.delay_secs(3, f64::NAN, None), 0);
    }

    #[test]
    fn retry_after_is_a_floor() {
        let p = RetryPolicy {
            base_secs: 1,
            cap_secs: 10,
        };
        assert_eq!(p.delay_secs(1, 0.0, Some(120)), 120);
        assert_eq!(p.delay_secs(1, 0.0, Some(u32::MAX)), MAX_VISIBILITY_SECS);
        assert_eq!(parse_retry_after(" 30 "), Some(30));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
