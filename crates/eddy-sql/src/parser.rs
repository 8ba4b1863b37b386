//! The parser: splits a script into statements and parses each with
//! `sqlparser` (its generic dialect), adding the forms Flink's and Eddy's
//! dialects have and `sqlparser` does not:
//!
//! - `CREATE TABLE t (…, WATERMARK FOR ts AS ts - INTERVAL '2' SECOND,
//!   PRIMARY KEY (k) NOT ENFORCED) WITH ('connector' = '…', …)`;
//! - `CREATE JOB name [WITH (…)] AS INSERT INTO …`, `SHOW JOBS`,
//!   `DROP JOB name`, `SUSPEND JOB name`, `RESUME JOB name`;
//! - `TABLE t` as an argument of a window table function
//!   (`TUMBLE(TABLE t, DESCRIPTOR(ts), …)`), and `PARTITION BY k` after it
//!   (`SESSION(TABLE t PARTITION BY k, …)`), rewritten in the token stream
//!   to plain arguments before `sqlparser` sees them.
//!
//! Queries and expressions are `sqlparser`'s AST; every error carries the
//! line and column it was found at.

use crate::error::{ErrorKind, Pos, SqlError};
use sqlparser::ast::{DataType as AstType, Expr as AstExpr, Ident, Query};
use sqlparser::dialect::GenericDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Span, Token, TokenWithSpan, Tokenizer, Word};

/// The name `PARTITION BY` inside a window function call is rewritten to:
/// an argument `eddy_partition_by(k)`.
pub const PARTITION_BY_MARKER: &str = "eddy_partition_by";

/// Nesting depth of expressions and queries the parser accepts: deep
/// enough for any real query, shallow enough that binding and evaluating
/// (both recursive) stay far from the stack's end.
pub const RECURSION_LIMIT: usize = 64;

/// Statement text longer than this is refused before parsing: a limit on
/// what one statement may cost to parse and plan.
pub const STATEMENT_BYTES_MAX: usize = 1024 * 1024;

/// Operators one statement may hold. A chain `a + b + c …` parses into a
/// tree as deep as it is long, and trees are bound, evaluated and dropped
/// recursively: this keeps any tree far from the stack's end.
pub const OPERATORS_MAX: usize = 2000;

/// A name with where it was written.
#[derive(Debug, Clone)]
pub struct Name {
    /// The name, as written (unquoted).
    pub value: String,
    /// Where it starts.
    pub pos: Pos,
}

impl Name {
    fn of(ident: &Ident, fallback: Pos) -> Name {
        Name {
            value: ident.value.clone(),
            pos: Pos::of_span(ident.span, fallback),
        }
    }
}

/// One `'key' = 'value'` of a `WITH` clause.
#[derive(Debug, Clone)]
pub struct SqlOption {
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
    /// Where the key starts.
    pub pos: Pos,
}

/// A column definition of `CREATE TABLE`.
#[derive(Debug, Clone)]
pub struct ColumnDef {
    /// Its name.
    pub name: Name,
    /// Its type as written.
    pub data_type: AstType,
    /// Where the type starts.
    pub type_pos: Pos,
}

/// `CREATE TABLE`.
#[derive(Debug, Clone)]
pub struct CreateTable {
    /// The table's name.
    pub name: Name,
    /// `IF NOT EXISTS`.
    pub if_not_exists: bool,
    /// The columns.
    pub columns: Vec<ColumnDef>,
    /// `WATERMARK FOR column AS expr`.
    pub watermark: Option<(Name, AstExpr)>,
    /// `PRIMARY KEY (…)`.
    pub primary_key: Vec<Name>,
    /// `WITH (…)`.
    pub options: Vec<SqlOption>,
}

/// `INSERT INTO target SELECT …`.
#[derive(Debug, Clone)]
pub struct Insert {
    /// The sink table.
    pub target: Name,
    /// The query whose rows go there.
    pub query: Box<Query>,
}

/// A parsed statement.
#[derive(Debug, Clone)]
pub enum Statement {
    /// `CREATE TABLE`.
    CreateTable(Box<CreateTable>),
    /// `DROP TABLE [IF EXISTS] name`.
    DropTable {
        /// The table.
        name: Name,
        /// `IF EXISTS`.
        if_exists: bool,
    },
    /// `SHOW TABLES`.
    ShowTables,
    /// `SHOW JOBS`.
    ShowJobs,
    /// `DESCRIBE name`.
    Describe(Name),
    /// A query returning rows.
    Query(Box<Query>),
    /// `INSERT INTO … SELECT …`: an unnamed job.
    Insert(Insert),
    /// `CREATE JOB name [WITH (…)] AS INSERT INTO …`.
    CreateJob {
        /// The job's name.
        name: Name,
        /// `WITH (…)`.
        options: Vec<SqlOption>,
        /// What it runs.
        insert: Insert,
    },
    /// `DROP JOB [IF EXISTS] name`: cancels it.
    DropJob {
        /// The job.
        name: Name,
        /// `IF EXISTS`.
        if_exists: bool,
    },
    /// `SUSPEND JOB name`.
    SuspendJob(Name),
    /// `RESUME JOB name`.
    ResumeJob(Name),
    /// `EXPLAIN statement`.
    Explain(Box<Statement>),
}

/// A statement of a script with where it starts in the script.
#[derive(Debug, Clone, Copy)]
pub struct Piece<'a> {
    /// The statement's text, without the `;`.
    pub text: &'a str,
    /// Where its text starts in the script.
    pub base: Pos,
}

/// Splits a script on `;` outside quotes and comments; pieces with nothing
/// but blanks and comments are left out.
pub fn split_statements(script: &str) -> Vec<Piece<'_>> {
    let bytes = script.as_bytes();
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut meaningful = false;
    while i < bytes.len() {
        match bytes[i] {
            q @ (b'\'' | b'"' | b'`') => {
                meaningful = true;
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == q {
                        // A doubled quote is an escaped one.
                        if bytes.get(i + 1) == Some(&q) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 1;
            }
            b';' => {
                if meaningful {
                    pieces.push(piece(script, start, i));
                }
                start = i + 1;
                meaningful = false;
            }
            c if !c.is_ascii_whitespace() => meaningful = true,
            _ => {}
        }
        i += 1;
    }
    if meaningful && start < script.len() {
        pieces.push(piece(script, start, script.len()));
    }
    pieces
}

fn piece(script: &str, start: usize, end: usize) -> Piece<'_> {
    // Start at the statement's first character, so that an error about
    // the whole statement points at it rather than at the blanks before.
    let blanks = script[start..end].len() - script[start..end].trim_start().len();
    let start = start + blanks;
    let before = &script[..start];
    let line = before.matches('\n').count() as u64 + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = script[line_start..start].chars().count() as u64 + 1;
    Piece {
        text: &script[start..end],
        base: Pos { line, column },
    }
}

/// Turns a `sqlparser` error into a positioned one (its message ends with
/// "at Line: L, Column: C" when it knows where).
pub fn parser_error(e: ParserError, fallback: Pos) -> SqlError {
    let text = match e {
        ParserError::TokenizerError(s) | ParserError::ParserError(s) => s,
        ParserError::RecursionLimitExceeded => {
            return SqlError::new(
                ErrorKind::Syntax,
                fallback,
                format!("the statement nests deeper than {RECURSION_LIMIT} levels; simplify it"),
            )
        }
    };
    let (message, pos) = match text.rfind(" at Line: ") {
        Some(i) => {
            let tail = &text[i + " at Line: ".len()..];
            let mut parts = tail.split(", Column: ");
            let line = parts.next().and_then(|l| l.trim().parse().ok());
            let column = parts.next().and_then(|c| c.trim().parse().ok());
            match (line, column) {
                (Some(line), Some(column)) => (text[..i].to_string(), Pos { line, column }),
                _ => (text.clone(), fallback),
            }
        }
        None => (text.clone(), fallback),
    };
    let message = message
        .trim_start_matches("sql parser error: ")
        .replace("Expected: ", "expected ")
        .replace(", found: ", ", found ");
    SqlError::new(ErrorKind::Syntax, pos, message)
}

/// Parses one statement (the text between two `;`).
pub fn parse_statement(sql: &str) -> Result<Statement, SqlError> {
    if sql.len() > STATEMENT_BYTES_MAX {
        return Err(SqlError::new(
            ErrorKind::Syntax,
            Pos::START,
            format!(
                "the statement is {} bytes long, more than the {STATEMENT_BYTES_MAX} allowed",
                sql.len()
            ),
        ));
    }
    let dialect = GenericDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| {
            let pos = Pos::from_location(e.location).unwrap_or(Pos::START);
            SqlError::new(ErrorKind::Syntax, pos, e.message)
        })?;
    let operators = tokens
        .iter()
        .filter(|t| match &t.token {
            Token::Plus
            | Token::Minus
            | Token::Mul
            | Token::Div
            | Token::Mod
            | Token::StringConcat
            | Token::Eq
            | Token::Neq
            | Token::Lt
            | Token::Gt
            | Token::LtEq
            | Token::GtEq => true,
            Token::Word(w) => matches!(w.keyword, Keyword::AND | Keyword::OR | Keyword::NOT),
            _ => false,
        })
        .count();
    if operators > OPERATORS_MAX {
        return Err(SqlError::new(
            ErrorKind::Syntax,
            Pos::START,
            format!("the statement has {operators} operators, more than the {OPERATORS_MAX} allowed; split it"),
        ));
    }
    let tokens = rewrite_table_arguments(tokens);
    let mut parser = Parser::new(&dialect)
        .with_recursion_limit(RECURSION_LIMIT)
        .with_tokens_with_locations(tokens);
    let end = end_pos(sql);
    let mut p = StatementParser {
        parser: &mut parser,
        end,
    };
    let statement = p.statement()?;
    let next = p.parser.peek_token();
    if next.token != Token::EOF {
        return Err(SqlError::new(
            ErrorKind::Syntax,
            p.pos_of(&next),
            format!("expected the end of the statement, found {}", next.token),
        ));
    }
    Ok(statement)
}

/// Drops `TABLE` before a name that is a function argument, and rewrites
/// `PARTITION BY k` after it into an argument `eddy_partition_by(k)`.
fn rewrite_table_arguments(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let significant = |t: &TokenWithSpan| !matches!(t.token, Token::Whitespace(_));
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        let is_table = matches!(&t.token, Token::Word(w) if w.keyword == Keyword::TABLE);
        let prev = out.iter().rev().find(|t| significant(t)).map(|t| &t.token);
        let next_idx = (i + 1..tokens.len()).find(|&j| significant(&tokens[j]));
        let next = next_idx.map(|j| &tokens[j].token);
        if is_table
            && matches!(prev, Some(Token::LParen | Token::Comma))
            && matches!(next, Some(Token::Word(_)))
        {
            // Keep the name, then look for PARTITION BY after it.
            let name_idx = next_idx.expect("checked");
            out.push(tokens[name_idx].clone());
            i = name_idx + 1;
            let after: Vec<usize> = (i..tokens.len())
                .filter(|&j| significant(&tokens[j]))
                .take(2)
                .collect();
            let is_kw =
                |j: usize, k: Keyword| matches!(&tokens[j].token, Token::Word(w) if w.keyword == k);
            if after.len() == 2
                && is_kw(after[0], Keyword::PARTITION)
                && is_kw(after[1], Keyword::BY)
            {
                let span = tokens[after[0]].span;
                let mk = |token: Token| TokenWithSpan { token, span };
                out.push(mk(Token::Comma));
                out.push(mk(Token::Word(Word {
                    value: PARTITION_BY_MARKER.into(),
                    quote_style: None,
                    keyword: Keyword::NoKeyword,
                })));
                out.push(mk(Token::LParen));
                let mut j = after[1] + 1;
                let mut depth = 0i32;
                while j < tokens.len() {
                    match tokens[j].token {
                        Token::LParen => depth += 1,
                        Token::RParen if depth == 0 => break,
                        Token::RParen => depth -= 1,
                        Token::Comma if depth == 0 => break,
                        Token::EOF => break,
                        _ => {}
                    }
                    out.push(tokens[j].clone());
                    j += 1;
                }
                out.push(mk(Token::RParen));
                i = j;
            }
            continue;
        }
        out.push(t.clone());
        i += 1;
    }
    out
}

struct StatementParser<'p, 'a> {
    parser: &'p mut Parser<'a>,
    /// Just past the last character: where "found EOF" points.
    end: Pos,
}

/// The position just past the end of `sql` (after trailing blanks are
/// ignored).
fn end_pos(sql: &str) -> Pos {
    let trimmed = sql.trim_end();
    let line = trimmed.matches('\n').count() as u64 + 1;
    let last = trimmed.rsplit('\n').next().unwrap_or("");
    Pos {
        line,
        column: last.chars().count() as u64 + 1,
    }
}

impl StatementParser<'_, '_> {
    fn pos_of(&self, t: &TokenWithSpan) -> Pos {
        Pos::of_span(t.span, self.end)
    }

    fn here(&self) -> Pos {
        let t = self.parser.peek_token();
        self.pos_of(&t)
    }

    fn err(&self, e: ParserError) -> SqlError {
        parser_error(e, self.here())
    }

    /// Whether the next token is the word `word` (keyword or not); takes it
    /// if so.
    fn word(&mut self, word: &str) -> bool {
        let t = self.parser.peek_token();
        if matches!(&t.token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
        {
            self.parser.next_token();
            true
        } else {
            false
        }
    }

    fn expect_word(&mut self, word: &str) -> Result<(), SqlError> {
        if self.word(word) {
            Ok(())
        } else {
            let t = self.parser.peek_token();
            Err(SqlError::new(
                ErrorKind::Syntax,
                self.pos_of(&t),
                format!("expected {word}, found {}", t.token),
            ))
        }
    }

    fn name(&mut self) -> Result<Name, SqlError> {
        let fallback = self.here();
        let ident = self.parser.parse_identifier().map_err(|e| self.err(e))?;
        Ok(Name::of(&ident, fallback))
    }

    fn statement(&mut self) -> Result<Statement, SqlError> {
        let start = self.parser.peek_token();
        let pos = self.pos_of(&start);
        if self.word("EXPLAIN") {
            let inner = self.statement()?;
            if matches!(inner, Statement::Explain(_)) {
                return Err(SqlError::plan(
                    pos,
                    "EXPLAIN EXPLAIN: explain a statement once",
                ));
            }
            return Ok(Statement::Explain(Box::new(inner)));
        }
        if self.word("CREATE") {
            if self.word("TABLE") {
                return self
                    .create_table()
                    .map(|t| Statement::CreateTable(Box::new(t)));
            }
            if self.word("JOB") {
                return self.create_job();
            }
            let t = self.parser.peek_token();
            if matches!(&t.token, Token::Word(w) if w.value.eq_ignore_ascii_case("MAPPING")) {
                return Err(SqlError::unsupported_hint(
                    self.pos_of(&t),
                    "CREATE MAPPING (Hazelcast's form)",
                    "write CREATE TABLE t (…) WITH ('connector' = …)",
                ));
            }
            return Err(SqlError::new(
                ErrorKind::Syntax,
                self.pos_of(&t),
                format!("expected TABLE or JOB after CREATE, found {}", t.token),
            ));
        }
        if self.word("DROP") {
            let table = self.word("TABLE");
            if !table && !self.word("JOB") {
                let t = self.parser.peek_token();
                return Err(SqlError::new(
                    ErrorKind::Syntax,
                    self.pos_of(&t),
                    format!("expected TABLE or JOB after DROP, found {}", t.token),
                ));
            }
            let if_exists = self.parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
            let name = self.name()?;
            return Ok(if table {
                Statement::DropTable { name, if_exists }
            } else {
                Statement::DropJob { name, if_exists }
            });
        }
        if self.word("SHOW") {
            if self.word("TABLES") {
                return Ok(Statement::ShowTables);
            }
            if self.word("JOBS") {
                return Ok(Statement::ShowJobs);
            }
            let t = self.parser.peek_token();
            return Err(SqlError::new(
                ErrorKind::Syntax,
                self.pos_of(&t),
                format!("expected TABLES or JOBS after SHOW, found {}", t.token),
            ));
        }
        if self.word("DESCRIBE") || self.word("DESC") {
            return Ok(Statement::Describe(self.name()?));
        }
        if self.word("SUSPEND") {
            self.expect_word("JOB")?;
            return Ok(Statement::SuspendJob(self.name()?));
        }
        if self.word("RESUME") {
            self.expect_word("JOB")?;
            return Ok(Statement::ResumeJob(self.name()?));
        }
        if self.word("INSERT") {
            return self.insert_rest().map(Statement::Insert);
        }
        match &start.token {
            Token::Word(w) if matches!(w.keyword, Keyword::SELECT | Keyword::WITH | Keyword::VALUES) => {
                self.query().map(Statement::Query)
            }
            Token::LParen => self.query().map(Statement::Query),
            Token::EOF => Err(SqlError::new(ErrorKind::Syntax, pos, "empty statement")),
            other => Err(SqlError::new(
                ErrorKind::Syntax,
                pos,
                format!(
                    "expected a statement (SELECT, INSERT INTO, CREATE TABLE, CREATE JOB, DROP, SHOW, DESCRIBE, EXPLAIN), found {other}"
                ),
            )),
        }
    }

    fn query(&mut self) -> Result<Box<Query>, SqlError> {
        self.parser.parse_query().map_err(|e| self.err(e))
    }

    fn insert_rest(&mut self) -> Result<Insert, SqlError> {
        if !self.word("INTO") {
            let t = self.parser.peek_token();
            return Err(SqlError::new(
                ErrorKind::Syntax,
                self.pos_of(&t),
                format!("expected INTO after INSERT, found {}", t.token),
            ));
        }
        let target = self.name()?;
        if self.parser.peek_token().token == Token::LParen {
            return Err(SqlError::unsupported_hint(
                self.here(),
                "a column list after INSERT INTO t",
                "select the columns in the sink's order",
            ));
        }
        let query = self.query()?;
        Ok(Insert { target, query })
    }

    fn create_job(&mut self) -> Result<Statement, SqlError> {
        let name = self.name()?;
        let options = if self.parser.parse_keyword(Keyword::WITH) {
            self.options()?
        } else {
            Vec::new()
        };
        if !self.parser.parse_keyword(Keyword::AS) {
            let t = self.parser.peek_token();
            return Err(SqlError::new(
                ErrorKind::Syntax,
                self.pos_of(&t),
                format!(
                    "expected AS INSERT INTO … after CREATE JOB {}, found {}",
                    name.value, t.token
                ),
            ));
        }
        self.expect_word("INSERT")?;
        let insert = self.insert_rest()?;
        Ok(Statement::CreateJob {
            name,
            options,
            insert,
        })
    }

    fn options(&mut self) -> Result<Vec<SqlOption>, SqlError> {
        self.parser
            .expect_token(&Token::LParen)
            .map_err(|e| self.err(e))?;
        let mut options = Vec::new();
        if self.parser.consume_token(&Token::RParen) {
            return Ok(options);
        }
        loop {
            let pos = self.here();
            let key = self.string("an option name in quotes, like 'connector'")?;
            self.parser
                .expect_token(&Token::Eq)
                .map_err(|e| self.err(e))?;
            let value = self.string("an option value in quotes")?;
            options.push(SqlOption { key, value, pos });
            if self.parser.consume_token(&Token::Comma) {
                continue;
            }
            self.parser
                .expect_token(&Token::RParen)
                .map_err(|e| self.err(e))?;
            return Ok(options);
        }
    }

    fn string(&mut self, what: &str) -> Result<String, SqlError> {
        let t = self.parser.next_token();
        let pos = self.pos_of(&t);
        match t.token {
            Token::SingleQuotedString(s) => Ok(s),
            other => Err(SqlError::new(
                ErrorKind::Syntax,
                pos,
                format!("expected {what}, found {other}"),
            )),
        }
    }

    fn create_table(&mut self) -> Result<CreateTable, SqlError> {
        let if_not_exists =
            self.parser
                .parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
        let name = self.name()?;
        self.parser
            .expect_token(&Token::LParen)
            .map_err(|e| self.err(e))?;
        let mut table = CreateTable {
            name,
            if_not_exists,
            columns: Vec::new(),
            watermark: None,
            primary_key: Vec::new(),
            options: Vec::new(),
        };
        loop {
            let pos = self.here();
            if self.word("WATERMARK") {
                self.parser
                    .expect_keyword(Keyword::FOR)
                    .map_err(|e| self.err(e))?;
                let column = self.name()?;
                self.parser
                    .expect_keyword(Keyword::AS)
                    .map_err(|e| self.err(e))?;
                let expr = self.parser.parse_expr().map_err(|e| self.err(e))?;
                if table.watermark.is_some() {
                    return Err(SqlError::plan(pos, "a table has one WATERMARK at most"));
                }
                table.watermark = Some((column, expr));
            } else if self
                .parser
                .parse_keywords(&[Keyword::PRIMARY, Keyword::KEY])
            {
                self.parser
                    .expect_token(&Token::LParen)
                    .map_err(|e| self.err(e))?;
                let mut keys = Vec::new();
                loop {
                    keys.push(self.name()?);
                    if !self.parser.consume_token(&Token::Comma) {
                        break;
                    }
                }
                self.parser
                    .expect_token(&Token::RParen)
                    .map_err(|e| self.err(e))?;
                // Flink requires NOT ENFORCED; Eddy takes it or leaves it.
                let _ = self
                    .parser
                    .parse_keywords(&[Keyword::NOT, Keyword::ENFORCED]);
                if !table.primary_key.is_empty() {
                    return Err(SqlError::plan(pos, "a table has one PRIMARY KEY at most"));
                }
                table.primary_key = keys;
            } else if self.parser.peek_keyword(Keyword::CONSTRAINT) {
                return Err(SqlError::unsupported_hint(
                    pos,
                    "CONSTRAINT in CREATE TABLE",
                    "write PRIMARY KEY (…) NOT ENFORCED",
                ));
            } else {
                let name = self.name()?;
                let type_pos = self.here();
                let data_type = self.parser.parse_data_type().map_err(|e| self.err(e))?;
                if self.parser.parse_keywords(&[Keyword::NOT, Keyword::NULL]) {
                    // Accepted and not enforced, as in Flink's connectors.
                } else if self.word("METADATA") {
                    return Err(SqlError::unsupported(type_pos, "a METADATA column"));
                }
                table.columns.push(ColumnDef {
                    name,
                    data_type,
                    type_pos,
                });
            }
            if self.parser.consume_token(&Token::Comma) {
                continue;
            }
            self.parser
                .expect_token(&Token::RParen)
                .map_err(|e| self.err(e))?;
            break;
        }
        if self.parser.parse_keyword(Keyword::WITH) {
            table.options = self.options()?;
        }
        Ok(table)
    }
}

/// A span's start, or `fallback`.
pub fn span_pos(span: Span, fallback: Pos) -> Pos {
    Pos::of_span(span, fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_a_script_is_split_then_quotes_and_comments_keep_their_semicolons() {
        let s = "SELECT ';' FROM t; -- a; comment\nSELECT 2 /* ; */ ;\n\n  SELECT 3";
        let pieces = split_statements(s);
        assert_eq!(pieces.len(), 3, "{pieces:?}");
        assert_eq!(pieces[2].base, Pos { line: 4, column: 3 });
        assert!(split_statements(" ; ;-- x\n").is_empty());
    }

    #[test]
    fn when_create_table_has_watermark_and_key_then_both_parse() {
        let s = parse_statement(
            "CREATE TABLE t (id BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '2' SECOND, PRIMARY KEY (id) NOT ENFORCED) WITH ('connector' = 'datagen')",
        )
        .unwrap();
        let Statement::CreateTable(t) = s else {
            panic!()
        };
        assert_eq!(t.columns.len(), 2);
        assert!(t.watermark.is_some());
        assert_eq!(t.primary_key[0].value, "id");
        assert_eq!(t.options[0].key, "connector");
    }

    #[test]
    fn when_window_functions_take_table_arguments_then_they_parse() {
        parse_statement(
            "SELECT window_start, COUNT(*) FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end",
        )
        .unwrap();
        parse_statement(
            "SELECT 1 FROM TABLE(SESSION(TABLE t PARTITION BY k, DESCRIPTOR(ts), INTERVAL '1' SECOND))",
        )
        .unwrap();
    }

    #[test]
    fn when_syntax_is_wrong_then_the_error_has_a_position() {
        let e = parse_statement("SELECT a FROM t\n  WHERE (").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
    }
}
