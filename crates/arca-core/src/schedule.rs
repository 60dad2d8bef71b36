//! Rotation schedules: RotationRules from the wire are validated here into a
//! `RotationSchedule`, which then answers one question for the scheduler — when is the
//! next rotation window — and gives back the rules DescribeSecret echoes. Pure date math,
//! all UTC, no clock: callers pass the times in.
//!
//! Facts this module follows (AWS Secrets Manager documentation):
//! - botocore model, RotationRulesType: `AutomaticallyAfterDays` is a long in 1–1000;
//!   `Duration` is a string of length 2–3 matching `[0-9]+h`; `ScheduleExpression` is a
//!   string of length 1–256 matching `[0-9A-Za-z\(\)#\?\*\-\/, ]+`.
//! - RotationRulesType: "In RotateSecret, you can set the rotation schedule in
//!   RotationRules with AutomaticallyAfterDays or ScheduleExpression, but not both." AWS
//!   answers InvalidParameterException "You cannot specify both rotation frequency and
//!   schedule expression together." (quoted in hashicorp/terraform-provider-aws#33329).
//! - RotationRulesType: with AutomaticallyAfterDays "Secrets Manager calculates the next
//!   rotation date based on the previous rotation. Manually updating the secret value by
//!   calling PutSecretValue or UpdateSecret is considered a valid rotation." and "In
//!   DescribeSecret and ListSecrets, this value is calculated from the rotation schedule".
//! - User guide, "Rotation schedules": rotation windows always start on the hour; a
//!   `rate()` in days starts its window at midnight; by default the window closes after one
//!   hour for a schedule in hours and at the end of the day for a schedule in days; the
//!   window can be as small as one hour and must not extend into the next rotation window
//!   ("for a rotation schedule in hours, confirm that the rotation window is less than or
//!   equal to the number of hours between rotations. For a rotation schedule in days,
//!   confirm that the start hour plus the window duration is less than or equal to 24
//!   hours"); RotationRulesType adds "or the next UTC day".
//! - User guide, rate expressions: `rate(Value Unit)`, Value a positive integer, Unit
//!   `hour`, `hours`, `day` or `days`; "You can rotate a secret as often as every four
//!   hours. The maximum rotation period is 999 days."
//! - User guide, "Cron expression requirements in Secrets Manager": six fields
//!   `cron(Minutes Hours Day-of-month Month Day-of-week Year)`; Minutes must be 0 ("rotation
//!   windows start on the hour"); Hours 0–23 with only `/` for increments ("`2/10` means
//!   every 10 hours beginning at 2:00 AM. You can rotate a secret as often as every four
//!   hours"); Day-of-month 1–31 with `, - * ? / L`; Month 1–12 or JAN–DEC with `, - * /`;
//!   Day-of-week 1–7 or SUN–SAT with `# , - * ? / L` (and `DAYL`, the last named day of the
//!   month); Year must be `*`. Day-of-month and Day-of-week can't both be specified: one of
//!   them must be `?`. "A cron expression that includes increments of hours resets each
//!   day", e.g. `cron(0 4/12 * * ? *)` is 4:00 and 16:00 every day.
//!
//! Choices where the documentation is silent, so that they can be revisited in one place:
//! - `W` (nearest weekday), which EventBridge cron has, is absent from Secrets Manager's
//!   table and from its wildcard list (otherwise copied from EventBridge's), so it is
//!   refused.
//! - The four-hour limit is checked where the table states it, on the Hours increment
//!   (`S/N` needs N ≥ 4). The daily reset can make the last window of a day and the first
//!   of the next closer than N hours (`0/7`: 21:00 then 00:00); the documentation's own
//!   `2/10` example shows that reset, so it is not refused.
//! - `*/N` in Hours is read as `0/N`, like the documented `/8`.
//! - Duration is also honoured with AutomaticallyAfterDays, as for `rate(N days)`.
//! - Error messages other than the one quoted above are Arca's wording in AWS's style:
//!   model violations use the "1 validation error detected" form of AWS's front end.

use crate::validate::Check;
use arca_types::time::{Millis, MILLIS_PER_DAY};
use arca_types::wire::RotationRules;
use arca_types::ApiError;

const MILLIS_PER_HOUR: Millis = 3_600_000;
/// How far ahead a cron schedule is searched. The rarest schedules Secrets Manager's
/// syntax allows (29 February, with the 8-year gap around 2100) recur within this.
const CRON_SEARCH_DAYS: i64 = 366 * 12;

/// Validated RotationRules: when a secret rotates and how long each window stays open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationSchedule {
    kind: Kind,
    /// Window length in hours from `Duration`; `None` means the documented default.
    duration_hours: Option<u32>,
    /// `Duration` exactly as the client sent it, to echo back.
    duration_raw: Option<String>,
    /// `ScheduleExpression` exactly as the client sent it, to echo back.
    expression_raw: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// `AutomaticallyAfterDays`.
    AfterDays(u32),
    /// `rate(N days)`.
    RateDays(u32),
    /// `rate(N hours)`.
    RateHours(u32),
    Cron(Cron),
}

/// A parsed Secrets Manager cron expression. Minutes are always 0 and Year always `*`,
/// so neither is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cron {
    /// Bit h set: a window opens at h:00.
    hours: u32,
    /// `Some(n)` when Hours used an increment: the expression is "a schedule in hours".
    hour_step: Option<u32>,
    /// Bit m (1–12) set: month m matches.
    months: u32,
    dom: DayOfMonth,
    dow: DayOfWeek,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DayOfMonth {
    /// `?`: the day-of-week field decides.
    Unspecified,
    /// Bit d (1–31) set: day d matches.
    Days(u64),
    /// `L`: the last day of the month.
    Last,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DayOfWeek {
    /// `?`: the day-of-month field decides.
    Unspecified,
    /// Bit d (1 = SUN … 7 = SAT) set: weekday d matches.
    Days(u64),
    /// `DAYL`: the last such weekday of the month.
    LastOf(u32),
    /// `DAY#n`: the n-th such weekday of the month.
    Nth(u32, u32),
}

impl RotationSchedule {
    /// The model's constraints on RotationRules, gathered with the rest of RotateSecret's.
    pub(crate) fn check_rules(check: &mut Check, rules: &RotationRules) {
        check.range(
            "rotationRules.automaticallyAfterDays",
            rules.automatically_after_days,
            1,
            1000,
        );
        let d = rules.duration.as_deref();
        check.pattern(
            "rotationRules.duration",
            d,
            |d| {
                d.strip_suffix('h')
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            },
            "[0-9]+h",
            false,
        );
        check.length("rotationRules.duration", d, 2, 3);
        let e = rules.schedule_expression.as_deref();
        check.pattern(
            "rotationRules.scheduleExpression",
            e,
            |e| {
                e.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "()#?*-/, ".contains(c))
            },
            r"[0-9A-Za-z\(\)#\?\*\-\/, ]+",
            false,
        );
        check.length("rotationRules.scheduleExpression", e, 1, 256);
    }

    /// Validates RotationRules as RotateSecret receives them: the model's constraints
    /// (ValidationException), then "not both", then the expression and the window
    /// (InvalidParameterException).
    pub fn from_rules(rules: &RotationRules) -> Result<RotationSchedule, ApiError> {
        let mut check = Check::new();
        Self::check_rules(&mut check, rules);
        check.finish()?;
        let duration_hours = match &rules.duration {
            None => None,
            Some(d) => Some(parse_duration(d)?),
        };

        let kind = match (rules.automatically_after_days, &rules.schedule_expression) {
            (Some(_), Some(_)) => return Err(ApiError::rotation_rules_both()),
            (None, None) => return Err(ApiError::rotation_rules_empty()),
            // In 1..=1000, checked above.
            (Some(days), None) => Kind::AfterDays(days as u32),
            (None, Some(e)) => parse_expression(e)?,
        };

        let schedule = RotationSchedule {
            kind,
            duration_hours,
            duration_raw: rules.duration.clone(),
            expression_raw: rules.schedule_expression.clone(),
        };
        schedule.check_window()?;
        Ok(schedule)
    }

    /// The next rotation window, `(start, end)` in UTC milliseconds, end exclusive.
    ///
    /// - AutomaticallyAfterDays and `rate(N days)`: the window opens at midnight UTC of
    ///   the day N days after the day of `last_rotated` and lasts `Duration` (default:
    ///   the whole day). It does not depend on `after`: AWS computes it "based on the
    ///   previous rotation", so it may already be over when `end <= after` — an overdue
    ///   rotation, which the scheduler runs once and then asks again from the new
    ///   `last_rotated`.
    /// - `rate(N hours)`: the window opens on the hour, N hours after the hour of
    ///   `last_rotated`, and lasts `Duration` (default one hour); overdue likewise.
    /// - `cron(...)`: the first window that opens strictly after both `last_rotated` and
    ///   `after` (pass `after` = now, or the moment the rules were set). It lasts
    ///   `Duration`, by default one hour for an expression with an hour increment and
    ///   until midnight UTC otherwise.
    ///
    /// `None` when no such window exists within reach: a cron expression that never
    /// matches (`cron(0 0 31 2 ? *)`) or arithmetic beyond the representable range.
    pub fn next_window(&self, last_rotated: Millis, after: Millis) -> Option<(Millis, Millis)> {
        match &self.kind {
            Kind::AfterDays(n) | Kind::RateDays(n) => {
                let start = day_floor(last_rotated)?.checked_add(i64::from(*n) * MILLIS_PER_DAY)?;
                let len = self
                    .duration_hours
                    .map_or(MILLIS_PER_DAY, |h| i64::from(h) * MILLIS_PER_HOUR);
                Some((start, start.checked_add(len)?))
            }
            Kind::RateHours(n) => {
                let start =
                    hour_floor(last_rotated)?.checked_add(i64::from(*n) * MILLIS_PER_HOUR)?;
                let len = i64::from(self.duration_hours.unwrap_or(1)) * MILLIS_PER_HOUR;
                Some((start, start.checked_add(len)?))
            }
            Kind::Cron(cron) => {
                let start = cron.next_start(last_rotated.max(after))?;
                let len = match (self.duration_hours, cron.hour_step) {
                    (Some(h), _) => i64::from(h) * MILLIS_PER_HOUR,
                    (None, Some(_)) => MILLIS_PER_HOUR,
                    // A schedule in days: the window closes at the end of the UTC day.
                    (None, None) => MILLIS_PER_DAY - start.rem_euclid(MILLIS_PER_DAY),
                };
                Some((start, start.checked_add(len)?))
            }
        }
    }

    /// The rules DescribeSecret and ListSecrets show. `ScheduleExpression` and `Duration`
    /// are echoed as they were set; AutomaticallyAfterDays is "calculated from the rotation
    /// schedule", so a `rate(N days)` schedule shows it as N next to its expression (the
    /// behaviour behind hashicorp/terraform-provider-aws#33329 and #34295). Schedules with
    /// no fixed number of days (hours, cron) show none.
    ///
    /// Not for persisting: a `rate(N days)` echo carries both fields, which `from_rules`
    /// refuses exactly as AWS refuses a client that sends them back. Persist
    /// `to_stored_rules` (or the client's own rules) instead.
    pub fn to_rules(&self) -> RotationRules {
        let automatically_after_days = match &self.kind {
            Kind::AfterDays(n) | Kind::RateDays(n) => Some(i64::from(*n)),
            Kind::RateHours(_) | Kind::Cron(_) => None,
        };
        RotationRules {
            automatically_after_days,
            duration: self.duration_raw.clone(),
            schedule_expression: self.expression_raw.clone(),
        }
    }

    /// The rules as the client set them; `from_rules` accepts them again unchanged.
    pub fn to_stored_rules(&self) -> RotationRules {
        let automatically_after_days = match &self.kind {
            Kind::AfterDays(n) => Some(i64::from(*n)),
            _ => None,
        };
        RotationRules {
            automatically_after_days,
            duration: self.duration_raw.clone(),
            schedule_expression: self.expression_raw.clone(),
        }
    }

    /// "The rotation window must not extend into the next rotation window or the next
    /// UTC day."
    fn check_window(&self) -> Result<(), ApiError> {
        let Some(d) = self.duration_hours else {
            // The defaults (one hour; the rest of the day) always fit.
            return Ok(());
        };
        let fits = match &self.kind {
            // Windows open at midnight: start hour 0 plus the duration must be <= 24.
            Kind::AfterDays(_) | Kind::RateDays(_) => d <= 24,
            // "confirm that the rotation window is less than or equal to the number of
            // hours between rotations"; and never longer than a day.
            Kind::RateHours(n) => d <= *n && d <= 24,
            Kind::Cron(cron) => {
                let starts: Vec<u32> = (0..24).filter(|h| cron.hours & (1 << h) != 0).collect();
                let last = starts.last().copied().unwrap_or(0);
                let min_gap = starts.windows(2).map(|w| w[1] - w[0]).min();
                last + d <= 24 && min_gap.is_none_or(|g| d <= g)
            }
        };
        if fits {
            Ok(())
        } else {
            Err(ApiError::rotation_window_overlaps(
                self.duration_raw.as_deref().unwrap_or_default(),
            ))
        }
    }
}

/// `Duration` in hours, its model pattern (`[0-9]+h`) already checked; "You can set the
/// rotation window as small as one hour."
fn parse_duration(d: &str) -> Result<u32, ApiError> {
    let hours = d
        .strip_suffix('h')
        .and_then(|digits| digits.parse::<u32>().ok())
        .ok_or_else(ApiError::internal)?;
    if hours < 1 {
        return Err(ApiError::rotation_window_too_short(d));
    }
    Ok(hours)
}

fn invalid_expression(expr: &str, why: &str) -> ApiError {
    ApiError::invalid_schedule(expr, why)
}

fn parse_expression(expr: &str) -> Result<Kind, ApiError> {
    if let Some(body) = expr.strip_prefix("rate(").and_then(|s| s.strip_suffix(')')) {
        parse_rate(expr, body)
    } else if let Some(body) = expr.strip_prefix("cron(").and_then(|s| s.strip_suffix(')')) {
        parse_cron(expr, body).map(Kind::Cron)
    } else {
        Err(invalid_expression(
            expr,
            "use rate(Value Unit) or cron(Minutes Hours Day-of-month Month Day-of-week Year).",
        ))
    }
}

fn parse_rate(expr: &str, body: &str) -> Result<Kind, ApiError> {
    let parts: Vec<&str> = body.split_whitespace().collect();
    let [value, unit] = parts[..] else {
        return Err(invalid_expression(
            expr,
            "a rate expression is rate(Value Unit), for example rate(10 days).",
        ));
    };
    let value: u32 = value
        .parse()
        .ok()
        .filter(|v| *v >= 1 && value.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| invalid_expression(expr, "the rate value must be a positive integer."))?;
    match unit {
        "hour" | "hours" => {
            if value < 4 {
                return Err(invalid_expression(
                    expr,
                    "you can rotate a secret as often as every four hours.",
                ));
            }
            if value > 999 * 24 {
                return Err(invalid_expression(
                    expr,
                    "the maximum rotation period is 999 days.",
                ));
            }
            Ok(Kind::RateHours(value))
        }
        "day" | "days" => {
            if value > 999 {
                return Err(invalid_expression(
                    expr,
                    "the maximum rotation period is 999 days.",
                ));
            }
            Ok(Kind::RateDays(value))
        }
        _ => Err(invalid_expression(
            expr,
            "the rate unit must be hour, hours, day or days.",
        )),
    }
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

fn parse_cron(expr: &str, body: &str) -> Result<Cron, ApiError> {
    let fields: Vec<&str> = body.split_whitespace().collect();
    let [minutes, hours, dom, month, dow, year] = fields[..] else {
        return Err(invalid_expression(
            expr,
            "a cron expression has six fields: Minutes Hours Day-of-month Month Day-of-week Year.",
        ));
    };
    let bad = |why: &str| invalid_expression(expr, why);

    if minutes.parse::<u32>().ok() != Some(0) || !minutes.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(
            "the Minutes field must be 0 because rotation windows start on the hour.",
        ));
    }
    if year != "*" {
        return Err(bad(
            "the Year field must be * because Secrets Manager does not support rotation schedules that are more than a year apart.",
        ));
    }

    let (hours, hour_step) = parse_hours(hours).map_err(|why| bad(&why))?;

    let months =
        parse_list(month, 1, 12, Some(&MONTHS)).map_err(|why| bad(&format!("Month: {why}")))?;
    let months = u32::try_from(months).unwrap_or(0);

    let dom = if dom == "?" {
        DayOfMonth::Unspecified
    } else if dom.eq_ignore_ascii_case("L") {
        DayOfMonth::Last
    } else if dom.to_ascii_uppercase().contains('W') {
        return Err(bad(
            "Day-of-month: the W wildcard isn't supported; use , - * ? / or L.",
        ));
    } else {
        DayOfMonth::Days(
            parse_list(dom, 1, 31, None).map_err(|why| bad(&format!("Day-of-month: {why}")))?,
        )
    };

    let dow = parse_dow(dow).map_err(|why| bad(&format!("Day-of-week: {why}")))?;

    // "You can't specify the Day-of-month and Day-of-week fields in the same cron
    // expression. If you specify a value in one of the fields, you must use a ? in the
    // other." Exactly one of them is `?`.
    if matches!(dom, DayOfMonth::Unspecified) == matches!(dow, DayOfWeek::Unspecified) {
        return Err(bad(
            "you can't specify the Day-of-month and Day-of-week fields in the same cron expression; use ? in one of them.",
        ));
    }

    Ok(Cron {
        hours,
        hour_step,
        months,
        dom,
        dow,
    })
}

/// Hours: a single hour 0–23, or an increment `S/N`, `/N` or `*/N` (start 0) with N ≥ 4.
fn parse_hours(field: &str) -> Result<(u32, Option<u32>), String> {
    if let Some((start, step)) = field.split_once('/') {
        let start = match start {
            "" | "*" => 0,
            s => parse_number(s, 0, 23, None)?,
        };
        let step = parse_number(step, 1, 23, None)?;
        if step < 4 {
            return Err(
                "Hours: you can rotate a secret as often as every four hours, so the increment must be at least 4."
                    .into(),
            );
        }
        let mut bits = 0u32;
        let mut h = start;
        while h <= 23 {
            bits |= 1 << h;
            h += step;
        }
        Ok((bits, Some(step)))
    } else {
        if field.contains(['*', ',', '-']) {
            return Err(
                "Hours: use a single hour 0-23, or / for increments of at least four hours.".into(),
            );
        }
        let h = parse_number(field, 0, 23, None)?;
        Ok((1 << h, None))
    }
}

fn parse_dow(field: &str) -> Result<DayOfWeek, String> {
    if field == "?" {
        return Ok(DayOfWeek::Unspecified);
    }
    let upper = field.to_ascii_uppercase();
    if upper == "L" {
        // "Use L to specify the last day of the week": Saturday.
        return Ok(DayOfWeek::Days(1 << 7));
    }
    if let Some((day, nth)) = upper.split_once('#') {
        let day = parse_number(day, 1, 7, Some(&WEEKDAYS))?;
        let nth = parse_number(nth, 1, 5, None)?;
        return Ok(DayOfWeek::Nth(day, nth));
    }
    if let Some(day) = upper.strip_suffix('L') {
        return Ok(DayOfWeek::LastOf(parse_number(day, 1, 7, Some(&WEEKDAYS))?));
    }
    Ok(DayOfWeek::Days(parse_list(field, 1, 7, Some(&WEEKDAYS))?))
}

/// A comma list of `*`, `V`, `A-B` (wrapping past the maximum when A > B), each
/// optionally with `/step`. Returns the matching values as bits.
fn parse_list(field: &str, min: u32, max: u32, names: Option<&[&str]>) -> Result<u64, String> {
    let mut bits = 0u64;
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, parse_number(s, 1, max, None)?),
            None => (item, 1),
        };
        let (from, to) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (
                parse_number(a, min, max, names)?,
                parse_number(b, min, max, names)?,
            )
        } else {
            let v = parse_number(range, min, max, names)?;
            // `A/N` runs from A to the maximum; a bare `A` is just A.
            (v, if item.contains('/') { max } else { v })
        };
        let span = if from <= to {
            to - from
        } else {
            max - from + 1 + to - min
        };
        let mut i = 0;
        while i <= span {
            let v = from + i;
            let v = if v > max { v - max - 1 + min } else { v };
            bits |= 1 << v;
            i += step;
        }
    }
    Ok(bits)
}

fn parse_number(s: &str, min: u32, max: u32, names: Option<&[&str]>) -> Result<u32, String> {
    if let Some(names) = names {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(min + i as u32);
        }
    }
    let v = if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse::<u32>().ok()
    } else {
        None
    };
    match v {
        Some(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(format!("'{s}' is not a value in {min}-{max}.")),
    }
}

impl Cron {
    /// The first window start strictly after `t`.
    fn next_start(&self, t: Millis) -> Option<Millis> {
        let first_day = t.div_euclid(MILLIS_PER_DAY);
        for day in first_day..first_day.checked_add(CRON_SEARCH_DAYS)? {
            let (y, m, d) = civil_from_days(day);
            if self.months & (1 << m) == 0 || !self.day_matches(day, y, m, d) {
                continue;
            }
            let midnight = day.checked_mul(MILLIS_PER_DAY)?;
            for h in 0..24 {
                if self.hours & (1 << h) != 0 {
                    let start = midnight.checked_add(i64::from(h) * MILLIS_PER_HOUR)?;
                    if start > t {
                        return Some(start);
                    }
                }
            }
        }
        None
    }

    fn day_matches(&self, day: i64, y: i64, m: u32, d: u32) -> bool {
        let dom_ok = match &self.dom {
            DayOfMonth::Unspecified => true,
            DayOfMonth::Days(bits) => bits & (1 << d) != 0,
            DayOfMonth::Last => d == days_in_month(y, m),
        };
        // 1970-01-01 was a Thursday; AWS numbers SUN = 1 … SAT = 7.
        let weekday = (day + 4).rem_euclid(7) as u32 + 1;
        let dow_ok = match &self.dow {
            DayOfWeek::Unspecified => true,
            DayOfWeek::Days(bits) => bits & (1 << weekday) != 0,
            DayOfWeek::LastOf(w) => weekday == *w && d + 7 > days_in_month(y, m),
            DayOfWeek::Nth(w, n) => weekday == *w && (d - 1) / 7 + 1 == *n,
        };
        dom_ok && dow_ok
    }
}

fn day_floor(t: Millis) -> Option<Millis> {
    t.div_euclid(MILLIS_PER_DAY).checked_mul(MILLIS_PER_DAY)
}

fn hour_floor(t: Millis) -> Option<Millis> {
    t.div_euclid(MILLIS_PER_HOUR).checked_mul(MILLIS_PER_HOUR)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant, "chrono-Compatible
/// Low-Level Date Algorithms", days_from_civil).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of `days_from_civil` (H. Hinnant, civil_from_days): (year, month, day).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use arca_types::ErrorCode;

    fn at(y: i64, m: u32, d: u32, h: i64) -> Millis {
        days_from_civil(y, m, d) * MILLIS_PER_DAY + h * MILLIS_PER_HOUR
    }

    fn expr(e: &str) -> RotationRules {
        RotationRules {
            schedule_expression: Some(e.into()),
            ..Default::default()
        }
    }

    fn expr_dur(e: &str, d: &str) -> RotationRules {
        RotationRules {
            schedule_expression: Some(e.into()),
            duration: Some(d.into()),
            ..Default::default()
        }
    }

    fn days(n: i64) -> RotationRules {
        RotationRules {
            automatically_after_days: Some(n),
            ..Default::default()
        }
    }

    fn ok(rules: &RotationRules) -> RotationSchedule {
        match RotationSchedule::from_rules(rules) {
            Ok(s) => s,
            Err(e) => panic!("{rules:?} refused: {e}"),
        }
    }

    fn err(rules: &RotationRules) -> String {
        match RotationSchedule::from_rules(rules) {
            Ok(s) => panic!("{rules:?} accepted: {s:?}"),
            Err(e) => {
                // The model's constraints are the front end's ValidationException; the
                // service's own rules are InvalidParameterException.
                let want = if e.message.contains("validation error") {
                    ErrorCode::Validation
                } else {
                    ErrorCode::InvalidParameter
                };
                assert_eq!(e.code, want, "{e}");
                e.message
            }
        }
    }

    /// The next window strictly after `after`, with `last_rotated` long before.
    fn next_cron(e: &str, after: Millis) -> (Millis, Millis) {
        ok(&expr(e))
            .next_window(0, after)
            .unwrap_or_else(|| panic!("{e}: no window"))
    }

    #[test]
    fn civil_day_algorithms_round_trip_and_know_leap_years() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(
            days_from_civil(2000, 3, 1) - days_from_civil(2000, 2, 28),
            2
        );
        assert_eq!(
            days_from_civil(1900, 3, 1) - days_from_civil(1900, 2, 28),
            1
        );
        assert_eq!(
            days_from_civil(2024, 3, 1) - days_from_civil(2024, 2, 28),
            2
        );
        for z in (-800_000..800_000).step_by(97) {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        // 2024-01-01 was a Monday (AWS weekday 2).
        assert_eq!((days_from_civil(2024, 1, 1) + 4).rem_euclid(7) + 1, 2);
    }

    #[test]
    fn every_example_in_the_secrets_manager_user_guide_is_accepted() {
        for e in [
            "rate(4 hours)",
            "rate(1 day)",
            "rate(10 days)",
            "rate(8 days)",
            "cron(0 4/12 * * ? *)",
            "cron(0 /8 * * ? *)",
            "cron(0 8/8 * * ? *)",
            "cron(0 2/10 * * ? *)",
            "cron(0 10 * * ? *)",
            "cron(0 18 ? * SAT *)",
            "cron(0 8 1 * ? *)",
            "cron(0 1 ? 1/3 SUN#1 *)",
            "cron(0 17 L * ? *)",
            "cron(0 8 ? * MON-FRI *)",
            "cron(0 16 1,15 * ? *)",
            "cron(0 0 ? * SUN#1 *)",
            "cron(0 0 ? 1/11 2#1 *)",
            "cron(0 10 ? JAN,APR,JUL,OCT MON *)",
            "cron(0 10 1-15 * ? *)",
            "cron(0 10 1/2 * ? *)",
            "cron(0 10 ? * 1/2 *)",
            "cron(0 10 ? * L *)",
            "cron(0 10 ? * SUNL *)",
            "cron(0 10 ? * TUE#3 *)",
        ] {
            ok(&expr(e));
        }
    }

    #[test]
    fn cron_restrictions_of_secrets_manager_are_enforced() {
        for (e, why) in [
            ("cron(15 10 * * ? *)", "Minutes field must be 0"),
            ("cron(0/30 10 * * ? *)", "Minutes field must be 0"),
            ("cron(0 10 * * ? 2030)", "Year field must be *"),
            ("cron(0 * * * ? *)", "single hour"),
            ("cron(0 1,13 * * ? *)", "single hour"),
            ("cron(0 1-5 * * ? *)", "single hour"),
            ("cron(0 0/3 * * ? *)", "every four hours"),
            ("cron(0 /1 * * ? *)", "every four hours"),
            ("cron(0 24 * * ? *)", "not a value in 0-23"),
            ("cron(0 10 15W * ? *)", "W wildcard"),
            ("cron(0 10 LW * ? *)", "W wildcard"),
            // The old user guide's "every three months on Sunday" example named both days.
            ("cron(0 1 * 1/3 SUN *)", "use ? in one of them"),
            ("cron(0 10 * * * *)", "use ? in one of them"),
            ("cron(0 10 ? * ? *)", "use ? in one of them"),
            ("cron(0 10 L * MON *)", "use ? in one of them"),
            ("cron(0 10 ? * MON#6 *)", "not a value in 1-5"),
            ("cron(0 10 32 * ? *)", "not a value in 1-31"),
            ("cron(0 10 ? 13 MON *)", "not a value in 1-12"),
            ("cron(0 10 ? * FOO *)", "not a value in 1-7"),
            ("cron(0 10 * * ?)", "six fields"),
            ("cron(0 10 * * ? * *)", "six fields"),
            ("cron 0 10 * * ? *", "use rate(Value Unit) or cron"),
        ] {
            let m = err(&expr(e));
            assert!(m.contains(why), "{e}: {m}");
        }
    }

    #[test]
    fn rate_expressions_follow_the_user_guide() {
        assert_eq!(ok(&expr("rate(4 hours)")).kind, Kind::RateHours(4));
        assert_eq!(ok(&expr("rate(1 day)")).kind, Kind::RateDays(1));
        assert_eq!(ok(&expr("rate(999 days)")).kind, Kind::RateDays(999));
        for (e, why) in [
            ("rate(3 hours)", "every four hours"),
            ("rate(1 hour)", "every four hours"),
            ("rate(0 days)", "positive integer"),
            ("rate(-1 days)", "positive integer"),
            ("rate(1000 days)", "999 days"),
            ("rate(10 minutes)", "unit must be"),
            ("rate(10)", "rate(Value Unit)"),
            ("rate(ten days)", "positive integer"),
        ] {
            let m = err(&expr(e));
            assert!(m.contains(why), "{e}: {m}");
        }
    }

    #[test]
    fn model_constraints_come_first_in_aws_validation_wording() {
        assert_eq!(
            err(&days(0)),
            "1 validation error detected: Value '0' at 'rotationRules.automaticallyAfterDays' failed to satisfy constraint: Member must have value greater than or equal to 1"
        );
        assert!(err(&days(1001)).contains("less than or equal to 1000"));
        ok(&days(1));
        ok(&days(1000));
        let d = |s: &str| RotationRules {
            automatically_after_days: Some(7),
            duration: Some(s.into()),
            ..Default::default()
        };
        assert!(err(&d("h")).contains("length greater than or equal to 2"));
        assert!(err(&d("100h")).contains("length less than or equal to 3"));
        assert!(err(&d("3H")).contains("pattern: [0-9]+h"));
        assert!(err(&d("3 h")).contains("pattern: [0-9]+h"));
        assert!(err(&d("0h")).contains("at least 1h"));
        assert!(err(&expr("")).contains("length greater than or equal to 1"));
        assert!(err(&expr(&format!("rate({} days)", "1".repeat(260))))
            .contains("less than or equal to 256"));
        assert!(err(&expr("cron(0 10 * * ? *);")).contains("regular expression pattern"));
    }

    #[test]
    fn both_frequency_and_expression_is_refused_with_the_aws_message() {
        let rules = RotationRules {
            automatically_after_days: Some(10),
            schedule_expression: Some("rate(10 days)".into()),
            duration: None,
        };
        assert_eq!(
            err(&rules),
            "You cannot specify both rotation frequency and schedule expression together."
        );
        assert!(err(&RotationRules::default())
            .contains("either AutomaticallyAfterDays or ScheduleExpression"));
    }

    #[test]
    fn duration_must_stay_inside_the_day_and_before_the_next_window() {
        // Days: window starts at midnight, start hour + duration <= 24.
        ok(&expr_dur("rate(10 days)", "24h"));
        err(&expr_dur("rate(10 days)", "25h"));
        ok(&expr_dur("cron(0 20 * * ? *)", "4h"));
        assert!(err(&expr_dur("cron(0 20 * * ? *)", "5h")).contains("next UTC day"));
        // Hours: duration <= hours between rotations.
        ok(&expr_dur("rate(6 hours)", "6h"));
        err(&expr_dur("rate(6 hours)", "7h"));
        ok(&expr_dur("cron(0 0/4 * * ? *)", "4h"));
        err(&expr_dur("cron(0 0/4 * * ? *)", "5h"));
        // 2/10 opens at 2, 12 and 22: a 3h window at 22:00 would cross midnight.
        ok(&expr_dur("cron(0 2/10 * * ? *)", "2h"));
        err(&expr_dur("cron(0 2/10 * * ? *)", "3h"));
        ok(&RotationRules {
            automatically_after_days: Some(30),
            duration: Some("2h".into()),
            schedule_expression: None,
        });
    }

    #[test]
    fn automatically_after_days_counts_whole_days_from_the_last_rotation() {
        let s = ok(&days(30));
        let last = at(2024, 1, 15, 13) + 1234;
        assert_eq!(
            s.next_window(last, last),
            Some((at(2024, 2, 14, 0), at(2024, 2, 15, 0)))
        );
        // Overdue: the window is still the one 30 days after the last rotation.
        assert_eq!(
            s.next_window(last, at(2024, 6, 1, 0)),
            Some((at(2024, 2, 14, 0), at(2024, 2, 15, 0)))
        );
        // Across a leap day and a year end.
        let s = ok(&days(1));
        assert_eq!(
            s.next_window(at(2024, 2, 28, 23), 0).map(|w| w.0),
            Some(at(2024, 2, 29, 0))
        );
        assert_eq!(
            s.next_window(at(2023, 12, 31, 5), 0).map(|w| w.0),
            Some(at(2024, 1, 1, 0))
        );
        let s = ok(&RotationRules {
            automatically_after_days: Some(365),
            duration: Some("3h".into()),
            schedule_expression: None,
        });
        assert_eq!(
            s.next_window(at(2024, 1, 1, 9), 0),
            Some((at(2024, 12, 31, 0), at(2024, 12, 31, 3)))
        );
    }

    #[test]
    fn rate_windows_count_from_the_last_rotation() {
        let s = ok(&expr("rate(10 days)"));
        assert_eq!(
            s.next_window(at(2023, 12, 25, 17), 0),
            Some((at(2024, 1, 4, 0), at(2024, 1, 5, 0)))
        );
        let s = ok(&expr_dur("rate(10 days)", "2h"));
        assert_eq!(
            s.next_window(at(2023, 12, 25, 17), 0),
            Some((at(2024, 1, 4, 0), at(2024, 1, 4, 2)))
        );
        let s = ok(&expr("rate(6 hours)"));
        let last = at(2024, 12, 31, 20) + 25 * 60_000;
        assert_eq!(
            s.next_window(last, last),
            Some((at(2025, 1, 1, 2), at(2025, 1, 1, 3)))
        );
        let s = ok(&expr_dur("rate(6 hours)", "4h"));
        assert_eq!(
            s.next_window(last, last).map(|w| w.1),
            Some(at(2025, 1, 1, 6))
        );
    }

    #[test]
    fn cron_hour_increments_reset_each_day() {
        // The guide: cron(0 4/12 * * ? *) means 4:00 AM, 4:00 PM, then the next day 4:00 AM.
        assert_eq!(
            next_cron("cron(0 4/12 * * ? *)", at(2024, 3, 1, 4)).0,
            at(2024, 3, 1, 16)
        );
        assert_eq!(
            next_cron("cron(0 4/12 * * ? *)", at(2024, 3, 1, 16)).0,
            at(2024, 3, 2, 4)
        );
        // 2/10: 2:00, 12:00 and 22:00, then the next day at 2:00.
        let e = "cron(0 2/10 * * ? *)";
        assert_eq!(next_cron(e, at(2024, 3, 1, 12)).0, at(2024, 3, 1, 22));
        assert_eq!(
            next_cron(e, at(2024, 3, 1, 22)),
            (at(2024, 3, 2, 2), at(2024, 3, 2, 3))
        );
        assert_eq!(
            next_cron("cron(0 /8 * * ? *)", at(2024, 12, 31, 16)).0,
            at(2025, 1, 1, 0)
        );
        assert_eq!(
            next_cron("cron(0 */8 * * ? *)", at(2024, 12, 31, 15)).0,
            at(2024, 12, 31, 16)
        );
        // Strictly after: a start equal to `after` is not next.
        assert_eq!(
            next_cron("cron(0 8/8 * * ? *)", at(2024, 1, 1, 8)).0,
            at(2024, 1, 1, 16)
        );
        assert_eq!(
            next_cron("cron(0 8/8 * * ? *)", at(2024, 1, 1, 8) - 1).0,
            at(2024, 1, 1, 8)
        );
    }

    #[test]
    fn cron_windows_default_to_the_end_of_the_day_or_one_hour() {
        assert_eq!(
            next_cron("cron(0 10 * * ? *)", at(2024, 1, 1, 11)),
            (at(2024, 1, 2, 10), at(2024, 1, 3, 0))
        );
        let s = ok(&expr_dur("cron(0 10 * * ? *)", "3h"));
        assert_eq!(
            s.next_window(0, at(2024, 1, 1, 11)),
            Some((at(2024, 1, 2, 10), at(2024, 1, 2, 13)))
        );
        let s = ok(&expr_dur("cron(0 0/6 * * ? *)", "6h"));
        assert_eq!(
            s.next_window(0, at(2024, 1, 1, 19)),
            Some((at(2024, 1, 2, 0), at(2024, 1, 2, 6)))
        );
    }

    #[test]
    fn cron_uses_the_later_of_last_rotation_and_after() {
        let s = ok(&expr("cron(0 10 * * ? *)"));
        // Rotated by hand at 10:30 inside today's window: the next window is tomorrow's.
        let manual = at(2024, 5, 5, 10) + 30 * 60_000;
        assert_eq!(
            s.next_window(manual, at(2024, 5, 5, 9)).map(|w| w.0),
            Some(at(2024, 5, 6, 10))
        );
    }

    #[test]
    fn cron_last_day_of_month_across_month_and_year_ends_and_leap_years() {
        let e = "cron(0 17 L * ? *)";
        assert_eq!(next_cron(e, at(2024, 1, 31, 18)).0, at(2024, 2, 29, 17));
        assert_eq!(next_cron(e, at(2023, 1, 31, 18)).0, at(2023, 2, 28, 17));
        assert_eq!(next_cron(e, at(2100, 2, 1, 0)).0, at(2100, 2, 28, 17));
        assert_eq!(next_cron(e, at(2000, 2, 1, 0)).0, at(2000, 2, 29, 17));
        assert_eq!(next_cron(e, at(2024, 12, 31, 17)).0, at(2025, 1, 31, 17));
        assert_eq!(next_cron(e, at(2024, 4, 2, 0)).0, at(2024, 4, 30, 17));
        // 29 February only: the next one after 2096 is in 2104 (2100 is not a leap year).
        assert_eq!(
            next_cron("cron(0 0 29 2 ? *)", at(2024, 3, 1, 0)).0,
            at(2028, 2, 29, 0)
        );
        assert_eq!(
            next_cron("cron(0 0 29 FEB ? *)", at(2096, 3, 1, 0)).0,
            at(2104, 2, 29, 0)
        );
        // Never matches.
        assert_eq!(
            ok(&expr("cron(0 0 31 2 ? *)")).next_window(0, at(2024, 1, 1, 0)),
            None
        );
        assert_eq!(
            ok(&expr("cron(0 0 30 FEB ? *)")).next_window(0, at(2024, 1, 1, 0)),
            None
        );
    }

    #[test]
    fn cron_day_lists_ranges_and_steps() {
        let e = "cron(0 16 1,15 * ? *)";
        assert_eq!(next_cron(e, at(2024, 1, 1, 16)).0, at(2024, 1, 15, 16));
        assert_eq!(next_cron(e, at(2024, 12, 15, 16)).0, at(2025, 1, 1, 16));
        // 1/10: days 1, 11, 21, 31.
        let e = "cron(0 0 1/10 * ? *)";
        assert_eq!(next_cron(e, at(2024, 1, 21, 0)).0, at(2024, 1, 31, 0));
        assert_eq!(next_cron(e, at(2024, 1, 31, 0)).0, at(2024, 2, 1, 0));
        assert_eq!(next_cron(e, at(2024, 2, 21, 0)).0, at(2024, 3, 1, 0));
        assert_eq!(
            next_cron("cron(0 3 10-12 * ? *)", at(2024, 1, 12, 3)).0,
            at(2024, 2, 10, 3)
        );
        // Months: every three months from January is Jan, Apr, Jul, Oct.
        assert_eq!(
            next_cron("cron(0 0 1 1/3 ? *)", at(2024, 10, 1, 0)).0,
            at(2025, 1, 1, 0)
        );
        assert_eq!(
            next_cron("cron(0 0 1 JAN,APR,JUL,OCT ? *)", at(2024, 1, 1, 0)).0,
            at(2024, 4, 1, 0)
        );
        // A wrapping month range: NOV-FEB.
        assert_eq!(
            next_cron("cron(0 0 1 NOV-FEB ? *)", at(2024, 2, 1, 0)).0,
            at(2024, 11, 1, 0)
        );
    }

    #[test]
    fn cron_weekday_names_numbers_nth_and_last() {
        // 2024-03-01 is a Friday.
        assert_eq!(
            next_cron("cron(0 18 ? * SAT *)", at(2024, 3, 1, 0)).0,
            at(2024, 3, 2, 18)
        );
        assert_eq!(
            next_cron("cron(0 18 ? * 7 *)", at(2024, 3, 1, 0)).0,
            at(2024, 3, 2, 18)
        );
        assert_eq!(
            next_cron("cron(0 18 ? * sat *)", at(2024, 3, 1, 0)).0,
            at(2024, 3, 2, 18)
        );
        // MON-FRI skips the weekend.
        let e = "cron(0 8 ? * MON-FRI *)";
        assert_eq!(next_cron(e, at(2024, 3, 1, 8)).0, at(2024, 3, 4, 8));
        assert_eq!(next_cron(e, at(2024, 3, 4, 8)).0, at(2024, 3, 5, 8));
        // L alone is the last day of the week, Saturday.
        assert_eq!(
            next_cron("cron(0 1 ? * L *)", at(2024, 3, 1, 0)).0,
            at(2024, 3, 2, 1)
        );
        // First Sunday of every month at midnight.
        let e = "cron(0 0 ? * SUN#1 *)";
        assert_eq!(next_cron(e, at(2024, 3, 1, 0)).0, at(2024, 3, 3, 0));
        assert_eq!(next_cron(e, at(2024, 3, 3, 0)).0, at(2024, 4, 7, 0));
        assert_eq!(next_cron(e, at(2024, 12, 1, 0)).0, at(2025, 1, 5, 0));
        // Third Tuesday.
        assert_eq!(
            next_cron("cron(0 9 ? * TUE#3 *)", at(2024, 3, 1, 0)).0,
            at(2024, 3, 19, 9)
        );
        // Fifth Friday exists in March 2024 (29th) but not in April; next is May 31.
        let e = "cron(0 9 ? * FRI#5 *)";
        assert_eq!(next_cron(e, at(2024, 3, 1, 0)).0, at(2024, 3, 29, 9));
        assert_eq!(next_cron(e, at(2024, 3, 29, 9)).0, at(2024, 5, 31, 9));
        // Last Sunday of the month.
        let e = "cron(0 2 ? * SUNL *)";
        assert_eq!(next_cron(e, at(2024, 3, 1, 0)).0, at(2024, 3, 31, 2));
        assert_eq!(next_cron(e, at(2024, 3, 31, 2)).0, at(2024, 4, 28, 2));
        assert_eq!(
            next_cron("cron(0 2 ? * 1L *)", at(2024, 3, 1, 0)).0,
            at(2024, 3, 31, 2)
        );
        // Every three months on the first Sunday at 1:00 AM.
        let e = "cron(0 1 ? 1/3 SUN#1 *)";
        assert_eq!(next_cron(e, at(2024, 1, 8, 0)).0, at(2024, 4, 7, 1));
        assert_eq!(next_cron(e, at(2024, 10, 7, 0)).0, at(2025, 1, 5, 1));
        // Starting in January, every 11 months on the first Monday: Jan and Dec.
        let e = "cron(0 0 ? 1/11 2#1 *)";
        assert_eq!(next_cron(e, at(2024, 2, 1, 0)).0, at(2024, 12, 2, 0));
        assert_eq!(next_cron(e, at(2024, 12, 2, 0)).0, at(2025, 1, 6, 0));
        // 1/2 in Day-of-week: days 1, 3, 5 and 7 (SUN, TUE, THU, SAT).
        let e = "cron(0 0 ? * 1/2 *)";
        assert_eq!(next_cron(e, at(2024, 3, 2, 0)).0, at(2024, 3, 3, 0));
        assert_eq!(next_cron(e, at(2024, 3, 3, 0)).0, at(2024, 3, 5, 0));
        // A wrapping weekday range, FRI-MON.
        let e = "cron(0 0 ? * FRI-MON *)";
        assert_eq!(next_cron(e, at(2024, 3, 4, 0)).0, at(2024, 3, 8, 0));
    }

    #[test]
    fn describe_echoes_what_was_set_and_days_for_rate_in_days() {
        let r = ok(&expr_dur("rate(10 days)", "3h")).to_rules();
        assert_eq!(r.automatically_after_days, Some(10));
        assert_eq!(r.schedule_expression.as_deref(), Some("rate(10 days)"));
        assert_eq!(r.duration.as_deref(), Some("3h"));
        let r = ok(&expr("cron(0 16 1,15 * ? *)")).to_rules();
        assert_eq!(r, expr("cron(0 16 1,15 * ? *)"));
        let r = ok(&expr("rate(6 hours)")).to_rules();
        assert_eq!(r, expr("rate(6 hours)"));
        assert_eq!(ok(&days(30)).to_rules(), days(30));
    }

    #[test]
    fn stored_rules_round_trip_where_the_describe_echo_would_not() {
        for rules in [
            days(30),
            expr("rate(10 days)"),
            expr_dur("rate(10 days)", "2h"),
            expr("rate(4 hours)"),
            expr_dur("cron(0 2/10 * * ? *)", "02h"),
        ] {
            let s = ok(&rules);
            assert_eq!(s.to_stored_rules(), rules);
            assert_eq!(ok(&s.to_stored_rules()), s);
        }
        let echoed = ok(&expr("rate(10 days)")).to_rules();
        assert!(err(&echoed).contains("both rotation frequency and schedule expression"));
    }

    #[test]
    fn far_out_times_give_none_instead_of_overflowing() {
        let s = ok(&days(1000));
        assert_eq!(s.next_window(i64::MAX - 10, 0), None);
        let s = ok(&expr("rate(4 hours)"));
        assert_eq!(s.next_window(i64::MAX - 10, 0), None);
        let s = ok(&expr("cron(0 10 * * ? *)"));
        assert_eq!(s.next_window(0, i64::MAX - 10), None);
    }
}
