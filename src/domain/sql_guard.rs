//! The local SQL guard, run before any BigQuery call: one SELECT (or
//! WITH … SELECT) statement and nothing a script could do.
//!
//! Defence in depth: the dry run's statement type remains the authority, but
//! a dry run of a script on the BigQuery emulator executes it for real, so
//! `SELECT 1; DROP TABLE t` must never reach BigQuery at all.
//!
//! The SQL is split into tokens the way BigQuery's lexer (ZetaSQL) splits
//! it, so that nothing inside a string, a quoted identifier or a comment
//! counts, and then:
//! - it must hold exactly one statement: a `;` ends it, and only whitespace
//!   and comments may follow a final `;` (`SELECT 1;;` is refused: the
//!   second `;` ends an empty statement, which BigQuery refuses too);
//! - its first keyword, after comments and opening parentheses, must be
//!   SELECT or WITH;
//! - no keyword that only scripts, DDL or DML use may appear anywhere as a
//!   keyword ([`FORBIDDEN`], and the pairs EXECUTE IMMEDIATE, EXPORT DATA and
//!   LOAD DATA). A word right after a `.` is a name (`t.delete`), and a
//!   column named like one of them can be written in backticks.
//!
//! Where the guard's lexing could disagree with BigQuery's, it refuses: an
//! unterminated string, comment or quoted identifier, a newline inside a
//! one-line string, or a backslash before the closing quote of a raw string.

use std::fmt;

/// Words that a single SELECT never uses as keywords; their presence means
/// DDL, DML, scripting or permissions. (SET, IF, LOOP, WHILE, REPEAT, FOR,
/// CASE … begin scripting statements only at a statement's start, which the
/// SELECT-or-WITH rule already covers; elsewhere they are ordinary SQL.)
pub const FORBIDDEN: &[&str] = &[
    "ALTER", "ASSERT", "BEGIN", "CALL", "CREATE", "DECLARE", "DELETE", "DROP", "GRANT", "INSERT",
    "MERGE", "RAISE", "REVOKE", "TRUNCATE", "UPDATE",
];

/// Two-word keywords whose first word alone is an ordinary name.
const FORBIDDEN_PAIRS: &[(&str, &str, &str)] = &[
    ("EXECUTE", "IMMEDIATE", "EXECUTE IMMEDIATE"),
    ("EXPORT", "DATA", "EXPORT DATA"),
    ("LOAD", "DATA", "LOAD DATA"),
];

/// Longest first word echoed back in a refusal, in characters.
const ECHO_MAX: usize = 32;

/// Why SQL was refused before reaching BigQuery; reported as
/// `QUERY_NOT_SELECT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardRefusal {
    /// Nothing but whitespace and comments.
    Empty,
    /// More than one statement.
    Statements {
        /// How many non-empty statements the SQL holds.
        count: usize,
    },
    /// A `;` with no statement before it (`SELECT 1;;`, `;SELECT 1`).
    EmptyStatement,
    /// The first word is not SELECT or WITH.
    StartsWith {
        /// The first word, upper-cased and cut; `None` when the statement
        /// starts with something other than a word (a string, a number …).
        word: Option<String>,
    },
    /// A keyword from [`FORBIDDEN`] or a forbidden pair.
    Keyword {
        /// The keyword, as in [`FORBIDDEN`] (pairs joined by a space).
        keyword: &'static str,
    },
    /// A string, comment or quoted identifier that is never closed.
    Unterminated {
        /// `"string"`, `"comment"` or `"quoted identifier"`.
        what: &'static str,
    },
    /// A raw string with a backslash before a quote, which lexers read
    /// differently.
    AmbiguousRawString,
}

impl GuardRefusal {
    /// A sentence saying what is wrong and how to fix it.
    pub fn message(&self) -> String {
        const RULE: &str = "okr-pulse runs one SELECT (or WITH … SELECT) statement";
        match self {
            Self::Empty => format!("{RULE}; this SQL is empty."),
            Self::Statements { count } => {
                format!("{RULE}; this SQL has {count} statements.")
            }
            Self::EmptyStatement => {
                format!(
                    "{RULE}; this SQL has an empty statement (a `;` with nothing before it); remove the extra `;`."
                )
            }
            Self::StartsWith { word: Some(word) } => {
                format!("{RULE}; this SQL starts with {word}.")
            }
            Self::StartsWith { word: None } => {
                format!("{RULE}; this SQL does not start with SELECT or WITH.")
            }
            Self::Keyword { keyword } => format!(
                "{RULE}; this SQL uses the scripting keyword {keyword}. If it names a column or \
                 table, write it in backticks (`{}`).",
                keyword.to_ascii_lowercase()
            ),
            Self::Unterminated { what } => {
                format!("{RULE}; this SQL has a {what} that is never closed.")
            }
            Self::AmbiguousRawString => format!(
                "{RULE}; this SQL has a raw string (r'…') with a backslash before a quote; use a \
                 normal string instead."
            ),
        }
    }
}

impl fmt::Display for GuardRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for GuardRefusal {}

/// Accepts `sql` when it is one SELECT (or WITH … SELECT) statement with no
/// scripting, DDL or DML keyword; see the module documentation for the rules.
pub fn check(sql: &str) -> Result<(), GuardRefusal> {
    let tokens = tokens(sql)?;

    // One statement, optionally ended by one `;`.
    let mut statements = 0;
    let mut current_is_empty = true;
    for token in &tokens {
        match token {
            Token::Semicolon if current_is_empty => return Err(GuardRefusal::EmptyStatement),
            Token::Semicolon => current_is_empty = true,
            _ => {
                if current_is_empty {
                    statements += 1;
                }
                current_is_empty = false;
            }
        }
    }

    // The first word, after opening parentheses.
    match tokens.iter().find(|token| !matches!(token, Token::LParen)) {
        None => return Err(GuardRefusal::Empty),
        Some(Token::Word(word))
            if word.eq_ignore_ascii_case("SELECT") || word.eq_ignore_ascii_case("WITH") => {}
        Some(Token::Word(word)) => {
            return Err(GuardRefusal::StartsWith {
                word: Some(
                    word.chars()
                        .take(ECHO_MAX)
                        .collect::<String>()
                        .to_ascii_uppercase(),
                ),
            });
        }
        Some(_) => return Err(GuardRefusal::StartsWith { word: None }),
    }
    if statements > 1 {
        return Err(GuardRefusal::Statements { count: statements });
    }

    // No forbidden keyword anywhere.
    let mut previous: Option<&Token> = None;
    for token in &tokens {
        if let Token::Word(word) = token {
            let after_dot = matches!(previous, Some(Token::Dot));
            if !after_dot {
                if let Some(keyword) = FORBIDDEN
                    .iter()
                    .copied()
                    .find(|keyword| word.eq_ignore_ascii_case(keyword))
                {
                    return Err(GuardRefusal::Keyword { keyword });
                }
                if let Some(Token::Word(before)) = previous
                    && let Some(&(_, _, keyword)) =
                        FORBIDDEN_PAIRS.iter().find(|(first, second, _)| {
                            before.eq_ignore_ascii_case(first) && word.eq_ignore_ascii_case(second)
                        })
                {
                    return Err(GuardRefusal::Keyword { keyword });
                }
            }
        }
        previous = Some(token);
    }
    Ok(())
}

/// What the checks need to see of a token; strings, numbers, parameters,
/// quoted identifiers and other punctuation are all `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    /// An unquoted identifier or keyword.
    Word(&'a str),
    Semicolon,
    LParen,
    Dot,
    Other,
}

/// Splits SQL into tokens, skipping whitespace and comments.
fn tokens(sql: &str) -> Result<Vec<Token<'_>>, GuardRefusal> {
    let bytes = sql.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        match byte {
            b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c' => i += 1,
            b'#' => i = line_end(bytes, i),
            b'-' if bytes.get(i + 1) == Some(&b'-') => i = line_end(bytes, i),
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = match find(bytes, i + 2, b"*/") {
                    Some(end) => end + 2,
                    None => return Err(GuardRefusal::Unterminated { what: "comment" }),
                };
            }
            b';' => {
                tokens.push(Token::Semicolon);
                i += 1;
            }
            b'(' => {
                tokens.push(Token::LParen);
                i += 1;
            }
            b'.' => {
                tokens.push(Token::Dot);
                i += 1;
            }
            b'\'' | b'"' => {
                i = string_end(bytes, i, false)?;
                tokens.push(Token::Other);
            }
            b'`' => {
                i = quoted_end(bytes, i + 1, b'`', false)?.ok_or(GuardRefusal::Unterminated {
                    what: "quoted identifier",
                })?;
                tokens.push(Token::Other);
            }
            b'@' => {
                // A query parameter (`@period_start`) or system variable
                // (`@@dataset_id`): a name, never a keyword.
                i += 1;
                while bytes.get(i) == Some(&b'@') {
                    i += 1;
                }
                i = word_end(bytes, i);
                tokens.push(Token::Other);
            }
            b'0'..=b'9' => {
                // Letters after digits start a new word (`1e5` is `1`, `e5`),
                // which can only make the guard stricter.
                while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
                tokens.push(Token::Other);
            }
            _ if is_word_start(byte) => {
                let end = word_end(bytes, i);
                let word = &sql[i..end];
                let prefix = word.to_ascii_lowercase();
                let is_string_prefix = matches!(prefix.as_str(), "r" | "b" | "rb" | "br");
                if is_string_prefix && matches!(bytes.get(end), Some(b'\'' | b'"')) {
                    i = string_end(bytes, end, prefix.contains('r'))?;
                    tokens.push(Token::Other);
                } else {
                    i = end;
                    tokens.push(Token::Word(word));
                }
            }
            _ => {
                tokens.push(Token::Other);
                i += 1;
            }
        }
    }
    Ok(tokens)
}

fn is_word_start(byte: u8) -> bool {
    byte.is_ascii_alphabetic() || byte == b'_'
}

fn word_end(bytes: &[u8], mut i: usize) -> usize {
    while bytes
        .get(i)
        .is_some_and(|byte| byte.is_ascii_alphanumeric() || *byte == b'_')
    {
        i += 1;
    }
    i
}

/// Where a `--` or `#` comment ends: at the next line break (`\n` or `\r`,
/// as in BigQuery).
fn line_end(bytes: &[u8], i: usize) -> usize {
    bytes[i..]
        .iter()
        .position(|byte| matches!(byte, b'\n' | b'\r'))
        .map_or(bytes.len(), |offset| i + offset)
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(needle.len())
        .position(|window| window == needle)
        .map(|offset| from + offset)
}

/// Where the string literal whose opening quote is at `start` ends (just
/// past its closing quote). `'…'`, `"…"`, `'''…'''` and `"""…"""`; a
/// backslash always takes the next character with it, as in BigQuery's
/// lexer (raw strings included).
fn string_end(bytes: &[u8], start: usize, raw: bool) -> Result<usize, GuardRefusal> {
    let quote = bytes[start];
    let triple = bytes.get(start + 1) == Some(&quote) && bytes.get(start + 2) == Some(&quote);
    let unterminated = GuardRefusal::Unterminated { what: "string" };
    if triple {
        let mut i = start + 3;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => {
                    if raw && bytes.get(i + 1) == Some(&quote) {
                        return Err(GuardRefusal::AmbiguousRawString);
                    }
                    i += 2;
                }
                byte if byte == quote
                    && bytes.get(i + 1) == Some(&quote)
                    && bytes.get(i + 2) == Some(&quote) =>
                {
                    return Ok(i + 3);
                }
                _ => i += 1,
            }
        }
        Err(unterminated)
    } else {
        quoted_end(bytes, start + 1, quote, raw)?.ok_or(unterminated)
    }
}

/// Where a one-line quoted token (string or backtick identifier) whose
/// content starts at `i` ends, just past `quote`; `None` when it never
/// closes or a line break comes first.
fn quoted_end(
    bytes: &[u8],
    mut i: usize,
    quote: u8,
    raw: bool,
) -> Result<Option<usize>, GuardRefusal> {
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                if raw && bytes.get(i + 1) == Some(&quote) {
                    return Err(GuardRefusal::AmbiguousRawString);
                }
                i += 2;
            }
            b'\n' | b'\r' if quote != b'`' => return Ok(None),
            byte if byte == quote => return Ok(Some(i + 1)),
            _ => i += 1,
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(sql: &str) -> GuardRefusal {
        match check(sql) {
            Ok(()) => panic!("the guard let through: {sql}"),
            Err(refusal) => refusal,
        }
    }

    fn passes(sql: &str) {
        if let Err(refusal) = check(sql) {
            panic!("the guard refused {sql:?}: {}", refusal.message());
        }
    }

    #[test]
    fn a_second_statement_after_a_select_is_refused() {
        assert_eq!(
            refused("SELECT 1; DROP TABLE t"),
            GuardRefusal::Statements { count: 2 }
        );
        assert_eq!(
            refused("SELECT 1; DROP TABLE t").message(),
            "okr-pulse runs one SELECT (or WITH … SELECT) statement; this SQL has 2 statements."
        );
        assert_eq!(
            refused("SELECT 1; DELETE FROM t WHERE true"),
            GuardRefusal::Statements { count: 2 }
        );
    }

    #[test]
    fn a_script_block_is_refused() {
        assert_eq!(
            refused("BEGIN SELECT 1; END"),
            GuardRefusal::StartsWith {
                word: Some("BEGIN".into())
            }
        );
        assert_eq!(
            refused("SELECT 1 FROM (SELECT 2) WHERE begin"),
            GuardRefusal::Keyword { keyword: "BEGIN" }
        );
        assert!(
            refused("select begin from t")
                .message()
                .contains("uses the scripting keyword BEGIN")
        );
    }

    #[test]
    fn declarations_and_statements_other_than_select_are_refused() {
        assert_eq!(
            refused("DECLARE x INT64; SELECT x"),
            GuardRefusal::StartsWith {
                word: Some("DECLARE".into())
            }
        );
        assert_eq!(
            refused("EXPORT DATA OPTIONS(uri='gs://b/*.csv', format='CSV') AS SELECT 1"),
            GuardRefusal::StartsWith {
                word: Some("EXPORT".into())
            }
        );
        assert_eq!(
            refused("CREATE TEMP TABLE t AS SELECT 1"),
            GuardRefusal::StartsWith {
                word: Some("CREATE".into())
            }
        );
        assert_eq!(
            refused("delete from t where true").message(),
            "okr-pulse runs one SELECT (or WITH … SELECT) statement; this SQL starts with DELETE."
        );
        assert_eq!(
            refused("-- hi\n SET x = 1"),
            GuardRefusal::StartsWith {
                word: Some("SET".into())
            }
        );
        assert_eq!(refused("'SELECT'"), GuardRefusal::StartsWith { word: None });
    }

    #[test]
    fn forbidden_keywords_inside_a_select_are_refused() {
        assert_eq!(
            refused("WITH a AS (SELECT 1) SELECT * FROM a WHERE EXISTS (INSERT INTO t VALUES (1))"),
            GuardRefusal::Keyword { keyword: "INSERT" }
        );
        assert_eq!(
            refused("SELECT 1 FROM t /* x */ WHERE x = 1 AND EXECUTE IMMEDIATE 'DROP TABLE t'"),
            GuardRefusal::Keyword {
                keyword: "EXECUTE IMMEDIATE"
            }
        );
        assert_eq!(
            refused("(SELECT 1) UNION ALL (EXPORT /* c */ DATA OPTIONS() AS SELECT 2)"),
            GuardRefusal::Keyword {
                keyword: "EXPORT DATA"
            }
        );
        assert_eq!(
            refused("SELECT 1 FROM t WHERE LOAD DATA"),
            GuardRefusal::Keyword {
                keyword: "LOAD DATA"
            }
        );
        assert_eq!(
            refused("SeLeCt 1 FROM t WHERE x = (CALL p())"),
            GuardRefusal::Keyword { keyword: "CALL" }
        );
    }

    #[test]
    fn a_select_after_comments_and_parentheses_passes() {
        passes("/* hi */ (SELECT 1)");
        passes("-- a comment\n# another\n/* and\n another */ ((select 1))");
        passes("WITH a AS (SELECT 1 AS n) SELECT SUM(n) FROM a");
    }

    #[test]
    fn a_semicolon_inside_a_string_or_comment_is_not_a_second_statement() {
        passes("SELECT COUNT(*) FROM t WHERE note = 'a;b' -- trailing; comment");
        passes("SELECT 1 /* ; DROP TABLE t; */");
        passes("SELECT \"x; y\" AS s # ; DELETE FROM t");
        passes("SELECT 'it\\'s; fine' AS s");
    }

    #[test]
    fn one_final_semicolon_passes_but_an_empty_statement_after_it_does_not() {
        passes("SELECT 1;");
        passes("SELECT 1; -- done\n /* really */ ");
        assert_eq!(refused("SELECT 1;;"), GuardRefusal::EmptyStatement);
        assert_eq!(refused(";SELECT 1"), GuardRefusal::EmptyStatement);
        assert_eq!(refused("  -- nothing\n"), GuardRefusal::Empty);
    }

    #[test]
    fn query_parameters_pass() {
        passes(
            "SELECT COUNT(*) FROM `p.d.orders` \
             WHERE day BETWEEN @period_start AND @period_end AND created_at <= @as_of",
        );
    }

    #[test]
    fn triple_quoted_strings_hide_their_semicolons_and_quotes() {
        passes("SELECT '''it's; ''quoted'' ; DROP TABLE t''' AS s");
        passes("SELECT \"\"\"a \" ; b\n DELETE \"\"\" AS s");
        assert_eq!(
            refused("SELECT '''a''' ; DROP TABLE t"),
            GuardRefusal::Statements { count: 2 }
        );
    }

    #[test]
    fn raw_and_byte_strings_are_strings() {
        passes("SELECT REGEXP_CONTAINS(x, r'\\d+;DROP') FROM t");
        passes("SELECT b'bytes; DELETE', RB\"\"\"raw; bytes\"\"\" FROM t");
        assert_eq!(
            refused("SELECT r'\\'; DROP TABLE t; --'"),
            GuardRefusal::AmbiguousRawString
        );
    }

    #[test]
    fn backtick_identifiers_are_names_not_keywords() {
        passes("SELECT COUNT(*) FROM `project.dataset.delete`");
        passes("SELECT `update`, `drop;table` FROM t");
    }

    #[test]
    fn column_names_containing_keywords_pass() {
        passes(
            "SELECT created_at, update_time, deleted, settings, begin_date, t.delete \
             FROM t WHERE label = 'DROP TABLE x' AND IF(flag, 1, 0) = 1 \
             AND export = 1 AND data = 2",
        );
    }

    #[test]
    fn unterminated_strings_comments_and_identifiers_are_refused() {
        assert_eq!(
            refused("SELECT 'abc"),
            GuardRefusal::Unterminated { what: "string" }
        );
        assert_eq!(
            refused("SELECT 'abc\n; DROP TABLE t; '"),
            GuardRefusal::Unterminated { what: "string" }
        );
        assert_eq!(
            refused("SELECT '''abc"),
            GuardRefusal::Unterminated { what: "string" }
        );
        assert_eq!(
            refused("SELECT 1 /* never closed"),
            GuardRefusal::Unterminated { what: "comment" }
        );
        assert_eq!(
            refused("SELECT `abc"),
            GuardRefusal::Unterminated {
                what: "quoted identifier"
            }
        );
    }

    #[test]
    fn a_carriage_return_ends_a_line_comment() {
        assert_eq!(
            refused("SELECT 1 -- comment\r; DROP TABLE t"),
            GuardRefusal::Statements { count: 2 }
        );
    }
}
