//! The query cost check: measures a GraphQL document before async-graphql
//! sees it, in time linear in the document's size, and refuses it when its
//! depth, field count, aliases or complexity is above a limit.
//!
//! # Why before async-graphql
//!
//! async-graphql's own checks before execution (its recursion depth check,
//! its directive count, and the validation visitors for depth and complexity)
//! walk every operation of the document with each fragment spread expanded
//! again where it appears. A 1 KB "fragment bomb" (24 fragments, each
//! spreading the previous one twice) is 2^24 fields to them. [`measure`]
//! computes each fragment's cost once and reuses it (memoisation), so the
//! same document costs a few dozen steps here and is refused before
//! async-graphql walks it.
//!
//! # What is measured
//!
//! - `depth`: the deepest chain of nested fields, fragments seen through.
//! - `fields`: the fields async-graphql would visit with fragments expanded,
//!   in every operation of the document (its checks walk them all, whichever
//!   operation then runs).
//! - `aliases`: aliased fields, counted the same way.
//! - `complexity`: an estimate of the objects the operation that runs
//!   resolves: every field costs 1 (long text more, see [`TEXT_WEIGHTS`])
//!   plus its children, and a list field of objects multiplies that by its
//!   expected length (its `limit`/`first` argument, else a per-field
//!   default from [`LIST_SIZES`]).
//!
//! Sums and products saturate at `u64::MAX` instead of overflowing. A
//! fragment cycle is reported as such instead of being followed. Fields
//! under `@skip`/`@include` count as if included, and fields the schema does
//! not know count as scalars (validation refuses them later).
//!
//! # Use
//!
//! Build a [`TypeInfo`] once from the SDL at startup; per request, call
//! [`check_length`] on the query text, parse it, then [`measure`] and
//! [`check`].

mod schema;
mod walk;

use std::fmt;

// `async_graphql::Value` is the constant value (no variables).
use async_graphql::Name;

/// The longest list a field may return: `objectives`' documented maximum.
/// A larger `limit` is refused by the resolver (`BAD_USER_INPUT`), so a list
/// never multiplies its children by more than this.
pub const MAX_LIST_SIZE: u64 = 5_000;

/// Items expected in a list field that takes no `limit`/`first` argument and
/// has no entry in [`LIST_SIZES`]: a generous page (connections, users, a
/// connection's `sharedWith` rarely reach it).
pub const DEFAULT_LIST_SIZE: u64 = 100;

/// Items expected in a list field, by `(type, field)`, when the request
/// gives no `limit`/`first` and the SDL gives the argument no default.
///
/// The numbers are chosen so that the dashboard's tree query over 5,000
/// objectives fits [`Limits::default`] while a cycle that re-enters the
/// objective list is refused:
/// - `Query.objectives` returns every objective of the organization up to
///   its documented maximum, so without a limit it is assumed full: 5,000.
/// - An objective's `keyResults` and `children` are a handful in practice
///   (OKR practice is 3–5 key results per objective), but the estimate must
///   be a true upper bound, so they count at the bounds the data keeps:
///   `MAX_KEY_RESULTS_PER_OBJECTIVE` (25) and `MAX_CHILDREN_PER_OBJECTIVE`
///   (100). Startup replaces these with the configured bounds.
///
/// With these, the tree query costs 3,840,000 and the six-deep cycle
/// `objectives → keyResults → objective → keyResults → objective →
/// keyResults` costs at least 162,755,000 (see [`Limits::default`]).
pub const LIST_SIZES: &[(&str, &str, u64)] = &[
    ("Query", "objectives", MAX_LIST_SIZE),
    ("Objective", "keyResults", 25),
    ("Objective", "children", 100),
];

/// Fields whose text may be long, by `(type, field)`, and what each costs:
/// one unit per started 1,000 characters of its longest allowed value
/// (titles and other short text cost 1 like any field). A data source's
/// `sql` is left at 1: one per key result at most, and the dashboard's tree
/// asks for it on every item.
pub const TEXT_WEIGHTS: &[(&str, &str, u64)] = &[
    ("Objective", "description", 10),
    ("ProgressPoint", "note", 2),
];

/// Deepest selection-set nesting walked; beyond it the walk stops and reports
/// the depth reached. The parser already refuses nesting beyond 64, so this
/// only guards the stack against documents built some other way.
const MAX_NESTING: usize = 256;

/// The limits a document must stay within; every one is refused with
/// `QUERY_TOO_COMPLEX`, the measured figure and the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest query text parsed at all, in bytes: parsing allocates a node
    /// per token, so this bounds the work done before [`measure`] can run.
    /// 64 KiB is some thirty times GraphiQL's introspection query (about
    /// 2 KB) and far above any dashboard query.
    pub max_bytes: usize,
    /// Deepest nesting of fields. The dashboard's deepest query nests 5;
    /// GraphiQL's introspection query nests 14 (its type references follow
    /// `ofType` seven times); 20 leaves room for a client that asks deeper.
    /// Cost comes from lists, which complexity bounds, more than from depth.
    pub max_depth: usize,
    /// Most fields visited with fragments expanded. The tree query has 39,
    /// GraphiQL's introspection query 212; a fragment bomb has millions.
    pub max_fields: u64,
    /// Most aliased fields. Aliases let one field be asked for many times in
    /// one small document; no screen of the dashboard needs more than a few.
    pub max_aliases: u64,
    /// Highest complexity (objects the operation may resolve, at the bounds
    /// the data keeps). The tree query over 5,000 objectives costs
    /// 3,840,000; the six-deep objectives→keyResults→objective cycle at
    /// least 162,755,000. Five million leaves the tree query room to grow
    /// (each extra key-result field adds 125,000) while the cycle stays far
    /// above.
    pub max_complexity: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024,
            max_depth: 20,
            max_fields: 1_000,
            max_aliases: 100,
            max_complexity: 5_000_000,
        }
    }
}

/// What [`measure`] found in a document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cost {
    /// Deepest nesting of fields, over every operation.
    pub depth: usize,
    /// Fields with fragments expanded, summed over every operation.
    pub fields: u64,
    /// Aliased fields with fragments expanded, summed over every operation.
    pub aliases: u64,
    /// Estimated objects resolved by the operation that runs; 0 when no
    /// operation matches the request (async-graphql then refuses it).
    pub complexity: u64,
    /// A fragment that spreads itself, directly or through others; when set,
    /// the other figures were not measured.
    pub fragment_cycle: Option<Name>,
}

/// Why a document was refused; becomes a `QUERY_TOO_COMPLEX` error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Which limit: `"bytes"`, `"fragment_cycle"`, `"depth"`, `"aliases"`,
    /// `"fields"` or `"complexity"`.
    pub what: &'static str,
    /// The figure measured (0 for a fragment cycle).
    pub measured: u64,
    /// The limit it is above (0 for a fragment cycle, which is never allowed).
    pub limit: u64,
    /// The fragment in a cycle, for `"fragment_cycle"`.
    pub fragment: Option<Name>,
}

impl Refusal {
    fn above(what: &'static str, measured: u64, limit: u64) -> Self {
        Self {
            what,
            measured,
            limit,
            fragment: None,
        }
    }

    /// A sentence for the client saying what was measured and what to do.
    pub fn message(&self) -> String {
        let (measured, limit) = (self.measured, self.limit);
        match self.what {
            "bytes" => format!(
                "The query is {measured} bytes long, above the limit of {limit}; send a shorter query."
            ),
            "fragment_cycle" => format!(
                "The fragment \"{}\" spreads itself, directly or through other fragments; remove the cycle.",
                self.fragment.as_deref().unwrap_or_default()
            ),
            "depth" => format!(
                "The query's depth is {measured}, above the limit of {limit}; nest fewer fields."
            ),
            "aliases" => format!(
                "The query has {measured} aliases, above the limit of {limit}; ask for each field fewer times."
            ),
            "fields" => format!(
                "The query has {measured} fields once its fragments are expanded, above the limit of {limit}; ask for fewer fields."
            ),
            _ => format!(
                "The query's {} is {measured}, above the limit of {limit}; ask for fewer objects or page through lists.",
                self.what
            ),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for Refusal {}

/// Refuses a query text longer than [`Limits::max_bytes`], before it is
/// parsed.
pub fn check_length(query: &str, limits: &Limits) -> Result<(), Refusal> {
    if query.len() > limits.max_bytes {
        return Err(Refusal::above(
            "bytes",
            saturate(query.len()),
            saturate(limits.max_bytes),
        ));
    }
    Ok(())
}

/// Compares a measured [`Cost`] with the limits: a fragment cycle first, then
/// depth, aliases, fields and complexity.
pub fn check(cost: &Cost, limits: &Limits) -> Result<(), Refusal> {
    if let Some(fragment) = &cost.fragment_cycle {
        return Err(Refusal {
            what: "fragment_cycle",
            measured: 0,
            limit: 0,
            fragment: Some(fragment.clone()),
        });
    }
    if cost.depth > limits.max_depth {
        return Err(Refusal::above(
            "depth",
            saturate(cost.depth),
            saturate(limits.max_depth),
        ));
    }
    if cost.aliases > limits.max_aliases {
        return Err(Refusal::above("aliases", cost.aliases, limits.max_aliases));
    }
    if cost.fields > limits.max_fields {
        return Err(Refusal::above("fields", cost.fields, limits.max_fields));
    }
    if cost.complexity > limits.max_complexity {
        return Err(Refusal::above(
            "complexity",
            cost.complexity,
            limits.max_complexity,
        ));
    }
    Ok(())
}

fn saturate(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

pub use schema::TypeInfo;
pub use walk::measure;

#[cfg(test)]
mod tests;
