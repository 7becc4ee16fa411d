//! A destination's retry schedule (`retry: {"schedule_secs": [...]}`) and how a long wait is
//! carried by SQS: the delay before each next attempt, ±20% jitter, `Retry-After` and the
//! 60-second floor after a 429 or a timeout, hops of at most one visibility change, and the
//! queue settings (`maxReceiveCount`, retention) the template derives from the schedules.
//!
//! The first attempt is immediate and each entry is the delay before the next one, so a
//! schedule of `n` entries makes `1 + n` attempts. Attempts are counted by Sluice (stored
//! in the delivery's record), not by SQS's receive count: holds and hops also receive.
//!
//! Pure arithmetic: this module performs no I/O, reads no clock and draws no random number
//! (callers pass `now_ms` and a uniform random in [0, 1)); it never panics.
//!
//! # Hops
//!
//! One `ChangeMessageVisibility` can hide a message for at most 12 hours counted from its
//! receipt; [`MAX_HOP_SECS`] keeps 15 minutes of that for the consumer's own processing. A
//! longer delay is a chain of hops: the consumer stores [`Wait::not_before_ms`] in the
//! delivery's record and hides the message for [`Wait::hide_secs`]. Whenever the message
//! is received again, [`on_receive`] says whether the attempt is due or the message is to
//! be hidden once more (no attempt, nothing counted).

use crate::retry::MAX_VISIBILITY_SECS;
use serde::{Deserialize, Serialize};

/// The default schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, 10 h, 12 h, 12 h, 12 h.
/// Twelve attempts spread over 264,905 s (73.6 h, a little over 3 days) before jitter.
/// Svix's schedule is the first eight; the 12-hour entries stretch it past 3 days.
pub const DEFAULT_SCHEDULE_SECS: [u32; 11] = [
    5, 300, 1_800, 7_200, 18_000, 36_000, 36_000, 36_000, 43_200, 43_200, 43_200,
];

/// Jitter of every delay, in percent either way.
pub const JITTER_PERCENT: u64 = 20;

/// The least wait after a 429 or a timeout, before (upward-only) jitter.
pub const THROTTLE_FLOOR_SECS: u32 = 60;

/// The longest single hide: SQS's 12 hours from receipt less 15 minutes of processing.
pub const MAX_HOP_SECS: u32 = MAX_VISIBILITY_SECS;

/// Most entries a schedule may have.
pub const MAX_ENTRIES: usize = 100;

/// Longest a schedule may last at its worst (every delay jittered up, every failure a
/// 429): 7 days. The main queue keeps messages at most [`MAX_RETENTION_SECS`]; the other
/// 3 days are for processing time and holds (breaker, rate limit, pause, `Retry-After`).
pub const MAX_WORST_TOTAL_SECS: u64 = 7 * 86_400;

/// The longest retention the main queue may have: 10 days. A dead letter keeps its original
/// enqueue time and the DLQ keeps 14 days, which leaves on-call at least 4 days.
pub const MAX_RETENTION_SECS: u64 = 864_000;

/// Wall-clock time one attempt may take besides its delay (Lambda's longest timeout).
pub const MAX_ATTEMPT_SECS: u64 = 900;

/// SQS's largest `maxReceiveCount`.
pub const MAX_RECEIVE_COUNT: u64 = 1_000;

/// How an attempt failed, for the floors it implies. Permanent failures are not retried at
/// all; that is the caller's decision, before it asks for a delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// A 5xx, a connection error: the schedule alone decides.
    Error,
    /// The destination answered 429: at least [`THROTTLE_FLOOR_SECS`].
    RateLimited,
    /// The delivery timed out: at least [`THROTTLE_FLOOR_SECS`].
    Timeout,
}

impl FailureClass {
    /// The class of an HTTP status the caller has decided to retry.
    pub fn from_status(status: u16) -> Self {
        if status == 429 {
            FailureClass::RateLimited
        } else {
            FailureClass::Error
        }
    }

    /// The least delay this class implies, before jitter.
    pub fn floor_secs(self) -> u32 {
        match self {
            FailureClass::Error => 0,
            FailureClass::RateLimited | FailureClass::Timeout => THROTTLE_FLOOR_SECS,
        }
    }
}

/// `retry` of a destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySchedule {
    /// Delay before each next attempt, seconds.
    #[serde(default = "default_schedule_secs")]
    pub schedule_secs: Vec<u32>,
}

fn default_schedule_secs() -> Vec<u32> {
    DEFAULT_SCHEDULE_SECS.to_vec()
}

impl Default for RetrySchedule {
    fn default() -> Self {
        RetrySchedule {
            schedule_secs: default_schedule_secs(),
        }
    }
}

impl RetrySchedule {
    /// A schedule of these delays.
    pub fn new(schedule_secs: &[u32]) -> Self {
        RetrySchedule {
            schedule_secs: schedule_secs.to_vec(),
        }
    }

    /// Checks the schedule fits SQS; the caller names the field (`retry.schedule_secs`).
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.schedule_secs.is_empty() {
            return Err("must have at least one entry (a single attempt would dead-letter every transient failure)");
        }
        if self.schedule_secs.len() > MAX_ENTRIES {
            return Err("must have at most 100 entries");
        }
        if self.schedule_secs.contains(&0) {
            return Err("every entry must be at least 1 second");
        }
        if self.worst_case_secs() > MAX_WORST_TOTAL_SECS {
            return Err("must last at most 7 days with +20% jitter on every entry (about 5.8 days before jitter): the queue keeps events at most 10 days, holds included");
        }
        Ok(())
    }

    /// Attempts the schedule makes: the immediate one and one after each entry.
    pub fn attempts(&self) -> u32 {
        u32::try_from(self.schedule_secs.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1)
    }

    /// The schedule's length before jitter, seconds.
    pub fn total_secs(&self) -> u64 {
        self.schedule_secs.iter().map(|&s| u64::from(s)).sum()
    }

    /// The schedule's length at its worst, seconds: every entry jittered to its maximum and
    /// never less than a 429's floor (jittered up too). `Retry-After` beyond that is a hold.
    pub fn worst_case_secs(&self) -> u64 {
        self.schedule_secs.iter().map(|&s| worst_delay(s)).sum()
    }

    /// Receives the schedule costs at its worst: one per attempt plus one per extra hop.
    /// `1 + Σ hops(worst delay of entry i)`.
    pub fn receives(&self) -> u64 {
        1 + self
            .schedule_secs
            .iter()
            .map(|&s| hops(worst_delay(s)))
            .sum::<u64>()
    }

    /// Delay before the next attempt, after `attempts_made` attempts (0 counts as 1) failed
    /// as `kind`; `random` is uniform in [0, 1) (clamped; not finite counts as 0.5).
    ///
    /// The entry is jittered ±20%. The floor (the `Retry-After` seconds, and 60 s for a
    /// 429 or a timeout) is jittered upward only, so never sooner than asked. `None`: the
    /// schedule is exhausted, dead-letter with `retries_exhausted`.
    pub fn next_delay(
        &self,
        attempts_made: u32,
        random: f64,
        retry_after_secs: Option<u32>,
        kind: FailureClass,
    ) -> Option<u32> {
        let index = usize::try_from(attempts_made.max(1) - 1).ok()?;
        let entry = *self.schedule_secs.get(index)?;
        let r = unit(random);
        let floor = retry_after_secs.unwrap_or(0).max(kind.floor_secs());
        let delay = jittered(entry, r).max(jittered_up(floor, r));
        Some(u32::try_from(delay).unwrap_or(u32::MAX))
    }
}

/// `entry` jittered ±20%: from ⌊0.8·entry⌋ to ⌊0.8·entry⌋ + ⌊0.4·entry·r⌋.
fn jittered(entry: u32, r: f64) -> u64 {
    let e = u64::from(entry);
    let low = e * (100 - JITTER_PERCENT) / 100;
    let span = (e * 2 * JITTER_PERCENT) as f64 / 100.0;
    low + (span * r).floor() as u64
}

/// `floor` lengthened by up to 20%: floor + ⌊0.2·floor·r⌋.
fn jittered_up(floor: u32, r: f64) -> u64 {
    let f = u64::from(floor);
    f + ((f * JITTER_PERCENT) as f64 / 100.0 * r).floor() as u64
}

fn worst_delay(entry: u32) -> u64 {
    jittered(entry, 1.0).max(jittered_up(THROTTLE_FLOOR_SECS, 1.0))
}

fn unit(random: f64) -> f64 {
    if random.is_finite() {
        random.clamp(0.0, 1.0)
    } else {
        0.5
    }
}

/// Visibility changes a delay takes (the receive at the end of the last is the attempt):
/// `max(1, ⌈delay / MAX_HOP_SECS⌉)`.
pub fn hops(delay_secs: u64) -> u64 {
    delay_secs.div_ceil(u64::from(MAX_HOP_SECS)).max(1)
}

/// How to carry a delay through SQS: hide the message now for `hide_secs`, and store
/// `not_before_ms` in the delivery's record. When `hide_secs` is shorter than the delay,
/// the next receive finds `not_before_ms` in the future and hides again ([`on_receive`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wait {
    /// The `VisibilityTimeout` of this hop, at most [`MAX_HOP_SECS`].
    pub hide_secs: u32,
    /// When the next attempt is due (epoch ms).
    pub not_before_ms: u64,
}

impl Wait {
    /// The wait for `delay_secs` starting at `now_ms`.
    pub fn new(delay_secs: u32, now_ms: u64) -> Wait {
        Wait {
            hide_secs: delay_secs.min(MAX_HOP_SECS),
            not_before_ms: now_ms.saturating_add(u64::from(delay_secs) * 1000),
        }
    }

    /// True when this hide alone reaches `not_before_ms`.
    pub fn is_last_hop(&self, now_ms: u64) -> bool {
        now_ms.saturating_add(u64::from(self.hide_secs) * 1000) >= self.not_before_ms
    }
}

/// What to do with a received message whose record holds `not_before_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnReceive {
    /// Attempt the delivery now.
    Due,
    /// Not yet: hide it again for `hide_secs` (no attempt, nothing counted).
    Hide { hide_secs: u32 },
}

/// Whether a message is due at `now_ms`. The hide is rounded up to whole seconds, so the
/// message never reappears before `not_before_ms` (by the clocks of the instances involved).
pub fn on_receive(not_before_ms: Option<u64>, now_ms: u64) -> OnReceive {
    match not_before_ms {
        Some(nb) if nb > now_ms => {
            let secs = (nb - now_ms).div_ceil(1000);
            OnReceive::Hide {
                hide_secs: u32::try_from(secs).unwrap_or(u32::MAX).min(MAX_HOP_SECS),
            }
        }
        _ => OnReceive::Due,
    }
}

/// Whether an attempt due at `not_before_ms` (and its processing) still ends before the
/// queue's retention deletes a message sent at `sent_ms`. When it does not, the caller
/// dead-letters now instead of letting SQS drop the event silently.
pub fn fits_retention(not_before_ms: u64, sent_ms: u64, retention_secs: u32) -> bool {
    not_before_ms.saturating_add(MAX_ATTEMPT_SECS * 1000)
        <= sent_ms.saturating_add(u64::from(retention_secs) * 1000)
}

/// What the template reserves beside the schedules for holds (breaker open, rate limit,
/// pause, `Retry-After` beyond an entry): receives and seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HoldBudget {
    pub receives: u32,
    pub secs: u32,
}

/// Settings of the main queue that every schedule fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// The redrive policy's `maxReceiveCount`.
    pub max_receive_count: u32,
    /// The least `MessageRetentionPeriod`, seconds.
    pub retention_secs: u32,
}

/// The queue settings for these schedules (every destination's, the default included):
///
/// - `max_receive_count = max over schedules of (1 + Σ hops(worst delay)) + holds.receives`,
///   at most 1000 (SQS's limit);
/// - `retention_secs = max over schedules of (worst_case_secs + attempts × 900)
///   + holds.secs`, at least 60 and at most 10 days.
///
/// A worst delay is the entry jittered +20% and never less than 72 s (a 429's 60 s floor
/// jittered up); 900 s is the longest an attempt itself may take.
pub fn queue_limits<'a>(
    schedules: impl IntoIterator<Item = &'a RetrySchedule>,
    holds: HoldBudget,
) -> Result<QueueLimits, &'static str> {
    let mut receives = 1u64;
    let mut secs = 0u64;
    for schedule in schedules {
        receives = receives.max(schedule.receives());
        secs = secs
            .max(schedule.worst_case_secs() + u64::from(schedule.attempts()) * MAX_ATTEMPT_SECS);
    }
    let receives = receives + u64::from(holds.receives);
    let secs = (secs + u64::from(holds.secs)).max(60);
    if receives > MAX_RECEIVE_COUNT {
        return Err(
            "the schedules and holds need more than 1000 receives (SQS's maxReceiveCount limit)",
        );
    }
    if secs > MAX_RETENTION_SECS {
        return Err("the schedules and holds need more than 10 days of retention");
    }
    Ok(QueueLimits {
        max_receive_count: u32::try_from(receives).unwrap_or(u32::MAX),
        retention_secs: u32::try_from(secs).unwrap_or(u32::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALMOST_ONE: f64 = 0.999_999_999;

    #[test]
    fn default_schedule_covers_three_days_in_twelve_attempts() {
        let s = RetrySchedule::default();
        assert_eq!(s.attempts(), 12);
        assert_eq!(s.total_secs(), 264_905);
        assert!(s.total_secs() >= 3 * 86_400);
        assert_eq!(s.validate(), Ok(()));
        let parsed: RetrySchedule = serde_json::from_str("{}").unwrap();
        assert_eq!(parsed, s);
        let custom: RetrySchedule = serde_json::from_str(r#"{"schedule_secs":[1,2]}"#).unwrap();
        assert_eq!(custom.schedule_secs, vec![1, 2]);
        assert!(serde_json::from_str::<RetrySchedule>(r#"{"schedule":[1]}"#).is_err());
    }

    #[test]
    fn first_retry_follows_the_first_entry_and_the_schedule_exhausts() {
        let s = RetrySchedule::new(&[10, 100]);
        assert_eq!(s.next_delay(1, 0.5, None, FailureClass::Error), Some(10));
        assert_eq!(s.next_delay(0, 0.5, None, FailureClass::Error), Some(10));
        assert_eq!(s.next_delay(2, 0.5, None, FailureClass::Error), Some(100));
        assert_eq!(s.next_delay(3, 0.5, None, FailureClass::Error), None);
        assert_eq!(s.next_delay(u32::MAX, 0.5, None, FailureClass::Error), None);
        assert_eq!(s.attempts(), 3);
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let s = RetrySchedule::new(&[300, 5, 43_200]);
        assert_eq!(s.next_delay(1, 0.0, None, FailureClass::Error), Some(240));
        assert_eq!(
            s.next_delay(1, ALMOST_ONE, None, FailureClass::Error),
            Some(359)
        );
        assert_eq!(s.next_delay(2, 0.0, None, FailureClass::Error), Some(4));
        assert_eq!(
            s.next_delay(2, ALMOST_ONE, None, FailureClass::Error),
            Some(5)
        );
        assert_eq!(
            s.next_delay(3, 0.0, None, FailureClass::Error),
            Some(34_560)
        );
        assert_eq!(
            s.next_delay(3, ALMOST_ONE, None, FailureClass::Error),
            Some(51_839)
        );
        for i in 0..1000 {
            let r = f64::from(i) / 1000.0;
            for (n, &e) in s.schedule_secs.iter().enumerate() {
                let d = s
                    .next_delay(n as u32 + 1, r, None, FailureClass::Error)
                    .unwrap();
                assert!(u64::from(d) * 10 >= u64::from(e) * 8, "{d} vs {e}");
                assert!(u64::from(d) * 10 <= u64::from(e) * 12, "{d} vs {e}");
            }
        }
    }

    #[test]
    fn odd_randoms_are_clamped() {
        let s = RetrySchedule::new(&[100]);
        assert_eq!(
            s.next_delay(1, f64::NAN, None, FailureClass::Error),
            Some(100)
        );
        assert_eq!(s.next_delay(1, -3.0, None, FailureClass::Error), Some(80));
        assert_eq!(s.next_delay(1, 7.0, None, FailureClass::Error), Some(120));
        assert_eq!(
            s.next_delay(1, f64::INFINITY, None, FailureClass::Error),
            Some(100)
        );
    }

    #[test]
    fn retry_after_is_never_shortened() {
        let s = RetrySchedule::new(&[5, 3_600]);
        for i in 0..100 {
            let r = f64::from(i) / 100.0;
            for ra in [0, 1, 7, 60, 3_000, 100_000] {
                let d = s
                    .next_delay(1, r, Some(ra), FailureClass::RateLimited)
                    .unwrap();
                assert!(d >= ra, "{d} < {ra}");
                assert!(u64::from(d) <= u64::from(ra.max(60)) * 12 / 10 + 1);
            }
        }
        assert_eq!(
            s.next_delay(1, 0.0, Some(120), FailureClass::Error),
            Some(120)
        );
        assert_eq!(
            s.next_delay(1, ALMOST_ONE, Some(120), FailureClass::Error),
            Some(143)
        );
        // The schedule's own delay wins when it is longer.
        assert_eq!(
            s.next_delay(2, 0.0, Some(10), FailureClass::Error),
            Some(2_880)
        );
        assert_eq!(
            s.next_delay(1, ALMOST_ONE, Some(u32::MAX), FailureClass::Error),
            Some(u32::MAX)
        );
    }

    #[test]
    fn throttles_and_timeouts_wait_at_least_a_minute() {
        let s = RetrySchedule::new(&[5]);
        for kind in [FailureClass::RateLimited, FailureClass::Timeout] {
            assert_eq!(s.next_delay(1, 0.0, None, kind), Some(60));
            assert_eq!(s.next_delay(1, ALMOST_ONE, None, kind), Some(71));
            assert_eq!(s.next_delay(1, 0.0, Some(30), kind), Some(60));
        }
        assert_eq!(s.next_delay(1, 0.0, None, FailureClass::Error), Some(4));
        assert_eq!(FailureClass::from_status(429), FailureClass::RateLimited);
        assert_eq!(FailureClass::from_status(503), FailureClass::Error);
        let long = RetrySchedule::new(&[600]);
        assert_eq!(
            long.next_delay(1, 0.0, None, FailureClass::Timeout),
            Some(480)
        );
    }

    #[test]
    fn long_delays_are_split_into_hops_of_at_most_twelve_hours() {
        assert_eq!(MAX_HOP_SECS, 42_300);
        let now = 1_000_000;
        let short = Wait::new(300, now);
        assert_eq!(short.hide_secs, 300);
        assert_eq!(short.not_before_ms, now + 300_000);
        assert!(short.is_last_hop(now));

        let delay = 51_840; // 12 h + 20%
        let w = Wait::new(delay, now);
        assert_eq!(w.hide_secs, MAX_HOP_SECS);
        assert_eq!(w.not_before_ms, now + 51_840_000);
        assert!(!w.is_last_hop(now));
        assert_eq!(hops(u64::from(delay)), 2);

        // The message comes back after the first hop and is hidden for the rest.
        let back = now + u64::from(w.hide_secs) * 1000;
        assert_eq!(
            on_receive(Some(w.not_before_ms), back),
            OnReceive::Hide { hide_secs: 9_540 }
        );
        assert_eq!(
            on_receive(Some(w.not_before_ms), w.not_before_ms),
            OnReceive::Due
        );
        assert_eq!(on_receive(None, back), OnReceive::Due);
        // Sub-second remainders round up: never back early.
        assert_eq!(
            on_receive(Some(w.not_before_ms), w.not_before_ms - 1),
            OnReceive::Hide { hide_secs: 1 }
        );

        // Three and a half days take eight hides (the first stands for the hide after the
        // failure), each no longer than a hop, then the attempt is due.
        let days = 302_400;
        let mut at = now;
        let w = Wait::new(days, at);
        let mut count = 0;
        loop {
            count += 1;
            match on_receive(Some(w.not_before_ms), at) {
                OnReceive::Due => break,
                OnReceive::Hide { hide_secs } => {
                    assert!(hide_secs <= MAX_HOP_SECS);
                    at += u64::from(hide_secs) * 1000 + 250;
                }
            }
        }
        assert_eq!(count, 1 + hops(u64::from(days)));
        assert_eq!(hops(0), 1);
        assert_eq!(hops(42_300), 1);
        assert_eq!(hops(42_301), 2);
    }

    #[test]
    fn validation_rejects_what_sqs_cannot_hold() {
        assert!(RetrySchedule::new(&[]).validate().is_err());
        assert!(RetrySchedule::new(&[5, 0]).validate().is_err());
        assert!(RetrySchedule::new(&[1; 101]).validate().is_err());
        assert_eq!(RetrySchedule::new(&[1; 100]).validate(), Ok(()));
        // One entry of 5 days: 6 days at worst, hops make it fine.
        assert_eq!(RetrySchedule::new(&[432_000]).validate(), Ok(()));
        // 504,000 s × 1.2 = 7 days exactly; a few seconds more is too long.
        assert_eq!(RetrySchedule::new(&[252_000, 252_000]).validate(), Ok(()));
        assert!(RetrySchedule::new(&[252_000, 252_005]).validate().is_err());
        assert!(RetrySchedule::new(&[u32::MAX; 100]).validate().is_err());
    }

    #[test]
    fn fits_retention_leaves_room_for_the_attempt() {
        let sent = 0;
        let retention = 345_600;
        assert!(fits_retention((345_600 - 900) * 1000, sent, retention));
        assert!(!fits_retention((345_600 - 899) * 1000, sent, retention));
        assert!(!fits_retention(u64::MAX, sent, retention));
    }

    #[test]
    fn queue_limits_follow_the_longest_schedule_and_the_holds() {
        let default = RetrySchedule::default();
        // 5 → 72 s, 300 → 360, 1800 → 2160, 7200 → 8640, 18000 → 21600 (one hop each);
        // 36000 → 43200 and 43200 → 51840 (two hops each, six entries).
        assert_eq!(default.worst_case_secs(), 317_952);
        assert_eq!(default.receives(), 1 + 5 + 12);
        let limits = queue_limits([&default], HoldBudget::default()).unwrap();
        assert_eq!(
            limits,
            QueueLimits {
                max_receive_count: 18,
                retention_secs: 317_952 + 12 * 900,
            }
        );
        let quick = RetrySchedule::new(&[1, 1]);
        let holds = HoldBudget {
            receives: 40,
            secs: 86_400,
        };
        let limits = queue_limits([&quick, &default], holds).unwrap();
        assert_eq!(limits.max_receive_count, 58);
        assert_eq!(limits.retention_secs, 328_752 + 86_400);
        let limits = queue_limits([&quick], HoldBudget::default()).unwrap();
        assert_eq!(limits.max_receive_count, 3);
        assert_eq!(limits.retention_secs, 72 * 2 + 3 * 900);
        assert!(queue_limits(
            [&default],
            HoldBudget {
                receives: 983,
                secs: 0
            }
        )
        .is_err());
        assert!(queue_limits(
            [&default],
            HoldBudget {
                receives: 0,
                secs: 600_000
            }
        )
        .is_err());
        assert_eq!(
            queue_limits([], HoldBudget::default()).unwrap(),
            QueueLimits {
                max_receive_count: 1,
                retention_secs: 60
            }
        );
    }
}
