//! Timestamps: parsing ISO-8601 / RFC 3339 dates and datetimes and unix epochs, and writing them back.
//!
//! Hand-written rather than a date crate: the formats are few, the parser sits in the per-row hot path of million-bar
//! files, and civil-date arithmetic is twenty lines (Howard Hinnant's `days_from_civil`).

use sextant_market::TimeStyle;

const MS_PER_DAY: i64 = 86_400_000;

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

fn digits(s: &[u8]) -> Option<u32> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0')))
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Parses a time field into unix milliseconds (UTC) and the style it was written in.
///
/// Accepts `YYYY-MM-DD`, `YYYY-MM-DD HH:MM[:SS[.fff]]` and the same with `T`, each optionally followed by `Z` or a
/// `±HH:MM` offset; `YYYYMMDD`; or a unix epoch number, whose unit is inferred from its size (seconds below 1e11,
/// milliseconds below 1e14, microseconds below 1e17, else nanoseconds). Numbers below 1e8 (before 1973 as seconds)
/// are refused: they are row indexes, not times.
pub fn parse_time(field: &str) -> Option<(i64, TimeStyle)> {
    let s = field.trim();
    let b = s.as_bytes();
    if b.first().is_some_and(|c| c.is_ascii_digit()) && b.len() >= 10 && b[4] == b'-' && b[7] == b'-' {
        return parse_iso(b);
    }
    parse_epoch(s)
}

/// Unix times before this (1973-03-03) are refused: small numbers in a time column are row indexes or compact
/// dates, and reading them as seconds would silently squeeze years of data into minutes.
const MIN_EPOCH_SECONDS: f64 = 1e8;

fn parse_epoch(s: &str) -> Option<(i64, TimeStyle)> {
    // `YYYYMMDD` as some exports write dates.
    if s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()) {
        let (y, m, d) = (s[..4].parse::<i64>().ok()?, s[4..6].parse::<u32>().ok()?, s[6..].parse::<u32>().ok()?);
        if (1800..=2200).contains(&y) && (1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m) {
            return Some((days_from_civil(y, m, d) * MS_PER_DAY, TimeStyle::CompactDate));
        }
    }
    let v: f64 = s.parse().ok()?;
    if !v.is_finite() || v < MIN_EPOCH_SECONDS {
        return None;
    }
    let (ms, style) = if v < 1e11 {
        (v * 1e3, TimeStyle::UnixSeconds)
    } else if v < 1e14 {
        (v, TimeStyle::UnixMillis)
    } else if v < 1e17 {
        (v / 1e3, TimeStyle::UnixMillis)
    } else {
        (v / 1e6, TimeStyle::UnixMillis)
    };
    Some((ms.round() as i64, style))
}

fn parse_iso(b: &[u8]) -> Option<(i64, TimeStyle)> {
    let y = i64::from(digits(&b[0..4])?);
    let m = digits(&b[5..7])?;
    let d = digits(&b[8..10])?;
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    let day_ms = days_from_civil(y, m, d) * MS_PER_DAY;
    if b.len() == 10 {
        return Some((day_ms, TimeStyle::Date));
    }
    let style = match b[10] {
        b' ' => TimeStyle::DateTimeSpace,
        b'T' | b't' => TimeStyle::Rfc3339,
        _ => return None,
    };
    let rest = &b[11..];
    if rest.len() < 5 || rest[2] != b':' {
        return None;
    }
    let hh = digits(&rest[0..2])?;
    let mm = digits(&rest[3..5])?;
    let mut i = 5;
    let mut ss = 0;
    let mut frac_ms = 0i64;
    if rest.get(i) == Some(&b':') {
        ss = digits(rest.get(i + 1..i + 3)?)?;
        i += 3;
        if rest.get(i) == Some(&b'.') {
            let start = i + 1;
            let mut end = start;
            while end < rest.len() && rest[end].is_ascii_digit() {
                end += 1;
            }
            if end == start {
                return None;
            }
            // Keep millisecond resolution; digits beyond are truncated.
            let mut ms = 0i64;
            for k in 0..3 {
                ms = ms * 10 + rest.get(start + k).filter(|_| start + k < end).map_or(0, |c| i64::from(c - b'0'));
            }
            frac_ms = ms;
            i = end;
        }
    }
    if hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let offset_ms = match &rest[i..] {
        [] => 0,
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), oh1, oh2, b':', om1, om2] | [sign @ (b'+' | b'-'), oh1, oh2, om1, om2] => {
            let oh = digits(&[*oh1, *oh2])?;
            let om = digits(&[*om1, *om2])?;
            let off = i64::from(oh * 60 + om) * 60_000;
            if *sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    let ms = day_ms + i64::from(hh) * 3_600_000 + i64::from(mm) * 60_000 + i64::from(ss) * 1000 + frac_ms - offset_ms;
    Some((ms, style))
}

/// Writes unix milliseconds in the given style (UTC).
pub fn format_time(ms: i64, style: TimeStyle) -> String {
    let mut out = String::with_capacity(24);
    write_time(&mut out, ms, style);
    out
}

/// Appends unix milliseconds in the given style (UTC) to `out`.
pub fn write_time(out: &mut String, ms: i64, style: TimeStyle) {
    use std::fmt::Write;
    let days = ms.div_euclid(MS_PER_DAY);
    let rem = ms.rem_euclid(MS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let (h, mi, s, milli) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
    // Writing to a String cannot fail.
    let _ = match style {
        TimeStyle::Date => write!(out, "{y:04}-{m:02}-{d:02}"),
        TimeStyle::CompactDate => write!(out, "{y:04}{m:02}{d:02}"),
        TimeStyle::DateTimeSpace if milli == 0 => write!(out, "{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}"),
        TimeStyle::DateTimeSpace => write!(out, "{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}.{milli:03}"),
        TimeStyle::Rfc3339 if milli == 0 => write!(out, "{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"),
        TimeStyle::Rfc3339 => write!(out, "{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z"),
        TimeStyle::UnixSeconds if ms % 1000 == 0 => write!(out, "{}", ms / 1000),
        TimeStyle::UnixSeconds => write!(out, "{}", ms as f64 / 1000.0),
        TimeStyle::UnixMillis => write!(out, "{ms}"),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("2004-08-19", 1_092_873_600_000, TimeStyle::Date)]
    #[case("2017-04-19 09:00:00", 1_492_592_400_000, TimeStyle::DateTimeSpace)]
    #[case("2017-04-19T09:00:00Z", 1_492_592_400_000, TimeStyle::Rfc3339)]
    #[case("2017-04-19T11:00:00+02:00", 1_492_592_400_000, TimeStyle::Rfc3339)]
    #[case("2017-04-19 09:00:00+00:00", 1_492_592_400_000, TimeStyle::DateTimeSpace)]
    #[case("2017-04-19T09:00:00.250Z", 1_492_592_400_250, TimeStyle::Rfc3339)]
    #[case("2017-04-19T09:00", 1_492_592_400_000, TimeStyle::Rfc3339)]
    #[case("1492592400", 1_492_592_400_000, TimeStyle::UnixSeconds)]
    #[case("1492592400000", 1_492_592_400_000, TimeStyle::UnixMillis)]
    #[case("1492592400000000", 1_492_592_400_000, TimeStyle::UnixMillis)]
    #[case("2024-02-29", 1_709_164_800_000, TimeStyle::Date)]
    #[case("20040819", 1_092_873_600_000, TimeStyle::CompactDate)]
    #[case("100000000", 100_000_000_000, TimeStyle::UnixSeconds)]
    fn parses(#[case] s: &str, #[case] ms: i64, #[case] style: TimeStyle) {
        assert_eq!(parse_time(s), Some((ms, style)));
    }

    #[rstest]
    #[case("2023-02-29")]
    #[case("2023-13-01")]
    #[case("2023-01-01X10:00")]
    #[case("2023-01-01 25:00:00")]
    #[case("yesterday")]
    #[case("")]
    #[case("-5")]
    #[case("0")]
    #[case("17")]
    #[case("20041319")]
    #[case("99999999")]
    fn rejects(#[case] s: &str) {
        assert_eq!(parse_time(s), None);
    }

    #[test]
    fn civil_round_trip_over_centuries() {
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn formats_back_in_each_style() {
        let ms = 1_492_592_400_000;
        assert_eq!(format_time(ms, TimeStyle::Rfc3339), "2017-04-19T09:00:00Z");
        assert_eq!(format_time(ms, TimeStyle::DateTimeSpace), "2017-04-19 09:00:00");
        assert_eq!(format_time(ms - 9 * 3_600_000, TimeStyle::Date), "2017-04-19");
        assert_eq!(format_time(ms, TimeStyle::UnixSeconds), "1492592400");
        assert_eq!(format_time(ms, TimeStyle::UnixMillis), "1492592400000");
        assert_eq!(format_time(ms, TimeStyle::CompactDate), "20170419");
    }
}
