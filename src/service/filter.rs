//! A small subset of AIP-160 filters: comparisons joined by `AND`. The one filter grammar of
//! every list; each list decides which fields and operators it accepts.
//!
//! ```text
//! provider = "acme" AND state = RUNNING AND labels.env = "prod" AND labels.team:*
//! time >= "2026-01-01T00:00:00Z" AND time < "2026-02-01T00:00:00Z"
//! ```
//! Values may be bare words or double-quoted strings (with `\"` and `\\` escapes). `field:*`
//! tests that a map key is present; `<`, `<=`, `>` and `>=` order (times, for one). Anything
//! else is refused with the position of the problem.

use crate::service::{Error, Result};

/// One comparison of a filter, for lists that only test equality and presence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    /// `field = value`
    Equals { field: String, value: String },
    /// `field:*` — the field (a map key such as `labels.env`) is present.
    Present { field: String },
}

/// How a comparison compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

/// One comparison of a filter, with any operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clause {
    /// `field <op> value`
    Compare {
        field: String,
        op: Op,
        value: String,
    },
    /// `field:*`
    Present { field: String },
}

/// Parses `filter` into terms for a list whose fields only take `=` and `:*`. The empty
/// filter has none.
pub fn parse(filter: &str) -> Result<Vec<Term>> {
    parse_clauses(filter)?
        .into_iter()
        .map(|clause| match clause {
            Clause::Compare {
                field,
                op: Op::Eq,
                value,
            } => Ok(Term::Equals { field, value }),
            Clause::Compare { field, op, .. } => Err(Error::invalid(
                "filter",
                format!(
                    "{field:?} cannot be compared with {}; this list's fields take `=` and `:*`",
                    op.as_str()
                ),
            )),
            Clause::Present { field } => Ok(Term::Present { field }),
        })
        .collect()
}

/// Parses `filter` into its clauses. The empty filter has none.
pub fn parse_clauses(filter: &str) -> Result<Vec<Clause>> {
    let tokens = tokenize(filter)?;
    let mut clauses = Vec::new();
    let mut rest = tokens.as_slice();
    while !rest.is_empty() {
        match rest {
            [
                Token::Word(field),
                Token::Op(op),
                Token::Word(value) | Token::Quoted(value),
                tail @ ..,
            ] => {
                check_field(field)?;
                clauses.push(Clause::Compare {
                    field: field.clone(),
                    op: *op,
                    value: value.clone(),
                });
                rest = tail;
            }
            [Token::Word(field), Token::HasAny, tail @ ..] => {
                check_field(field)?;
                clauses.push(Clause::Present {
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
    Ok(clauses)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Op(Op),
    HasAny,
}

fn describe(tokens: &[Token]) -> String {
    tokens
        .iter()
        .take(3)
        .map(|t| match t {
            Token::Word(w) => w.clone(),
            Token::Quoted(q) => format!("\"{q}\""),
            Token::Op(op) => op.as_str().into(),
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
                tokens.push(Token::Op(Op::Eq));
            }
            '<' | '>' => {
                chars.next();
                let or_equal = chars.next_if(|&(_, ch)| ch == '=').is_some();
                tokens.push(Token::Op(match (c, or_equal) {
                    ('<', false) => Op::Lt,
                    ('<', true) => Op::Le,
                    ('>', false) => Op::Gt,
                    _ => Op::Ge,
                }));
            }
            ':' => {
                chars.next();
                match chars.next() {
                    Some((_, '*')) => tokens.push(Token::HasAny),
                    _ => {
                        return Err(Error::invalid(
                            "filter",
                            format!(
                                "at {pos}: only `:*` (has key) is supported after ':'; quote a \
                                 value that contains ':', such as a time"
                            ),
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
                    if ch.is_whitespace() || matches!(ch, '=' | ':' | '"' | '<' | '>') {
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
                r#"provider = "acme" AND state=RUNNING AND labels.env = "a \"b\"" AND labels.x:*"#
            )
            .unwrap(),
            vec![
                eq("provider", "acme"),
                eq("state", "RUNNING"),
                eq("labels.env", "a \"b\""),
                Term::Present {
                    field: "labels.x".into()
                },
            ]
        );
    }

    #[test]
    fn parses_ordering_comparisons() {
        let compare = |field: &str, op, value: &str| Clause::Compare {
            field: field.into(),
            op,
            value: value.into(),
        };
        assert_eq!(
            parse_clauses(
                r#"time >= "2026-01-01T00:00:00Z" AND time<"x" AND a<=1 AND b>2 AND c=3"#
            )
            .unwrap(),
            vec![
                compare("time", Op::Ge, "2026-01-01T00:00:00Z"),
                compare("time", Op::Lt, "x"),
                compare("a", Op::Le, "1"),
                compare("b", Op::Gt, "2"),
                compare("c", Op::Eq, "3"),
            ]
        );
        // Lists of equality fields refuse ordering, naming the field.
        let err = parse("provider < acme").unwrap_err();
        assert!(
            matches!(&err, Error::InvalidArgument { field, reason } if field == "filter" && reason.contains("provider")),
            "{err:?}"
        );
        // An unquoted time is refused with advice.
        let err = parse_clauses("time >= 2026-01-01T00:00:00Z").unwrap_err();
        assert!(format!("{err:?}").contains("quote"), "{err:?}");
    }

    #[test]
    fn refuses_what_it_does_not_understand() {
        for bad in [
            "provider",
            "provider =",
            "provider = acme OR state = RUNNING",
            "provider = acme AND",
            "provider = \"acme",
            "labels.x:y",
            "= acme",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidArgument { field, .. } if field == "filter"),
                "{bad}: {err:?}"
            );
        }
    }
}
