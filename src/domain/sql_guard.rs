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
//!
//! Against the BigQuery emulator (DuckDB behind SQLGlot), the SQL must also
//! pass [`check_emulator_functions`]: DuckDB's file, table and system
//! functions (`read_text`, `read_blob`, `glob`, `query` …) would let one
//! SELECT read the server's files, so they are refused by name, as are
//! DuckDB's system views (`pg_settings`, `duckdb_tables` …).

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

/// DuckDB functions refused by exact name against the emulator, lower-case,
/// besides those matched by [`EMULATOR_FUNCTION_PREFIXES`] and
/// [`EMULATOR_FUNCTION_SUFFIXES`].
///
/// Built from DuckDB 1.5.5 as the emulator runs it (core, `json`,
/// `parquet`, `icu`, `spatial` and the Python client's functions), with
/// `SELECT DISTINCT function_name, function_type FROM duckdb_functions()`:
/// - every table function and table macro, whatever it does (reading files:
///   `glob`, `sniff_csv`, `shapefile_meta`, `st_drivers`; running SQL given
///   as a string: `query`, `query_table`; side effects: `checkpoint`,
///   `enable_logging`, `enable_profiling` …; Python pointers:
///   `arrow_scan_dumb`, `python_map_function`), except the three that share
///   their name with a BigQuery function and only generate values: `range`,
///   `repeat` and `unnest`;
/// - the scalar functions that read settings, variables or the environment
///   (`current_setting`, `getvariable`, `in_search_path`, and the CLI's
///   `getenv`), write DuckDB's log (`write_log`), or hold a worker
///   (`sleep_ms`);
/// - table functions of extensions the emulator does not load but DuckDB
///   could: `dbgen`, `dsdgen` (they write tables) and `load_aws_credentials`.
pub const EMULATOR_FUNCTIONS: &[&str] = &[
    // Table functions and table macros.
    "arrow_scan_dumb",
    "checkpoint",
    "dbgen",
    "disable_logging",
    "disable_profiling",
    "dsdgen",
    "enable_logging",
    "enable_profiling",
    "force_checkpoint",
    "generate_series",
    "glob",
    "histogram",
    "histogram_values",
    "json_each",
    "json_tree",
    "load_aws_credentials",
    "python_map_function",
    "query",
    "query_table",
    "repeat_row",
    "rtree_index_dump",
    "shapefile_meta",
    "sniff_csv",
    "st_drivers",
    "st_generatepoints",
    "summary",
    "test_all_types",
    "test_vector_types",
    "truncate_duckdb_logs",
    "which_secret",
    // Scalar functions: settings, variables, environment, log, sleep.
    "current_setting",
    "getenv",
    "getvariable",
    "in_search_path",
    "sleep_ms",
    "write_log",
];

/// Name beginnings refused as DuckDB functions: the file readers
/// (`read_text`, `read_blob`, `read_csv`, `read_parquet`, `read_json…`,
/// `read_duckdb`, and extensions' `read_xlsx`, `read_avro` …), Parquet's
/// `parquet_metadata` and kin, the system tables (`duckdb_settings`,
/// `duckdb_secrets` …), `pragma_*` and `icu_*` functions, spatial's GDAL
/// readers (`ST_Read`, `ST_Read_Meta`, `ST_ReadOSM`, `ST_ReadSHP`),
/// PostgreSQL-compatible ones (`pg_sleep`, `pg_timezone_names` …),
/// `json_execute_serialized_sql`, and the functions of DuckDB's extensions
/// that reach other databases, lakes or the network (`sqlite_*`,
/// `postgres_*`, `mysql_*`, `iceberg_*`, `delta_*`, `ducklake_*`, `http_*`).
/// No BigQuery function begins with any of them.
pub const EMULATOR_FUNCTION_PREFIXES: &[&str] = &[
    "read_",
    "parquet_",
    "duckdb_",
    "pragma_",
    "icu_",
    "st_read",
    "pg_",
    "json_execute",
    "sqlite_",
    "postgres_",
    "mysql_",
    "iceberg_",
    "delta_",
    "ducklake_",
    "http_",
];

/// Name endings refused as DuckDB functions: the scanners (`parquet_scan`,
/// `seq_scan`, `arrow_scan`, `pandas_scan`, `rtree_index_scan`, extensions'
/// `sqlite_scan`, `postgres_scan`, `delta_scan` …) and the functions that run
/// a query on another database (`postgres_query`, `mysql_query`; BigQuery's
/// own `EXTERNAL_QUERY` does not exist on the emulator).
pub const EMULATOR_FUNCTION_SUFFIXES: &[&str] = &["_scan", "_query"];

/// DuckDB's system views, refused against the emulator wherever they are
/// named without a dataset (they need no parentheses: `FROM pg_settings`
/// lists DuckDB's settings), besides every name beginning `duckdb_`:
/// `SELECT schema_name, view_name FROM duckdb_views() WHERE internal` in
/// DuckDB 1.5.5, plus the `pg_catalog` schema itself.
pub const EMULATOR_VIEWS: &[&str] = &[
    "pg_am",
    "pg_attrdef",
    "pg_attribute",
    "pg_catalog",
    "pg_class",
    "pg_collation",
    "pg_constraint",
    "pg_database",
    "pg_depend",
    "pg_description",
    "pg_enum",
    "pg_index",
    "pg_indexes",
    "pg_namespace",
    "pg_prepared_statements",
    "pg_proc",
    "pg_sequence",
    "pg_sequences",
    "pg_settings",
    "pg_tables",
    "pg_tablespace",
    "pg_type",
    "pg_views",
    "pragma_database_list",
    "sqlite_master",
    "sqlite_schema",
    "sqlite_temp_master",
    "sqlite_temp_schema",
];

/// Why SQL was refused before reaching the BigQuery emulator; reported as
/// `QUERY_NOT_ALLOWED`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmulatorRefusal {
    /// A DuckDB file, table or system function, called by name.
    Function {
        /// The name, lower-cased and cut (one segment of a dotted name).
        name: String,
    },
    /// A DuckDB system view, named without a dataset.
    SystemView {
        /// The name, lower-cased and cut.
        name: String,
    },
    /// SQL that the emulator's parser (SQLGlot) could split into tokens
    /// differently from the guard, so that a name could hide from it.
    Ambiguous {
        /// What makes it ambiguous, as a noun phrase.
        what: &'static str,
    },
}

impl EmulatorRefusal {
    /// The refused function's or view's name, lower-cased.
    pub fn name(&self) -> Option<&str> {
        match self {
            Self::Function { name } | Self::SystemView { name } => Some(name),
            Self::Ambiguous { .. } => None,
        }
    }

    /// A sentence saying what is wrong.
    pub fn message(&self) -> String {
        const RULE: &str =
            "DuckDB file and table functions are not allowed against the BigQuery emulator";
        match self {
            Self::Function { name } => format!("{RULE}; this SQL calls {name}."),
            Self::SystemView { name } => {
                format!("{RULE}, nor DuckDB's system views; this SQL reads {name}.")
            }
            Self::Ambiguous { what } => {
                format!("{RULE}, and this SQL cannot be checked for them: it has {what}.")
            }
        }
    }
}

impl fmt::Display for EmulatorRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for EmulatorRefusal {}

/// Accepts `sql` when it calls none of DuckDB's file, table or system
/// functions and names none of DuckDB's system views; run it, besides
/// [`check`], on SQL bound for the BigQuery emulator.
///
/// The SQL is split into tokens as in [`check`]. Then:
/// - a name followed by `(` (comments and whitespace between them do not
///   matter) is refused when it is one of [`EMULATOR_FUNCTIONS`] or begins
///   or ends like [`EMULATOR_FUNCTION_PREFIXES`] or
///   [`EMULATOR_FUNCTION_SUFFIXES`], whatever its case, whether it is bare,
///   in backticks (`` `read_text` ``), after a dot (`main.read_text`,
///   `` `system`.read_text ``, `SAFE.read_text`) or one segment of a dotted
///   name in backticks (`` `system.main.read_text` ``); a string followed by
///   `(` counts as a name too. Without a `(` such a name is a column or a
///   table (`SELECT query FROM t` passes);
/// - a name, or a whole string (SQLGlot reads `FROM 'pg_settings'` as a
///   table), that is one of [`EMULATOR_VIEWS`] or begins `duckdb_` is
///   refused unless it follows a dot (`sales.pg_settings` is a table of the
///   dataset `sales`);
/// - where SQLGlot's lexer could disagree with the guard's, it refuses: a
///   backslash in a backtick-quoted name (BigQuery reads it as an escape,
///   SQLGlot does not), and, outside strings, comments and quoted names, any
///   character other than printable ASCII and ASCII whitespace (SQLGlot
///   takes Unicode spaces such as U+00A0 for whitespace); SQL that [`check`]
///   cannot split is refused too.
pub fn check_emulator_functions(sql: &str) -> Result<(), EmulatorRefusal> {
    let tokens = tokens(sql).map_err(|refusal| EmulatorRefusal::Ambiguous {
        what: match refusal {
            GuardRefusal::Unterminated { what: "string" } => "a string that is never closed",
            GuardRefusal::Unterminated { what: "comment" } => "a comment that is never closed",
            GuardRefusal::Unterminated { .. } => "a quoted identifier that is never closed",
            GuardRefusal::AmbiguousRawString => "a raw string with a backslash before a quote",
            _ => "a token the guard cannot read",
        },
    })?;
    for (index, token) in tokens.iter().enumerate() {
        let qualified = index > 0 && tokens[index - 1] == Token::Dot;
        let called = tokens.get(index + 1) == Some(&Token::LParen);
        let name = match *token {
            Token::Word(name) | Token::Quoted(name) | Token::Str(name) => name,
            Token::Stray => {
                return Err(EmulatorRefusal::Ambiguous {
                    what: "a character other than printable ASCII outside strings and comments",
                });
            }
            _ => continue,
        };
        if name.contains('\\') && (called || matches!(token, Token::Quoted(_))) {
            return Err(EmulatorRefusal::Ambiguous {
                what: "a backslash in a quoted name",
            });
        }
        if called
            && let Some(function) = name
                .split('.')
                .find(|segment| is_emulator_function(segment))
        {
            return Err(EmulatorRefusal::Function {
                name: echo(function),
            });
        }
        // A string is a view only as a whole; a name by its first segment,
        // unless a dot puts it in a dataset.
        let view = match token {
            Token::Str(_) => Some(name),
            _ if qualified => None,
            _ => name.split('.').next(),
        };
        if let Some(view) = view.filter(|view| is_emulator_view(view)) {
            return Err(EmulatorRefusal::SystemView { name: echo(view) });
        }
    }
    Ok(())
}

/// Whether `name` is one of DuckDB's functions refused against the emulator.
fn is_emulator_function(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    EMULATOR_FUNCTIONS.contains(&name.as_str())
        || EMULATOR_FUNCTION_PREFIXES
            .iter()
            .any(|prefix| name.starts_with(prefix))
        || EMULATOR_FUNCTION_SUFFIXES
            .iter()
            .any(|suffix| name.ends_with(suffix))
}

/// Whether `name` is one of DuckDB's system views.
fn is_emulator_view(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    EMULATOR_VIEWS.contains(&name.as_str()) || name.starts_with("duckdb_")
}

/// A name as echoed back in a refusal: lower-cased and cut.
fn echo(name: &str) -> String {
    name.chars()
        .take(ECHO_MAX)
        .collect::<String>()
        .to_ascii_lowercase()
}

/// What the checks need to see of a token; numbers, parameters and other
/// punctuation are all `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    /// An unquoted identifier or keyword.
    Word(&'a str),
    /// A backtick-quoted identifier, without its backticks, escapes as
    /// written.
    Quoted(&'a str),
    /// A string or bytes literal, without its prefix and quotes, escapes as
    /// written.
    Str(&'a str),
    Semicolon,
    LParen,
    Dot,
    /// A byte that is neither printable ASCII nor ASCII whitespace.
    Stray,
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
                let end = string_end(bytes, i, false)?;
                tokens.push(Token::Str(string_content(sql, i, end)));
                i = end;
            }
            b'`' => {
                let end =
                    quoted_end(bytes, i + 1, b'`', false)?.ok_or(GuardRefusal::Unterminated {
                        what: "quoted identifier",
                    })?;
                tokens.push(Token::Quoted(&sql[i + 1..end - 1]));
                i = end;
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
                    let start = end;
                    i = string_end(bytes, start, prefix.contains('r'))?;
                    tokens.push(Token::Str(string_content(sql, start, i)));
                } else {
                    i = end;
                    tokens.push(Token::Word(word));
                }
            }
            b'!'..=b'~' => {
                tokens.push(Token::Other);
                i += 1;
            }
            _ => {
                tokens.push(Token::Stray);
                i += 1;
            }
        }
    }
    Ok(tokens)
}

/// The content of the string literal whose opening quote is at `start` and
/// which ends just before `end`: without its one or three quotes each side.
fn string_content(sql: &str, start: usize, end: usize) -> &str {
    let bytes = sql.as_bytes();
    let quote = bytes[start];
    let triple = bytes.get(start + 1) == Some(&quote) && bytes.get(start + 2) == Some(&quote);
    let width = if triple { 3 } else { 1 };
    &sql[start + width..end - width]
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

    fn refused_on_the_emulator(sql: &str) -> EmulatorRefusal {
        match check_emulator_functions(sql) {
            Ok(()) => panic!("the emulator check let through: {sql}"),
            Err(refusal) => refusal,
        }
    }

    fn passes_on_the_emulator(sql: &str) {
        if let Err(refusal) = check_emulator_functions(sql) {
            panic!("the emulator check refused {sql:?}: {}", refusal.message());
        }
    }

    fn function(name: &str) -> EmulatorRefusal {
        EmulatorRefusal::Function { name: name.into() }
    }

    #[test]
    fn a_duckdb_file_function_is_refused_whatever_its_case_or_quoting() {
        for sql in [
            "SELECT LENGTH(read_text('/etc/hostname'))",
            "SELECT SUBSTR(content, 1, 1) FROM read_text('/srv/okr-pulse/jwt-secret')",
            "SELECT * FROM READ_TEXT('/etc/hostname')",
            "select * from Read_Text('/etc/hostname')",
            "SELECT * FROM `read_text`('/etc/hostname')",
            "SELECT * FROM `READ_TEXT` ('/etc/hostname')",
            "SELECT * FROM main.read_text('/etc/hostname')",
            "SELECT * FROM `system`.read_text('/etc/hostname')",
            "SELECT * FROM system.main.`read_text`('/etc/hostname')",
            "SELECT * FROM `system.main.read_text`('/etc/hostname')",
            "SELECT * FROM SAFE.read_text('/etc/hostname')",
            "SELECT * FROM read_text /* a comment */ ('/etc/hostname')",
            "SELECT * FROM read_text -- a comment\n ('/etc/hostname')",
            "SELECT * FROM read_text # a comment\n\t('/etc/hostname')",
            "SELECT * FROM 'read_text'('/etc/hostname')",
            "SELECT x FROM UNNEST([1]) AS x \
             WHERE EXISTS (SELECT 1 FROM read_text('/etc/hostname'))",
        ] {
            assert_eq!(refused_on_the_emulator(sql), function("read_text"), "{sql}");
        }
        assert_eq!(
            refused_on_the_emulator("SELECT LENGTH(content) FROM read_blob('okr-pulse.db')"),
            function("read_blob")
        );
        assert_eq!(
            refused_on_the_emulator("SELECT * FROM read_text('/etc/hostname')").message(),
            "DuckDB file and table functions are not allowed against the BigQuery emulator; \
             this SQL calls read_text."
        );
    }

    #[test]
    fn duckdb_file_table_and_system_functions_are_refused_by_their_families() {
        for (sql, name) in [
            (
                "SELECT * FROM read_csv_auto('/etc/passwd')",
                "read_csv_auto",
            ),
            ("SELECT * FROM read_parquet(['a.parquet'])", "read_parquet"),
            (
                "SELECT * FROM read_json_objects('x.json')",
                "read_json_objects",
            ),
            (
                "SELECT * FROM read_duckdb('okr-pulse.duckdb')",
                "read_duckdb",
            ),
            ("SELECT * FROM parquet_scan('x')", "parquet_scan"),
            ("SELECT * FROM parquet_metadata('x')", "parquet_metadata"),
            ("SELECT * FROM seq_scan()", "seq_scan"),
            ("SELECT * FROM arrow_scan(1, 2, 3)", "arrow_scan"),
            ("SELECT * FROM glob('/etc/*')", "glob"),
            ("SELECT * FROM query('SELECT 42')", "query"),
            ("SELECT * FROM query_table('t')", "query_table"),
            ("SELECT * FROM sniff_csv('/etc/passwd')", "sniff_csv"),
            ("SELECT * FROM duckdb_settings()", "duckdb_settings"),
            ("SELECT * FROM duckdb_secrets()", "duckdb_secrets"),
            ("SELECT * FROM pragma_version()", "pragma_version"),
            ("SELECT * FROM ST_Read('/etc/passwd')", "st_read"),
            ("SELECT * FROM ST_ReadOSM('x.pbf')", "st_readosm"),
            ("SELECT * FROM icu_calendar_names()", "icu_calendar_names"),
            (
                "SELECT * FROM which_secret('s3://b/k', 's3')",
                "which_secret",
            ),
            ("SELECT * FROM checkpoint()", "checkpoint"),
            (
                "SELECT current_setting('home_directory')",
                "current_setting",
            ),
            (
                "SELECT 'home_directory'.current_setting()",
                "current_setting",
            ),
            ("SELECT getenv('HOME')", "getenv"),
            ("SELECT pg_sleep(60)", "pg_sleep"),
            (
                "SELECT * FROM sqlite_scan('okr-pulse.db', 'users')",
                "sqlite_scan",
            ),
            (
                "SELECT * FROM postgres_query('db', 'SELECT 1')",
                "postgres_query",
            ),
            ("SELECT http_get('http://169.254.169.254/')", "http_get"),
            (
                "SELECT * FROM json_execute_serialized_sql('{}')",
                "json_execute_serialized_sql",
            ),
        ] {
            assert_eq!(refused_on_the_emulator(sql), function(name), "{sql}");
        }
    }

    #[test]
    fn every_duckdb_table_function_is_refused_but_those_bigquery_also_has() {
        // `SELECT DISTINCT function_name FROM duckdb_functions() WHERE
        // function_type IN ('table', 'table_macro')` in DuckDB 1.5.5 with the
        // emulator's extensions and the Python client, less `range`,
        // `repeat` and `unnest`.
        const DUCKDB_1_5_TABLE_FUNCTIONS: &[&str] = &[
            "ST_Drivers",
            "ST_GeneratePoints",
            "ST_Read",
            "ST_ReadOSM",
            "ST_ReadSHP",
            "ST_Read_Meta",
            "arrow_scan",
            "arrow_scan_dumb",
            "checkpoint",
            "disable_logging",
            "disable_profiling",
            "duckdb_approx_database_count",
            "duckdb_columns",
            "duckdb_connection_count",
            "duckdb_constraints",
            "duckdb_coordinate_systems",
            "duckdb_databases",
            "duckdb_dependencies",
            "duckdb_extensions",
            "duckdb_external_file_cache",
            "duckdb_functions",
            "duckdb_indexes",
            "duckdb_keywords",
            "duckdb_log_contexts",
            "duckdb_logs",
            "duckdb_logs_parsed",
            "duckdb_memory",
            "duckdb_optimizers",
            "duckdb_prepared_statements",
            "duckdb_profiling_settings",
            "duckdb_schemas",
            "duckdb_secret_types",
            "duckdb_secrets",
            "duckdb_sequences",
            "duckdb_settings",
            "duckdb_table_sample",
            "duckdb_tables",
            "duckdb_temporary_files",
            "duckdb_types",
            "duckdb_variables",
            "duckdb_views",
            "enable_logging",
            "enable_profiling",
            "force_checkpoint",
            "generate_series",
            "glob",
            "histogram",
            "histogram_values",
            "icu_calendar_names",
            "json_each",
            "json_execute_serialized_sql",
            "json_tree",
            "pandas_scan",
            "parquet_bloom_probe",
            "parquet_file_metadata",
            "parquet_full_metadata",
            "parquet_kv_metadata",
            "parquet_metadata",
            "parquet_scan",
            "parquet_schema",
            "pg_timezone_names",
            "pragma_collations",
            "pragma_database_size",
            "pragma_metadata_info",
            "pragma_platform",
            "pragma_rtree_index_info",
            "pragma_show",
            "pragma_storage_info",
            "pragma_table_info",
            "pragma_user_agent",
            "pragma_version",
            "python_map_function",
            "query",
            "query_table",
            "read_blob",
            "read_csv",
            "read_csv_auto",
            "read_duckdb",
            "read_json",
            "read_json_auto",
            "read_json_objects",
            "read_json_objects_auto",
            "read_ndjson",
            "read_ndjson_auto",
            "read_ndjson_objects",
            "read_parquet",
            "read_text",
            "repeat_row",
            "rtree_index_dump",
            "rtree_index_scan",
            "seq_scan",
            "shapefile_meta",
            "sniff_csv",
            "summary",
            "test_all_types",
            "test_vector_types",
            "truncate_duckdb_logs",
            "which_secret",
        ];
        for name in DUCKDB_1_5_TABLE_FUNCTIONS {
            let sql = format!("SELECT * FROM {name}('x')");
            assert_eq!(
                refused_on_the_emulator(&sql),
                function(&name.to_ascii_lowercase()),
                "{sql}"
            );
        }
        passes_on_the_emulator("SELECT n FROM UNNEST(GENERATE_ARRAY(1, 3)) AS n");
        passes_on_the_emulator("SELECT REPEAT('ab', 3), RANGE(DATE '2024-01-01', NULL)");
    }

    #[test]
    fn a_column_named_like_a_function_still_passes() {
        passes_on_the_emulator("SELECT query FROM t");
        passes_on_the_emulator(
            "SELECT query, glob, summary, read_text, t.checkpoint, `query` AS q \
             FROM `p.d.read_text` AS t WHERE read_blob IS NOT NULL \
             GROUP BY query, glob, summary, read_text, checkpoint, q, read_blob",
        );
        passes_on_the_emulator("SELECT 'read_text(1)', \"query('x')\" -- read_text('/x')");
        passes_on_the_emulator("SELECT 1 /* FROM read_text('/etc/hostname') */");
        passes_on_the_emulator(
            "SELECT COUNT(*) AS value FROM `okr-test-project.sales.orders` \
             WHERE created_at BETWEEN @period_start AND @period_end",
        );
        passes_on_the_emulator(
            "WITH paid AS (SELECT amount FROM sales.orders WHERE status = 'paid') \
             SELECT COALESCE(SUM(amount), 0) FROM paid",
        );
    }

    #[test]
    fn a_duckdb_system_view_named_without_a_dataset_is_refused() {
        for (sql, name) in [
            ("SELECT name, setting FROM pg_settings", "pg_settings"),
            ("SELECT * FROM `PG_SETTINGS`", "pg_settings"),
            ("SELECT name FROM 'pg_settings'", "pg_settings"),
            (
                "SELECT name FROM UNNEST([1]) AS a, \"pg_settings\"",
                "pg_settings",
            ),
            ("SELECT * FROM '''pg_settings'''", "pg_settings"),
            ("SELECT * FROM pg_catalog.pg_settings", "pg_catalog"),
            ("SELECT * FROM `pg_catalog.pg_settings`", "pg_catalog"),
            ("SELECT * FROM duckdb_tables", "duckdb_tables"),
            ("SELECT sql FROM sqlite_master", "sqlite_master"),
        ] {
            assert_eq!(
                refused_on_the_emulator(sql),
                EmulatorRefusal::SystemView { name: name.into() },
                "{sql}"
            );
        }
        assert_eq!(
            refused_on_the_emulator("SELECT * FROM pg_settings").message(),
            "DuckDB file and table functions are not allowed against the BigQuery emulator, \
             nor DuckDB's system views; this SQL reads pg_settings."
        );
        passes_on_the_emulator("SELECT * FROM sales.pg_settings, `p.sales.duckdb_tables`");
        passes_on_the_emulator("SELECT 'pg_settings: a label' AS label");
    }

    #[test]
    fn sql_the_emulator_could_split_differently_is_refused() {
        // SQLGlot takes U+00A0 and U+001C for whitespace; the guard does not.
        for sql in [
            "SELECT * FROM read_text\u{a0}('/etc/hostname')",
            "SELECT * FROM read_text\u{1c}('/etc/hostname')",
        ] {
            assert!(
                matches!(
                    refused_on_the_emulator(sql),
                    EmulatorRefusal::Ambiguous { .. }
                ),
                "{sql}"
            );
        }
        // SQLGlot ends `x\` at its second backtick where BigQuery reads an
        // escape: in the first, SQLGlot reads `--` as a name and then calls
        // read_text, where the guard sees one name and a comment.
        for sql in [
            "SELECT 1 AS `x\\`, 1 AS `--`, (SELECT content FROM read_text('/etc/hostname')) AS y",
            "SELECT `x\\`y` FROM t",
            "SELECT * FROM `read\\x5ftext`('/etc/hostname')",
        ] {
            assert_eq!(
                refused_on_the_emulator(sql),
                EmulatorRefusal::Ambiguous {
                    what: "a backslash in a quoted name"
                },
                "{sql}"
            );
        }
        assert_eq!(
            refused_on_the_emulator("SELECT 'abc"),
            EmulatorRefusal::Ambiguous {
                what: "a string that is never closed"
            }
        );
        assert!(
            refused_on_the_emulator("SELECT 1 /* never closed")
                .message()
                .ends_with("cannot be checked for them: it has a comment that is never closed.")
        );
        // Text that is not ASCII inside strings, comments and quoted names is fine.
        passes_on_the_emulator("SELECT 'café — ok' AS `naïve` -- résumé\n");
    }

    #[test]
    fn a_carriage_return_ends_a_line_comment() {
        assert_eq!(
            refused("SELECT 1 -- comment\r; DROP TABLE t"),
            GuardRefusal::Statements { count: 2 }
        );
    }
}
