//! A destination's circuit breaker (`circuit_breaker: {"failure_rate", "min_attempts",
//! "window_secs", "open_secs"}`), shared by every consumer instance: its state is one
//! DynamoDB item per destination, and this module is the state machine over it.
//!
//! - **Closed**: deliveries go out. Outcomes are added per batch (not per attempt) to the
//!   counts of a fixed window of `window_secs`; when at least `min_attempts` attempts in the
//!   window failed at `failure_rate` or more, it opens.
//! - **Open**: nothing is delivered; events are held until `opened_at + open_secs` (held
//!   events are not attempts). Then the first consumer to ask takes the probe.
//! - **HalfOpen**: one probe at a time, under a lease that expires (a crashed prober does
//!   not wedge the breaker: once the lease has run out, the next consumer takes it over).
//!   A probe success closes the breaker; a failure reopens it.
//!
//! Every change of state returns a [`Transition`] for the caller to log and emit as a metric.
//!
//! Pure arithmetic: this module performs no I/O, reads no clock (callers pass `now_ms`) and
//! never panics.
//!
//! # Shared state in DynamoDB
//!
//! [`BreakerState`] serialises flat (`state` plus two or three integer or string
//! attributes). A caller reads the item, applies a transition here and writes the result
//! conditioned on [`BreakerState::guard`] (the state's name and its one timestamp), so two
//! consumers cannot both take the probe or both reopen. Counting while closed need not be
//! read-modify-write: `ADD attempts :a, failures :f` conditioned on
//! `state = closed AND window_start_ms = :ws` (with `ReturnValues = ALL_NEW`), then
//! [`BreakerConfig::trips`] on the new counts says whether to write the opening (itself
//! conditioned on the same guard). When the window has expired
//! ([`BreakerState::window_expired`]), the caller writes a fresh window instead.

use serde::{Deserialize, Serialize};

/// Convoy's `FailureThreshold` default: 70%.
pub const DEFAULT_FAILURE_RATE: f64 = 0.7;
/// Convoy's `MinimumRequestCount` default.
pub const DEFAULT_MIN_ATTEMPTS: u32 = 10;
/// Convoy's `ObservabilityWindow` default: 5 minutes.
pub const DEFAULT_WINDOW_SECS: u32 = 300;
/// Convoy's `ErrorTimeout` (open → half-open) default: 30 seconds.
pub const DEFAULT_OPEN_SECS: u32 = 30;

/// Longest `window_secs`: a day.
pub const MAX_WINDOW_SECS: u32 = 86_400;
/// Longest `open_secs`: what one visibility change holds (a held event waits one hide).
pub const MAX_OPEN_SECS: u32 = crate::schedule::MAX_HOP_SECS;

const PPM: u64 = 1_000_000;

/// `circuit_breaker` of a destination.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    /// Failed share of the window's attempts that opens the breaker, (0, 1].
    pub failure_rate: f64,
    /// Fewest attempts in the window before it may open.
    pub min_attempts: u32,
    /// Length of the counting window, seconds.
    pub window_secs: u32,
    /// How long it stays open before a probe, seconds.
    pub open_secs: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_rate: DEFAULT_FAILURE_RATE,
            min_attempts: DEFAULT_MIN_ATTEMPTS,
            window_secs: DEFAULT_WINDOW_SECS,
            open_secs: DEFAULT_OPEN_SECS,
        }
    }
}

impl BreakerConfig {
    /// Checks the settings: `Err((field, reason))`, the field within `circuit_breaker`.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if !(self.failure_rate.is_finite() && self.failure_rate > 0.0 && self.failure_rate <= 1.0) {
            return Err((
                "failure_rate",
                "must be more than 0 and at most 1 (0.7 is 70%)",
            ));
        }
        if self.min_attempts == 0 {
            return Err(("min_attempts", "must be at least 1"));
        }
        if self.window_secs == 0 || self.window_secs > MAX_WINDOW_SECS {
            return Err(("window_secs", "must be from 1 to 86400"));
        }
        if self.open_secs == 0 || self.open_secs > MAX_OPEN_SECS {
            return Err((
                "open_secs",
                "must be from 1 to 42300 (one SQS visibility change)",
            ));
        }
        Ok(())
    }

    /// `failure_rate` in parts per million, so thresholds compare exactly in integers.
    pub fn failure_ppm(&self) -> u64 {
        let r = if self.failure_rate.is_finite() {
            self.failure_rate.clamp(0.0, 1.0)
        } else {
            1.0
        };
        (r * PPM as f64).round() as u64
    }

    /// True when these counts of one window open the breaker: `attempts ≥ min_attempts`
    /// and `failures / attempts ≥ failure_rate` (exactly: 7 of 10 trips at 0.7).
    pub fn trips(&self, attempts: u32, failures: u32) -> bool {
        attempts > 0
            && attempts >= self.min_attempts
            && u64::from(failures.min(attempts)) * PPM >= self.failure_ppm() * u64::from(attempts)
    }

    fn window_ms(&self) -> u64 {
        u64::from(self.window_secs) * 1000
    }

    fn open_ms(&self) -> u64 {
        u64::from(self.open_secs) * 1000
    }
}

/// One destination's breaker, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum BreakerState {
    /// Delivering; counting the current window.
    Closed {
        attempts: u32,
        failures: u32,
        window_start_ms: u64,
    },
    /// Holding everything until `opened_at_ms + open_secs`.
    Open {
        /// When it (re)opened last.
        opened_at_ms: u64,
        /// When it first opened, across reopenings ("open since").
        since_ms: u64,
    },
    /// One probe out, leased to `prober` until `lease_until_ms`.
    HalfOpen {
        since_ms: u64,
        prober: String,
        lease_until_ms: u64,
    },
}

impl Default for BreakerState {
    fn default() -> Self {
        BreakerState::Closed {
            attempts: 0,
            failures: 0,
            window_start_ms: 0,
        }
    }
}

/// What the caller writes a conditional update against: the old state's name and its one
/// timestamp (`window_start_ms`, `opened_at_ms` or `lease_until_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guard {
    pub state: &'static str,
    pub stamp_ms: u64,
}

/// Whether a delivery may go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Closed: deliver.
    Deliver,
    /// Deliver this one as the probe; report it with [`BreakerState::record_probe`].
    Probe { lease_until_ms: u64 },
    /// Hold the event (not an attempt) until `until_ms`, then ask again.
    Hold { until_ms: u64 },
}

/// A change of state, for a log line and a metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "transition", rename_all = "snake_case")]
pub enum Transition {
    /// Closed → Open: the window's counts crossed the thresholds.
    Opened {
        failure_rate: f64,
        attempts: u32,
        failures: u32,
    },
    /// Open → HalfOpen: `open_secs` passed and `prober` took the probe.
    HalfOpened { prober: String, open_for_ms: u64 },
    /// HalfOpen → HalfOpen: the probe lease of `previous` expired and `prober` took it.
    ProbeTakenOver { previous: String, prober: String },
    /// HalfOpen → Closed: the probe succeeded.
    Closed { open_for_ms: u64 },
    /// HalfOpen → Open: the probe failed.
    Reopened { open_for_ms: u64 },
}

impl Transition {
    /// The metric's name of this transition.
    pub fn name(&self) -> &'static str {
        match self {
            Transition::Opened { .. } => "opened",
            Transition::HalfOpened { .. } => "half_opened",
            Transition::ProbeTakenOver { .. } => "probe_taken_over",
            Transition::Closed { .. } => "closed",
            Transition::Reopened { .. } => "reopened",
        }
    }
}

impl BreakerState {
    /// `closed`, `open` or `half_open` (the stored `state`).
    pub fn name(&self) -> &'static str {
        match self {
            BreakerState::Closed { .. } => "closed",
            BreakerState::Open { .. } => "open",
            BreakerState::HalfOpen { .. } => "half_open",
        }
    }

    /// The condition of a write that replaces this state.
    pub fn guard(&self) -> Guard {
        let stamp_ms = match self {
            BreakerState::Closed {
                window_start_ms, ..
            } => *window_start_ms,
            BreakerState::Open { opened_at_ms, .. } => *opened_at_ms,
            BreakerState::HalfOpen { lease_until_ms, .. } => *lease_until_ms,
        };
        Guard {
            state: self.name(),
            stamp_ms,
        }
    }

    /// Since when it has not been closed, for `sluice status`.
    pub fn since_ms(&self) -> Option<u64> {
        match self {
            BreakerState::Closed { .. } => None,
            BreakerState::Open { since_ms, .. } | BreakerState::HalfOpen { since_ms, .. } => {
                Some(*since_ms)
            }
        }
    }

    /// The current window's failed share, when closed and anything was attempted.
    pub fn failure_rate(&self) -> Option<f64> {
        match self {
            BreakerState::Closed {
                attempts, failures, ..
            } if *attempts > 0 => Some(f64::from(*failures) / f64::from(*attempts)),
            _ => None,
        }
    }

    /// True when closed and the counting window that started at `window_start_ms` is over.
    pub fn window_expired(&self, config: &BreakerConfig, now_ms: u64) -> bool {
        match self {
            BreakerState::Closed {
                window_start_ms, ..
            } => now_ms >= window_start_ms.saturating_add(config.window_ms()),
            _ => false,
        }
    }

    /// Whether one delivery may go out at `now_ms`, on behalf of consumer `prober` (a
    /// stable id of the instance); a probe is leased for `lease_ms` (longer than the
    /// delivery's timeout).
    pub fn admit(
        &mut self,
        config: &BreakerConfig,
        prober: &str,
        lease_ms: u64,
        now_ms: u64,
    ) -> (Admit, Option<Transition>) {
        let lease_until_ms = now_ms.saturating_add(lease_ms.max(1));
        match self {
            BreakerState::Closed { .. } => (Admit::Deliver, None),
            BreakerState::Open {
                opened_at_ms,
                since_ms,
            } => {
                let ends = opened_at_ms.saturating_add(config.open_ms());
                if now_ms < ends {
                    return (Admit::Hold { until_ms: ends }, None);
                }
                let since_ms = *since_ms;
                *self = BreakerState::HalfOpen {
                    since_ms,
                    prober: prober.to_string(),
                    lease_until_ms,
                };
                (
                    Admit::Probe { lease_until_ms },
                    Some(Transition::HalfOpened {
                        prober: prober.to_string(),
                        open_for_ms: now_ms.saturating_sub(since_ms),
                    }),
                )
            }
            BreakerState::HalfOpen {
                prober: holder,
                lease_until_ms: until,
                ..
            } => {
                if now_ms < *until {
                    return (Admit::Hold { until_ms: *until }, None);
                }
                let previous = std::mem::replace(holder, prober.to_string());
                *until = lease_until_ms;
                (
                    Admit::Probe { lease_until_ms },
                    Some(Transition::ProbeTakenOver {
                        previous,
                        prober: prober.to_string(),
                    }),
                )
            }
        }
    }

    /// Adds one batch's outcomes (deliveries admitted with [`Admit::Deliver`]). Counts only
    /// while closed: a new window starts when the current one is over, and the breaker
    /// opens when the window's counts cross the thresholds. Outcomes reported while open or
    /// half-open (deliveries that were already out) are ignored.
    pub fn record(
        &mut self,
        config: &BreakerConfig,
        successes: u32,
        failures: u32,
        now_ms: u64,
    ) -> Option<Transition> {
        let expired = self.window_expired(config, now_ms);
        let BreakerState::Closed {
            attempts,
            failures: failed,
            window_start_ms,
        } = self
        else {
            return None;
        };
        if expired {
            *attempts = 0;
            *failed = 0;
            *window_start_ms = now_ms;
        }
        *attempts = attempts.saturating_add(successes).saturating_add(failures);
        *failed = failed.saturating_add(failures);
        if !config.trips(*attempts, *failed) {
            return None;
        }
        let transition = Transition::Opened {
            failure_rate: f64::from(*failed) / f64::from(*attempts),
            attempts: *attempts,
            failures: *failed,
        };
        *self = BreakerState::Open {
            opened_at_ms: now_ms,
            since_ms: now_ms,
        };
        Some(transition)
    }

    /// The outcome of the probe `prober` delivered. A success closes the breaker (with a
    /// fresh window), a failure reopens it. Ignored unless half-open with `prober` holding
    /// the probe (a late report after another consumer took the probe over changes nothing).
    pub fn record_probe(
        &mut self,
        prober: &str,
        succeeded: bool,
        now_ms: u64,
    ) -> Option<Transition> {
        let BreakerState::HalfOpen {
            since_ms,
            prober: holder,
            ..
        } = self
        else {
            return None;
        };
        if holder != prober {
            return None;
        }
        let since_ms = *since_ms;
        let open_for_ms = now_ms.saturating_sub(since_ms);
        if succeeded {
            *self = BreakerState::Closed {
                attempts: 0,
                failures: 0,
                window_start_ms: now_ms,
            };
            Some(Transition::Closed { open_for_ms })
        } else {
            *self = BreakerState::Open {
                opened_at_ms: now_ms,
                since_ms,
            };
            Some(Transition::Reopened { open_for_ms })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000;
    const LEASE: u64 = 40_000;

    fn closed_at(start: u64) -> BreakerState {
        BreakerState::Closed {
            attempts: 0,
            failures: 0,
            window_start_ms: start,
        }
    }

    #[test]
    fn defaults_are_convoys() {
        let c = BreakerConfig::default();
        assert_eq!(c.failure_rate, 0.7);
        assert_eq!(c.min_attempts, 10);
        assert_eq!(c.window_secs, 300);
        assert_eq!(c.open_secs, 30);
        assert_eq!(c.validate(), Ok(()));
        let parsed: BreakerConfig = serde_json::from_str(r#"{"open_secs": 5}"#).unwrap();
        assert_eq!(parsed.open_secs, 5);
        assert_eq!(parsed.min_attempts, 10);
        assert!(serde_json::from_str::<BreakerConfig>(r#"{"threshold": 1}"#).is_err());
    }

    #[test]
    fn validation_names_the_field() {
        let bad = |f: fn(&mut BreakerConfig)| {
            let mut c = BreakerConfig::default();
            f(&mut c);
            c.validate().unwrap_err().0
        };
        assert_eq!(bad(|c| c.failure_rate = 0.0), "failure_rate");
        assert_eq!(bad(|c| c.failure_rate = 1.5), "failure_rate");
        assert_eq!(bad(|c| c.failure_rate = f64::NAN), "failure_rate");
        assert_eq!(bad(|c| c.min_attempts = 0), "min_attempts");
        assert_eq!(bad(|c| c.window_secs = 0), "window_secs");
        assert_eq!(bad(|c| c.window_secs = 86_401), "window_secs");
        assert_eq!(bad(|c| c.open_secs = 0), "open_secs");
        assert_eq!(bad(|c| c.open_secs = 43_200), "open_secs");
        let edge = BreakerConfig {
            failure_rate: 1.0,
            min_attempts: 1,
            ..BreakerConfig::default()
        };
        assert_eq!(edge.validate(), Ok(()));
    }

    #[test]
    fn trips_exactly_at_seventy_percent_of_ten() {
        let c = BreakerConfig::default();
        assert!(c.trips(10, 7));
        assert!(!c.trips(10, 6));
        assert!(!c.trips(9, 9), "below min_attempts");
        assert!(c.trips(100, 70));
        assert!(!c.trips(100, 69));
        assert!(!c.trips(0, 0));
        assert!(
            c.trips(10, 20),
            "failures beyond attempts count as all failed"
        );
        // Batch counts: 6 + 3 attempts with 6 failures stay closed; one more failure trips.
        let mut s = closed_at(T0);
        assert_eq!(s.record(&c, 0, 6, T0 + 1), None);
        assert_eq!(s.record(&c, 3, 0, T0 + 2), None);
        assert_eq!(s.failure_rate(), Some(6.0 / 9.0));
        let t = s.record(&c, 0, 1, T0 + 3).unwrap();
        assert_eq!(
            t,
            Transition::Opened {
                failure_rate: 0.7,
                attempts: 10,
                failures: 7
            }
        );
        assert_eq!(t.name(), "opened");
        assert_eq!(
            s,
            BreakerState::Open {
                opened_at_ms: T0 + 3,
                since_ms: T0 + 3
            }
        );
        assert_eq!(s.since_ms(), Some(T0 + 3));
    }

    #[test]
    fn sixty_nine_percent_never_trips() {
        let c = BreakerConfig::default();
        let mut s = closed_at(T0);
        for i in 0..30 {
            assert_eq!(s.record(&c, 31, 69, T0 + i), None);
        }
        assert_eq!(
            s,
            BreakerState::Closed {
                attempts: 3_000,
                failures: 2_070,
                window_start_ms: T0
            }
        );
    }

    #[test]
    fn a_new_window_forgets_the_old_counts() {
        let c = BreakerConfig::default();
        let mut s = closed_at(T0);
        assert_eq!(s.record(&c, 0, 9, T0), None);
        assert!(!s.window_expired(&c, T0 + 299_999));
        assert!(s.window_expired(&c, T0 + 300_000));
        // The tenth failure arrives a moment after the window ended: a new window.
        assert_eq!(s.record(&c, 0, 1, T0 + 300_000), None);
        assert_eq!(
            s,
            BreakerState::Closed {
                attempts: 1,
                failures: 1,
                window_start_ms: T0 + 300_000
            }
        );
        assert_eq!(s.guard().stamp_ms, T0 + 300_000);
        // Within that window it trips when the counts get there.
        assert!(s.record(&c, 3, 6, T0 + 599_999).is_some());
        // The default state starts a window at the first record.
        let mut fresh = BreakerState::default();
        assert_eq!(fresh.record(&c, 1, 0, T0), None);
        assert_eq!(
            fresh.guard(),
            Guard {
                state: "closed",
                stamp_ms: T0
            }
        );
    }

    #[test]
    fn open_holds_until_open_secs_then_leases_one_probe() {
        let c = BreakerConfig::default();
        let mut s = BreakerState::Open {
            opened_at_ms: T0,
            since_ms: T0,
        };
        assert_eq!(
            s.admit(&c, "a", LEASE, T0 + 29_999),
            (
                Admit::Hold {
                    until_ms: T0 + 30_000
                },
                None
            )
        );
        let (admit, t) = s.admit(&c, "a", LEASE, T0 + 30_000);
        assert_eq!(
            admit,
            Admit::Probe {
                lease_until_ms: T0 + 70_000
            }
        );
        assert_eq!(
            t,
            Some(Transition::HalfOpened {
                prober: "a".into(),
                open_for_ms: 30_000
            })
        );
        assert_eq!(s.name(), "half_open");
        // One probe at a time: everyone else, the prober too, holds until the lease ends.
        for who in ["a", "b"] {
            assert_eq!(
                s.admit(&c, who, LEASE, T0 + 31_000),
                (
                    Admit::Hold {
                        until_ms: T0 + 70_000
                    },
                    None
                )
            );
        }
        // Outcomes of deliveries already out are ignored while not closed.
        assert_eq!(s.record(&c, 0, 50, T0 + 31_000), None);
        assert_eq!(s.name(), "half_open");
    }

    #[test]
    fn an_expired_probe_lease_is_taken_over() {
        let c = BreakerConfig::default();
        let mut s = BreakerState::HalfOpen {
            since_ms: T0,
            prober: "crashed".into(),
            lease_until_ms: T0 + 70_000,
        };
        let (admit, t) = s.admit(&c, "b", LEASE, T0 + 70_000);
        assert_eq!(
            admit,
            Admit::Probe {
                lease_until_ms: T0 + 110_000
            }
        );
        assert_eq!(
            t,
            Some(Transition::ProbeTakenOver {
                previous: "crashed".into(),
                prober: "b".into()
            })
        );
        // The crashed prober's late report changes nothing.
        assert_eq!(s.record_probe("crashed", true, T0 + 71_000), None);
        assert_eq!(
            s.guard(),
            Guard {
                state: "half_open",
                stamp_ms: T0 + 110_000
            }
        );
        assert_eq!(
            s.record_probe("b", true, T0 + 72_000),
            Some(Transition::Closed {
                open_for_ms: 72_000
            })
        );
        assert_eq!(s, closed_at(T0 + 72_000));
        assert_eq!(s.admit(&c, "c", LEASE, T0 + 72_001), (Admit::Deliver, None));
    }

    #[test]
    fn a_failed_probe_reopens_and_keeps_since() {
        let c = BreakerConfig::default();
        let mut s = BreakerState::Open {
            opened_at_ms: T0,
            since_ms: T0,
        };
        s.admit(&c, "a", LEASE, T0 + 30_000);
        assert_eq!(
            s.record_probe("a", false, T0 + 31_000),
            Some(Transition::Reopened {
                open_for_ms: 31_000
            })
        );
        assert_eq!(
            s,
            BreakerState::Open {
                opened_at_ms: T0 + 31_000,
                since_ms: T0
            }
        );
        // Next probe open_secs after the reopening.
        assert_eq!(
            s.admit(&c, "b", LEASE, T0 + 60_000).0,
            Admit::Hold {
                until_ms: T0 + 61_000
            }
        );
        assert!(matches!(
            s.admit(&c, "b", LEASE, T0 + 61_000).0,
            Admit::Probe { .. }
        ));
        assert_eq!(s.since_ms(), Some(T0));
        assert_eq!(s.record_probe("nobody", true, T0 + 62_000), None);
        let mut closed = BreakerState::default();
        assert_eq!(closed.record_probe("a", true, T0), None);
    }

    #[test]
    fn state_serialises_to_flat_attributes() {
        let s = BreakerState::HalfOpen {
            since_ms: 1,
            prober: "lambda-1".into(),
            lease_until_ms: 2,
        };
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"state": "half_open", "since_ms": 1, "prober": "lambda-1", "lease_until_ms": 2})
        );
        assert_eq!(serde_json::from_value::<BreakerState>(json).unwrap(), s);
        let closed = serde_json::to_value(BreakerState::default()).unwrap();
        assert_eq!(
            closed,
            serde_json::json!({"state": "closed", "attempts": 0, "failures": 0, "window_start_ms": 0})
        );
        let t = serde_json::to_value(Transition::Closed { open_for_ms: 5 }).unwrap();
        assert_eq!(
            t,
            serde_json::json!({"transition": "closed", "open_for_ms": 5})
        );
    }

    #[test]
    fn counts_saturate() {
        let c = BreakerConfig {
            failure_rate: 1.0,
            ..BreakerConfig::default()
        };
        let mut s = closed_at(T0);
        assert_eq!(s.record(&c, u32::MAX, 0, T0), None);
        assert_eq!(
            s,
            BreakerState::Closed {
                attempts: u32::MAX,
                failures: 0,
                window_start_ms: T0
            }
        );
        // Attempts stay at the ceiling; failures catch up with them and it trips.
        assert_eq!(
            s.record(&c, 0, u32::MAX, T0),
            Some(Transition::Opened {
                failure_rate: 1.0,
                attempts: u32::MAX,
                failures: u32::MAX
            })
        );
    }
}
