//! `advanced.scalingModifiers`: one formula over the triggers' values becomes the only external
//! metric (`composite-metric`) the HPA sees.
//!
//! KEDA's rule, as reproduced here:
//! - **Fields read**: `spec.advanced.scalingModifiers.{formula, target, activationTarget,
//!   metricType}`, `spec.triggers[].{name, type}`, and for the nil case `spec.fallback.replicas`.
//!   The modifiers are "in use" as soon as any of the four fields is non-empty.
//! - **Rewrite** (`castToFloatIfNecessary`): a formula containing `??` becomes
//!   `let _kedaCompositeResult = (<formula>); _kedaCompositeResult == nil ? nil : float(_kedaCompositeResult)`
//!   (unless it already starts with that binding), so a formula may evaluate to nil; any other
//!   formula not starting with `float(` is wrapped in `float(...)`.
//! - **Validation** (`ValidateAndCompileScalingModifiers`): the formula is mandatory, `target` is
//!   mandatory with a formula and must parse as a float > 0, `metricType: Utilization` is
//!   rejected, and the rewritten formula must compile and run with every *named* trigger that is
//!   not `cpu`/`memory` bound to `-1`.
//! - **Evaluation**: each trigger's current value is bound to its `name` (nil for a trigger whose
//!   fallback behaviour `scalingModifiers` is past its failure threshold). The result must be a
//!   float; nil means `fallback.replicas × target` (an error without `fallback`). The composite
//!   value is truncated (not rounded) to milli units, as KEDA's `SetMilli(int64(out*1000))` does.
//!   While another fallback behaviour is active the formula is bypassed and the first fallback
//!   value is the composite value.
//! - **Activity**: composite value > `activationTarget` (default 0), see [`crate::activity`].
//!
//! Engine: the `expr-lang` crate, a Rust implementation of the `expr` language KEDA uses. Known
//! differences from Go's `expr`, and what this module does about them:
//! - `let` is only a top-level statement in `expr-lang`; Go also accepts it inside parentheses
//!   and call arguments, which KEDA's rewrite produces for a formula starting with `let`
//!   (`float(let x = a; x * 2)`). [`rewrite_formula`] therefore hoists the formula's *leading*
//!   `let` statements in front of the wrapper; the result is the same value. A `let` nested
//!   anywhere else (for example `a + (let x = 1; x)`) still fails to compile here while Go
//!   accepts it.
//! - Go compiles against a typed environment and rejects unknown names at compile time even in
//!   branches the dummy run does not take; `expr-lang` only fails when it evaluates them.
//!   [`compile`] adds a lexical check of the identifiers the formula reads so that an unnamed or
//!   unknown trigger is still reported during validation.
//! - Go rejects mixing `??` with other binary operators without parentheses (`a ?? b + 1`);
//!   `expr-lang` accepts it. Such formulas validate here but not in KEDA.
//! - Type errors Go finds at compile time (`float(a > 1)`) surface here as evaluation errors
//!   of the dummy run; either way validation fails.

use std::collections::BTreeMap;
use std::fmt;

use expr::{Context, Program, Value};
use thiserror::Error;

use crate::metric::MetricTargetType;

/// The variable KEDA binds a `??` formula's raw result to.
const COMPOSITE_RESULT_VARIABLE: &str = "_kedaCompositeResult";

/// The value every trigger variable gets during validation.
const VALIDATION_DUMMY_VALUE: f64 = -1.0;

/// `spec.advanced.scalingModifiers`, as written (all strings, as in the CRD).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScalingModifiers {
    /// `formula`: an `expr` expression over trigger names.
    pub formula: String,
    /// `target`: the composite metric's HPA target, a number written as a string.
    pub target: String,
    /// `activationTarget`: the composite value must exceed it to activate; empty means 0.
    pub activation_target: String,
    /// `metricType`: `AverageValue` (default when `None`) or `Value`.
    pub metric_type: Option<MetricTargetType>,
}

impl ScalingModifiers {
    /// KEDA's `IsUsingModifiers`: any of the four fields is set.
    pub fn is_used(&self) -> bool {
        !self.formula.is_empty()
            || !self.target.is_empty()
            || !self.activation_target.is_empty()
            || self.metric_type.is_some()
    }

    /// The composite metric's target type (`AverageValue` unless `metricType` says otherwise).
    pub fn target_type(&self) -> MetricTargetType {
        self.metric_type.unwrap_or_default()
    }

    /// `target` as a float (`strconv.ParseFloat`), if it parses.
    pub fn target_value(&self) -> Option<f64> {
        parse_go_float(&self.target)
    }

    /// `activationTarget` as a float; empty means 0.
    pub fn activation_target_value(&self) -> Result<f64, ModifiersError> {
        if self.activation_target.is_empty() {
            return Ok(0.0);
        }
        parse_go_float(&self.activation_target).ok_or_else(|| ModifiersError::ActivationTarget {
            value: self.activation_target.clone(),
        })
    }
}

/// A trigger as the formula sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FormulaTrigger<'a> {
    /// `triggers[].name` (empty when unnamed).
    pub name: &'a str,
    /// `triggers[].type`.
    pub trigger_type: &'a str,
}

/// Why `scalingModifiers` are invalid or a formula could not be evaluated.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ModifiersError {
    /// A formula is required once any scalingModifiers field is set.
    #[error("error ScalingModifiers.Formula is mandatory")]
    MissingFormula,
    /// The formula has no target.
    #[error("error validating formula in ScalingModifiers\nformula is given but target is empty")]
    MissingTarget,
    /// The formula does not compile or fails on the dummy values.
    #[error("error validating formula in ScalingModifiers\nformula {formula:?}: {problem}")]
    Formula {
        /// The formula as the user wrote it.
        formula: String,
        /// What the expression engine (or the name check) reported.
        problem: String,
    },
    /// `target` is not a number > 0.
    #[error(
        "error validating target in ScalingModifiers\nerror converting target for scalingModifiers (string->float) to valid target: {value:?}"
    )]
    Target {
        /// The `target` as written.
        value: String,
    },
    /// `metricType: Utilization`.
    #[error(
        "error validating target in ScalingModifiers\nerror trigger type is Utilization, but it needs to be AverageValue or Value for external metrics"
    )]
    UtilizationMetricType,
    /// `activationTarget` is not a number.
    #[error("scalingModifiers.ActivationTarget parsing error: {value:?} is not a number")]
    ActivationTarget {
        /// The `activationTarget` as written.
        value: String,
    },
    /// Running the formula on live values failed.
    #[error("error trying to run custom formula: {0}")]
    Run(String),
    /// The formula returned something other than a float (or nil).
    #[error("formula returned non-float result {0}")]
    NonFloat(String),
    /// The formula returned nil and there is no `fallback` to replace it.
    #[error("scalingModifiers formula evaluated to nil but no fallback is configured")]
    NilWithoutFallback,
}

/// A formula rewritten as KEDA does and compiled once.
#[derive(Clone)]
pub struct CompiledFormula {
    /// The formula as the user wrote it.
    pub source: String,
    /// The text actually compiled (see [`rewrite_formula`]).
    pub rewritten: String,
    program: Program,
}

impl fmt::Debug for CompiledFormula {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledFormula")
            .field("source", &self.source)
            .field("rewritten", &self.rewritten)
            .finish_non_exhaustive()
    }
}

/// KEDA's `castToFloatIfNecessary`, plus the hoisting of leading `let` statements that
/// `expr-lang` needs (see the module docs).
pub fn rewrite_formula(formula: &str) -> String {
    if formula.contains("??") {
        if formula.starts_with("let _kedaCompositeResult = ") {
            return formula.to_owned();
        }
        let (lets, body) = split_leading_lets(formula);
        return format!(
            "{lets}let {COMPOSITE_RESULT_VARIABLE} = ({body}); {COMPOSITE_RESULT_VARIABLE} == nil ? nil : float({COMPOSITE_RESULT_VARIABLE})"
        );
    }
    if formula.starts_with("float(") {
        return formula.to_owned();
    }
    let (lets, body) = split_leading_lets(formula);
    format!("{lets}float({body})")
}

/// Splits `let a = …; let b = …; body` into (`"let a = …; let b = …; "`, `"body"`).
fn split_leading_lets(formula: &str) -> (String, &str) {
    let mut lets = String::new();
    let mut rest = formula;
    loop {
        let trimmed = rest.trim_start();
        let is_let =
            trimmed.starts_with("let") && trimmed[3..].starts_with(|c: char| c.is_whitespace());
        if !is_let {
            return (lets, rest);
        }
        let Some(end) = top_level_semicolon(trimmed) else {
            return (lets, rest);
        };
        lets.push_str(&trimmed[..=end]);
        lets.push(' ');
        rest = &trimmed[end + 1..];
    }
}

/// The byte index of the first `;` outside brackets and string literals.
fn top_level_semicolon(text: &str) -> Option<usize> {
    let mut depth = 0_i32;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (index, c) in text.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            ';' if depth == 0 => return Some(index),
            _ => {}
        }
    }
    None
}

/// Names the expression language defines itself, which are never trigger variables.
const KEYWORDS: &[&str] = &[
    "true",
    "false",
    "nil",
    "let",
    "in",
    "not",
    "and",
    "or",
    "matches",
    "contains",
    "startsWith",
    "endsWith",
    "if",
    "else",
    "$env",
];

/// The free variables a formula reads, found lexically: identifiers outside string literals
/// that are not called (`max(`), not members (`.x`, `?.x`), not closure pointers (`#x`), not map
/// keys (`{x: …}`), not keywords and not bound by `let`.
pub fn referenced_names(formula: &str) -> Vec<String> {
    let chars: Vec<char> = formula.chars().collect();
    let mut names: Vec<String> = Vec::new();
    let mut bound: Vec<String> = Vec::new();
    // Innermost open bracket and whether the previous significant token opened it or was a comma.
    let mut brackets: Vec<char> = Vec::new();
    let mut previous: Option<char> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            let quote = c;
            i += 1;
            while i < chars.len() && chars[i] != quote {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            previous = Some('"');
            continue;
        }
        if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            // A fraction like `1.5` must not make `5` look like a member.
            if i < chars.len()
                && chars[i] == '.'
                && chars.get(i + 1).is_some_and(char::is_ascii_digit)
            {
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
            previous = Some('0');
            continue;
        }
        if c.is_alphabetic() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            let next_char = chars.get(next).copied();
            let is_member = matches!(previous, Some('.') | Some('#'));
            let is_call = next_char == Some('(');
            let is_map_key = brackets.last() == Some(&'{')
                && matches!(previous, Some('{') | Some(','))
                && next_char == Some(':');
            if word == "let" {
                // `let name =`: remember the binding.
                let mut j = next;
                let bound_start = j;
                while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                bound.push(chars[bound_start..j].iter().collect());
                i = j;
                previous = Some('=');
                continue;
            }
            if !is_member
                && !is_call
                && !is_map_key
                && !KEYWORDS.contains(&word.as_str())
                && !bound.contains(&word)
                && !names.contains(&word)
            {
                names.push(word);
            }
            previous = Some('a');
            continue;
        }
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        match c {
            '(' | '[' | '{' => brackets.push(c),
            ')' | ']' | '}' => {
                brackets.pop();
            }
            _ => {}
        }
        previous = Some(c);
        i += 1;
    }
    names
}

/// Whether a trigger type is one whose metric is not external (never bound in formulas).
fn is_resource_trigger(trigger_type: &str) -> bool {
    matches!(trigger_type, "cpu" | "memory")
}

/// Rewrites and compiles `formula`, then checks it as KEDA's webhook does: every name it reads
/// must be one of `variables`, and a run with all of them bound to `-1` must succeed.
pub fn compile(formula: &str, variables: &[&str]) -> Result<CompiledFormula, ModifiersError> {
    let rewritten = rewrite_formula(formula);
    let formula_error = |problem: String| ModifiersError::Formula {
        formula: formula.to_owned(),
        problem,
    };
    let program = expr::compile(&rewritten).map_err(|e| formula_error(e.to_string()))?;
    for name in referenced_names(&rewritten) {
        if !variables.contains(&name.as_str()) {
            return Err(formula_error(format!(
                "unknown name {name}: every variable must be the `name` of a trigger that is not cpu or memory"
            )));
        }
    }
    let compiled = CompiledFormula {
        source: formula.to_owned(),
        rewritten,
        program,
    };
    let dummy: BTreeMap<String, Option<f64>> = variables
        .iter()
        .map(|name| ((*name).to_owned(), Some(VALIDATION_DUMMY_VALUE)))
        .collect();
    compiled
        .evaluate(&dummy)
        .map_err(|e| formula_error(e.to_string()))?;
    Ok(compiled)
}

/// KEDA's `ValidateAndCompileScalingModifiers`: checks all four fields against the triggers and
/// returns the compiled formula.
pub fn validate(
    modifiers: &ScalingModifiers,
    triggers: &[FormulaTrigger<'_>],
) -> Result<CompiledFormula, ModifiersError> {
    if modifiers.formula.is_empty() {
        return Err(ModifiersError::MissingFormula);
    }
    if modifiers.target.is_empty() {
        return Err(ModifiersError::MissingTarget);
    }
    let variables: Vec<&str> = triggers
        .iter()
        .filter(|t| !is_resource_trigger(t.trigger_type) && !t.name.is_empty())
        .map(|t| t.name)
        .collect();
    let compiled = compile(&modifiers.formula, &variables)?;
    match modifiers.target_value() {
        Some(target) if target > 0.0 => {}
        _ => {
            return Err(ModifiersError::Target {
                value: modifiers.target.clone(),
            });
        }
    }
    if modifiers.metric_type == Some(MetricTargetType::Utilization) {
        return Err(ModifiersError::UtilizationMetricType);
    }
    Ok(compiled)
}

impl CompiledFormula {
    /// Runs the formula with `values` (trigger name → value, `None` = nil). `Ok(None)` means the
    /// formula evaluated to nil (possible only with `??`).
    pub fn evaluate(
        &self,
        values: &BTreeMap<String, Option<f64>>,
    ) -> Result<Option<f64>, ModifiersError> {
        let mut context = Context::default();
        for (name, value) in values {
            let value = match value {
                Some(v) => Value::Float(*v),
                None => Value::Nil,
            };
            context.insert(name.clone(), value);
        }
        let result =
            expr::run(&self.program, &context).map_err(|e| ModifiersError::Run(e.to_string()))?;
        match result {
            Value::Float(v) => Ok(Some(v)),
            Value::Nil => Ok(None),
            other => Err(ModifiersError::NonFloat(format!("{other:?}"))),
        }
    }
}

/// What the composite metric is computed from on one query.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CompositeInputs {
    /// Trigger name → its value; `None` for a trigger that is nil to the formula (fallback
    /// behaviour `scalingModifiers` past its threshold).
    pub values: BTreeMap<String, Option<f64>>,
    /// The values of metrics whose fallback (any behaviour but `scalingModifiers`) is active, in
    /// trigger order; when non-empty the formula is bypassed and the first one is used.
    pub fallback_values: Vec<f64>,
    /// `fallback.replicas` when `fallback` is present, used when the formula yields nil.
    pub fallback_replicas: Option<i32>,
    /// The composite metric's target (`scalingModifiers.target`).
    pub target: f64,
}

/// The composite metric's value, truncated to milli units as KEDA does.
pub fn composite_value(
    formula: &CompiledFormula,
    inputs: &CompositeInputs,
) -> Result<f64, ModifiersError> {
    if let Some(first) = inputs.fallback_values.first() {
        return Ok(*first);
    }
    let out = match formula.evaluate(&inputs.values)? {
        Some(value) => value,
        None => {
            let replicas = inputs
                .fallback_replicas
                .ok_or(ModifiersError::NilWithoutFallback)?;
            f64::from(replicas) * inputs.target
        }
    };
    Ok(truncate_to_milli(out))
}

/// `int64(out * 1000) / 1000`: truncation toward zero at milli precision (NaN becomes 0).
pub fn truncate_to_milli(value: f64) -> f64 {
    if value.is_nan() {
        return 0.0;
    }
    let milli = (value * 1000.0).trunc();
    // Go saturates out-of-range conversions differently per platform; clamp to i64's range.
    let milli = milli.clamp(i64::MIN as f64, i64::MAX as f64) as i64;
    milli as f64 / 1000.0
}

/// Go's `strconv.ParseFloat` for the forms users write (`"2"`, `"2.5"`, `"1e3"`, `".5"`).
fn parse_go_float(text: &str) -> Option<f64> {
    let text = text.replace('_', "");
    if text.is_empty() || text.trim() != text {
        return None;
    }
    text.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, Option<f64>)]) -> BTreeMap<String, Option<f64>> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    struct RewriteCase {
        name: &'static str,
        formula: &'static str,
        expected: &'static str,
    }

    #[test]
    fn formulas_are_rewritten_like_keda() {
        let cases = [
            RewriteCase {
                name: "plain formula is wrapped",
                formula: "a + b",
                expected: "float(a + b)",
            },
            RewriteCase {
                name: "formula already starting with float( is kept",
                formula: "float(a) + b",
                expected: "float(a) + b",
            },
            RewriteCase {
                name: "coalescing formula becomes a let binding",
                formula: "a ?? b",
                expected: "let _kedaCompositeResult = (a ?? b); _kedaCompositeResult == nil ? nil : float(_kedaCompositeResult)",
            },
            RewriteCase {
                name: "already rewritten coalescing formula is kept",
                formula: "let _kedaCompositeResult = (a ?? 1); _kedaCompositeResult == nil ? nil : float(_kedaCompositeResult)",
                expected: "let _kedaCompositeResult = (a ?? 1); _kedaCompositeResult == nil ? nil : float(_kedaCompositeResult)",
            },
            RewriteCase {
                name: "leading let is hoisted out of the float wrapper",
                formula: "let x = a * 2; x + 1",
                expected: "let x = a * 2; float( x + 1)",
            },
        ];
        for case in cases {
            assert_eq!(
                rewrite_formula(case.formula),
                case.expected,
                "{}",
                case.name
            );
        }
    }

    struct EvalCase {
        name: &'static str,
        formula: &'static str,
        values: &'static [(&'static str, Option<f64>)],
        expected: Option<f64>,
    }

    #[test]
    fn documented_formulas_evaluate() {
        let cases = [
            EvalCase {
                name: "docs: compose average value",
                formula: "(trig_one + trig_two)/2",
                values: &[("trig_one", Some(3.0)), ("trig_two", Some(2.0))],
                expected: Some(2.5),
            },
            EvalCase {
                name: "docs: ternary operator, true branch",
                formula: "trig_one > 2 ? trig_one + trig_two : 1",
                values: &[("trig_one", Some(3.0)), ("trig_two", Some(1.5))],
                expected: Some(4.5),
            },
            EvalCase {
                name: "docs: ternary operator, integer branch is cast to float",
                formula: "trig_one > 2 ? trig_one + trig_two : 1",
                values: &[("trig_one", Some(1.0)), ("trig_two", Some(1.5))],
                expected: Some(1.0),
            },
            EvalCase {
                name: "docs: count function",
                formula: "count([trig_one,trig_two,trig_three],{#>1}) > 1 ? 5 : 0",
                values: &[
                    ("trig_one", Some(3.0)),
                    ("trig_two", Some(1.5)),
                    ("trig_three", Some(0.5)),
                ],
                expected: Some(5.0),
            },
            EvalCase {
                name: "docs: nested conditions, both true",
                formula: "trig_one < 2 ? trig_one+trig_two >= 2 ? 5 : 10 : 0",
                values: &[("trig_one", Some(1.0)), ("trig_two", Some(1.0))],
                expected: Some(5.0),
            },
            EvalCase {
                name: "docs: nested conditions, only the first true",
                formula: "trig_one < 2 ? trig_one+trig_two >= 2 ? 5 : 10 : 0",
                values: &[("trig_one", Some(0.5)), ("trig_two", Some(1.0))],
                expected: Some(10.0),
            },
            EvalCase {
                name: "docs: nested conditions, first false",
                formula: "trig_one < 2 ? trig_one+trig_two >= 2 ? 5 : 10 : 0",
                values: &[("trig_one", Some(3.0)), ("trig_two", Some(1.0))],
                expected: Some(0.0),
            },
            EvalCase {
                name: "formula_test: trigger1 + trigger2",
                formula: "trigger1 + trigger2",
                values: &[("trigger1", Some(2.0)), ("trigger2", Some(5.0))],
                expected: Some(7.0),
            },
            EvalCase {
                name: "max and min builtins",
                formula: "max(a, b) - min(a, b)",
                values: &[("a", Some(7.0)), ("b", Some(3.0))],
                expected: Some(4.0),
            },
            EvalCase {
                name: "explicit float",
                formula: "float(a) / 2",
                values: &[("a", Some(3.0))],
                expected: Some(1.5),
            },
            EvalCase {
                name: "let binding at the front",
                formula: "let doubled = a * 2; doubled + 1",
                values: &[("a", Some(3.0))],
                expected: Some(7.0),
            },
            EvalCase {
                name: "coalesce picks the first non-nil trigger",
                formula: "a ?? b ?? 8",
                values: &[("a", None), ("b", Some(4.0))],
                expected: Some(4.0),
            },
            EvalCase {
                name: "coalesce falls back to the constant",
                formula: "a ?? b ?? 8",
                values: &[("a", None), ("b", None)],
                expected: Some(8.0),
            },
            EvalCase {
                name: "coalesce over nils only is nil",
                formula: "trigger1 ?? trigger2",
                values: &[("trigger1", None), ("trigger2", None)],
                expected: None,
            },
        ];
        for case in cases {
            let vars: Vec<&str> = case.values.iter().map(|(name, _)| *name).collect();
            let compiled = compile(case.formula, &vars)
                .unwrap_or_else(|e| panic!("{}: does not compile: {e}", case.name));
            let got = compiled.evaluate(&values(case.values)).unwrap();
            assert_eq!(got, case.expected, "{}", case.name);
        }
    }

    struct ValidateCase {
        name: &'static str,
        modifiers: ScalingModifiers,
        triggers: &'static [(&'static str, &'static str)],
        error_contains: Option<&'static str>,
    }

    fn modifiers(formula: &str, target: &str) -> ScalingModifiers {
        ScalingModifiers {
            formula: formula.to_owned(),
            target: target.to_owned(),
            ..ScalingModifiers::default()
        }
    }

    #[test]
    fn validation_follows_the_webhook() {
        let cases = [
            ValidateCase {
                name: "valid formula over named triggers",
                modifiers: modifiers("a + b", "2"),
                triggers: &[("a", "redis"), ("b", "kafka")],
                error_contains: None,
            },
            ValidateCase {
                name: "formula is mandatory",
                modifiers: modifiers("", "2"),
                triggers: &[("a", "redis")],
                error_contains: Some("Formula is mandatory"),
            },
            ValidateCase {
                name: "target is mandatory with a formula",
                modifiers: modifiers("a", ""),
                triggers: &[("a", "redis")],
                error_contains: Some("target is empty"),
            },
            ValidateCase {
                name: "target must be positive",
                modifiers: modifiers("a", "0"),
                triggers: &[("a", "redis")],
                error_contains: Some("error validating target"),
            },
            ValidateCase {
                name: "target must be a number",
                modifiers: modifiers("a", "two"),
                triggers: &[("a", "redis")],
                error_contains: Some("error validating target"),
            },
            ValidateCase {
                name: "Utilization is rejected",
                modifiers: ScalingModifiers {
                    metric_type: Some(MetricTargetType::Utilization),
                    ..modifiers("a", "2")
                },
                triggers: &[("a", "redis")],
                error_contains: Some("Utilization"),
            },
            ValidateCase {
                name: "unnamed trigger cannot be referenced",
                modifiers: modifiers("a + b", "2"),
                triggers: &[("a", "redis"), ("", "kafka")],
                error_contains: Some("unknown name b"),
            },
            ValidateCase {
                name: "cpu trigger is not a variable even when named",
                modifiers: modifiers("a + c", "2"),
                triggers: &[("a", "redis"), ("c", "cpu")],
                error_contains: Some("unknown name c"),
            },
            ValidateCase {
                name: "unknown name in a branch the dummy run skips",
                modifiers: modifiers("a > 0 ? missing : 1", "2"),
                triggers: &[("a", "redis")],
                error_contains: Some("unknown name missing"),
            },
            ValidateCase {
                name: "syntax error names the formula",
                modifiers: modifiers("a +", "2"),
                triggers: &[("a", "redis")],
                error_contains: Some("formula \"a +\""),
            },
            ValidateCase {
                name: "boolean result is rejected",
                modifiers: modifiers("a > 1", "2"),
                triggers: &[("a", "redis")],
                error_contains: Some("error validating formula"),
            },
        ];
        for case in cases {
            let triggers: Vec<FormulaTrigger<'_>> = case
                .triggers
                .iter()
                .map(|(name, trigger_type)| FormulaTrigger { name, trigger_type })
                .collect();
            let result = validate(&case.modifiers, &triggers);
            match (case.error_contains, result) {
                (None, Ok(_)) => {}
                (None, Err(e)) => panic!("{}: unexpected error {e}", case.name),
                (Some(_), Ok(_)) => panic!("{}: expected an error", case.name),
                (Some(text), Err(e)) => {
                    assert!(e.to_string().contains(text), "{}: {e}", case.name);
                }
            }
        }
    }

    #[test]
    fn referenced_names_skip_calls_members_keys_and_lets() {
        let names = referenced_names(
            "let x = a; count([x, b], {# > 1.5}) + {k: c}.k + max(d, 2) + \"s\" + e?.f",
        );
        assert_eq!(names, vec!["a", "b", "c", "d", "e"]);
    }

    struct CompositeCase {
        name: &'static str,
        formula: &'static str,
        inputs: CompositeInputs,
        expected: Result<f64, ModifiersError>,
    }

    #[test]
    fn composite_value_handles_fallback_and_nil() {
        let cases = [
            CompositeCase {
                name: "sum at milli precision",
                formula: "trigger1 + trigger2",
                inputs: CompositeInputs {
                    values: values(&[("trigger1", Some(2.0)), ("trigger2", Some(5.0))]),
                    ..CompositeInputs::default()
                },
                expected: Ok(7.0),
            },
            CompositeCase {
                name: "nil result uses fallback.replicas × target (formula_test)",
                formula: "trigger1 ?? trigger2",
                inputs: CompositeInputs {
                    values: values(&[("trigger1", None), ("trigger2", None)]),
                    fallback_replicas: Some(7),
                    target: 2.0,
                    ..CompositeInputs::default()
                },
                expected: Ok(14.0),
            },
            CompositeCase {
                name: "nil result without fallback is an error",
                formula: "trigger1 ?? trigger2",
                inputs: CompositeInputs {
                    values: values(&[("trigger1", None), ("trigger2", None)]),
                    target: 2.0,
                    ..CompositeInputs::default()
                },
                expected: Err(ModifiersError::NilWithoutFallback),
            },
            CompositeCase {
                name: "active fallback bypasses the formula",
                formula: "trigger1 + trigger2",
                inputs: CompositeInputs {
                    values: values(&[("trigger1", Some(2.0)), ("trigger2", Some(5.0))]),
                    fallback_values: vec![20.0, 30.0],
                    ..CompositeInputs::default()
                },
                expected: Ok(20.0),
            },
            CompositeCase {
                name: "value is truncated, not rounded",
                formula: "a / 3",
                inputs: CompositeInputs {
                    values: values(&[("a", Some(2.0))]),
                    ..CompositeInputs::default()
                },
                expected: Ok(0.666),
            },
        ];
        for case in cases {
            let vars: Vec<String> = case.inputs.values.keys().cloned().collect();
            let vars: Vec<&str> = vars.iter().map(String::as_str).collect();
            let compiled = compile(case.formula, &vars).unwrap();
            assert_eq!(
                composite_value(&compiled, &case.inputs),
                case.expected,
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn modifiers_are_used_when_any_field_is_set() {
        assert!(!ScalingModifiers::default().is_used());
        assert!(
            ScalingModifiers {
                target: "2".into(),
                ..ScalingModifiers::default()
            }
            .is_used()
        );
        assert_eq!(
            ScalingModifiers::default().activation_target_value(),
            Ok(0.0)
        );
    }
}
