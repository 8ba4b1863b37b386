//! The textual predicate syntax and its parser.
//!
//! ```text
//! predicate  := or
//! or         := and ("or" and)*
//! and        := unary ("and" unary)*
//! unary      := "not" unary | "(" predicate ")" | condition | "true"
//! condition  := path op literal
//!             | path "between" literal "and" literal
//!             | path "in" "(" literal ("," literal)* ")"
//!             | path "like" string | path "regex" string
//! op         := "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">="
//! path       := name ("." (name | digits))*      e.g. address.city, __key, this
//! literal    := string | number | "true" | "false" | "null"
//! string     := '...' with '' for a quote inside (or "..." with "")
//! ```
//!
//! Keywords are case-insensitive. Errors carry the byte position where
//! parsing stopped and what was expected there.

use serde_json::Value;

use super::predicate::{AttrPath, CompareOp, LikePattern, Predicate};

/// A predicate text that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("predicate does not parse at position {position}: expected {expected}, found {found}; example of the syntax: `amount > 100 and country = 'DE'`")]
pub struct ParseError {
    /// Byte offset into the text (0-based) where parsing stopped.
    pub position: usize,
    /// What would have been accepted there.
    pub expected: String,
    /// What was there instead (`end of input` at the end).
    pub found: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Name(String),
    Str(String),
    Num(Value),
    Op(CompareOp),
    LParen,
    RParen,
    Comma,
    End,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Name(n) => format!("'{n}'"),
            Tok::Str(s) => format!("string '{s}'"),
            Tok::Num(n) => format!("number {n}"),
            Tok::Op(_) => "an operator".into(),
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::Comma => "','".into(),
            Tok::End => "end of input".into(),
        }
    }

    fn is_keyword(&self, kw: &str) -> bool {
        matches!(self, Tok::Name(n) if n.eq_ignore_ascii_case(kw))
    }
}

/// Predicate nesting deeper than this is refused, so that hostile input
/// cannot overflow the stack of a server thread; real predicates nest a few
/// levels.
const DEPTH_MAX: usize = 64;

fn err(position: usize, expected: &str, found: String) -> ParseError {
    ParseError {
        position,
        expected: expected.to_owned(),
        found,
    }
}

fn tokenize(text: &str) -> Result<Vec<(usize, Tok)>, ParseError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'(' => {
                out.push((start, Tok::LParen));
                i += 1;
            }
            b')' => {
                out.push((start, Tok::RParen));
                i += 1;
            }
            b',' => {
                out.push((start, Tok::Comma));
                i += 1;
            }
            b'=' | b'!' | b'<' | b'>' => {
                let next = bytes.get(i + 1).copied();
                let (op, len) = match (c, next) {
                    (b'=', Some(b'=')) => (CompareOp::Eq, 2),
                    (b'=', _) => (CompareOp::Eq, 1),
                    (b'!', Some(b'=')) => (CompareOp::Ne, 2),
                    (b'<', Some(b'>')) => (CompareOp::Ne, 2),
                    (b'<', Some(b'=')) => (CompareOp::Le, 2),
                    (b'<', _) => (CompareOp::Lt, 1),
                    (b'>', Some(b'=')) => (CompareOp::Ge, 2),
                    (b'>', _) => (CompareOp::Gt, 1),
                    _ => {
                        return Err(err(
                            start,
                            "'!=' (a lone '!' is not an operator)",
                            "'!'".into(),
                        ))
                    }
                };
                out.push((start, Tok::Op(op)));
                i += len;
            }
            b'\'' | b'"' => {
                let quote = c;
                let mut s = String::new();
                i += 1;
                loop {
                    match text[i..].find(quote as char) {
                        None => {
                            return Err(err(
                                start,
                                "a closing quote for the string",
                                "end of input".into(),
                            ))
                        }
                        Some(off) => {
                            s.push_str(&text[i..i + off]);
                            i += off + 1;
                            if bytes.get(i) == Some(&quote) {
                                s.push(quote as char);
                                i += 1;
                            } else {
                                break;
                            }
                        }
                    }
                }
                out.push((start, Tok::Str(s)));
            }
            b'0'..=b'9' | b'-' | b'+' | b'.' => {
                i += 1;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric()
                        || bytes[i] == b'.'
                        || ((bytes[i] == b'-' || bytes[i] == b'+')
                            && matches!(bytes[i - 1], b'e' | b'E')))
                {
                    i += 1;
                }
                let lexeme = &text[start..i];
                let lexeme = lexeme.strip_prefix('+').unwrap_or(lexeme);
                let num = serde_json::from_str::<serde_json::Number>(lexeme)
                    .map(Value::Number)
                    .or_else(|_| {
                        lexeme
                            .parse::<f64>()
                            .ok()
                            .filter(|f| f.is_finite())
                            .map(Value::from)
                            .ok_or(())
                    })
                    .map_err(|_| {
                        err(
                            start,
                            "a number such as 42, -1.5 or 2e3",
                            format!("'{lexeme}'"),
                        )
                    })?;
                out.push((start, Tok::Num(num)));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'.')
                {
                    i += 1;
                }
                out.push((start, Tok::Name(text[start..i].to_owned())));
            }
            _ => {
                let ch = text[i..].chars().next().unwrap_or('?');
                return Err(err(
                    start,
                    "a name, a literal, an operator or a parenthesis",
                    format!("'{ch}'"),
                ));
            }
        }
    }
    out.push((text.len(), Tok::End));
    Ok(out)
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.at].1
    }

    fn pos(&self) -> usize {
        self.toks[self.at].0
    }

    fn next(&mut self) -> (usize, Tok) {
        let t = self.toks[self.at].clone();
        if self.at + 1 < self.toks.len() {
            self.at += 1;
        }
        t
    }

    fn fail<T>(&self, expected: &str) -> Result<T, ParseError> {
        Err(err(self.pos(), expected, self.peek().describe()))
    }

    fn keyword(&mut self, kw: &str) -> bool {
        if self.peek().is_keyword(kw) {
            self.next();
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Predicate, ParseError> {
        let mut terms = vec![self.and()?];
        while self.keyword("or") {
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Predicate::Or(terms)
        })
    }

    fn and(&mut self) -> Result<Predicate, ParseError> {
        let mut terms = vec![self.unary()?];
        while self.keyword("and") {
            terms.push(self.unary()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Predicate::And(terms)
        })
    }

    fn unary(&mut self) -> Result<Predicate, ParseError> {
        self.depth += 1;
        if self.depth > DEPTH_MAX {
            return self.fail("less deeply nested predicate (at most 64 levels)");
        }
        let result = self.unary_inner();
        self.depth -= 1;
        result
    }

    fn unary_inner(&mut self) -> Result<Predicate, ParseError> {
        if self.keyword("not") {
            return Ok(Predicate::Not(Box::new(self.unary()?)));
        }
        if self.keyword("true") {
            return Ok(Predicate::True);
        }
        if *self.peek() == Tok::LParen {
            self.next();
            let inner = self.or()?;
            if *self.peek() != Tok::RParen {
                return self.fail("')' or 'and' / 'or'");
            }
            self.next();
            return Ok(inner);
        }
        self.condition()
    }

    fn condition(&mut self) -> Result<Predicate, ParseError> {
        let (pos, tok) = (self.pos(), self.peek().clone());
        let name = match tok {
            Tok::Name(n)
                if !["and", "or", "between", "in", "like", "regex"]
                    .iter()
                    .any(|k| n.eq_ignore_ascii_case(k)) =>
            {
                n
            }
            _ => {
                return self.fail("an attribute name such as amount or address.city, 'not' or '('")
            }
        };
        let path = AttrPath::parse(&name).map_err(|_| {
            err(
                pos,
                "an attribute path without empty segments",
                format!("'{name}'"),
            )
        })?;
        self.next();
        if let Tok::Op(op) = *self.peek() {
            self.next();
            let value = self.literal()?;
            return Ok(Predicate::Compare { path, op, value });
        }
        if self.keyword("between") {
            let low = self.literal()?;
            if !self.keyword("and") {
                return self.fail("'and' between the two bounds");
            }
            let high = self.literal()?;
            return Ok(Predicate::Between { path, low, high });
        }
        if self.keyword("in") {
            if *self.peek() != Tok::LParen {
                return self.fail("'(' to start the list of values");
            }
            self.next();
            let mut values = vec![self.literal()?];
            loop {
                match self.peek() {
                    Tok::Comma => {
                        self.next();
                        values.push(self.literal()?);
                    }
                    Tok::RParen => {
                        self.next();
                        break;
                    }
                    _ => return self.fail("',' or ')' in the list of values"),
                }
            }
            return Ok(Predicate::In { path, values });
        }
        if self.keyword("like") {
            let pattern = self.string()?;
            return Ok(Predicate::Like {
                path,
                pattern: LikePattern::new(&pattern),
            });
        }
        if self.peek().is_keyword("regex") {
            self.next();
            let at = self.pos();
            let pattern = self.string()?;
            let regex = regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
                err(
                    at,
                    "a valid regular expression",
                    format!("'{pattern}' ({e})"),
                )
            })?;
            return Ok(Predicate::Regex { path, regex });
        }
        self.fail("an operator (=, !=, <, <=, >, >=) or between, in, like, regex")
    }

    fn string(&mut self) -> Result<String, ParseError> {
        match self.peek().clone() {
            Tok::Str(s) => {
                self.next();
                Ok(s)
            }
            _ => self.fail("a quoted string such as 'A%'"),
        }
    }

    fn literal(&mut self) -> Result<Value, ParseError> {
        let v = match self.peek().clone() {
            Tok::Str(s) => Value::String(s),
            Tok::Num(n) => n,
            t if t.is_keyword("true") => Value::Bool(true),
            t if t.is_keyword("false") => Value::Bool(false),
            t if t.is_keyword("null") => Value::Null,
            _ => return self.fail("a literal: a number, a quoted string, true, false or null"),
        };
        self.next();
        Ok(v)
    }
}

/// Parses the textual predicate syntax (see the module docs).
///
/// ```
/// use eddy_grid::query::parse_predicate;
/// assert!(parse_predicate("amount > 100 and country = 'DE'").is_ok());
/// let e = parse_predicate("amount >").unwrap_err();
/// assert_eq!(e.position, 8);
/// ```
pub fn parse_predicate(text: &str) -> Result<Predicate, ParseError> {
    let mut p = Parser {
        toks: tokenize(text)?,
        at: 0,
        depth: 0,
    };
    let pred = p.or()?;
    if *p.peek() != Tok::End {
        return p.fail("'and', 'or' or the end of the predicate");
    }
    Ok(pred)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_predicate_is_valid_then_it_round_trips_through_display() {
        for text in [
            "amount > 100 and country = 'DE'",
            "name like 'A%'",
            "x between 1 and 5",
            "c in ('a', 'b', 3)",
            "not (a = 1 or b <> 'x''y')",
            "__key >= -2.5e3",
            "s regex '[a-c]+\\d'",
            "a.b.c = true and d = null",
        ] {
            let p = parse_predicate(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let again = parse_predicate(&p.to_string()).unwrap();
            assert_eq!(p.to_string(), again.to_string(), "{text}");
        }
    }

    #[test]
    fn when_predicate_is_invalid_then_error_gives_position_and_expectation() {
        let cases = [
            ("amount >", 8, "literal"),
            ("amount 100", 7, "operator"),
            ("(a = 1", 6, "')'"),
            ("a = 1 b = 2", 6, "'and', 'or'"),
            ("x between 1 5", 12, "'and'"),
            ("c in 'a'", 5, "'('"),
            ("c in (1 2)", 8, "',' or ')'"),
            ("name like 5", 10, "quoted string"),
            ("s = 'open", 4, "closing quote"),
            ("a = 1 and", 9, "attribute name"),
            ("s regex '('", 8, "regular expression"),
            ("a ! 1", 2, "'!='"),
            ("a = 1 & b = 2", 6, "a name"),
            ("", 0, "attribute name"),
            ("a..b = 1", 0, "empty segments"),
        ];
        for (text, position, expected) in cases {
            let e = parse_predicate(text).expect_err(text);
            assert_eq!(e.position, position, "{text}: {e}");
            assert!(e.expected.contains(expected), "{text}: {e}");
        }
    }

    #[test]
    fn when_nesting_is_hostile_then_error_not_stack_overflow() {
        let text = format!("{}a = 1{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(parse_predicate(&text).is_err());
        let nots = format!("{}a = 1", "not ".repeat(10_000));
        assert!(parse_predicate(&nots).is_err());
    }
}
