//! Requirements as expression trees: plain entries and rich dependencies such as
//! `(a or (b and c >= 2))`.
//!
//! rpm's boolean dependencies also have `if`, `else`, `unless`, `with` and `without`. They
//! are parsed as [`Expression::Unsupported`], so that a package using them is reported by name
//! when it is needed, instead of failing the whole repository.

use std::fmt;

use crate::dependency::{Comparison, Constraint, Dependency};
use crate::version::Evr;

/// Boolean operators that rpm accepts in rich dependencies but this crate does not evaluate.
const UNSUPPORTED_OPERATORS: [&str; 5] = ["if", "else", "unless", "with", "without"];

/// A requirement: one entry, or a rich dependency over entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expression {
    Atom(Dependency),
    /// Every operand is needed.
    And(Vec<Expression>),
    /// One operand is enough.
    Or(Vec<Expression>),
    /// A rich dependency that uses an operator or syntax this crate does not support.
    Unsupported {
        text: String,
        reason: String,
    },
}

impl Expression {
    /// Parses a rich dependency, the text of a `name` attribute that starts with `(`.
    ///
    /// Unsupported operators and invalid syntax give [`Expression::Unsupported`] with the reason.
    pub fn parse_rich(text: &str) -> Self {
        let tokens = tokenize(text);
        let mut parser = Parser {
            tokens: &tokens,
            position: 0,
        };
        let parsed = parser.term().and_then(|expression| {
            if parser.position == tokens.len() {
                Ok(expression)
            } else {
                Err(format!(
                    "unexpected `{}` after the closing parenthesis",
                    tokens[parser.position]
                ))
            }
        });
        parsed.unwrap_or_else(|reason| Self::Unsupported {
            text: text.to_owned(),
            reason,
        })
    }

    /// Returns the first unsupported part, as `(text, reason)`.
    pub fn unsupported(&self) -> Option<(&str, &str)> {
        match self {
            Self::Atom(_) => None,
            Self::And(operands) | Self::Or(operands) => {
                operands.iter().find_map(Expression::unsupported)
            }
            Self::Unsupported { text, reason } => Some((text, reason)),
        }
    }

    /// Calls `visit` on every entry of the expression.
    pub fn for_each_atom(&self, visit: &mut impl FnMut(&Dependency)) {
        match self {
            Self::Atom(dependency) => visit(dependency),
            Self::And(operands) | Self::Or(operands) => {
                for operand in operands {
                    operand.for_each_atom(visit);
                }
            }
            Self::Unsupported { .. } => {}
        }
    }
}

impl fmt::Display for Expression {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (operator, operands) = match self {
            Self::Atom(dependency) => return write!(formatter, "{dependency}"),
            Self::Unsupported { text, .. } => return formatter.write_str(text),
            Self::And(operands) => ("and", operands),
            Self::Or(operands) => ("or", operands),
        };
        formatter.write_str("(")?;
        for (index, operand) in operands.iter().enumerate() {
            if index > 0 {
                write!(formatter, " {operator} ")?;
            }
            write!(formatter, "{operand}")?;
        }
        formatter.write_str(")")
    }
}

fn tokenize(text: &str) -> Vec<&str> {
    let mut tokens = Vec::new();
    let mut start = None;
    for (index, character) in text.char_indices() {
        let is_delimiter = character == '(' || character == ')' || character.is_whitespace();
        if !is_delimiter {
            start.get_or_insert(index);
            continue;
        }
        if let Some(begin) = start.take() {
            tokens.push(&text[begin..index]);
        }
        if !character.is_whitespace() {
            tokens.push(&text[index..=index]);
        }
    }
    if let Some(begin) = start {
        tokens.push(&text[begin..]);
    }
    tokens
}

struct Parser<'t> {
    tokens: &'t [&'t str],
    position: usize,
}

impl Parser<'_> {
    fn next(&mut self) -> Option<&str> {
        let token = self.tokens.get(self.position).copied();
        self.position += usize::from(token.is_some());
        token
    }

    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.position).copied()
    }

    /// Parses `( operand [operator operand]... )` or a bare entry.
    fn term(&mut self) -> Result<Expression, String> {
        match self.peek() {
            Some("(") => {
                self.position += 1;
                self.group()
            }
            Some(")") | None => Err("an operand is missing".to_owned()),
            Some(_) => self.atom(),
        }
    }

    fn group(&mut self) -> Result<Expression, String> {
        let mut operands = vec![self.term()?];
        let mut operator: Option<&str> = None;
        loop {
            let token = self
                .next()
                .ok_or_else(|| "a closing parenthesis is missing".to_owned())?;
            if token == ")" {
                break;
            }
            if UNSUPPORTED_OPERATORS.contains(&token) {
                return Err(format!("the operator `{token}` is not supported"));
            }
            if token != "and" && token != "or" {
                return Err(format!("expected `and`, `or` or `)`, found `{token}`"));
            }
            if operator.is_some_and(|previous| previous != token) {
                return Err("`and` and `or` are mixed without parentheses".to_owned());
            }
            operator = Some(if token == "and" { "and" } else { "or" });
            operands.push(self.term()?);
        }
        Ok(match operator {
            None => operands.remove(0),
            Some("and") => Expression::And(operands),
            Some(_) => Expression::Or(operands),
        })
    }

    /// Parses `name [operator evr]`.
    fn atom(&mut self) -> Result<Expression, String> {
        let name = self.next().unwrap_or_default().to_owned();
        if UNSUPPORTED_OPERATORS.contains(&name.as_str()) || name == "and" || name == "or" {
            return Err(format!("expected a name, found the operator `{name}`"));
        }
        let Some(comparison) = self.peek().and_then(Comparison::from_symbol) else {
            return Ok(Expression::Atom(Dependency::unversioned(&name)));
        };
        self.position += 1;
        let evr = match self.next() {
            Some(token) if token != "(" && token != ")" => Evr::parse(token),
            _ => return Err(format!("a version is missing after `{name}`")),
        };
        Ok(Expression::Atom(Dependency {
            name,
            constraint: Some(Constraint { comparison, evr }),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_or_and_parses() {
        let expression = Expression::parse_rich("(a or (b and c >= 1.2-3))");
        let Expression::Or(operands) = &expression else {
            panic!("expected or: {expression:?}");
        };
        assert_eq!(operands.len(), 2);
        assert!(matches!(&operands[1], Expression::And(inner) if inner.len() == 2));
        assert_eq!(expression.to_string(), "(a or (b and c >= 1.2-3))");
    }

    #[test]
    fn unsupported_operator_is_named() {
        let expression = Expression::parse_rich("(a if b)");
        let (text, reason) = expression.unsupported().expect("unsupported");
        assert_eq!(text, "(a if b)");
        assert!(reason.contains("`if`"), "{reason}");
    }

    #[test]
    fn invalid_syntax_is_unsupported() {
        for text in ["(a or", "(a or b) c", "(a and b or c)", "(a >= )", "()"] {
            let expression = Expression::parse_rich(text);
            assert!(expression.unsupported().is_some(), "{text}: {expression:?}");
        }
    }

    #[test]
    fn single_entry_in_parentheses() {
        let expression = Expression::parse_rich("(foo >= 2)");
        assert!(matches!(expression, Expression::Atom(_)), "{expression:?}");
    }
}
