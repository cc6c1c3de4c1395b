//! `cron` triggers: a fixed replica count inside a recurring time window.
//!
//! # Parameters
//!
//! | Key | Source | Required | Default | Meaning |
//! |---|---|---|---|---|
//! | `timezone` | M | yes | – | IANA time zone name (`Etc/UTC`, `Asia/Kolkata`, `America/New_York`); both schedules are evaluated in it. |
//! | `start` | M | yes | – | 5-field cron expression (minute hour day-of-month month day-of-week) opening the window. |
//! | `end` | M | yes | – | 5-field cron expression closing the window; must not be textually equal to `start`. |
//! | `desiredReplicas` | M | yes | – | Integer (JSON rules: `"10"`, not `"10.0"`); must not be 0. |
//!
//! Source M is the trigger's `metadata`; no key is read from a TriggerAuthentication or from
//! `<key>FromEnv`. Values are trimmed and an empty value counts as missing.
//!
//! # Schedules
//!
//! KEDA parses `start` and `end` with robfig/cron v3's parser configured for exactly five fields,
//! and Windlass reproduces that parser and its `Next` computation rather than using the `cron`
//! crate, whose syntax has a seconds field, numbers Sunday as 1 and resolves daylight-saving
//! gaps differently, so a translation could not be exact. The rules:
//!
//! - fields: minute `0-59`, hour `0-23`, day of month `1-31`, month `1-12` or `JAN`…`DEC`, day of
//!   week `0-6` (Sunday is 0; 7 is an error) or `SUN`…`SAT`; names are case-insensitive;
//! - each field is a comma list of `*`, `?` (same as `*`, in any field), `n`, `a-b`, `*/s`,
//!   `a-b/s`, or `n/s` (meaning `n-max/s`); empty list items are ignored;
//! - no seconds field and no descriptors (`@hourly`, `@every 1h` are errors); a `TZ=<zone> ` or
//!   `CRON_TZ=<zone> ` prefix is accepted and evaluates that schedule in `<zone>` instead of
//!   `timezone`;
//! - day matching: if day-of-month or day-of-week is a plain `*`/`?` (or `*/1`), both must match;
//!   otherwise a day matching either is enough (`0 9 1 * MON` fires on the 1st *and* on Mondays);
//! - across daylight-saving changes, times are computed like Go's `time.Date` and robfig:
//!   a time that does not exist on a spring-forward day is skipped, a time that occurs twice on
//!   a fall-back day fires twice; a schedule that never fires (`0 0 31 2 *`) has no next time.
//!
//! # Window
//!
//! At each sample, with `now` taken from the request: the next `start` and the next `end`
//! strictly after `now` are computed in the time zone. The trigger is **active iff the next end
//! comes at or before the next start** (we are between a start and its end). Inside the window
//! the metric value is `desiredReplicas`, outside it is 0; the HPA target is the constant 1 (an
//! `AverageValue` target unless `metricType: Value`), so the HPA asks for exactly
//! `desiredReplicas` replicas inside the window. A schedule that never fires counts as Go's zero
//! time, as in KEDA: a `start` that never fires makes the trigger always active.
//!
//! Metric name: `s<index>-cron-<timezone>-<start'>-<end'>` where `x'` is the expression with
//! spaces removed, `*`→`x`, `/`→`Sl`, `?`→`Qm`, `,`→`Cm`, then `/ . : % ( )` → `-`; for example
//! `s0-cron-Asia-Kolkata-06xxx-020xxx`.
//!
//! # Differences from KEDA
//!
//! - An unknown `timezone` is reported when the trigger is parsed (so `windlass check` finds it);
//!   KEDA only fails when it samples the trigger.
//! - `timezone: Local` means the operator process's zone in KEDA, which is UTC in its container
//!   image; Windlass uses UTC.
//! - A `TZ=` prefix without a following space makes robfig's parser panic; Windlass reports it.
//!
//! # Example
//!
//! ```yaml
//! triggers:
//! - type: cron
//!   metadata:
//!     timezone: Asia/Kolkata
//!     start: 0 6 * * *     # 06:00
//!     end: 0 20 * * *      # 20:00
//!     desiredReplicas: "10"
//! ```

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;
use scaler_core::metric::ExternalMetric;
use scaler_core::params::{ParamError, ParamReader, order};
use scaler_core::registry::{ScalerKind, TriggerConfig};
use scaler_core::{MetricSpec, ParamErrors, Sample, SampleRequest, Scaler, ScalerError};
use thiserror::Error;

use crate::ScalerContext;

/// A time zone as KEDA loads it with Go's `time.LoadLocation`.
#[derive(Clone, Debug, PartialEq)]
pub struct Timezone {
    /// The name as written in the trigger; it is part of the metric name.
    name: String,
    tz: Tz,
}

impl Timezone {
    /// Loads `name`; `""`, `UTC` and `Local` are UTC (KEDA's container runs in UTC).
    pub fn load(name: &str) -> Result<Self, String> {
        let tz = load_zone(name)?;
        Ok(Self {
            name: name.to_owned(),
            tz,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn tz(&self) -> Tz {
        self.tz
    }
}

fn load_zone(name: &str) -> Result<Tz, String> {
    match name {
        "" | "UTC" | "Local" => Ok(Tz::UTC),
        other => other
            .parse::<Tz>()
            .map_err(|_| format!("unknown time zone {other}")),
    }
}

/// Why a cron expression was rejected, in robfig/cron's words.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum CronError {
    #[error("empty spec string")]
    Empty,
    #[error("provided bad location {0}: unknown time zone {0}")]
    BadLocation(String),
    #[error("parser does not accept descriptors: {0}")]
    Descriptor(String),
    #[error("expected exactly 5 fields, found {count}: [{fields}]")]
    FieldCount { count: usize, fields: String },
    #[error("failed to parse int from {0}: strconv.Atoi: parsing {0:?}: invalid syntax")]
    NotAnInt(String),
    #[error("failed to parse int from {0}: strconv.Atoi: parsing {0:?}: value out of range")]
    OutOfRange(String),
    #[error("negative number ({number}) not allowed: {expr}")]
    Negative { number: i64, expr: String },
    #[error("too many hyphens: {0}")]
    Hyphens(String),
    #[error("too many slashes: {0}")]
    Slashes(String),
    #[error("beginning of range ({start}) below minimum ({min}): {expr}")]
    BelowMinimum { start: u64, min: u64, expr: String },
    #[error("end of range ({end}) above maximum ({max}): {expr}")]
    AboveMaximum { end: u64, max: u64, expr: String },
    #[error("beginning of range ({start}) beyond end of range ({end}): {expr}")]
    Reversed { start: u64, end: u64, expr: String },
    #[error("step of range should be a positive number: {0}")]
    ZeroStep(String),
}

/// Set when a field was written as `*` or `?` (robfig's `starBit`); it drives the day rule.
const STAR_BIT: u64 = 1 << 63;

struct Bounds {
    min: u64,
    max: u64,
    names: &'static [(&'static str, u64)],
}

const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DAYS_OF_MONTH: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        ("jan", 1),
        ("feb", 2),
        ("mar", 3),
        ("apr", 4),
        ("may", 5),
        ("jun", 6),
        ("jul", 7),
        ("aug", 8),
        ("sep", 9),
        ("oct", 10),
        ("nov", 11),
        ("dec", 12),
    ],
};
const DAYS_OF_WEEK: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &[
        ("sun", 0),
        ("mon", 1),
        ("tue", 2),
        ("wed", 3),
        ("thu", 4),
        ("fri", 5),
        ("sat", 6),
    ],
};

/// A parsed 5-field cron expression: one bit set per allowed value, as robfig stores it.
#[derive(Clone, PartialEq)]
pub struct CronSchedule {
    /// The expression as written (trimmed); it is part of the metric name.
    source: String,
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
    /// A `TZ=`/`CRON_TZ=` prefix's zone, which overrides the trigger's `timezone`.
    location: Option<Tz>,
}

impl fmt::Debug for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CronSchedule({:?})", self.source)
    }
}

impl CronSchedule {
    /// Parses `spec` like robfig/cron v3's `NewParser(Minute | Hour | Dom | Month | Dow)`.
    pub fn parse(spec: &str) -> Result<Self, CronError> {
        if spec.is_empty() {
            return Err(CronError::Empty);
        }
        let source = spec.to_owned();
        let mut rest = spec;
        let mut location = None;
        if rest.starts_with("TZ=") || rest.starts_with("CRON_TZ=") {
            let eq = rest.find('=').unwrap_or(0);
            let Some(space) = rest.find(' ') else {
                return Err(CronError::BadLocation(rest[eq + 1..].to_owned()));
            };
            let name = &rest[eq + 1..space];
            // `CRON_TZ=Local` is Go's time.Local: the schedule then follows the trigger's zone.
            if name != "Local" {
                location =
                    Some(load_zone(name).map_err(|_| CronError::BadLocation(name.to_owned()))?);
            }
            rest = rest[space..].trim();
        }
        if rest.starts_with('@') {
            return Err(CronError::Descriptor(rest.to_owned()));
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(CronError::FieldCount {
                count: fields.len(),
                fields: fields.join(" "),
            });
        }
        Ok(Self {
            source,
            minute: field_bits(fields[0], &MINUTES)?,
            hour: field_bits(fields[1], &HOURS)?,
            dom: field_bits(fields[2], &DAYS_OF_MONTH)?,
            month: field_bits(fields[3], &MONTHS)?,
            dow: field_bits(fields[4], &DAYS_OF_WEEK)?,
            location,
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    fn day_matches(&self, t: &DateTime<Tz>) -> bool {
        let dom_match = (1u64 << t.day()) & self.dom != 0;
        let dow_match = (1u64 << t.weekday().num_days_from_sunday()) & self.dow != 0;
        if self.dom & STAR_BIT != 0 || self.dow & STAR_BIT != 0 {
            dom_match && dow_match
        } else {
            dom_match || dow_match
        }
    }

    /// The first activation strictly after `now`, evaluated in `zone` (or the schedule's own
    /// `TZ=` zone); `None` when there is none within five years (robfig's zero time).
    ///
    /// This follows robfig's `SpecSchedule.Next` step by step, including its use of Go's
    /// `time.Date` for wall-clock arithmetic, so daylight-saving transitions behave the same.
    pub fn next_after(&self, now: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        let loc = self.location.unwrap_or(zone);
        let start = now.with_timezone(&loc);
        let mut t = start.with_nanosecond(0).unwrap_or(start) + Duration::seconds(1);
        let mut added = false;
        let year_limit = t.year() + 5;
        'wrap: loop {
            if t.year() > year_limit {
                return None;
            }
            while (1u64 << t.month()) & self.month == 0 {
                if !added {
                    added = true;
                    t = go_date(loc, t.year(), t.month().into(), 1, 0, 0, 0)?;
                }
                t = go_date(
                    loc,
                    t.year(),
                    i64::from(t.month()) + 1,
                    t.day().into(),
                    t.hour(),
                    t.minute(),
                    t.second(),
                )?;
                if t.month() == 1 {
                    continue 'wrap;
                }
            }
            while !self.day_matches(&t) {
                if !added {
                    added = true;
                    t = go_date(loc, t.year(), t.month().into(), t.day().into(), 0, 0, 0)?;
                }
                t = go_date(
                    loc,
                    t.year(),
                    t.month().into(),
                    i64::from(t.day()) + 1,
                    t.hour(),
                    t.minute(),
                    t.second(),
                )?;
                // robfig: midnight may not exist on a DST day; move back onto midnight.
                let hour = i64::from(t.hour());
                if hour != 0 {
                    if hour > 12 {
                        t += Duration::hours(24 - hour);
                    } else {
                        t -= Duration::hours(hour);
                    }
                }
                if t.day() == 1 {
                    continue 'wrap;
                }
            }
            while (1u64 << t.hour()) & self.hour == 0 {
                if !added {
                    added = true;
                    t = go_date(
                        loc,
                        t.year(),
                        t.month().into(),
                        t.day().into(),
                        t.hour(),
                        0,
                        0,
                    )?;
                }
                t += Duration::hours(1);
                if t.hour() == 0 {
                    continue 'wrap;
                }
            }
            while (1u64 << t.minute()) & self.minute == 0 {
                if !added {
                    added = true;
                    t -= Duration::seconds(t.timestamp().rem_euclid(60));
                }
                t += Duration::minutes(1);
                if t.minute() == 0 {
                    continue 'wrap;
                }
            }
            // The seconds field is always `0` with five fields.
            while t.second() != 0 {
                added = true;
                t += Duration::seconds(1);
                if t.second() == 0 {
                    continue 'wrap;
                }
            }
            return Some(t.with_timezone(&Utc));
        }
    }
}

/// Go's `time.Date(year, month, day, hour, min, sec, 0, loc)`: month and day may overflow, and a
/// wall time in a DST gap or overlap is resolved the way Go does it.
fn go_date(
    loc: Tz,
    year: i32,
    month: i64,
    day: i64,
    hour: u32,
    minute: u32,
    second: u32,
) -> Option<DateTime<Tz>> {
    let month0 = month - 1;
    let year = year.checked_add(i32::try_from(month0.div_euclid(12)).ok()?)?;
    let month = u32::try_from(month0.rem_euclid(12) + 1).ok()?;
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    let date = first.checked_add_signed(Duration::days(day - 1))?;
    let wall: NaiveDateTime = date.and_hms_opt(hour, minute, second)?;
    // Go: take the offset in force at the wall time read as UTC; if the instant it gives lies
    // outside that offset's period, use the offset in force at that instant instead.
    let offset_at = |instant: NaiveDateTime| {
        i64::from(
            loc.offset_from_utc_datetime(&instant)
                .fix()
                .local_minus_utc(),
        )
    };
    let first_guess = offset_at(wall);
    let offset = offset_at(wall - Duration::seconds(first_guess));
    Some(loc.from_utc_datetime(&(wall - Duration::seconds(offset))))
}

/// robfig's `getField`: the bits of a comma-separated list of ranges.
fn field_bits(field: &str, bounds: &Bounds) -> Result<u64, CronError> {
    field
        .split(',')
        .filter(|expr| !expr.is_empty())
        .try_fold(0u64, |bits, expr| Ok(bits | range_bits(expr, bounds)?))
}

/// robfig's `getRange`: `*`, `?`, `n`, `a-b`, each optionally followed by `/step`.
fn range_bits(expr: &str, bounds: &Bounds) -> Result<u64, CronError> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_and_high.len() == 1;
    let (start, mut end, mut extra);
    if low_and_high[0] == "*" || low_and_high[0] == "?" {
        start = bounds.min;
        end = bounds.max;
        extra = STAR_BIT;
    } else {
        start = int_or_name(low_and_high[0], bounds)?;
        end = match low_and_high.len() {
            1 => start,
            2 => int_or_name(low_and_high[1], bounds)?,
            _ => return Err(CronError::Hyphens(expr.to_owned())),
        };
        extra = 0;
    }
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = go_uint(range_and_step[1])?;
            if single {
                end = bounds.max;
            }
            if step > 1 {
                extra = 0;
            }
            step
        }
        _ => return Err(CronError::Slashes(expr.to_owned())),
    };
    if start < bounds.min {
        return Err(CronError::BelowMinimum {
            start,
            min: bounds.min,
            expr: expr.to_owned(),
        });
    }
    if end > bounds.max {
        return Err(CronError::AboveMaximum {
            end,
            max: bounds.max,
            expr: expr.to_owned(),
        });
    }
    if start > end {
        return Err(CronError::Reversed {
            start,
            end,
            expr: expr.to_owned(),
        });
    }
    if step == 0 {
        return Err(CronError::ZeroStep(expr.to_owned()));
    }
    let mut bits = 0u64;
    let mut value = start;
    while value <= end {
        bits |= 1 << value;
        match value.checked_add(step) {
            Some(next) => value = next,
            None => break,
        }
    }
    Ok(bits | extra)
}

fn int_or_name(expr: &str, bounds: &Bounds) -> Result<u64, CronError> {
    let lower = expr.to_lowercase();
    if let Some((_, value)) = bounds.names.iter().find(|(name, _)| *name == lower) {
        return Ok(*value);
    }
    go_uint(expr)
}

/// robfig's `mustParseInt`: Go's `strconv.Atoi` (optional sign, decimal digits), then >= 0.
fn go_uint(expr: &str) -> Result<u64, CronError> {
    let digits = expr.strip_prefix(['+', '-']).unwrap_or(expr);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CronError::NotAnInt(expr.to_owned()));
    }
    let number: i64 = expr
        .strip_prefix('+')
        .unwrap_or(expr)
        .parse()
        .map_err(|_| CronError::OutOfRange(expr.to_owned()))?;
    u64::try_from(number).map_err(|_| CronError::Negative {
        number,
        expr: expr.to_owned(),
    })
}

/// KEDA's encoding of an expression inside the metric name.
fn metric_name_part(expression: &str) -> String {
    expression
        .replace(' ', "")
        .replace('*', "x")
        .replace('/', "Sl")
        .replace('?', "Qm")
        .replace(',', "Cm")
}

/// A `cron` trigger's parameters, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Metadata {
    pub timezone: Timezone,
    pub start: CronSchedule,
    pub end: CronSchedule,
    /// The metric value inside the window; never 0.
    pub desired_replicas: i64,
}

impl Metadata {
    pub fn parse(config: &TriggerConfig) -> Result<Self, ParamErrors> {
        let mut reader = ParamReader::new(&config.params);
        if let Err(error) = config.external_target_type() {
            reader.error(error);
        }
        let timezone = reader.key("timezone", order::M).required().parse_with(
            "use an IANA time zone name such as Etc/UTC, Asia/Kolkata or America/New_York",
            |name| Timezone::load(name).map_err(|e| format!("unable to load timezone: {e}")),
        );
        let start = reader.key("start", order::M).required().string();
        let end = reader.key("end", order::M).required().string();
        let desired_replicas = reader.key("desiredReplicas", order::M).required().int();

        let start = start.and_then(|spec| schedule(&mut reader, "start", &spec));
        let end = end.and_then(|spec| schedule(&mut reader, "end", &spec));
        let same =
            matches!((&start, &end), (Some(start), Some(end)) if start.as_str() == end.as_str());
        if same {
            reader.error(
                ParamError::new("end", "start and end can not have exactly same time input")
                    .with_hint("give `end` a different schedule from `start`, e.g. start: 0 6 * * *, end: 0 20 * * *"),
            );
        }
        if desired_replicas == Some(0) {
            reader.error(
                ParamError::new("desiredReplicas", "no desiredReplicas specified")
                    .with_hint("set `desiredReplicas` to the replica count wanted inside the window (not 0; use minReplicaCount: 0 to scale to zero outside it)"),
            );
        }
        match (timezone, start, end, desired_replicas) {
            (Some(timezone), Some(start), Some(end), Some(desired_replicas))
                if !reader.has_errors() =>
            {
                reader.finish(Self {
                    timezone,
                    start,
                    end,
                    desired_replicas,
                })
            }
            _ => Err(reader
                .finish(())
                .err()
                .unwrap_or_else(|| ParamErrors(Vec::new()))),
        }
    }

    /// The scaler's metric name before indexing: `cron-<timezone>-<start'>-<end'>`.
    pub fn metric_local_name(&self) -> String {
        format!(
            "cron-{}-{}-{}",
            self.timezone.name(),
            metric_name_part(self.start.as_str()),
            metric_name_part(self.end.as_str())
        )
    }

    /// Whether `now` lies inside the window: KEDA's comparison of the next start and end.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        let zone = self.timezone.tz();
        // robfig returns Go's zero time when a schedule never fires; it sorts before any time.
        let zero = DateTime::<Utc>::MIN_UTC;
        let next_start = self.start.next_after(now, zone).unwrap_or(zero);
        let next_end = self.end.next_after(now, zone).unwrap_or(zero);
        if next_start < next_end {
            now > next_start && now < next_end
        } else {
            now > next_start || now < next_end
        }
    }
}

fn schedule(reader: &mut ParamReader<'_>, key: &'static str, spec: &str) -> Option<CronSchedule> {
    match CronSchedule::parse(spec) {
        Ok(schedule) => Some(schedule),
        Err(error) => {
            reader.error(
                ParamError::new(key, format!("error parsing {key} schedule: {error}")).with_hint(
                    "write 5 fields: minute hour day-of-month month day-of-week, e.g. 0 6 * * MON-FRI (day of week 0-6, Sunday is 0)",
                ),
            );
            None
        }
    }
}

/// A built `cron` trigger.
#[derive(Debug)]
pub struct CronScaler {
    metadata: Metadata,
    metric: ExternalMetric,
}

impl CronScaler {
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }
}

impl ScalerKind<ScalerContext> for CronScaler {
    const TYPES: &'static [&'static str] = &["cron"];

    fn build(
        config: &TriggerConfig,
        _context: &ScalerContext,
    ) -> Result<Arc<dyn Scaler>, ParamErrors> {
        let metadata = Metadata::parse(config)?;
        let metric = config.external_metric(&metadata.metric_local_name(), 1.0)?;
        Ok(Arc::new(Self { metadata, metric }))
    }
}

#[async_trait]
impl Scaler for CronScaler {
    fn metric_specs(&self) -> Vec<MetricSpec> {
        vec![MetricSpec::External(self.metric.clone())]
    }

    async fn sample(&self, request: SampleRequest<'_>) -> Result<Sample, ScalerError> {
        let active = self.metadata.is_active(request.now);
        let value = if active {
            self.metadata.desired_replicas as f64
        } else {
            0.0
        };
        Ok(Sample { value, active })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scaler_core::MetricName;
    use scaler_core::params::TriggerParams;

    fn config(pairs: &[(&str, &str)], index: usize) -> TriggerConfig {
        TriggerConfig {
            index,
            trigger_type: "cron".into(),
            params: TriggerParams::from_metadata(pairs.iter().copied()),
            ..TriggerConfig::default()
        }
    }

    fn parse(pairs: &[(&str, &str)]) -> Result<Metadata, ParamErrors> {
        Metadata::parse(&config(pairs, 0))
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn schedule(spec: &str) -> CronSchedule {
        CronSchedule::parse(spec).unwrap()
    }

    const VALID: &[(&str, &str)] = &[
        ("timezone", "Etc/UTC"),
        ("start", "0 0 * * Thu"),
        ("end", "59 23 * * Thu"),
        ("desiredReplicas", "10"),
    ];
    const VALID_2: &[(&str, &str)] = &[
        ("timezone", "Etc/UTC"),
        ("start", "0 */2 * * *"),
        ("end", "0 1-23/2 * * *"),
        ("desiredReplicas", "10"),
    ];
    const VALID_3: &[(&str, &str)] = &[
        ("timezone", "Etc/UTC"),
        ("start", "0,30 * * * *"),
        ("end", "15,45 * * * *"),
        ("desiredReplicas", "10"),
    ];

    struct ParseCase {
        name: &'static str,
        metadata: &'static [(&'static str, &'static str)],
        /// `None` when parsing succeeds, else the key the first error names.
        error_key: Option<&'static str>,
    }

    /// KEDA's `testCronMetadata`, plus Windlass's own cases.
    const PARSE_CASES: &[ParseCase] = &[
        ParseCase {
            name: "empty",
            metadata: &[],
            error_key: Some("timezone"),
        },
        ParseCase {
            name: "validCronMetadata",
            metadata: VALID,
            error_key: None,
        },
        ParseCase {
            name: "validCronMetadata2",
            metadata: VALID_2,
            error_key: None,
        },
        ParseCase {
            name: "validCronMetadata3",
            metadata: VALID_3,
            error_key: None,
        },
        ParseCase {
            name: "missing desiredReplicas",
            metadata: &[
                ("timezone", "Asia/Kolkata"),
                ("start", "30 * * * *"),
                ("end", "45 * * * *"),
            ],
            error_key: Some("desiredReplicas"),
        },
        ParseCase {
            name: "missing timezone",
            metadata: &[
                ("start", "30 * * * *"),
                ("end", "45 * * * *"),
                ("desiredReplicas", "10"),
            ],
            error_key: Some("timezone"),
        },
        ParseCase {
            name: "start range",
            metadata: &[
                ("timezone", "Asia/Kolkata"),
                ("start", "30-33 * * * *"),
                ("end", "45 * * * *"),
                ("desiredReplicas", "10"),
            ],
            error_key: None,
        },
        ParseCase {
            name: "end range",
            metadata: &[
                ("timezone", "Asia/Kolkata"),
                ("start", "30 * * * *"),
                ("end", "45-50 * * * *"),
                ("desiredReplicas", "10"),
            ],
            error_key: None,
        },
        ParseCase {
            name: "negative start minute",
            metadata: &[
                ("timezone", "Asia/Kolkata"),
                ("start", "-30 * * * *"),
                ("end", "45 * * * *"),
                ("desiredReplicas", "10"),
            ],
            error_key: Some("start"),
        },
        ParseCase {
            name: "negative end minute",
            metadata: &[
                ("timezone", "Asia/Kolkata"),
                ("start", "30 * * * *"),
                ("end", "-50 * * * *"),
                ("desiredReplicas", "10"),
            ],
            error_key: Some("end"),
        },
        ParseCase {
            name: "negative end month",
            metadata: &[
                ("timezone", "Asia/Kolkata"),
                ("start", "30 * * * *"),
                ("end", "50 * * -3 *"),
                ("desiredReplicas", "10"),
            ],
            error_key: Some("end"),
        },
        ParseCase {
            name: "start equals end",
            metadata: &[
                ("timezone", "Asia/Kolkata"),
                ("start", "30 * * * *"),
                ("end", "30 * * * *"),
                ("desiredReplicas", "10"),
            ],
            error_key: Some("end"),
        },
        ParseCase {
            name: "desiredReplicas 0",
            metadata: &[
                ("timezone", "Etc/UTC"),
                ("start", "0 6 * * *"),
                ("end", "0 20 * * *"),
                ("desiredReplicas", "0"),
            ],
            error_key: Some("desiredReplicas"),
        },
        ParseCase {
            name: "desiredReplicas not a JSON integer",
            metadata: &[
                ("timezone", "Etc/UTC"),
                ("start", "0 6 * * *"),
                ("end", "0 20 * * *"),
                ("desiredReplicas", "10.0"),
            ],
            error_key: Some("desiredReplicas"),
        },
        ParseCase {
            name: "unknown timezone",
            metadata: &[
                ("timezone", "Mars/Olympus"),
                ("start", "0 6 * * *"),
                ("end", "0 20 * * *"),
                ("desiredReplicas", "10"),
            ],
            error_key: Some("timezone"),
        },
        ParseCase {
            name: "seconds field is not accepted",
            metadata: &[
                ("timezone", "Etc/UTC"),
                ("start", "0 0 6 * * *"),
                ("end", "0 20 * * *"),
                ("desiredReplicas", "10"),
            ],
            error_key: Some("start"),
        },
        ParseCase {
            name: "descriptors are not accepted",
            metadata: &[
                ("timezone", "Etc/UTC"),
                ("start", "@hourly"),
                ("end", "0 20 * * *"),
                ("desiredReplicas", "10"),
            ],
            error_key: Some("start"),
        },
        ParseCase {
            name: "day of week 7 is out of range",
            metadata: &[
                ("timezone", "Etc/UTC"),
                ("start", "0 6 * * 7"),
                ("end", "0 20 * * *"),
                ("desiredReplicas", "10"),
            ],
            error_key: Some("start"),
        },
        ParseCase {
            name: "values are trimmed",
            metadata: &[
                ("timezone", " Etc/UTC "),
                ("start", " 0 6 * * MON-FRI "),
                ("end", "0 20 * * mon-fri"),
                ("desiredReplicas", " 3 "),
            ],
            error_key: None,
        },
    ];

    #[test]
    fn parse_table() {
        for case in PARSE_CASES {
            let result = parse(case.metadata);
            match (case.error_key, result) {
                (None, Ok(_)) => {}
                (None, Err(errors)) => panic!("{}: unexpected error {errors}", case.name),
                (Some(key), Ok(_)) => panic!("{}: expected an error on {key}", case.name),
                (Some(key), Err(errors)) => {
                    assert_eq!(errors.0[0].key, key, "{}: {errors}", case.name);
                    assert!(
                        errors.0.iter().all(|e| e.hint.is_some()),
                        "{}: every error has a hint",
                        case.name
                    );
                }
            }
        }
    }

    #[test]
    fn error_messages_follow_keda() {
        let errors = parse(&[
            ("timezone", "Asia/Kolkata"),
            ("start", "-30 * * * *"),
            ("end", "30 * * * * *"),
            ("desiredReplicas", "10"),
        ])
        .unwrap_err();
        assert_eq!(
            errors.0[0].message,
            "error parsing start schedule: failed to parse int from : strconv.Atoi: parsing \"\": invalid syntax"
        );
        assert_eq!(
            errors.0[1].message,
            "error parsing end schedule: expected exactly 5 fields, found 6: [30 * * * * *]"
        );
        let errors = parse(&[
            ("timezone", "Nowhere/Land"),
            ("start", "0 6 * * *"),
            ("end", "0 6 * * *"),
            ("desiredReplicas", "0"),
        ])
        .unwrap_err();
        let messages: Vec<&str> = errors.0.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "unable to set param \"timezone\" value \"Nowhere/Land\": unable to load timezone: unknown time zone Nowhere/Land",
                "start and end can not have exactly same time input",
                "no desiredReplicas specified",
            ]
        );
    }

    #[test]
    fn utilization_metric_type_is_rejected() {
        let mut cfg = config(VALID, 0);
        cfg.metric_type = Some(scaler_core::MetricTargetType::Utilization);
        let errors = Metadata::parse(&cfg).unwrap_err();
        assert_eq!(errors.0[0].key, "metricType");
    }

    struct NameCase {
        metadata: &'static [(&'static str, &'static str)],
        index: usize,
        name: &'static str,
    }

    /// KEDA's `cronMetricIdentifiers`.
    const NAME_CASES: &[NameCase] = &[
        NameCase {
            metadata: VALID,
            index: 0,
            name: "s0-cron-Etc-UTC-00xxThu-5923xxThu",
        },
        NameCase {
            metadata: VALID_2,
            index: 1,
            name: "s1-cron-Etc-UTC-0xSl2xxx-01-23Sl2xxx",
        },
        NameCase {
            metadata: VALID_3,
            index: 2,
            name: "s2-cron-Etc-UTC-0Cm30xxxx-15Cm45xxxx",
        },
        NameCase {
            metadata: &[
                ("timezone", "Asia/Kolkata"),
                ("start", "0 6 ? * *"),
                ("end", "0 20 * * *"),
                ("desiredReplicas", "10"),
            ],
            index: 3,
            name: "s3-cron-Asia-Kolkata-06Qmxx-020xxx",
        },
    ];

    #[test]
    fn metric_names_and_target() {
        for case in NAME_CASES {
            let scaler = CronScaler::build(
                &config(case.metadata, case.index),
                &ScalerContext::default(),
            )
            .unwrap();
            let specs = scaler.metric_specs();
            let metric = specs[0].external().unwrap();
            assert_eq!(metric.name, MetricName::from_raw(case.name));
            assert_eq!(metric.target, 1.0);
            assert_eq!(
                metric.target_type,
                scaler_core::MetricTargetType::AverageValue
            );
        }
    }

    struct NextCase {
        spec: &'static str,
        zone: Tz,
        after: &'static str,
        next: Option<&'static str>,
    }

    /// Next activations, checked by hand against robfig/cron v3 semantics.
    const NEXT_CASES: &[NextCase] = &[
        // strictly after: exactly at an activation moves on to the following one
        NextCase {
            spec: "0 6 * * *",
            zone: Tz::UTC,
            after: "2024-01-10T06:00:00Z",
            next: Some("2024-01-11T06:00:00Z"),
        },
        NextCase {
            spec: "0 6 * * *",
            zone: Tz::UTC,
            after: "2024-01-10T05:59:59.5Z",
            next: Some("2024-01-10T06:00:00Z"),
        },
        // Sunday is 0; names work in any case
        NextCase {
            spec: "0 0 * * 0",
            zone: Tz::UTC,
            after: "2024-01-10T00:00:00Z", // a Wednesday
            next: Some("2024-01-14T00:00:00Z"),
        },
        NextCase {
            spec: "0 0 * * sun",
            zone: Tz::UTC,
            after: "2024-01-10T00:00:00Z",
            next: Some("2024-01-14T00:00:00Z"),
        },
        // weekday ranges
        NextCase {
            spec: "0 9 * * MON-FRI",
            zone: Tz::UTC,
            after: "2024-01-12T10:00:00Z", // Friday after 09:00
            next: Some("2024-01-15T09:00:00Z"),
        },
        // dom and dow both restricted: either matches (the 1st, or a Monday)
        NextCase {
            spec: "0 9 1 * MON",
            zone: Tz::UTC,
            after: "2024-01-10T00:00:00Z",
            next: Some("2024-01-15T09:00:00Z"),
        },
        NextCase {
            spec: "0 9 1 * MON",
            zone: Tz::UTC,
            after: "2024-01-29T10:00:00Z", // Monday 29th after 09:00
            next: Some("2024-02-01T09:00:00Z"),
        },
        // dom restricted, dow `*`: both must match, so only the 1st
        NextCase {
            spec: "0 9 1 * *",
            zone: Tz::UTC,
            after: "2024-01-10T00:00:00Z",
            next: Some("2024-02-01T09:00:00Z"),
        },
        // `?` is a star too: dom 13 and `?` → only the 13th
        NextCase {
            spec: "0 0 13 * ?",
            zone: Tz::UTC,
            after: "2024-01-14T00:00:00Z",
            next: Some("2024-02-13T00:00:00Z"),
        },
        // `*/1` keeps the star bit, `*/2` does not: dom 13 with dow */2 → 13th or even weekdays
        NextCase {
            spec: "0 0 13 * */2",
            zone: Tz::UTC,
            after: "2024-01-14T00:00:00Z", // Sunday (0) at midnight, excluded (strictly after)
            next: Some("2024-01-16T00:00:00Z"),
        },
        // months by name, steps from a value
        NextCase {
            spec: "30 4 1 jun,dec *",
            zone: Tz::UTC,
            after: "2024-07-01T00:00:00Z",
            next: Some("2024-12-01T04:30:00Z"),
        },
        NextCase {
            spec: "5/20 * * * *",
            zone: Tz::UTC,
            after: "2024-01-01T00:46:00Z",
            next: Some("2024-01-01T01:05:00Z"),
        },
        // in a non-UTC zone with a half-hour offset
        NextCase {
            spec: "0 6 * * *",
            zone: chrono_tz::Asia::Kolkata,
            after: "2024-01-10T00:00:00Z", // 05:30 IST
            next: Some("2024-01-10T00:30:00Z"),
        },
        // America/New_York spring forward 2024-03-10: 02:30 does not exist and is skipped
        NextCase {
            spec: "30 2 * * *",
            zone: chrono_tz::America::New_York,
            after: "2024-03-10T06:00:00Z",      // 01:00 EST
            next: Some("2024-03-11T06:30:00Z"), // 02:30 EDT next day
        },
        // fall back 2024-11-03: 01:30 happens twice and fires twice
        NextCase {
            spec: "30 1 * * *",
            zone: chrono_tz::America::New_York,
            after: "2024-11-03T04:00:00Z",      // 00:00 EDT
            next: Some("2024-11-03T05:30:00Z"), // 01:30 EDT
        },
        NextCase {
            spec: "30 1 * * *",
            zone: chrono_tz::America::New_York,
            after: "2024-11-03T05:30:00Z",
            next: Some("2024-11-03T06:30:00Z"), // 01:30 EST
        },
        // 09:00 local is 13:00 UTC in summer, 14:00 UTC in winter
        NextCase {
            spec: "0 9 * * *",
            zone: chrono_tz::America::New_York,
            after: "2024-11-02T14:00:00Z",
            next: Some("2024-11-03T14:00:00Z"),
        },
        // a TZ= prefix overrides the trigger's zone
        NextCase {
            spec: "CRON_TZ=Asia/Kolkata 0 6 * * *",
            zone: Tz::UTC,
            after: "2024-01-10T00:00:00Z",
            next: Some("2024-01-10T00:30:00Z"),
        },
        // never fires (Feb 31): robfig gives up after five years
        NextCase {
            spec: "0 0 31 2 *",
            zone: Tz::UTC,
            after: "2024-01-10T00:00:00Z",
            next: None,
        },
        // Feb 29 exists only in leap years
        NextCase {
            spec: "0 0 29 2 *",
            zone: Tz::UTC,
            after: "2024-03-01T00:00:00Z",
            next: Some("2028-02-29T00:00:00Z"),
        },
    ];

    #[test]
    fn next_activation_follows_robfig() {
        for case in NEXT_CASES {
            let got = schedule(case.spec).next_after(utc(case.after), case.zone);
            assert_eq!(
                got,
                case.next.map(utc),
                "{} after {}",
                case.spec,
                case.after
            );
        }
    }

    #[test]
    fn parser_quirks_match_robfig() {
        // empty list items are dropped; `*-5` is a plain star
        assert_eq!(schedule("0,,30 * * * *").minute, (1 << 0) | (1 << 30));
        assert_eq!(schedule("*-5 * * * *").minute & STAR_BIT, STAR_BIT);
        assert_eq!(schedule("+5 * * * *").minute, 1 << 5);
        for (spec, message) in [
            ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
            ("*/2/3 * * * *", "too many slashes: */2/3"),
            ("0 24 * * *", "end of range (24) above maximum (23): 24"),
            ("0 0 0 * *", "beginning of range (0) below minimum (1): 0"),
            (
                "5-1 * * * *",
                "beginning of range (5) beyond end of range (1): 5-1",
            ),
            (
                "*/0 * * * *",
                "step of range should be a positive number: */0",
            ),
            ("*/-1 * * * *", "negative number (-1) not allowed: -1"),
            (
                "0 0 * * funday",
                "failed to parse int from funday: strconv.Atoi: parsing \"funday\": invalid syntax",
            ),
            ("@daily", "parser does not accept descriptors: @daily"),
            (
                "TZ=Nowhere 0 0 * * *",
                "provided bad location Nowhere: unknown time zone Nowhere",
            ),
        ] {
            assert_eq!(
                CronSchedule::parse(spec).unwrap_err().to_string(),
                message,
                "{spec}"
            );
        }
    }

    struct WindowCase {
        name: &'static str,
        timezone: &'static str,
        start: &'static str,
        end: &'static str,
        now: &'static str,
        active: bool,
    }

    const WINDOW_CASES: &[WindowCase] = &[
        WindowCase {
            name: "Kolkata inside 06:00-20:00",
            timezone: "Asia/Kolkata",
            start: "0 6 * * *",
            end: "0 20 * * *",
            now: "2024-01-10T06:30:00Z", // 12:00 IST
            active: true,
        },
        WindowCase {
            name: "Kolkata before the window (UTC would be inside)",
            timezone: "Asia/Kolkata",
            start: "0 6 * * *",
            end: "0 20 * * *",
            now: "2024-01-10T00:00:00Z", // 05:30 IST
            active: false,
        },
        WindowCase {
            name: "Kolkata after the window (UTC would be inside)",
            timezone: "Asia/Kolkata",
            start: "0 6 * * *",
            end: "0 20 * * *",
            now: "2024-01-10T15:00:00Z", // 20:30 IST
            active: false,
        },
        WindowCase {
            name: "exactly at start is active",
            timezone: "Asia/Kolkata",
            start: "0 6 * * *",
            end: "0 20 * * *",
            now: "2024-01-10T00:30:00Z", // 06:00 IST
            active: true,
        },
        WindowCase {
            name: "exactly at end is inactive",
            timezone: "Asia/Kolkata",
            start: "0 6 * * *",
            end: "0 20 * * *",
            now: "2024-01-10T14:30:00Z", // 20:00 IST
            active: false,
        },
        WindowCase {
            name: "one second before end is active",
            timezone: "Asia/Kolkata",
            start: "0 6 * * *",
            end: "0 20 * * *",
            now: "2024-01-10T14:29:59Z",
            active: true,
        },
        WindowCase {
            name: "window across midnight, inside after midnight",
            timezone: "Etc/UTC",
            start: "0 22 * * *",
            end: "0 6 * * *",
            now: "2024-01-10T02:00:00Z",
            active: true,
        },
        WindowCase {
            name: "window across midnight, outside at noon",
            timezone: "Etc/UTC",
            start: "0 22 * * *",
            end: "0 6 * * *",
            now: "2024-01-10T12:00:00Z",
            active: false,
        },
        WindowCase {
            name: "weekdays only, Saturday is outside",
            timezone: "America/New_York",
            start: "0 9 * * MON-FRI",
            end: "0 17 * * MON-FRI",
            now: "2024-01-13T15:00:00Z", // Saturday 10:00 EST
            active: false,
        },
        WindowCase {
            name: "weekdays only, Friday inside",
            timezone: "America/New_York",
            start: "0 9 * * 1-5",
            end: "0 17 * * 1-5",
            now: "2024-01-12T15:00:00Z", // Friday 10:00 EST
            active: true,
        },
        WindowCase {
            name: "New York, the day after spring forward, 09:30 EDT is inside",
            timezone: "America/New_York",
            start: "0 9 * * *",
            end: "0 17 * * *",
            now: "2024-03-11T13:30:00Z", // 09:30 EDT (14:30 UTC would be 09:30 EST)
            active: true,
        },
        WindowCase {
            name: "New York, the day after spring forward, 08:30 EDT is outside",
            timezone: "America/New_York",
            start: "0 9 * * *",
            end: "0 17 * * *",
            now: "2024-03-11T12:30:00Z",
            active: false,
        },
        WindowCase {
            name: "New York, spring-forward night, inside a window across the gap",
            timezone: "America/New_York",
            start: "0 1 * * *",
            end: "0 4 * * *",
            now: "2024-03-10T07:30:00Z", // 03:30 EDT
            active: true,
        },
        WindowCase {
            name: "Thursday all day (KEDA's validCronMetadata) on a Thursday",
            timezone: "Etc/UTC",
            start: "0 0 * * Thu",
            end: "59 23 * * Thu",
            now: "2024-01-11T12:00:00Z",
            active: true,
        },
        WindowCase {
            name: "Thursday all day on a Friday",
            timezone: "Etc/UTC",
            start: "0 0 * * Thu",
            end: "59 23 * * Thu",
            now: "2024-01-12T12:00:00Z",
            active: false,
        },
        WindowCase {
            name: "even hours (KEDA's validCronMetadata2) at 14:10",
            timezone: "Etc/UTC",
            start: "0 */2 * * *",
            end: "0 1-23/2 * * *",
            now: "2024-01-11T14:10:00Z",
            active: true,
        },
        WindowCase {
            name: "even hours at 15:10",
            timezone: "Etc/UTC",
            start: "0 */2 * * *",
            end: "0 1-23/2 * * *",
            now: "2024-01-11T15:10:00Z",
            active: false,
        },
        WindowCase {
            name: "a start that never fires is always active (Go zero time)",
            timezone: "Etc/UTC",
            start: "0 0 31 2 *",
            end: "0 20 * * *",
            now: "2024-01-11T21:00:00Z",
            active: true,
        },
    ];

    #[tokio::test]
    async fn windows_activation_and_values() {
        for case in WINDOW_CASES {
            let cfg = config(
                &[
                    ("timezone", case.timezone),
                    ("start", case.start),
                    ("end", case.end),
                    ("desiredReplicas", "7"),
                ],
                0,
            );
            let scaler = CronScaler::build(&cfg, &ScalerContext::default()).unwrap();
            let name = scaler.metric_specs()[0].external().unwrap().name.clone();
            let sample = scaler
                .sample(SampleRequest {
                    metric: &name,
                    now: utc(case.now),
                })
                .await
                .unwrap();
            assert_eq!(sample.active, case.active, "{}", case.name);
            let expected = if case.active { 7.0 } else { 0.0 };
            assert_eq!(sample.value, expected, "{}", case.name);
        }
    }

    mod fixtures {
        include!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/support.rs"
        ));
    }

    #[test]
    fn documented_examples_parse() {
        let triggers = fixtures::triggers_of("cron.yaml", CronScaler::TYPES);
        assert_eq!(triggers.len(), 3);
        for cfg in triggers {
            Metadata::parse(&cfg).unwrap();
            CronScaler::build(&cfg, &ScalerContext::default()).unwrap();
        }
    }
}
