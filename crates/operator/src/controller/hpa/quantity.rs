//! Kubernetes resource quantities as the API server keeps them.
//!
//! The server parses every quantity and writes it back in canonical form (`1000m` comes back as
//! `1`, `2048Ki` as `2Mi`), and Go's `equality.Semantic` compares quantities by value. KEDA's
//! HPA therefore carries canonical strings on the wire, and an HPA read back never differs from
//! the desired one by spelling alone. This module reproduces both: [`canonical`] for building
//! and [`same_value`] for comparing.
//!
//! Values are held exactly as a count of nano-units in an `i128` (Kubernetes rounds anything
//! finer than a nano-unit up to one). Values beyond that range, or canonical forms without a
//! suffix (exponents past `E`), are left as written: no HPA target comes close.

/// How a quantity is printed: the family of its suffix, kept from parsing as Kubernetes does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// `m`, `k`, `M`, ... or no suffix.
    DecimalSi,
    /// `Ki`, `Mi`, ...
    BinarySi,
    /// `e3`, `E-2`, ...
    DecimalExponent,
}

/// A parsed quantity: an exact value in nano-units and the format it was written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Quantity {
    nanos: i128,
    format: Format,
}

const NANOS_PER_UNIT: i128 = 1_000_000_000;

/// Decimal SI suffixes and their power of ten.
const DECIMAL_SUFFIXES: [(&str, i32); 10] = [
    ("n", -9),
    ("u", -6),
    ("m", -3),
    ("", 0),
    ("k", 3),
    ("M", 6),
    ("G", 9),
    ("T", 12),
    ("P", 15),
    ("E", 18),
];

/// Binary SI suffixes and their power of two.
const BINARY_SUFFIXES: [(&str, u32); 7] = [
    ("", 0),
    ("Ki", 10),
    ("Mi", 20),
    ("Gi", 30),
    ("Ti", 40),
    ("Pi", 50),
    ("Ei", 60),
];

impl Quantity {
    /// Parses Kubernetes' quantity syntax: an optionally signed decimal number (`1`, `1.5`,
    /// `.5`, `5.`) followed by a decimal SI suffix, a binary SI suffix or an exponent (`e3`).
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let (negative, unsigned) = match text.as_bytes().first()? {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
        let (whole, rest) = unsigned.split_at(digits(unsigned));
        let (fraction, suffix) = match rest.strip_prefix('.') {
            Some(after_point) => after_point.split_at(digits(after_point)),
            None => ("", rest),
        };
        if whole.is_empty() && fraction.is_empty() {
            return None;
        }
        let (scale, format) = parse_suffix(suffix)?;

        // Trailing zeros of the fraction carry no value and would only risk an overflow.
        let fraction = fraction.trim_end_matches('0');
        let mut mantissa: i128 = 0;
        for digit in whole.bytes().chain(fraction.bytes()) {
            mantissa = mantissa
                .checked_mul(10)?
                .checked_add(i128::from(digit - b'0'))?;
        }
        let fraction_digits = i32::try_from(fraction.len()).ok()?;
        let (mantissa, power_of_ten) = match scale {
            Scale::Ten(exponent) => (mantissa, 9 + exponent - fraction_digits),
            Scale::Two(exponent) => (
                mantissa.checked_mul(1_i128 << exponent)?,
                9 - fraction_digits,
            ),
        };
        let magnitude = scale_by_power_of_ten_rounding_up(mantissa, power_of_ten)?;
        // Kubernetes shows binary quantities below one unit in decimal form.
        let format = if format == Format::BinarySi && magnitude < NANOS_PER_UNIT {
            Format::DecimalSi
        } else {
            format
        };
        Some(Self {
            nanos: if negative { -magnitude } else { magnitude },
            format,
        })
    }

    /// A decimal quantity of `milli` thousandths, as Go's `resource.NewMilliQuantity`.
    pub(crate) fn from_milli(milli: i64) -> Self {
        Self {
            nanos: i128::from(milli) * 1_000_000,
            format: Format::DecimalSi,
        }
    }

    /// The canonical string, as `Quantity.String()` prints it; `None` when it has no suffix.
    pub(crate) fn canonical(self) -> Option<String> {
        if self.nanos == 0 {
            return Some("0".to_owned());
        }
        let format = match self.format {
            Format::BinarySi
                if self.nanos.abs() < 1024 * NANOS_PER_UNIT || self.nanos % NANOS_PER_UNIT != 0 =>
            {
                Format::DecimalSi
            }
            other => other,
        };
        match format {
            Format::BinarySi => {
                let mut units = self.nanos / NANOS_PER_UNIT;
                let mut power_of_two = 0;
                while units.abs() >= 1024 && units % 1024 == 0 {
                    units /= 1024;
                    power_of_two += 10;
                }
                let suffix = BINARY_SUFFIXES
                    .iter()
                    .find(|(_, power)| *power == power_of_two)?
                    .0;
                Some(format!("{units}{suffix}"))
            }
            Format::DecimalSi | Format::DecimalExponent => {
                let (mut mantissa, mut exponent) = (self.nanos, -9_i32);
                while mantissa.abs() >= 10 && mantissa % 10 == 0 {
                    mantissa /= 10;
                    exponent += 1;
                }
                // The exponent must be a multiple of three: move digits back into the mantissa.
                match exponent % 3 {
                    1 | -2 => {
                        mantissa = mantissa.checked_mul(10)?;
                        exponent -= 1;
                    }
                    2 | -1 => {
                        mantissa = mantissa.checked_mul(100)?;
                        exponent -= 2;
                    }
                    _ => {}
                }
                let suffix = if format == Format::DecimalExponent {
                    if exponent == 0 {
                        String::new()
                    } else {
                        format!("e{exponent}")
                    }
                } else {
                    DECIMAL_SUFFIXES
                        .iter()
                        .find(|(_, power)| *power == exponent)?
                        .0
                        .to_owned()
                };
                Some(format!("{mantissa}{suffix}"))
            }
        }
    }
}

/// What a suffix multiplies the number by.
#[derive(Clone, Copy)]
enum Scale {
    Ten(i32),
    Two(u32),
}

fn parse_suffix(suffix: &str) -> Option<(Scale, Format)> {
    if let Some((_, power)) = DECIMAL_SUFFIXES.iter().find(|(s, _)| *s == suffix) {
        return Some((Scale::Ten(*power), Format::DecimalSi));
    }
    if let Some((_, power)) = BINARY_SUFFIXES.iter().find(|(s, _)| *s == suffix) {
        return Some((Scale::Two(*power), Format::BinarySi));
    }
    let exponent = suffix
        .strip_prefix('e')
        .or_else(|| suffix.strip_prefix('E'))
        .filter(|e| !e.is_empty())?;
    let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let exponent: i32 = exponent.parse().ok()?;
    // Beyond this no value fits the nano-unit representation anyway.
    (-60..=60)
        .contains(&exponent)
        .then_some((Scale::Ten(exponent), Format::DecimalExponent))
}

/// `value × 10^power`, rounding a non-exact result up (Kubernetes never rounds a request to 0).
fn scale_by_power_of_ten_rounding_up(value: i128, power: i32) -> Option<i128> {
    if power >= 0 {
        return value.checked_mul(10_i128.checked_pow(power.unsigned_abs())?);
    }
    let Some(divisor) = 10_i128.checked_pow(power.unsigned_abs()) else {
        return Some(i128::from(value != 0));
    };
    let quotient = value / divisor;
    Some(if value % divisor == 0 {
        quotient
    } else {
        quotient + 1
    })
}

/// The canonical form of a quantity string; `None` when it is not a quantity Windlass can hold.
pub(crate) fn canonical(text: &str) -> Option<String> {
    Quantity::parse(text).and_then(Quantity::canonical)
}

/// Whether two quantity strings hold the same value (`500m` and `0.5`); strings that do not
/// parse compare as text.
pub(crate) fn same_value(a: &str, b: &str) -> bool {
    match (Quantity::parse(a), Quantity::parse(b)) {
        (Some(a), Some(b)) => a.nanos == b.nanos,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct CanonicalCase {
        written: &'static str,
        canonical: Option<&'static str>,
    }

    #[test]
    fn quantities_print_as_the_api_server_stores_them() {
        let cases = [
            CanonicalCase {
                written: "10",
                canonical: Some("10"),
            },
            CanonicalCase {
                written: "0",
                canonical: Some("0"),
            },
            CanonicalCase {
                written: "0.0",
                canonical: Some("0"),
            },
            CanonicalCase {
                written: "500m",
                canonical: Some("500m"),
            },
            CanonicalCase {
                written: "0.5",
                canonical: Some("500m"),
            },
            CanonicalCase {
                written: ".5",
                canonical: Some("500m"),
            },
            CanonicalCase {
                written: "5.",
                canonical: Some("5"),
            },
            CanonicalCase {
                written: "1000m",
                canonical: Some("1"),
            },
            CanonicalCase {
                written: "1500",
                canonical: Some("1500"),
            },
            CanonicalCase {
                written: "12000",
                canonical: Some("12k"),
            },
            CanonicalCase {
                written: "1.5k",
                canonical: Some("1500"),
            },
            CanonicalCase {
                written: "0.1",
                canonical: Some("100m"),
            },
            CanonicalCase {
                written: "100u",
                canonical: Some("100u"),
            },
            CanonicalCase {
                written: "0.0000000001",
                canonical: Some("1n"),
            },
            CanonicalCase {
                written: "+2",
                canonical: Some("2"),
            },
            CanonicalCase {
                written: "-1500m",
                canonical: Some("-1500m"),
            },
            CanonicalCase {
                written: "512Mi",
                canonical: Some("512Mi"),
            },
            CanonicalCase {
                written: "2048Ki",
                canonical: Some("2Mi"),
            },
            CanonicalCase {
                written: "1536Mi",
                canonical: Some("1536Mi"),
            },
            CanonicalCase {
                written: "1Gi",
                canonical: Some("1Gi"),
            },
            CanonicalCase {
                written: "1Ki",
                canonical: Some("1Ki"),
            },
            CanonicalCase {
                written: "1000Ki",
                canonical: Some("1000Ki"),
            },
            CanonicalCase {
                written: "0.5Ki",
                canonical: Some("512"),
            },
            CanonicalCase {
                written: "1.5Gi",
                canonical: Some("1536Mi"),
            },
            CanonicalCase {
                written: "0.1Ki",
                canonical: Some("102400m"),
            },
            CanonicalCase {
                written: "1e3",
                canonical: Some("1e3"),
            },
            CanonicalCase {
                written: "1E3",
                canonical: Some("1e3"),
            },
            CanonicalCase {
                written: "1000e-3",
                canonical: Some("1"),
            },
            CanonicalCase {
                written: "1.5e-3",
                canonical: Some("1500e-6"),
            },
            CanonicalCase {
                written: "1E",
                canonical: Some("1E"),
            },
            CanonicalCase {
                written: "",
                canonical: None,
            },
            CanonicalCase {
                written: ".",
                canonical: None,
            },
            CanonicalCase {
                written: "1.5.5",
                canonical: None,
            },
            CanonicalCase {
                written: "1 Gi",
                canonical: None,
            },
            CanonicalCase {
                written: "1KB",
                canonical: None,
            },
            CanonicalCase {
                written: "1e",
                canonical: None,
            },
            CanonicalCase {
                written: "abc",
                canonical: None,
            },
        ];
        for case in cases {
            assert_eq!(
                canonical(case.written).as_deref(),
                case.canonical,
                "canonical form of {:?}",
                case.written
            );
        }
    }

    #[test]
    fn milli_quantities_are_decimal() {
        assert_eq!(Quantity::from_milli(2000).canonical().as_deref(), Some("2"));
        assert_eq!(
            Quantity::from_milli(500).canonical().as_deref(),
            Some("500m")
        );
        assert_eq!(
            Quantity::from_milli(2500).canonical().as_deref(),
            Some("2500m")
        );
        assert_eq!(
            Quantity::from_milli(3_000_000).canonical().as_deref(),
            Some("3k")
        );
    }

    #[test]
    fn quantities_compare_by_value() {
        assert!(same_value("1000m", "1"));
        assert!(same_value("0.5", "500m"));
        assert!(same_value("1Ki", "1024"));
        assert!(!same_value("1k", "1Ki"));
        assert!(!same_value("500m", "501m"));
        assert!(same_value("not a quantity", "not a quantity"));
        assert!(!same_value("not a quantity", "1"));
    }
}
