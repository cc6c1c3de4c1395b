//! KEDA's parameter lookup and conversions, behind one small typed reader.
//!
//! A trigger's parameters come from three maps ([`TriggerParams`]): the trigger's `metadata`,
//! the resolved TriggerAuthentication parameters (`authParams`), and the scale target
//! container's environment, reached through a metadata key `<name>FromEnv` that holds the name
//! of an environment variable. Each parameter declares which of these [`Source`]s it reads and
//! in which order; for each source in order, each name (the key, then its aliases) is tried,
//! the value is trimmed, and the first **non-empty** value wins (KEDA's `typed_config.go`).
//!
//! Conversions follow KEDA's typed config: integers and floats are decoded as JSON (`"10"`, not
//! `"10.0"` or `"+10"`; `"1e3"` but not `".5"`), booleans with Go's `strconv.ParseBool` (`1, t,
//! T, TRUE, true, True` and their false forms), durations as a Go duration string (`"30s"`,
//! `"1m30s"`) or else an integer of milliseconds, never negative. Lists split on `,` and trim
//! each item; maps are `k=v,k2=v2`; an enum value is checked item by item against its allowed
//! values.
//!
//! Errors are collected, not returned at the first one, so `windlass check` can report every
//! broken key of a trigger at once. Each error names its key.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;

/// Where a parameter's value may come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// `triggers[].metadata[<name>]`.
    TriggerMetadata,
    /// The TriggerAuthentication's resolved parameter `<name>`.
    AuthParams,
    /// The target container's env var named by `triggers[].metadata[<name>FromEnv]`.
    ResolvedEnv,
}

impl Source {
    /// KEDA's name for the source, used in its error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TriggerMetadata => "triggerMetadata",
            Self::AuthParams => "authParams",
            Self::ResolvedEnv => "resolvedEnv",
        }
    }

    /// How a user supplies a value through this source, for error hints.
    fn how_to_set(self, name: &str) -> String {
        match self {
            Self::TriggerMetadata => format!("set `metadata.{name}` on the trigger"),
            Self::AuthParams => format!(
                "add parameter `{name}` to the TriggerAuthentication named by `authenticationRef`"
            ),
            Self::ResolvedEnv => format!(
                "set `metadata.{name}FromEnv` to an env var of the scale target's container"
            ),
        }
    }
}

/// Shorthands for the common source orders.
pub mod order {
    use super::Source::{self, AuthParams, ResolvedEnv, TriggerMetadata};

    pub const M: &[Source] = &[TriggerMetadata];
    pub const A: &[Source] = &[AuthParams];
    pub const E: &[Source] = &[ResolvedEnv];
    pub const M_A: &[Source] = &[TriggerMetadata, AuthParams];
    pub const A_M: &[Source] = &[AuthParams, TriggerMetadata];
    pub const M_E: &[Source] = &[TriggerMetadata, ResolvedEnv];
    pub const M_A_E: &[Source] = &[TriggerMetadata, AuthParams, ResolvedEnv];
    pub const M_E_A: &[Source] = &[TriggerMetadata, ResolvedEnv, AuthParams];
    pub const A_M_E: &[Source] = &[AuthParams, TriggerMetadata, ResolvedEnv];
}

/// The three maps a trigger's parameters are read from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TriggerParams {
    /// `triggers[].metadata`, verbatim.
    pub metadata: BTreeMap<String, String>,
    /// Parameters resolved from the TriggerAuthentication or ClusterTriggerAuthentication.
    pub auth_params: BTreeMap<String, String>,
    /// The resolved environment of the scale target's container (name → value).
    pub resolved_env: BTreeMap<String, String>,
}

impl TriggerParams {
    /// Parameters with only trigger metadata, handy in tests.
    pub fn from_metadata<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            metadata: pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            ..Self::default()
        }
    }

    /// The trimmed, non-empty value of `name` in one source, if any.
    pub fn lookup(&self, source: Source, name: &str) -> Option<&str> {
        let raw = match source {
            Source::TriggerMetadata => self.metadata.get(name),
            Source::AuthParams => self.auth_params.get(name),
            Source::ResolvedEnv => self
                .metadata
                .get(&format!("{name}FromEnv"))
                .and_then(|var| self.resolved_env.get(var.trim())),
        }?;
        let value = raw.trim();
        (!value.is_empty()).then_some(value)
    }

    /// The first non-empty value of `names` across `sources`, in KEDA's order.
    pub fn first(&self, names: &[&str], sources: &[Source]) -> Option<&str> {
        sources
            .iter()
            .find_map(|&source| names.iter().find_map(|name| self.lookup(source, name)))
    }
}

/// One problem with one parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamError {
    /// The parameter (metadata or auth key) the problem concerns.
    pub key: String,
    /// What is wrong, in KEDA's words where KEDA has them.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl ParamError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " (fix: {hint})")?;
        }
        Ok(())
    }
}

/// Every problem found in one trigger's parameters.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ParamErrors(pub Vec<ParamError>);

impl ParamErrors {
    pub fn single(error: ParamError) -> Self {
        Self(vec![error])
    }
}

impl fmt::Display for ParamErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for error in &self.0 {
            if !first {
                f.write_str("; ")?;
            }
            first = false;
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl From<ParamError> for ParamErrors {
    fn from(error: ParamError) -> Self {
        Self::single(error)
    }
}

/// Reads typed parameters and collects every error on the way.
///
/// ```
/// use scaler_core::params::{order, ParamReader, TriggerParams};
/// let params = TriggerParams::from_metadata([("listName", "jobs"), ("listLength", "AA")]);
/// let mut reader = ParamReader::new(&params);
/// let list = reader.key("listName", order::M).required().string();
/// let length = reader.key("listLength", order::M).default("5").int();
/// assert_eq!(list.as_deref(), Some("jobs"));
/// assert_eq!(length, None);
/// let errors = reader.finish(()).unwrap_err();
/// assert_eq!(errors.0[0].key, "listLength");
/// ```
#[derive(Debug)]
pub struct ParamReader<'a> {
    params: &'a TriggerParams,
    errors: Vec<ParamError>,
}

impl<'a> ParamReader<'a> {
    pub fn new(params: &'a TriggerParams) -> Self {
        Self {
            params,
            errors: Vec::new(),
        }
    }

    /// The parameters being read, for rules that look at several keys at once.
    pub fn params(&self) -> &'a TriggerParams {
        self.params
    }

    /// Starts the lookup of parameter `name` in `sources`, in that order.
    pub fn key<'r>(&'r mut self, name: &'static str, sources: &'static [Source]) -> Lookup<'r, 'a> {
        Lookup {
            reader: self,
            name,
            aliases: &[],
            sources,
            required: false,
            default: None,
            allowed: None,
        }
    }

    /// Records a problem found by a rule across keys.
    pub fn error(&mut self, error: ParamError) {
        self.errors.push(error);
    }

    /// Whether any problem has been recorded so far.
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// `value` if no problem was recorded, else every problem.
    pub fn finish<T>(self, value: T) -> Result<T, ParamErrors> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(ParamErrors(self.errors))
        }
    }
}

/// The lookup of one parameter; finish it with a conversion such as [`Lookup::int`].
#[derive(Debug)]
pub struct Lookup<'r, 'a> {
    reader: &'r mut ParamReader<'a>,
    name: &'static str,
    aliases: &'static [&'static str],
    sources: &'static [Source],
    required: bool,
    default: Option<&'static str>,
    allowed: Option<&'static [&'static str]>,
}

impl Lookup<'_, '_> {
    /// Other names tried after the main one, in each source.
    pub fn aliases(mut self, aliases: &'static [&'static str]) -> Self {
        self.aliases = aliases;
        self
    }

    /// A missing value is an error.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// The value used when every source is empty (it is converted and checked like any value).
    pub fn default(mut self, default: &'static str) -> Self {
        self.default = Some(default);
        self
    }

    /// Every comma-separated item of the value must be one of `allowed`.
    pub fn one_of(mut self, allowed: &'static [&'static str]) -> Self {
        self.allowed = Some(allowed);
        self
    }

    /// The raw value after lookup, default, required and enum checks.
    fn raw(&mut self) -> Option<String> {
        let mut names = Vec::with_capacity(1 + self.aliases.len());
        names.push(self.name);
        names.extend_from_slice(self.aliases);
        let found = self
            .reader
            .params
            .first(&names, self.sources)
            .map(str::to_owned)
            .or_else(|| self.default.map(str::to_owned));
        let Some(value) = found else {
            if self.required {
                let sources: Vec<&str> = self.sources.iter().map(|s| s.as_str()).collect();
                let hint = self
                    .sources
                    .iter()
                    .map(|s| s.how_to_set(self.name))
                    .collect::<Vec<_>>()
                    .join(", or ");
                self.reader.error(
                    ParamError::new(
                        self.name,
                        format!(
                            "missing required parameter {:?} in [{}]",
                            self.name,
                            sources.join(" ")
                        ),
                    )
                    .with_hint(hint),
                );
            }
            return None;
        };
        if let Some(allowed) = self.allowed {
            let bad = value
                .split(',')
                .map(str::trim)
                .any(|item| !allowed.contains(&item));
            if bad {
                self.reader.error(
                    ParamError::new(
                        self.name,
                        format!(
                            "parameter {:?} value {value:?} must be one of [{}]",
                            self.name,
                            allowed.join(" ")
                        ),
                    )
                    .with_hint(format!("use one of: {}", allowed.join(", "))),
                );
                return None;
            }
        }
        Some(value)
    }

    fn invalid(&mut self, value: &str, problem: impl fmt::Display, hint: &str) {
        self.reader.error(
            ParamError::new(
                self.name,
                format!(
                    "unable to set param {:?} value {value:?}: {problem}",
                    self.name
                ),
            )
            .with_hint(hint.to_owned()),
        );
    }

    /// The value as text.
    pub fn string(mut self) -> Option<String> {
        self.raw()
    }

    /// The value decoded as a JSON scalar, as KEDA's typed config does.
    fn json<T: DeserializeOwned>(mut self, expected: &str) -> Option<T> {
        let value = self.raw()?;
        match serde_json::from_str::<T>(&value) {
            Ok(parsed) => Some(parsed),
            Err(_) => {
                self.invalid(
                    &value,
                    format!("not {expected}"),
                    &format!("write {expected}"),
                );
                None
            }
        }
    }

    /// A JSON integer, such as `"10"` (`"10.5"` and `"1e3"` are errors).
    pub fn int(self) -> Option<i64> {
        self.json("an integer (like \"10\")")
    }

    /// A JSON number, such as `"0.5"` or `"1e3"`.
    pub fn float(self) -> Option<f64> {
        self.json("a number (like \"10\" or \"0.5\")")
    }

    /// A boolean with Go's `strconv.ParseBool` rules (`1, t, T, TRUE, true, True` and their
    /// false forms), as KEDA's typed config reads booleans.
    pub fn bool(mut self) -> Option<bool> {
        let value = self.raw()?;
        match parse_go_bool(&value) {
            Some(parsed) => Some(parsed),
            None => {
                self.invalid(&value, "not a boolean", "write \"true\" or \"false\"");
                None
            }
        }
    }

    /// A duration as KEDA's typed config reads `time.Duration` fields: a Go duration string
    /// (`"30s"`, `"1m30s"`, `"1.5h"`), else an integer of milliseconds (`"1000"`); negative
    /// values are errors. See [`parse_keda_duration`].
    pub fn duration(mut self) -> Option<Duration> {
        let value = self.raw()?;
        match parse_keda_duration(&value) {
            Ok(parsed) => Some(parsed),
            Err(problem) => {
                self.invalid(
                    &value,
                    problem,
                    "write a duration like \"30s\" or a whole number of milliseconds like \"1000\"",
                );
                None
            }
        }
    }

    /// A comma-separated list; each item trimmed.
    pub fn list(mut self) -> Option<Vec<String>> {
        let value = self.raw()?;
        Some(
            value
                .split(',')
                .map(|item| item.trim().to_owned())
                .collect(),
        )
    }

    /// `k1=v1,k2=v2`; keys and values trimmed.
    pub fn map(mut self) -> Option<BTreeMap<String, String>> {
        let value = self.raw()?;
        let mut map = BTreeMap::new();
        for pair in value.split(',').map(str::trim) {
            let parts: Vec<&str> = pair.split('=').collect();
            let [key, val] = parts[..] else {
                self.invalid(
                    &value,
                    format!("expected format key=value, got {pair:?}"),
                    "write comma-separated key=value pairs, like \"a=1,b=2\"",
                );
                return None;
            };
            map.insert(key.trim().to_owned(), val.trim().to_owned());
        }
        Some(map)
    }

    /// Any other conversion; `convert` returns a message for the error on failure.
    pub fn parse_with<T>(
        mut self,
        hint: &str,
        convert: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let value = self.raw()?;
        match convert(&value) {
            Ok(parsed) => Some(parsed),
            Err(problem) => {
                self.invalid(&value, problem, hint);
                None
            }
        }
    }
}

/// KEDA's `time.Duration` parameters: Go's `time.ParseDuration` first, else Go's
/// `strconv.ParseInt` as milliseconds; negative durations are rejected. The error texts are
/// KEDA's.
pub fn parse_keda_duration(value: &str) -> Result<Duration, String> {
    if let Some(nanos) = parse_go_duration(value) {
        return u64::try_from(nanos)
            .map(Duration::from_nanos)
            .map_err(|_| format!("duration cannot be negative: {value:?}"));
    }
    match parse_go_int(value) {
        Some(ms) if ms < 0 => Err(format!("duration cannot be negative: {ms} milliseconds")),
        Some(ms) => Ok(Duration::from_millis(ms.unsigned_abs())),
        None => Err(format!(
            "unable to parse duration value {value:?}: must be either a duration string (e.g. '30s', '5m') or a number of milliseconds"
        )),
    }
}

/// Go's `strconv.ParseInt(value, 10, 64)`: optional sign, ASCII digits, within `i64`.
fn parse_go_int(value: &str) -> Option<i64> {
    let digits = value.strip_prefix(['+', '-']).unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.strip_prefix('+').unwrap_or(value).parse().ok()
}

/// Go's `time.ParseDuration`, in nanoseconds; `None` where Go returns an error (bad syntax,
/// unknown unit, or beyond `i64` nanoseconds).
///
/// A duration is an optional sign and one or more `<number><unit>` parts, the number a decimal
/// with an optional fraction (`1`, `1.5`, `.5`, `5.`), the unit one of `ns`, `us` (`µs`), `ms`,
/// `s`, `m`, `h`; a lone `0` needs no unit.
pub fn parse_go_duration(text: &str) -> Option<i64> {
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    // Nanoseconds as an unsigned magnitude; Go allows exactly 2^63 for a negative duration.
    let limit: u64 = 1 << 63;
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let whole_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let whole_digits = &rest[..whole_end];
        rest = &rest[whole_end..];
        let mut whole: u64 = 0;
        for digit in whole_digits.bytes() {
            whole = whole
                .checked_mul(10)
                .and_then(|w| w.checked_add(u64::from(digit - b'0')))
                .filter(|&w| w <= limit)?;
        }
        // The fraction keeps the digits that fit; later ones only lose precision, as in Go.
        let mut fraction: u64 = 0;
        let mut scale: f64 = 1.0;
        if let Some(after_dot) = rest.strip_prefix('.') {
            let end = after_dot
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(after_dot.len());
            let mut overflowed = false;
            for digit in after_dot[..end].bytes() {
                if overflowed {
                    continue;
                }
                match fraction
                    .checked_mul(10)
                    .and_then(|f| f.checked_add(u64::from(digit - b'0')))
                    .filter(|&f| f <= limit)
                {
                    Some(next) => {
                        fraction = next;
                        scale *= 10.0;
                    }
                    None => overflowed = true,
                }
            }
            rest = &after_dot[end..];
            if whole_digits.is_empty() && end == 0 {
                return None;
            }
        } else if whole_digits.is_empty() {
            return None;
        }
        let unit_end = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit: u64 = match &rest[..unit_end] {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        rest = &rest[unit_end..];
        let mut part = whole.checked_mul(unit).filter(|&p| p <= limit)?;
        if fraction > 0 {
            // Go adds float64(fraction) * (float64(unit) / scale), truncated.
            let extra = (fraction as f64 * (unit as f64 / scale)) as u64;
            part = part.checked_add(extra).filter(|&p| p <= limit)?;
        }
        total = total.checked_add(part).filter(|&t| t <= limit)?;
    }
    if negative {
        Some(0i64.wrapping_sub_unsigned(total))
    } else {
        i64::try_from(total).ok()
    }
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> TriggerParams {
        TriggerParams {
            metadata: BTreeMap::from([
                ("host".into(), "  ".into()),
                ("hostFromEnv".into(), "REDIS_HOST".into()),
                ("password".into(), "".into()),
                ("count".into(), " 12 ".into()),
                ("ratio".into(), "1e3".into()),
                ("flag".into(), "True".into()),
                ("policy".into(), "latest".into()),
                ("headers".into(), "a=1, b = 2".into()),
            ]),
            auth_params: BTreeMap::from([("password".into(), "secret".into())]),
            resolved_env: BTreeMap::from([("REDIS_HOST".into(), "redis.local".into())]),
        }
    }

    #[test]
    fn first_non_empty_value_wins_in_source_order() {
        let p = params();
        let mut r = ParamReader::new(&p);
        assert_eq!(
            r.key("host", order::M_E).string().as_deref(),
            Some("redis.local")
        );
        assert_eq!(
            r.key("password", order::M_E_A).string().as_deref(),
            Some("secret")
        );
        assert_eq!(r.key("missing", order::M).string(), None);
        assert!(r.finish(()).is_ok());
    }

    #[test]
    fn aliases_are_tried_after_the_main_name_in_each_source() {
        let p = TriggerParams::from_metadata([("addresses", "a:1"), ("address", "")]);
        let mut r = ParamReader::new(&p);
        let got = r.key("address", order::M).aliases(&["addresses"]).string();
        assert_eq!(got.as_deref(), Some("a:1"));
    }

    #[test]
    fn conversions_follow_json_rules() {
        let p = params();
        let mut r = ParamReader::new(&p);
        assert_eq!(r.key("count", order::M).int(), Some(12));
        assert_eq!(r.key("ratio", order::M).float(), Some(1000.0));
        assert_eq!(r.key("ratio", order::M).int(), None);
        assert_eq!(r.key("flag", order::M).bool(), Some(true));
        assert_eq!(r.key("policy", order::M).bool(), None);
        let errors = r.finish(()).unwrap_err().0;
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].key, "ratio");
        assert_eq!(errors[1].key, "policy");
    }

    #[test]
    fn missing_required_names_the_sources_and_the_fix() {
        let p = TriggerParams::default();
        let mut r = ParamReader::new(&p);
        assert_eq!(r.key("listName", order::M).required().string(), None);
        let errors = r.finish(()).unwrap_err().0;
        assert_eq!(
            errors[0].message,
            "missing required parameter \"listName\" in [triggerMetadata]"
        );
        assert!(
            errors[0]
                .hint
                .as_deref()
                .unwrap_or_default()
                .contains("metadata.listName")
        );
    }

    #[test]
    fn defaults_and_enums() {
        let p = params();
        let mut r = ParamReader::new(&p);
        assert_eq!(r.key("absent", order::M).default("5").int(), Some(5));
        assert_eq!(
            r.key("policy", order::M)
                .one_of(&["latest", "earliest"])
                .string()
                .as_deref(),
            Some("latest")
        );
        assert_eq!(r.key("count", order::M).one_of(&["latest"]).string(), None);
        let errors = r.finish(()).unwrap_err().0;
        assert!(errors[0].message.contains("must be one of [latest]"));
    }

    #[test]
    fn maps_and_lists() {
        let p = params();
        let mut r = ParamReader::new(&p);
        let map = r.key("headers", order::M).map().unwrap();
        assert_eq!(map.get("b").map(String::as_str), Some("2"));
        assert_eq!(
            r.key("headers", order::M).list().unwrap(),
            vec!["a=1".to_owned(), "b = 2".to_owned()]
        );
        assert!(r.finish(()).is_ok());
    }

    #[test]
    fn go_durations() {
        for (text, nanos) in [
            ("0", Some(0)),
            ("-0", Some(0)),
            ("30s", Some(30_000_000_000)),
            ("1m30s", Some(90_000_000_000)),
            ("1.5h", Some(5_400_000_000_000)),
            (".5s", Some(500_000_000)),
            ("5.s", Some(5_000_000_000)),
            ("-1s", Some(-1_000_000_000)),
            ("+2ms", Some(2_000_000)),
            ("300ms", Some(300_000_000)),
            ("2us", Some(2_000)),
            ("2\u{b5}s", Some(2_000)),
            ("1h2m3s4ms5us6ns", Some(3_723_004_005_006)),
            ("1.000000001s", Some(1_000_000_001)),
            ("2562047h47m16.854775807s", Some(i64::MAX)),
            ("-2562047h47m16.854775808s", Some(i64::MIN)),
            ("2562047h47m16.854775808s", None),
            ("9223372036854775808ns", None),
            ("1000", None),
            ("1d", None),
            ("", None),
            ("-", None),
            ("s", None),
            (".s", None),
            ("1.2.3s", None),
            ("1s ", None),
        ] {
            assert_eq!(parse_go_duration(text), nanos, "{text}");
        }
    }

    #[test]
    fn durations_follow_kedas_typed_config() {
        let p = TriggerParams::from_metadata([
            ("go", "1m30s"),
            ("millis", "1500"),
            ("plus", "+20"),
            ("zero", "0"),
            ("negativeMillis", "-1"),
            ("negativeGo", "-5s"),
            ("word", "a"),
            ("float", "1.5"),
        ]);
        let mut r = ParamReader::new(&p);
        assert_eq!(
            r.key("go", order::M).duration(),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            r.key("millis", order::M).duration(),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            r.key("plus", order::M).duration(),
            Some(Duration::from_millis(20))
        );
        assert_eq!(r.key("zero", order::M).duration(), Some(Duration::ZERO));
        assert_eq!(r.key("absent", order::M).duration(), None);
        assert_eq!(r.key("negativeMillis", order::M).duration(), None);
        assert_eq!(r.key("negativeGo", order::M).duration(), None);
        assert_eq!(r.key("word", order::M).duration(), None);
        assert_eq!(r.key("float", order::M).duration(), None);
        let errors = r.finish(()).unwrap_err().0;
        let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "unable to set param \"negativeMillis\" value \"-1\": duration cannot be negative: -1 milliseconds",
                "unable to set param \"negativeGo\" value \"-5s\": duration cannot be negative: \"-5s\"",
                "unable to set param \"word\" value \"a\": unable to parse duration value \"a\": must be either a duration string (e.g. '30s', '5m') or a number of milliseconds",
                "unable to set param \"float\" value \"1.5\": unable to parse duration value \"1.5\": must be either a duration string (e.g. '30s', '5m') or a number of milliseconds",
            ]
        );
        assert!(errors.iter().all(|e| e.hint.is_some()));
    }
}
