//! The two date formats a SigV4 request can carry (ISO 8601 basic `YYYYMMDDTHHMMSSZ` in
//! X-Amz-Date, IMF-fixdate in Date) and the civil-date <-> Unix-seconds arithmetic behind them.
//! Hand-written because it is small and the verifier needs exact, strict parsing.

const SECS_PER_DAY: i64 = 86_400;
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Parses exactly `n` ASCII digits.
fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn to_unix(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<i64> {
    // Leap seconds (60) are rejected: no SDK emits them and accepting them would give two
    // spellings of one instant.
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59
    {
        return None;
    }
    Some(days_from_civil(y, mo, d) * SECS_PER_DAY + i64::from(h * 3600 + mi * 60 + s))
}

/// Parses the ISO 8601 basic format SigV4 uses, `YYYYMMDDTHHMMSSZ`, into Unix seconds.
pub fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' || !s.is_ascii() {
        return None;
    }
    to_unix(
        i64::from(digits(&s[0..4])?),
        digits(&s[4..6])?,
        digits(&s[6..8])?,
        digits(&s[9..11])?,
        digits(&s[11..13])?,
        digits(&s[13..15])?,
    )
}

/// Formats Unix seconds as `YYYYMMDDTHHMMSSZ`.
pub fn format_amz_date(unix_secs: i64) -> String {
    let days = unix_secs.div_euclid(SECS_PER_DAY);
    let secs = unix_secs.rem_euclid(SECS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

/// Parses the HTTP `Date` header's IMF-fixdate form, `Sun, 30 Aug 2015 12:36:00 GMT`, the
/// fallback SigV4 allows when X-Amz-Date is absent. Some clients put the ISO basic form in
/// `Date` too, so that is accepted as well. The weekday is not cross-checked (as HTTP servers
/// commonly don't).
pub fn parse_http_date(s: &str) -> Option<i64> {
    if let Some(t) = parse_amz_date(s) {
        return Some(t);
    }
    let rest = s.split_once(", ")?.1;
    let mut it = rest.split(' ');
    let day = it.next().filter(|d| d.len() == 2).and_then(digits)?;
    let month = it.next()?;
    let month = MONTHS.iter().position(|m| *m == month)? as u32 + 1;
    let year = it.next().filter(|y| y.len() == 4).and_then(digits)?;
    let hms = it.next()?;
    if it.next()? != "GMT" || it.next().is_some() {
        return None;
    }
    let mut t = hms.split(':');
    let h = t.next().filter(|x| x.len() == 2).and_then(digits)?;
    let mi = t.next().filter(|x| x.len() == 2).and_then(digits)?;
    let sec = t.next().filter(|x| x.len() == 2).and_then(digits)?;
    if t.next().is_some() {
        return None;
    }
    to_unix(i64::from(year), month, day, h, mi, sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2015-08-30T12:36:00Z, the test suite's timestamp.
    const SUITE: i64 = 1_440_938_160;

    #[test]
    fn parses_and_formats_the_suite_date() {
        assert_eq!(parse_amz_date("20150830T123600Z"), Some(SUITE));
        assert_eq!(format_amz_date(SUITE), "20150830T123600Z");
        assert_eq!(
            parse_http_date("Sun, 30 Aug 2015 12:36:00 GMT"),
            Some(SUITE)
        );
        assert_eq!(parse_http_date("20150830T123600Z"), Some(SUITE));
    }

    #[test]
    fn round_trips_across_eras_and_leap_days() {
        for t in [
            0,
            951_782_400,   // 2000-02-29
            4_107_542_400, // 2100-03-01
            -86_400,
            253_402_300_799, // 9999-12-31T23:59:59Z
        ] {
            assert_eq!(parse_amz_date(&format_amz_date(t)), Some(t), "{t}");
        }
        assert_eq!(format_amz_date(951_782_400), "20000229T000000Z");
    }

    #[test]
    fn rejects_malformed_dates() {
        for s in [
            "",
            "20150830T123600",
            "20150830 123600Z",
            "2015083OT123600Z",
            "20150230T000000Z",
            "21000229T000000Z",
            "20151301T000000Z",
            "20150830T240000Z",
            "20150830T126000Z",
            "20150830T123660Z",
            "+0150830T123600Z",
            "2015-08-30T12:36:00Z",
        ] {
            assert_eq!(parse_amz_date(s), None, "{s}");
        }
        for s in [
            "Sun, 30 Aug 2015 12:36:00 UTC",
            "Sun, 30 Foo 2015 12:36:00 GMT",
            "Sun, 31 Sep 2015 12:36:00 GMT",
            "30 Aug 2015 12:36:00 GMT",
            "Sun, 30 Aug 2015 12:36 GMT",
        ] {
            assert_eq!(parse_http_date(s), None, "{s}");
        }
    }
}
