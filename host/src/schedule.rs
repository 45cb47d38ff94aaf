//! A val's schedule (SPEC §7): `{"every": "15m"}` or `{"cron": "0 9 * * 1-5",
//! "timezone": "Europe/Paris"}`, optionally pinned with `"version": N`, and
//! the arithmetic of its ticks: when the next one is due, and how many were
//! missed when a tick is claimed late (they run once, as one catch-up run).
//! Cron expressions are parsed by `croner`, time zones come from jiff's
//! bundled IANA database.

use croner::Cron;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde_json::{json, Value};
use std::str::FromStr;
use std::time::Duration;

/// Missed ticks counted at most (a cron schedule down for years is not walked tick by tick).
const MAX_COUNTED_MISSES: u64 = 100_000;

/// When a schedule's ticks fall.
#[derive(Debug, Clone)]
pub enum Timing {
    /// Every `Duration`, from when the schedule was set.
    Every(Duration),
    /// On a cron expression, in a time zone.
    Cron {
        /// The parsed expression.
        cron: Box<Cron>,
        /// Where its fields are read.
        zone: TimeZone,
    },
}

/// A schedule as a user set it, checked.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// When it ticks.
    pub timing: Timing,
    /// The version it runs; the latest when `None`.
    pub version: Option<u32>,
    /// The JSON it was set with, normalized (what the API shows back).
    pub spec: Value,
}

impl Schedule {
    /// Reads `{"every": "15m"}` or `{"cron": "...", "timezone"?: "..."}` (with an
    /// optional `"version": N`); `min_interval` is the operator's shortest
    /// interval between two ticks.
    pub fn parse(spec: &Value, min_interval: Duration) -> Result<Schedule, String> {
        let Some(fields) = spec.as_object() else {
            return Err(
                "`schedule` is {\"every\": \"15m\"}, {\"cron\": \"0 9 * * 1-5\", \"timezone\": \"Europe/Paris\"} or null"
                    .into(),
            );
        };
        if let Some(unknown) = fields
            .keys()
            .find(|k| !["every", "cron", "timezone", "version"].contains(&k.as_str()))
        {
            return Err(format!("`schedule` has no field `{unknown}`"));
        }
        let version = match fields.get("version") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .filter(|v| (1..=u64::from(u32::MAX)).contains(v))
                    .ok_or("`schedule.version` must be a positive integer")? as u32,
            ),
        };
        let text = |name: &str| -> Result<Option<&str>, String> {
            match fields.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.as_str())),
                Some(_) => Err(format!("`schedule.{name}` must be a string")),
            }
        };
        let (timing, mut spec) = match (text("every")?, text("cron")?) {
            (Some(every), None) => {
                if text("timezone")?.is_some() {
                    return Err("`schedule.timezone` goes with `cron`, not `every`".into());
                }
                let interval = humantime::parse_duration(every.trim()).map_err(|e| {
                    format!("`schedule.every` must be a duration such as \"15m\" or \"1h30m\": {e}")
                })?;
                if interval < min_interval {
                    return Err(format!(
                        "`schedule.every` must be at least {} (this server's minimum interval)",
                        humantime::format_duration(min_interval)
                    ));
                }
                (
                    Timing::Every(interval),
                    json!({"every": humantime::format_duration(interval).to_string()}),
                )
            }
            (None, Some(expression)) => {
                let zone_name = text("timezone")?.unwrap_or("UTC");
                let zone = TimeZone::get(zone_name).map_err(|_| {
                    format!("`schedule.timezone` {zone_name:?} is not an IANA time zone name")
                })?;
                let cron = Cron::from_str(expression.trim()).map_err(|e| {
                    format!("`schedule.cron` {expression:?} is not a cron expression: {e}")
                })?;
                let timing = Timing::Cron {
                    cron: Box::new(cron),
                    zone,
                };
                // The operator's minimum applies to cron too: two ticks in a row.
                let first = timing
                    .next_after(0)
                    .ok_or("`schedule.cron` never matches")?;
                let second = timing
                    .next_after(first)
                    .ok_or("`schedule.cron` never matches twice")?;
                if second - first < min_interval.as_millis() as i64 {
                    return Err(format!(
                        "`schedule.cron` ticks more often than every {} (this server's minimum interval)",
                        humantime::format_duration(min_interval)
                    ));
                }
                (
                    timing,
                    json!({"cron": expression.trim(), "timezone": zone_name}),
                )
            }
            (Some(_), Some(_)) => {
                return Err("`schedule` has either `every` or `cron`, not both".into())
            }
            (None, None) => return Err("`schedule` needs `every` or `cron`".into()),
        };
        if let Some(version) = version {
            spec["version"] = version.into();
        }
        Ok(Schedule {
            timing,
            version,
            spec,
        })
    }

    /// The first tick after `now_ms` (Unix milliseconds) for a schedule set now.
    pub fn first_tick(&self, now_ms: i64) -> Option<i64> {
        self.timing.next_after(now_ms)
    }

    /// For tick `tick` claimed at `now_ms`: how many later ticks were missed
    /// (they are not run: this run stands for them), and the next tick after
    /// `now_ms`.
    pub fn after_tick(&self, tick: i64, now_ms: i64) -> (u64, Option<i64>) {
        let mut next = self.timing.next_after(tick);
        let mut skipped = 0;
        if let Timing::Every(interval) = &self.timing {
            let step = (interval.as_millis() as i64).max(1);
            if let Some(n) = next.filter(|n| *n <= now_ms) {
                let missed = (now_ms - n) / step + 1;
                return (missed as u64, Some(n + missed * step));
            }
            return (0, next);
        }
        while let Some(n) = next.filter(|n| *n <= now_ms) {
            skipped += 1;
            next = if skipped >= MAX_COUNTED_MISSES {
                self.timing.next_after(now_ms)
            } else {
                self.timing.next_after(n)
            };
            if skipped >= MAX_COUNTED_MISSES {
                break;
            }
        }
        (skipped, next)
    }
}

impl Timing {
    /// The first tick strictly after `after_ms` (Unix milliseconds).
    fn next_after(&self, after_ms: i64) -> Option<i64> {
        match self {
            Timing::Every(interval) => after_ms.checked_add(interval.as_millis() as i64),
            Timing::Cron { cron, zone } => {
                let at = Timestamp::from_millisecond(after_ms)
                    .ok()?
                    .to_zoned(zone.clone());
                let next = cron.find_next_occurrence(&at, false).ok()?;
                Some(next.timestamp().as_millisecond())
            }
        }
    }
}

/// Unix milliseconds as RFC 3339 (`2026-11-30T09:00:00Z`), as the API shows times of schedules.
pub fn rfc3339(ms: i64) -> String {
    Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}

/// Now, in Unix milliseconds (schedules' clock).
pub fn now_ms() -> i64 {
    Timestamp::now().as_millisecond()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn intervals_and_cron_expressions_are_checked() {
        let every = Schedule::parse(&json!({"every": "15m"}), MINUTE).unwrap();
        assert_eq!(every.spec, json!({"every": "15m"}));
        assert_eq!(every.first_tick(1_000), Some(1_000 + 15 * 60_000));
        let cron = Schedule::parse(
            &json!({"cron": "0 9 * * 1-5", "timezone": "Europe/Paris", "version": 2}),
            MINUTE,
        )
        .unwrap();
        assert_eq!(cron.version, Some(2));
        // Monday 2026-11-30 00:00 UTC: the next 09:00 in Paris is 08:00 UTC.
        let monday = "2026-11-30T00:00:00Z".parse::<Timestamp>().unwrap();
        let next = cron.first_tick(monday.as_millisecond()).unwrap();
        assert_eq!(rfc3339(next), "2026-11-30T08:00:00Z");
        for (bad, says) in [
            (json!({"every": "1s"}), "at least 1m"),
            (json!({"every": "soon"}), "a duration"),
            (json!({"cron": "61 * * * *"}), "not a cron expression"),
            (
                json!({"cron": "* * * * *", "timezone": "Mars/Olympus"}),
                "IANA",
            ),
            (json!({"every": "1h", "cron": "0 * * * *"}), "not both"),
            (
                json!({"every": "1h", "timezone": "UTC"}),
                "goes with `cron`",
            ),
            (json!({"every": "1h", "when": 1}), "no field `when`"),
            (json!({"every": "1h", "version": 0}), "positive integer"),
            (json!("15m"), "`schedule` is"),
            (json!({}), "needs `every` or `cron`"),
        ] {
            let error = Schedule::parse(&bad, MINUTE).unwrap_err();
            assert!(error.contains(says), "{bad}: {error}");
        }
        // Every minute is fine at a one-minute minimum; every second is not.
        assert!(Schedule::parse(&json!({"cron": "* * * * *"}), MINUTE).is_ok());
        assert!(Schedule::parse(&json!({"every": "1s"}), Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn a_late_claim_runs_once_and_counts_what_it_missed() {
        let every = Schedule::parse(&json!({"every": "1s"}), Duration::from_secs(1)).unwrap();
        // Claimed on time: nothing missed, the next tick one interval on.
        assert_eq!(every.after_tick(10_000, 10_050), (0, Some(11_000)));
        // Claimed 5.5 s late: the 5 ticks in between are missed.
        assert_eq!(every.after_tick(10_000, 15_500), (5, Some(16_000)));
        let hourly = Schedule::parse(&json!({"cron": "0 * * * *"}), MINUTE).unwrap();
        let noon = "2026-11-30T12:00:00Z"
            .parse::<Timestamp>()
            .unwrap()
            .as_millisecond();
        let (skipped, next) = hourly.after_tick(noon, noon + 3 * 3_600_000 + 60_000);
        assert_eq!(skipped, 3);
        assert_eq!(rfc3339(next.unwrap()), "2026-11-30T16:00:00Z");
    }
}
