//! Times in the audit trail as ISO 8601 UTC (`2026-11-30T11:20:05Z`), formatted from the Unix
//! time with the civil-from-days algorithm (Howard Hinnant, "chrono-Compatible Low-Level Date
//! Algorithms"), so no date crate is needed for one format.

/// `secs` since the Unix epoch as ISO 8601 UTC, to the second: `2026-11-30T11:20:05Z`.
pub fn iso8601_utc(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Now, as ISO 8601 UTC (the epoch when the clock is before 1970).
pub fn now_iso8601_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    iso8601_utc(secs)
}

/// Year, month (1–12) and day (1–31) of the day `z` days after 1970-01-01 (proleptic
/// Gregorian calendar; `z` may be negative).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March first
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates_format_as_iso8601_utc() {
        // Expected values from Python: calendar.timegm(datetime(...).timetuple()).
        assert_eq!(iso8601_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601_utc(1_796_037_605), "2026-11-30T11:20:05Z");
        // A leap day in a year divisible by 400, at its last second.
        assert_eq!(iso8601_utc(951_868_799), "2000-02-29T23:59:59Z");
        assert_eq!(iso8601_utc(946_598_400), "1999-12-31T00:00:00Z");
        // 2100 is not a leap year: 28 February is followed by 1 March.
        assert_eq!(iso8601_utc(4_107_542_400), "2100-03-01T00:00:00Z");
        assert_eq!(iso8601_utc(4_107_542_399), "2100-02-28T23:59:59Z");
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
