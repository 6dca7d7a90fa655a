//! RFC 3339 rendering and parsing of nanosecond UTC timestamps, and calendar
//! fields for partition paths. Hand-written (days-from-civil arithmetic) to keep
//! the contract crate free of a date library on the printing hot path.

use crate::records::TimestampNs;

const NS_PER_SEC: i64 = 1_000_000_000;

/// Calendar fields of a UTC timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// Year (proleptic Gregorian).
    pub year: i32,
    /// Month 1–12.
    pub month: u32,
    /// Day 1–31.
    pub day: u32,
    /// Hour 0–23.
    pub hour: u32,
    /// Minute 0–59.
    pub minute: u32,
    /// Second 0–59.
    pub second: u32,
    /// Nanoseconds 0–999 999 999.
    pub nanos: u32,
}

/// Splits a timestamp into calendar fields (UTC).
pub fn civil(ts: TimestampNs) -> Civil {
    let secs = ts.div_euclid(NS_PER_SEC);
    let nanos = ts.rem_euclid(NS_PER_SEC) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
    Civil { year, month, day, hour: sod / 3600, minute: sod / 60 % 60, second: sod % 60, nanos }
}

/// Days since the epoch of a civil date (inverse of the date part of [`civil`]).
pub fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` (always nine fractional digits).
pub fn rfc3339(ts: TimestampNs) -> String {
    let c = civil(ts);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second, c.nanos
    )
}

/// Parses an RFC 3339 timestamp (`Z` or `±HH:MM` offset, optional fraction up
/// to nanoseconds) or a bare date `YYYY-MM-DD` (midnight UTC).
pub fn parse_rfc3339(s: &str) -> Option<TimestampNs> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let t = s.get(r)?;
        if t.bytes().all(|c| c.is_ascii_digit()) { t.parse().ok() } else { None }
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (year, month, day) = (num(0..4)? as i32, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    if b.len() == 10 {
        return days.checked_mul(86_400 * NS_PER_SEC);
    }
    if b.len() < 19 || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: i64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &s[start..i];
        if digits.is_empty() || digits.len() > 9 {
            return None;
        }
        nanos = digits.parse::<i64>().ok()? * 10i64.pow(9 - digits.len() as u32);
    }
    let offset_secs: i64 = match &s[i..] {
        "Z" | "z" => 0,
        rest if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) => {
            let oh = num(i + 1..i + 3)? as i64;
            let om = num(i + 4..i + 6)? as i64;
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    let secs = days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(se) - offset_secs;
    secs.checked_mul(NS_PER_SEC)?.checked_add(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(1_764_140_400_123_456_789), "2025-11-26T07:00:00.123456789Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999999999Z");
        assert_eq!(rfc3339(951_782_400 * NS_PER_SEC), "2000-02-29T00:00:00.000000000Z");
    }

    #[test]
    fn parses_what_it_prints_and_offsets() {
        for ts in [0, 1, -1, 1_764_140_400_123_456_789, 4_102_444_800 * NS_PER_SEC - 7] {
            assert_eq!(parse_rfc3339(&rfc3339(ts)), Some(ts));
        }
        assert_eq!(parse_rfc3339("2026-11-26"), Some(days_from_civil(2026, 11, 26) * 86_400 * NS_PER_SEC));
        assert_eq!(
            parse_rfc3339("2026-11-26T08:00:00+01:00"),
            parse_rfc3339("2026-11-26T07:00:00Z")
        );
        assert_eq!(parse_rfc3339("2026-11-26T07:00:00.5Z").map(|t| t % NS_PER_SEC), Some(500_000_000));
        for bad in ["", "2026-13-01", "2026-11-26T25:00:00Z", "2026-11-26T07:00:00", "x026-11-26", "2026-11-26T07:00:00.Z"] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn civil_round_trips_every_week_for_five_centuries() {
        for days in (-100_000i64..100_000).step_by(7) {
            let c = civil(days * 86_400 * NS_PER_SEC);
            assert_eq!(days_from_civil(c.year, c.month, c.day), days);
        }
    }
}
