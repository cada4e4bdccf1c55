//! When ticks run: a fixed interval (`30s`, `5m`, `1h`) or a five-field cron expression (minute hour day-of-month
//! month day-of-week, UTC; `*`, numbers, ranges `a-b`, lists `a,b` and steps `*/n` or `a-b/n`).

use crate::{Error, Result};
use std::time::Duration;

/// A tick schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// Every so often, from the end of the previous tick.
    Every(Duration),
    /// At the minutes a cron expression selects.
    Cron(Box<Cron>),
}

/// A parsed cron expression: the allowed values of each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: Vec<bool>,
    hours: Vec<bool>,
    days: Vec<bool>,
    months: Vec<bool>,
    weekdays: Vec<bool>,
}

/// Parses `30s`, `500ms`, `5m`, `1h` (a bare number is seconds).
///
/// # Errors
/// Anything else, or zero.
pub fn parse_interval(s: &str) -> Result<Duration> {
    let s = s.trim();
    let (num, unit) = s.find(|c: char| !c.is_ascii_digit()).map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = num.parse().map_err(|_| Error::Config(format!("interval {s:?}: expected e.g. 30s, 5m, 1h")))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(Error::Config(format!("interval {s:?}: unknown unit {unit:?} (ms, s, m, h)"))),
    };
    if d.is_zero() {
        return Err(Error::Config(format!("interval {s:?} must be positive")));
    }
    Ok(d)
}

fn field(spec: &str, lo: u32, hi: u32, name: &str) -> Result<Vec<bool>> {
    let bad = |why: &str| Error::Config(format!("cron {name} field {spec:?}: {why}"));
    let mut allowed = vec![false; hi as usize + 1];
    for part in spec.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().map_err(|_| bad("bad step"))?),
            None => (part, 1),
        };
        if step == 0 {
            return Err(bad("step must be positive"));
        }
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (a.parse().map_err(|_| bad("bad range"))?, b.parse().map_err(|_| bad("bad range"))?)
        } else {
            let v: u32 = range.parse().map_err(|_| bad("not a number"))?;
            (v, if part.contains('/') { hi } else { v })
        };
        if a < lo || b > hi || a > b {
            return Err(bad(&format!("out of range {lo}-{hi}")));
        }
        for v in (a..=b).step_by(step as usize) {
            allowed[v as usize] = true;
        }
    }
    Ok(allowed)
}

impl Cron {
    /// Parses five fields.
    ///
    /// # Errors
    /// A wrong number of fields or a bad field (named).
    pub fn parse(expr: &str) -> Result<Self> {
        let f: Vec<&str> = expr.split_whitespace().collect();
        if f.len() != 5 {
            return Err(Error::Config(format!(
                "cron {expr:?}: expected 5 fields (minute hour day month weekday), got {}",
                f.len()
            )));
        }
        Ok(Cron {
            minutes: field(f[0], 0, 59, "minute")?,
            hours: field(f[1], 0, 23, "hour")?,
            days: field(f[2], 1, 31, "day-of-month")?,
            months: field(f[3], 1, 12, "month")?,
            weekdays: field(f[4], 0, 6, "day-of-week")?,
        })
    }

    fn matches(&self, minute_epoch: u64) -> bool {
        let days = minute_epoch / 1440;
        let (y, m, d) = civil_from_days(days as i64);
        let _ = y;
        let weekday = ((days + 4) % 7) as usize; // 1970-01-01 was a Thursday.
        self.minutes[(minute_epoch % 60) as usize]
            && self.hours[((minute_epoch / 60) % 24) as usize]
            && self.days[d as usize]
            && self.months[m as usize]
            && self.weekdays[weekday]
    }

    /// The first matching minute strictly after `now_secs` (Unix seconds), within four years.
    pub fn next_after(&self, now_secs: u64) -> Option<u64> {
        let start = now_secs / 60 + 1;
        (start..start + 4 * 366 * 1440).find(|&m| self.matches(m)).map(|m| m * 60)
    }
}

/// Howard Hinnant's days-to-civil conversion.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

impl Schedule {
    /// How long to wait from `now_secs` until the next tick.
    pub fn wait(&self, now_secs: u64) -> Duration {
        match self {
            Schedule::Every(d) => *d,
            Schedule::Cron(c) => {
                c.next_after(now_secs).map_or(Duration::from_secs(60), |t| Duration::from_secs(t - now_secs))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_with_units() {
        assert_eq!(parse_interval("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_interval("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_interval("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_interval("7").unwrap(), Duration::from_secs(7));
        assert!(parse_interval("0s").is_err());
        assert!(parse_interval("5 parsecs").unwrap_err().to_string().contains("unit"));
    }

    #[test]
    fn cron_finds_the_next_matching_minute() {
        // 2026-11-25 00:00:00 UTC is a Wednesday.
        let t0 = 1_795_564_800;
        assert_eq!(civil_from_days(t0 as i64 / 86_400), (2026, 11, 25));
        let every_15 = Cron::parse("*/15 * * * *").unwrap();
        assert_eq!(every_15.next_after(t0), Some(t0 + 15 * 60));
        assert_eq!(every_15.next_after(t0 + 16 * 60), Some(t0 + 30 * 60));
        // 09:30 on weekdays: Wednesday morning's is the next one.
        let weekdays = Cron::parse("30 9 * * 1-5").unwrap();
        assert_eq!(weekdays.next_after(t0), Some(t0 + 9 * 3600 + 30 * 60));
        // Sundays at noon: four days later.
        let sunday = Cron::parse("0 12 * * 0").unwrap();
        assert_eq!(sunday.next_after(t0), Some(t0 + 4 * 86_400 + 12 * 3600));
        assert!(Cron::parse("* * *").unwrap_err().to_string().contains("5 fields"));
        assert!(Cron::parse("61 * * * *").unwrap_err().to_string().contains("minute"));
    }
}
