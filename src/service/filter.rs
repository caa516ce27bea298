//! A small subset of AIP-160 filters: comparisons joined by `AND`.
//!
//! ```text
//! provider = "ack" AND state = RUNNING AND labels.env = "prod" AND labels.team:*
//! ```
//! Values may be bare words or double-quoted strings (with `\"` and `\\` escapes). `field:*`
//! tests that a map key is present. Anything else is refused with the position of the problem.

use super::{Error, Result};

/// One comparison of a filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    /// `field = value`
    Equals { field: String, value: String },
    /// `field:*` — the field (a map key such as `labels.env`) is present.
    Present { field: String },
}

/// Parses `filter` into its terms. The empty filter has none.
pub fn parse(filter: &str) -> Result<Vec<Term>> {
    let tokens = tokenize(filter)?;
    let mut terms = Vec::new();
    let mut rest = tokens.as_slice();
    while !rest.is_empty() {
        match rest {
            [
                Token::Word(field),
                Token::Equals,
                Token::Word(value) | Token::Quoted(value),
                tail @ ..,
            ] => {
                check_field(field)?;
                terms.push(Term::Equals {
                    field: field.clone(),
                    value: value.clone(),
                });
                rest = tail;
            }
            [Token::Word(field), Token::HasAny, tail @ ..] => {
                check_field(field)?;
                terms.push(Term::Present {
                    field: field.clone(),
                });
                rest = tail;
            }
            _ => {
                return Err(Error::invalid(
                    "filter",
                    format!(
                        "expected `field = value` or `field:*` near {:?}; join comparisons with AND",
                        describe(rest)
                    ),
                ));
            }
        }
        match rest {
            [] => {}
            [Token::Word(and), tail @ ..] if and == "AND" && !tail.is_empty() => rest = tail,
            _ => {
                return Err(Error::invalid(
                    "filter",
                    format!(
                        "expected AND between comparisons near {:?} (only AND is supported)",
                        describe(rest)
                    ),
                ));
            }
        }
    }
    Ok(terms)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Equals,
    HasAny,
}

fn describe(tokens: &[Token]) -> String {
    tokens
        .iter()
        .take(3)
        .map(|t| match t {
            Token::Word(w) => w.clone(),
            Token::Quoted(q) => format!("\"{q}\""),
            Token::Equals => "=".into(),
            Token::HasAny => ":*".into(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn check_field(field: &str) -> Result<()> {
    let ok = !field.is_empty()
        && field
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "filter",
            format!("{field:?} is not a field name"),
        ))
    }
}

fn tokenize(input: &str) -> Result<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut chars = input.char_indices().peekable();
    while let Some(&(pos, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '=' => {
                chars.next();
                tokens.push(Token::Equals);
            }
            ':' => {
                chars.next();
                match chars.next() {
                    Some((_, '*')) => tokens.push(Token::HasAny),
                    _ => {
                        return Err(Error::invalid(
                            "filter",
                            format!("at {pos}: only `:*` (has key) is supported after ':'"),
                        ));
                    }
                }
            }
            '"' => {
                chars.next();
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, escaped)) => value.push(escaped),
                            None => break,
                        },
                        Some((_, ch)) => value.push(ch),
                        None => {
                            return Err(Error::invalid(
                                "filter",
                                format!("at {pos}: the quoted string is not closed"),
                            ));
                        }
                    }
                }
                tokens.push(Token::Quoted(value));
            }
            _ => {
                let mut word = String::new();
                while let Some(&(_, ch)) = chars.peek() {
                    if ch.is_whitespace() || matches!(ch, '=' | ':' | '"') {
                        break;
                    }
                    word.push(ch);
                    chars.next();
                }
                tokens.push(Token::Word(word));
            }
        }
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(field: &str, value: &str) -> Term {
        Term::Equals {
            field: field.into(),
            value: value.into(),
        }
    }

    #[test]
    fn parses_conjunctions() {
        assert_eq!(parse("").unwrap(), vec![]);
        assert_eq!(
            parse(
                r#"provider = "ack" AND state=RUNNING AND labels.env = "a \"b\"" AND labels.x:*"#
            )
            .unwrap(),
            vec![
                eq("provider", "ack"),
                eq("state", "RUNNING"),
                eq("labels.env", "a \"b\""),
                Term::Present {
                    field: "labels.x".into()
                },
            ]
        );
    }

    #[test]
    fn refuses_what_it_does_not_understand() {
        for bad in [
            "provider",
            "provider =",
            "provider = ack OR state = RUNNING",
            "provider = ack AND",
            "provider = \"ack",
            "labels.x:y",
            "= ack",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidArgument { field, .. } if field == "filter"),
                "{bad}: {err:?}"
            );
        }
    }
}
