//! Dates in the RFC 2822 form that Debian writes in `Release` files, such as
//! `Sat, 11 Jul 2026 10:16:37 UTC`.

/// An invalid date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid date `{text}`: {reason}")]
pub struct DateError {
    pub text: String,
    pub reason: &'static str,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Weekdays in the order of `days_since_epoch % 7`: 1 January 1970 was a Thursday.
const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];

const SECONDS_PER_DAY: i64 = 86_400;

/// Days from 1 January of year 1 to 1 January 1970 in the proleptic Gregorian calendar.
const DAYS_TO_EPOCH: i64 = 719_162;

/// Parses `[Day,] DD Mon YYYY HH:MM[:SS] ZONE` into seconds since the Unix epoch. The zone is
/// `UTC`, `GMT`, `UT`, `Z` or a numeric offset such as `+0200`. A weekday, when given, must
/// match the date. Names of days and months are English and compared without regard to case.
pub fn parse_date(text: &str) -> Result<i64, DateError> {
    let invalid = |reason| DateError {
        text: text.to_owned(),
        reason,
    };

    let mut words: Vec<&str> = text.split_whitespace().collect();
    let weekday = match words.first() {
        Some(word) if word.ends_with(',') => Some(words.remove(0).trim_end_matches(',')),
        _ => None,
    };
    let [day, month, year, time, zone] = words[..] else {
        return Err(invalid("expected `Day, DD Mon YYYY HH:MM:SS UTC`"));
    };

    let year = parse_digits(year, 4, 4).ok_or_else(|| invalid("the year is not 4 digits"))?;
    let month = MONTHS
        .iter()
        .position(|name| name.eq_ignore_ascii_case(month))
        .ok_or_else(|| invalid("the month is not an English month abbreviation"))?;
    let day = parse_digits(day, 1, 2).ok_or_else(|| invalid("the day is not 1 or 2 digits"))?;
    if day == 0 || day > days_in_month(year, month) {
        return Err(invalid("the day does not exist in that month"));
    }
    let days = days_since_epoch(year, month, day);

    if let Some(weekday) = weekday {
        let expected = WEEKDAYS[usize::try_from(days.rem_euclid(7)).unwrap_or(0)];
        if !weekday.eq_ignore_ascii_case(expected) {
            return Err(invalid("the weekday does not match the date"));
        }
    }

    let seconds = parse_time(time).ok_or_else(|| invalid("the time is not `HH:MM:SS`"))?;
    let offset = parse_zone(zone).ok_or_else(|| invalid("the time zone is not supported"))?;
    Ok(days * SECONDS_PER_DAY + seconds - offset)
}

/// Parses a run of `min..=max` ASCII digits.
fn parse_digits(text: &str, min: usize, max: usize) -> Option<i64> {
    if text.len() < min || text.len() > max || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Returns the length of `month` (0 for January).
fn days_in_month(year: i64, month: usize) -> i64 {
    match month {
        1 if is_leap_year(year) => 29,
        1 => 28,
        3 | 5 | 8 | 10 => 30,
        _ => 31,
    }
}

/// Counts the days from 1 January 1970 to the given date, negative for earlier dates.
fn days_since_epoch(year: i64, month: usize, day: i64) -> i64 {
    let past_years = year - 1;
    let days_before_year = 365 * past_years + past_years / 4 - past_years / 100 + past_years / 400;
    let days_before_month: i64 = (0..month).map(|m| days_in_month(year, m)).sum();
    days_before_year - DAYS_TO_EPOCH + days_before_month + day - 1
}

/// Parses `HH:MM` or `HH:MM:SS` into seconds after midnight. A second of 60 is accepted for leap
/// seconds and counts as the first second of the next minute.
fn parse_time(text: &str) -> Option<i64> {
    let mut parts = text.split(':');
    let hours = parse_digits(parts.next()?, 2, 2)?;
    let minutes = parse_digits(parts.next()?, 2, 2)?;
    let seconds = match parts.next() {
        Some(seconds) => parse_digits(seconds, 2, 2)?,
        None => 0,
    };
    if parts.next().is_some() || hours > 23 || minutes > 59 || seconds > 60 {
        return None;
    }
    Some(hours * 3600 + minutes * 60 + seconds)
}

/// Parses a zone into its offset from UTC in seconds.
fn parse_zone(zone: &str) -> Option<i64> {
    if ["UTC", "GMT", "UT", "Z"]
        .iter()
        .any(|name| name.eq_ignore_ascii_case(zone))
    {
        return Some(0);
    }

    let (sign, digits) = match zone.split_at_checked(1)? {
        ("+", digits) => (1, digits),
        ("-", digits) => (-1, digits),
        _ => return None,
    };
    let hhmm = parse_digits(digits, 4, 4)?;
    let (hours, minutes) = (hhmm / 100, hhmm % 100);
    if minutes > 59 {
        return None;
    }
    Some(sign * (hours * 3600 + minutes * 60))
}
#[cfg(test)]
mod tests {
    use super::*;

    fn reason(text: &str) -> &'static str {
        parse_date(text).unwrap_err().reason
    }

    #[test]
    fn debian_dates_parse() {
        // Expected values from GNU `date -u -d TEXT +%s`.
        assert_eq!(
            parse_date("Sat, 11 Jul 2026 10:16:37 UTC"),
            Ok(1_783_764_997)
        );
        assert_eq!(parse_date("Tue, 29 Feb 2000 23:59:59 UTC"), Ok(951_868_799));
        assert_eq!(parse_date("Thu, 01 Jan 1970 00:00:00 UTC"), Ok(0));
        assert_eq!(parse_date("Wed, 01 Jan 1969 00:00:00 GMT"), Ok(-31_536_000));
    }

    #[test]
    fn weekday_is_optional() {
        assert_eq!(parse_date("11 Jul 2026 10:16:37 UTC"), Ok(1_783_764_997));
        assert_eq!(
            parse_date("  11  jul 2026 10:16:37 utc "),
            Ok(1_783_764_997)
        );
    }

    #[test]
    fn numeric_zones_shift_time() {
        assert_eq!(parse_date("Thu, 01 Jan 1970 02:00:00 +0200"), Ok(0));
        assert_eq!(
            parse_date("Sun, 31 Dec 2023 23:59:59 -0130"),
            Ok(1_704_072_599)
        );
        assert_eq!(parse_date("1 Jan 1970 00:00:00 Z"), Ok(0));
    }

    #[test]
    fn seconds_are_optional() {
        assert_eq!(parse_date("1 Jan 1970 00:01 UTC"), Ok(60));
    }

    #[test]
    fn leap_second_is_accepted() {
        assert_eq!(
            parse_date("31 Dec 2016 23:59:60 UTC"),
            parse_date("1 Jan 2017 00:00:00 UTC")
        );
    }

    #[test]
    fn century_leap_years() {
        assert!(parse_date("29 Feb 1900 00:00:00 UTC").is_err());
        assert!(parse_date("29 Feb 2100 00:00:00 UTC").is_err());
        assert!(parse_date("29 Feb 2400 00:00:00 UTC").is_ok());
    }

    #[test]
    fn invalid_dates_are_rejected() {
        let format = "expected `Day, DD Mon YYYY HH:MM:SS UTC`";
        let month = "the month is not an English month abbreviation";
        let no_day = "the day does not exist in that month";
        let time = "the time is not `HH:MM:SS`";
        let zone = "the time zone is not supported";
        let cases = [
            ("", format),
            ("Sat, 11 Jul 2026 10:16:37", format),
            ("Sat, 11 Jul 26 10:16:37 UTC", "the year is not 4 digits"),
            ("Sat, 11 July 2026 10:16:37 UTC", month),
            (
                "Sat, 111 Jul 2026 10:16:37 UTC",
                "the day is not 1 or 2 digits",
            ),
            ("+1 Jul 2026 10:16:37 UTC", "the day is not 1 or 2 digits"),
            ("31 Apr 2026 10:16:37 UTC", no_day),
            ("00 Apr 2026 10:16:37 UTC", no_day),
            (
                "Sun, 11 Jul 2026 10:16:37 UTC",
                "the weekday does not match the date",
            ),
            ("11 Jul 2026 24:00:00 UTC", time),
            ("11 Jul 2026 10:60:00 UTC", time),
            ("11 Jul 2026 10:16:37:01 UTC", time),
            ("11 Jul 2026 1:16:37 UTC", time),
            ("11 Jul 2026 10:16:37 CEST", zone),
            ("11 Jul 2026 10:16:37 +02", zone),
            ("11 Jul 2026 10:16:37 +0260", zone),
            ("11 Jul 2026 10:16:37 \u{e9}", zone),
        ];

        for (text, expected) in cases {
            assert_eq!(reason(text), expected, "{text:?}");
        }
    }

    #[test]
    fn error_message_quotes_text() {
        assert_eq!(
            parse_date("soon").unwrap_err().to_string(),
            "Invalid date `soon`: expected `Day, DD Mon YYYY HH:MM:SS UTC`"
        );
    }
}
