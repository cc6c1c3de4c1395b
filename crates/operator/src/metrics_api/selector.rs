//! The `labelSelector` query parameter: Kubernetes' selector syntax, reduced to the plain
//! `key=value` map KEDA reads the ScaledObject's name from.
//!
//! The apiserver parses the selector first (syntax errors are a 400 there too); KEDA then
//! converts it with `ConvertSelectorToLabelsMap`, which only understands equality terms, so
//! `!=`, `in`, `notin`, `exists` and `!exists` terms are rejected rather than ignored.

use std::collections::BTreeMap;

/// The selector term whose value is the ScaledObject's name (the HPA's metric selector).
pub const SCALED_OBJECT_LABEL: &str = "scaledobject.keda.sh/name";

/// Why a selector was refused; the message goes back to the client.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error("unexpected {found} at position {position} in {selector:?}")]
    Syntax {
        selector: String,
        position: usize,
        found: String,
    },
    #[error("invalid label key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    #[error("invalid label value {value:?} for key {key:?}: {reason}")]
    InvalidValue {
        key: String,
        value: String,
        reason: &'static str,
    },
    #[error("only key=value terms are supported, got {term:?}")]
    NotEquality { term: String },
}

/// Parses a selector into its `key=value` terms (`==` accepted as `=`); the last term wins for
/// a repeated key. An empty selector is an empty map.
pub fn parse_equality_selector(selector: &str) -> Result<BTreeMap<String, String>, SelectorError> {
    let mut map = BTreeMap::new();
    let tokens = tokenize(selector)?;
    let mut cursor = Cursor {
        tokens: &tokens,
        next: 0,
        selector,
    };
    if cursor.peek().is_none() {
        return Ok(map);
    }
    loop {
        let (key, value) = cursor.term()?;
        validate_key(&key)?;
        validate_value(&key, &value)?;
        map.insert(key, value);
        match cursor.bump() {
            None => return Ok(map),
            Some((_, Token::Comma)) => {}
            Some((position, token)) => return Err(cursor.unexpected(position, token)),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Equals,
    DoubleEquals,
    NotEquals,
    Bang,
    Comma,
    Open,
    Close,
    Greater,
    Less,
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Self::Word(word) => format!("{word:?}"),
            Self::Equals => "'='".to_owned(),
            Self::DoubleEquals => "'=='".to_owned(),
            Self::NotEquals => "'!='".to_owned(),
            Self::Bang => "'!'".to_owned(),
            Self::Comma => "','".to_owned(),
            Self::Open => "'('".to_owned(),
            Self::Close => "')'".to_owned(),
            Self::Greater => "'>'".to_owned(),
            Self::Less => "'<'".to_owned(),
        }
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | ',' | '(' | ')' | '<' | '>') || c.is_whitespace()
}

/// Splits a selector into tokens, each with its byte position for error messages.
fn tokenize(selector: &str) -> Result<Vec<(usize, Token)>, SelectorError> {
    let mut tokens = Vec::new();
    let mut chars = selector.char_indices().peekable();
    while let Some((position, c)) = chars.next() {
        let token = match c {
            c if c.is_whitespace() => continue,
            ',' => Token::Comma,
            '(' => Token::Open,
            ')' => Token::Close,
            '<' => Token::Less,
            '>' => Token::Greater,
            '=' => {
                if chars.next_if(|&(_, c)| c == '=').is_some() {
                    Token::DoubleEquals
                } else {
                    Token::Equals
                }
            }
            '!' => {
                if chars.next_if(|&(_, c)| c == '=').is_some() {
                    Token::NotEquals
                } else {
                    Token::Bang
                }
            }
            _ => {
                let mut word = String::from(c);
                while let Some((_, c)) = chars.next_if(|&(_, c)| !is_special(c)) {
                    word.push(c);
                }
                Token::Word(word)
            }
        };
        tokens.push((position, token));
    }
    Ok(tokens)
}

struct Cursor<'a> {
    tokens: &'a [(usize, Token)],
    next: usize,
    selector: &'a str,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<&(usize, Token)> {
        self.tokens.get(self.next)
    }

    fn bump(&mut self) -> Option<(usize, Token)> {
        let token = self.tokens.get(self.next).cloned();
        self.next += 1;
        token
    }

    fn unexpected(&self, position: usize, token: Token) -> SelectorError {
        SelectorError::Syntax {
            selector: self.selector.to_owned(),
            position,
            found: token.describe(),
        }
    }

    fn end(&self) -> SelectorError {
        SelectorError::Syntax {
            selector: self.selector.to_owned(),
            position: self.selector.len(),
            found: "end of selector".to_owned(),
        }
    }

    /// One requirement. Equality terms come back as `(key, value)`; every other well-formed
    /// requirement is refused as KEDA refuses it, malformed ones as syntax errors.
    fn term(&mut self) -> Result<(String, String), SelectorError> {
        let start = self.peek().map_or(self.selector.len(), |(p, _)| *p);
        let key = match self.bump() {
            Some((_, Token::Word(key))) => key,
            Some((_, Token::Bang)) => {
                // `!key`: a valid "does not exist" term, which KEDA cannot use.
                return match self.bump() {
                    Some((_, Token::Word(key))) => Err(SelectorError::NotEquality {
                        term: format!("!{key}"),
                    }),
                    Some((position, token)) => Err(self.unexpected(position, token)),
                    None => Err(self.end()),
                };
            }
            Some((position, token)) => return Err(self.unexpected(position, token)),
            None => return Err(self.end()),
        };
        match self.peek().cloned() {
            // `key` alone: "exists".
            None | Some((_, Token::Comma)) => Err(SelectorError::NotEquality { term: key }),
            Some((_, Token::Equals | Token::DoubleEquals)) => {
                self.next += 1;
                match self.peek().cloned() {
                    Some((_, Token::Word(value))) => {
                        self.next += 1;
                        Ok((key, value))
                    }
                    // `key=` selects the empty value.
                    None | Some((_, Token::Comma)) => Ok((key, String::new())),
                    Some((position, token)) => Err(self.unexpected(position, token)),
                }
            }
            Some((_, Token::NotEquals | Token::Greater | Token::Less)) => {
                self.next += 1;
                match self.bump() {
                    Some((_, Token::Word(_))) => {}
                    Some((position, token)) => return Err(self.unexpected(position, token)),
                    None => return Err(self.end()),
                }
                Err(self.refused(start))
            }
            Some((_, Token::Word(op))) if op == "in" || op == "notin" => {
                self.next += 1;
                match self.bump() {
                    Some((_, Token::Open)) => {}
                    Some((position, token)) => return Err(self.unexpected(position, token)),
                    None => return Err(self.end()),
                }
                loop {
                    match self.bump() {
                        Some((_, Token::Word(_) | Token::Comma)) => {}
                        Some((_, Token::Close)) => break,
                        Some((position, token)) => return Err(self.unexpected(position, token)),
                        None => return Err(self.end()),
                    }
                }
                Err(self.refused(start))
            }
            Some((position, token)) => Err(self.unexpected(position, token)),
        }
    }

    fn refused(&self, start: usize) -> SelectorError {
        let end = self
            .tokens
            .get(self.next)
            .map_or(self.selector.len(), |(p, _)| *p);
        SelectorError::NotEquality {
            term: self.selector[start..end].trim().to_owned(),
        }
    }
}

/// A label name: up to 63 characters, alphanumeric at both ends, `-_.` inside.
fn is_label_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A DNS-1123 subdomain: lower-case labels of alphanumerics and `-`, joined by dots.
fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            let bytes = label.as_bytes();
            !bytes.is_empty()
                && bytes.len() <= 63
                && bytes[0].is_ascii_alphanumeric()
                && bytes[bytes.len() - 1].is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        })
}

fn validate_key(key: &str) -> Result<(), SelectorError> {
    let invalid = |reason| SelectorError::InvalidKey {
        key: key.to_owned(),
        reason,
    };
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && !is_dns_subdomain(prefix)
    {
        return Err(invalid("the prefix must be a DNS subdomain"));
    }
    if !is_label_name(name) {
        return Err(invalid(
            "the name must be 63 characters or less, alphanumeric at both ends, with '-', '_' or '.' inside",
        ));
    }
    Ok(())
}

fn validate_value(key: &str, value: &str) -> Result<(), SelectorError> {
    if value.is_empty() || is_label_name(value) {
        Ok(())
    } else {
        Err(SelectorError::InvalidValue {
            key: key.to_owned(),
            value: value.to_owned(),
            reason: "must be 63 characters or less, alphanumeric at both ends, with '-', '_' or '.' inside",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_hpa_selector_gives_the_scaled_object_name() {
        assert_eq!(
            parse_equality_selector("scaledobject.keda.sh/name=my-so"),
            Ok(map(&[(SCALED_OBJECT_LABEL, "my-so")]))
        );
    }

    #[test]
    fn several_terms_spaces_and_double_equals_are_accepted() {
        assert_eq!(
            parse_equality_selector(" a = 1 , scaledobject.keda.sh/name==so ,b="),
            Ok(map(&[("a", "1"), (SCALED_OBJECT_LABEL, "so"), ("b", "")]))
        );
    }

    #[test]
    fn an_empty_selector_is_an_empty_map() {
        assert_eq!(parse_equality_selector(""), Ok(BTreeMap::new()));
        assert_eq!(parse_equality_selector("  "), Ok(BTreeMap::new()));
    }

    #[test]
    fn set_based_and_existence_terms_are_refused() {
        for (selector, term) in [
            ("a!=b", "a!=b"),
            ("a in (x, y)", "a in (x, y)"),
            ("a notin (x)", "a notin (x)"),
            ("a", "a"),
            ("!a", "!a"),
            ("a>1", "a>1"),
        ] {
            assert_eq!(
                parse_equality_selector(selector),
                Err(SelectorError::NotEquality {
                    term: term.to_owned()
                }),
                "{selector}"
            );
        }
    }

    #[test]
    fn malformed_selectors_are_syntax_errors() {
        for selector in ["=a", "a=b c", "a=b,", "a in x", "a in (x", "a=(b)", ","] {
            assert!(
                matches!(
                    parse_equality_selector(selector),
                    Err(SelectorError::Syntax { .. })
                ),
                "{selector}: {:?}",
                parse_equality_selector(selector)
            );
        }
    }

    #[test]
    fn keys_and_values_are_validated_like_labels() {
        assert!(matches!(
            parse_equality_selector("-a=b"),
            Err(SelectorError::InvalidKey { .. })
        ));
        assert!(matches!(
            parse_equality_selector("Bad_Prefix/a=b"),
            Err(SelectorError::InvalidKey { .. })
        ));
        assert!(matches!(
            parse_equality_selector(&format!("a={}", "x".repeat(64))),
            Err(SelectorError::InvalidValue { .. })
        ));
        assert!(matches!(
            parse_equality_selector("a=b/c"),
            Err(SelectorError::InvalidValue { .. })
        ));
    }
}
