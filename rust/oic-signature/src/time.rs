//! Conversions between OpenPGP timestamps and `SystemTime`, and UTC formatting for messages.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pgp::types::Timestamp;

/// Converts an OpenPGP timestamp (seconds since the Unix epoch) to a `SystemTime`.
pub(crate) fn system_time(timestamp: Timestamp) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::from(timestamp.as_secs()))
}

/// Adds an OpenPGP expiration period, which counts from a creation time, to that time.
pub(crate) fn add_seconds(time: SystemTime, seconds: u32) -> SystemTime {
    time + Duration::from_secs(u64::from(seconds))
}

/// Formats `time` as `YYYY-MM-DD HH:MM:SS UTC`. Times before 1970 print as the epoch.
pub(crate) fn format_time(time: SystemTime) -> String {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let (year, month, day) = civil_date(seconds / 86_400);
    let second_of_day = seconds % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day).
///
/// This is Howard Hinnant's `civil_from_days` algorithm for non-negative day counts: it
/// shifts the year to start on March 1 so that the leap day is the last day of a year.
fn civil_date(days: u64) -> (u64, u64, u64) {
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_time_known_dates() {
        let cases = [
            (0, "1970-01-01 00:00:00 UTC"),
            (951_782_400, "2000-02-29 00:00:00 UTC"),
            (1_783_765_031, "2026-07-11 10:17:11 UTC"),
            (4_102_444_799, "2099-12-31 23:59:59 UTC"),
        ];
        for (seconds, expected) in cases {
            let time = UNIX_EPOCH + Duration::from_secs(seconds);
            assert_eq!(format_time(time), expected, "{seconds} seconds");
        }
    }
}
