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
//!   resolves: every field costs 1 plus its children, and a list field of
//!   objects multiplies that by its expected length (its `limit`/`first`
//!   argument, else a per-field default from [`LIST_SIZES`]).
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

use std::collections::{HashMap, HashSet};
use std::fmt;

use async_graphql::parser::types::{
    BaseType, ExecutableDocument, Field, FieldDefinition, FragmentDefinition, OperationDefinition,
    OperationType, Selection, SelectionSet, Type, TypeKind, TypeSystemDefinition,
    VariableDefinition,
};
// `async_graphql::Value` is the constant value (no variables).
use async_graphql::{Name, Number, Positioned, Value as ConstValue, Variables};

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
///   (OKR practice is 3–5 key results per objective); 10 is room to spare.
///   Across a whole tree each objective is one parent's child, so the real
///   total is bounded by the organization's size; the estimate is per parent.
///
/// With these, the tree query costs 1,140,000 and the six-deep cycle
/// `objectives → keyResults → objective → keyResults → objective →
/// keyResults` costs at least 11,105,000 (see [`Limits::default`]).
pub const LIST_SIZES: &[(&str, &str, u64)] = &[
    ("Query", "objectives", MAX_LIST_SIZE),
    ("Objective", "keyResults", 10),
    ("Objective", "children", 10),
];

/// Deepest selection-set nesting walked; beyond it the walk stops and reports
/// the depth reached. The parser already refuses nesting beyond 64, so this
/// only guards the stack against documents built some other way.
const MAX_NESTING: usize = 256;

/// The introspection types async-graphql serves, which the exported SDL
/// leaves out, plus the built-in scalars and directives (counted so that the
/// introspection list sizes cover them).
const INTROSPECTION_SDL: &str = r#"
scalar String
scalar Int
scalar Float
scalar Boolean
scalar ID
directive @deprecated(reason: String) on FIELD_DEFINITION | ARGUMENT_DEFINITION | INPUT_FIELD_DEFINITION | ENUM_VALUE
directive @oneOf on INPUT_OBJECT
type __Schema {
  description: String
  types: [__Type!]!
  queryType: __Type!
  mutationType: __Type
  subscriptionType: __Type
  directives: [__Directive!]!
}
type __Type {
  kind: __TypeKind!
  name: String
  description: String
  specifiedByURL: String
  fields(includeDeprecated: Boolean = false): [__Field!]
  interfaces: [__Type!]
  possibleTypes: [__Type!]
  enumValues(includeDeprecated: Boolean = false): [__EnumValue!]
  inputFields(includeDeprecated: Boolean = false): [__InputValue!]
  ofType: __Type
  isOneOf: Boolean
}
type __Field {
  name: String!
  description: String
  args(includeDeprecated: Boolean = false): [__InputValue!]!
  type: __Type!
  isDeprecated: Boolean!
  deprecationReason: String
}
type __InputValue {
  name: String!
  description: String
  type: __Type!
  defaultValue: String
  isDeprecated: Boolean!
  deprecationReason: String
}
type __EnumValue {
  name: String!
  description: String
  isDeprecated: Boolean!
  deprecationReason: String
}
type __Directive {
  name: String!
  description: String
  locations: [__DirectiveLocation!]!
  args(includeDeprecated: Boolean = false): [__InputValue!]!
  isRepeatable: Boolean!
}
enum __TypeKind { SCALAR OBJECT INTERFACE UNION ENUM INPUT_OBJECT LIST NON_NULL }
enum __DirectiveLocation {
  QUERY MUTATION SUBSCRIPTION FIELD FRAGMENT_DEFINITION FRAGMENT_SPREAD
  INLINE_FRAGMENT VARIABLE_DEFINITION SCHEMA SCALAR OBJECT FIELD_DEFINITION
  ARGUMENT_DEFINITION INTERFACE UNION ENUM ENUM_VALUE INPUT_OBJECT
  INPUT_FIELD_DEFINITION
}
"#;

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
    /// Highest complexity (objects the operation may resolve). The tree query
    /// over 5,000 objectives costs 1,140,000; the six-deep
    /// objectives→keyResults→objective cycle at least 11,105,000. Three
    /// million leaves the tree query room to grow (each extra key-result
    /// field adds 50,000) while the cycle stays well above.
    pub max_complexity: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024,
            max_depth: 20,
            max_fields: 1_000,
            max_aliases: 100,
            max_complexity: 3_000_000,
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

/// What the cost check knows of the schema: each object and interface
/// type's fields, with their return type and expected list size. Built once
/// from the SDL.
#[derive(Debug, Clone)]
pub struct TypeInfo {
    /// Fields by type name (objects, interfaces and the introspection types).
    types: HashMap<Name, Fields>,
    /// The root type of queries.
    query: Name,
    /// The root type of mutations, if any.
    mutation: Option<Name>,
    /// The root type of subscriptions, if any.
    subscription: Option<Name>,
}

type Fields = HashMap<Name, FieldInfo>;

/// One field of an object or interface type.
#[derive(Debug, Clone)]
struct FieldInfo {
    /// The named type it returns, lists and non-null unwrapped.
    ty: Name,
    /// Whether it returns a list (at any level of wrapping).
    list: bool,
    /// Its integer `limit` or `first` argument, whose value is the list size.
    size_arg: Option<Name>,
    /// The list size when the request does not give `size_arg`: the SDL's
    /// default for it, else [`LIST_SIZES`], else [`DEFAULT_LIST_SIZE`].
    default_size: u64,
}

/// Counts over the schema that bound what introspection lists return.
#[derive(Default)]
struct SchemaCounts {
    type_names: HashSet<Name>,
    directive_names: HashSet<Name>,
    max_fields: usize,
    max_interfaces: usize,
    max_enum_values: usize,
    max_input_fields: usize,
    max_args: usize,
    max_union_members: usize,
    implementors: HashMap<Name, usize>,
}

impl TypeInfo {
    /// Reads the fields of every object and interface type in `sdl` (as
    /// `crate::graphql::sdl()` exports it) and adds the introspection types,
    /// whose list sizes are the schema's own counts (number of types, most
    /// fields on a type, …).
    pub fn from_sdl(sdl: &str) -> Result<Self, async_graphql::parser::Error> {
        let app = async_graphql::parser::parse_schema(sdl)?;
        let introspection = async_graphql::parser::parse_schema(INTROSPECTION_SDL)?;

        let mut types: HashMap<Name, Fields> = HashMap::new();
        let mut counts = SchemaCounts::default();
        let mut roots: [Option<Name>; 3] = [None, None, None];
        for definition in app
            .definitions
            .iter()
            .chain(introspection.definitions.iter())
        {
            match definition {
                TypeSystemDefinition::Schema(schema) => {
                    let schema = &schema.node;
                    for (slot, root) in roots.iter_mut().zip([
                        &schema.query,
                        &schema.mutation,
                        &schema.subscription,
                    ]) {
                        if let Some(root) = root {
                            *slot = Some(root.node.clone());
                        }
                    }
                }
                TypeSystemDefinition::Directive(directive) => {
                    let directive = &directive.node;
                    counts.directive_names.insert(directive.name.node.clone());
                    counts.max_args = counts.max_args.max(directive.arguments.len());
                }
                TypeSystemDefinition::Type(ty) => {
                    let ty = &ty.node;
                    let type_name = &ty.name.node;
                    counts.type_names.insert(type_name.clone());
                    let (implements, fields) = match &ty.kind {
                        TypeKind::Object(object) => (&object.implements, &object.fields),
                        TypeKind::Interface(interface) => {
                            (&interface.implements, &interface.fields)
                        }
                        TypeKind::Union(union) => {
                            counts.max_union_members =
                                counts.max_union_members.max(union.members.len());
                            continue;
                        }
                        TypeKind::Enum(enumeration) => {
                            counts.max_enum_values =
                                counts.max_enum_values.max(enumeration.values.len());
                            continue;
                        }
                        TypeKind::InputObject(input) => {
                            counts.max_input_fields =
                                counts.max_input_fields.max(input.fields.len());
                            continue;
                        }
                        TypeKind::Scalar => continue,
                    };
                    counts.max_interfaces = counts.max_interfaces.max(implements.len());
                    for interface in implements {
                        *counts
                            .implementors
                            .entry(interface.node.clone())
                            .or_default() += 1;
                    }
                    let entry = types.entry(type_name.clone()).or_default();
                    for field in fields {
                        let field = &field.node;
                        counts.max_args = counts.max_args.max(field.arguments.len());
                        entry.insert(field.name.node.clone(), field_info(type_name, field));
                    }
                    counts.max_fields = counts.max_fields.max(entry.len());
                }
            }
        }

        let [query, mutation, subscription] = roots;
        let query = query.unwrap_or_else(|| Name::new("Query"));
        let mutation = mutation.or_else(|| {
            let name = Name::new("Mutation");
            types.contains_key(&name).then_some(name)
        });
        let subscription = subscription.or_else(|| {
            let name = Name::new("Subscription");
            types.contains_key(&name).then_some(name)
        });

        // Introspection entry points on the query root.
        let root = types.entry(query.clone()).or_default();
        for (name, ty) in [("__schema", "__Schema"), ("__type", "__Type")] {
            root.insert(
                Name::new(name),
                FieldInfo {
                    ty: Name::new(ty),
                    list: false,
                    size_arg: None,
                    default_size: 1,
                },
            );
        }

        let max_possible = counts
            .implementors
            .values()
            .copied()
            .max()
            .unwrap_or(0)
            .max(counts.max_union_members);
        for (ty, field, size) in [
            ("__Schema", "types", counts.type_names.len()),
            ("__Schema", "directives", counts.directive_names.len()),
            ("__Type", "fields", counts.max_fields),
            ("__Type", "interfaces", counts.max_interfaces),
            ("__Type", "possibleTypes", max_possible),
            ("__Type", "enumValues", counts.max_enum_values),
            ("__Type", "inputFields", counts.max_input_fields),
            ("__Field", "args", counts.max_args),
            ("__Directive", "args", counts.max_args),
        ] {
            if let Some(info) = types.get_mut(ty).and_then(|fields| fields.get_mut(field)) {
                info.default_size = clamp_size(saturate(size));
            }
        }

        Ok(Self {
            types,
            query,
            mutation,
            subscription,
        })
    }

    fn fields_of(&self, type_name: &str) -> Option<&Fields> {
        self.types.get(type_name)
    }

    fn root(&self, operation: OperationType) -> Option<&Fields> {
        let name = match operation {
            OperationType::Query => Some(&self.query),
            OperationType::Mutation => self.mutation.as_ref(),
            OperationType::Subscription => self.subscription.as_ref(),
        };
        name.and_then(|name| self.fields_of(name))
    }
}

fn field_info(type_name: &str, field: &FieldDefinition) -> FieldInfo {
    let (ty, list) = named_type(&field.ty.node);
    let size_arg = field.arguments.iter().map(|arg| &arg.node).find(|arg| {
        matches!(arg.name.node.as_str(), "limit" | "first")
            && matches!(named_type(&arg.ty.node).0.as_str(), "Int" | "Int64")
    });
    let field_name = field.name.node.as_str();
    let default_size = size_arg
        .and_then(|arg| arg.default_value.as_ref())
        .and_then(|value| const_size(&value.node))
        .or_else(|| {
            LIST_SIZES
                .iter()
                .find(|(ty, field, _)| *ty == type_name && *field == field_name)
                .map(|(_, _, size)| *size)
        })
        .unwrap_or(DEFAULT_LIST_SIZE);
    FieldInfo {
        ty: ty.clone(),
        list,
        size_arg: size_arg.map(|arg| arg.name.node.clone()),
        default_size,
    }
}

/// The named type inside any list and non-null wrapping, and whether a list
/// was among them.
fn named_type(mut ty: &Type) -> (&Name, bool) {
    let mut list = false;
    loop {
        match &ty.base {
            BaseType::Named(name) => return (name, list),
            BaseType::List(inner) => {
                list = true;
                ty = inner;
            }
        }
    }
}

/// A list size from a number: clamped to `1..=MAX_LIST_SIZE` (a negative or
/// zero limit is refused by the resolver or returns nothing; counting 1 keeps
/// the field itself in the figure).
fn number_size(number: &Number) -> Option<u64> {
    if let Some(n) = number.as_u64() {
        Some(clamp_size(n))
    } else if number.is_i64() {
        Some(1)
    } else {
        // A float limit is refused by validation; bound it all the same.
        number
            .as_f64()
            .map(|f| if f >= 1.0 { clamp_size(f as u64) } else { 1 })
    }
}

fn clamp_size(n: u64) -> u64 {
    n.clamp(1, MAX_LIST_SIZE)
}

fn const_size(value: &ConstValue) -> Option<u64> {
    match value {
        ConstValue::Number(number) => number_size(number),
        _ => None,
    }
}

/// Measures `doc` as described in the module documentation, in one pass
/// per selection set: each fragment once (in dependency order, without
/// recursion from fragment to fragment), then each operation.
///
/// `operation_name` and `variables` are the request's: the operation that
/// runs is the one named, or the only one; its variables (or their defaults)
/// give `limit`/`first` arguments their values. When no operation matches,
/// complexity is 0 and async-graphql refuses the request.
pub fn measure(
    doc: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: &Variables,
    types: &TypeInfo,
) -> Cost {
    let chosen = chosen_operation(doc, operation_name);
    let order = match fragments_in_dependency_order(doc) {
        Ok(order) => order,
        Err(fragment) => {
            return Cost {
                fragment_cycle: Some(fragment),
                ..Cost::default()
            };
        }
    };

    let mut walker = Walker {
        types,
        variables,
        variable_definitions: chosen
            .map(|op| op.variable_definitions.as_slice())
            .unwrap_or_default(),
        memo: HashMap::with_capacity(order.len()),
    };
    for (name, fragment) in order {
        let on = types.fields_of(&fragment.type_condition.node.on.node);
        let tally = walker.selection_set(&fragment.selection_set.node, on, 0);
        walker.memo.insert(name, tally);
    }

    let mut cost = Cost::default();
    for (_, operation) in doc.operations.iter() {
        let operation = &operation.node;
        let tally =
            walker.selection_set(&operation.selection_set.node, types.root(operation.ty), 0);
        cost.depth = cost.depth.max(tally.depth);
        cost.fields = cost.fields.saturating_add(tally.fields);
        cost.aliases = cost.aliases.saturating_add(tally.aliases);
        if chosen.is_some_and(|chosen| std::ptr::eq(chosen, operation)) {
            cost.complexity = tally.complexity;
        }
    }
    cost
}

/// The operation async-graphql will run: the one named, or the only one.
fn chosen_operation<'a>(
    doc: &'a ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<&'a OperationDefinition> {
    let mut operations = doc.operations.iter();
    match operation_name {
        Some(wanted) => operations
            .find(|(name, _)| name.is_some_and(|name| name.as_str() == wanted))
            .map(|(_, op)| &op.node),
        None if operations.len() == 1 => operations.next().map(|(_, op)| &op.node),
        None => None,
    }
}

/// Every fragment of the document, each after the fragments it spreads, or
/// a fragment that spreads itself. Iterative, so a long chain of fragments
/// cannot exhaust the stack.
fn fragments_in_dependency_order(
    doc: &ExecutableDocument,
) -> Result<Vec<(&str, &FragmentDefinition)>, Name> {
    enum Mark {
        OnPath,
        Done,
    }
    let mut marks: HashMap<&str, Mark> = HashMap::with_capacity(doc.fragments.len());
    let mut order = Vec::with_capacity(doc.fragments.len());
    // (fragment, the fragments it spreads, how many of them were followed)
    let mut path: Vec<(&str, &FragmentDefinition, Vec<&str>, usize)> = Vec::new();

    for (start, fragment) in &doc.fragments {
        if marks.contains_key(start.as_str()) {
            continue;
        }
        marks.insert(start.as_str(), Mark::OnPath);
        path.push((
            start.as_str(),
            &fragment.node,
            spreads_in(&fragment.node.selection_set.node),
            0,
        ));
        while let Some((name, fragment, spreads, followed)) = path.last_mut() {
            let Some(&next) = spreads.get(*followed) else {
                marks.insert(*name, Mark::Done);
                order.push((*name, *fragment));
                path.pop();
                continue;
            };
            *followed += 1;
            match marks.get(next) {
                Some(Mark::OnPath) => {
                    let name = doc
                        .fragments
                        .get_key_value(next)
                        .map(|(name, _)| name.clone())
                        .unwrap_or_else(|| Name::new(next));
                    return Err(name);
                }
                Some(Mark::Done) => {}
                None => {
                    // An unknown fragment is left for validation to refuse.
                    if let Some((next, fragment)) = doc.fragments.get_key_value(next) {
                        marks.insert(next.as_str(), Mark::OnPath);
                        path.push((
                            next.as_str(),
                            &fragment.node,
                            spreads_in(&fragment.node.selection_set.node),
                            0,
                        ));
                    }
                }
            }
        }
    }
    Ok(order)
}

/// The names of the fragments spread anywhere in a selection set.
fn spreads_in(set: &SelectionSet) -> Vec<&str> {
    fn collect<'a>(set: &'a SelectionSet, nesting: usize, out: &mut Vec<&'a str>) {
        if nesting > MAX_NESTING {
            return;
        }
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    collect(&field.node.selection_set.node, nesting + 1, out);
                }
                Selection::FragmentSpread(spread) => {
                    out.push(spread.node.fragment_name.node.as_str());
                }
                Selection::InlineFragment(inline) => {
                    collect(&inline.node.selection_set.node, nesting + 1, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    collect(set, 0, &mut out);
    out
}

/// The measure of one selection set, or of a field with its children.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Tally {
    depth: usize,
    fields: u64,
    aliases: u64,
    complexity: u64,
}

impl Tally {
    /// Adds a sibling: counts add up, depth is the deeper of the two.
    fn add(&mut self, sibling: Tally) {
        self.depth = self.depth.max(sibling.depth);
        self.fields = self.fields.saturating_add(sibling.fields);
        self.aliases = self.aliases.saturating_add(sibling.aliases);
        self.complexity = self.complexity.saturating_add(sibling.complexity);
    }
}

/// Walks selection sets, reading fragment spreads from the memo table.
struct Walker<'a> {
    types: &'a TypeInfo,
    variables: &'a Variables,
    /// The running operation's variable definitions, for their defaults.
    variable_definitions: &'a [Positioned<VariableDefinition>],
    /// Each fragment's measure, by name, filled in dependency order.
    memo: HashMap<&'a str, Tally>,
}

impl Walker<'_> {
    fn selection_set(&self, set: &SelectionSet, parent: Option<&Fields>, nesting: usize) -> Tally {
        if nesting > MAX_NESTING {
            return Tally {
                depth: nesting,
                ..Tally::default()
            };
        }
        let mut total = Tally::default();
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => total.add(self.field(&field.node, parent, nesting)),
                Selection::FragmentSpread(spread) => {
                    if let Some(tally) = self.memo.get(spread.node.fragment_name.node.as_str()) {
                        total.add(*tally);
                    }
                }
                Selection::InlineFragment(inline) => {
                    let inline = &inline.node;
                    let on = match &inline.type_condition {
                        Some(condition) => self.types.fields_of(&condition.node.on.node),
                        None => parent,
                    };
                    total.add(self.selection_set(&inline.selection_set.node, on, nesting + 1));
                }
            }
        }
        total
    }

    fn field(&self, field: &Field, parent: Option<&Fields>, nesting: usize) -> Tally {
        let info = parent.and_then(|fields| fields.get(field.name.node.as_str()));
        let has_children = !field.selection_set.node.items.is_empty();
        let children = if has_children {
            let child_type = info.and_then(|info| self.types.fields_of(&info.ty));
            self.selection_set(&field.selection_set.node, child_type, nesting + 1)
        } else {
            Tally::default()
        };
        let own = children.complexity.saturating_add(1);
        // A list of scalars is one value to resolve; a list of objects
        // resolves its children once per item.
        let complexity = match info {
            Some(info) if info.list && has_children => {
                own.saturating_mul(self.list_size(field, info))
            }
            _ => own,
        };
        Tally {
            depth: children.depth.saturating_add(1),
            fields: children.fields.saturating_add(1),
            aliases: children
                .aliases
                .saturating_add(u64::from(field.alias.is_some())),
            complexity,
        }
    }

    /// The field's `limit`/`first` as given (a literal, or a variable's value
    /// or default), else the field's default size.
    fn list_size(&self, field: &Field, info: &FieldInfo) -> u64 {
        let given = info
            .size_arg
            .as_ref()
            .and_then(|arg| field.get_argument(arg))
            .and_then(|value| {
                // A number or a variable: cheap to clone. Anything else is
                // refused by validation, and cloned once per field written.
                value
                    .node
                    .clone()
                    .into_const_with(|name| self.variable_value(&name).ok_or(()))
                    .ok()
            })
            .and_then(|value| const_size(&value));
        given.unwrap_or(info.default_size)
    }

    /// A variable's value in the request, else its default in the operation.
    fn variable_value(&self, name: &Name) -> Option<ConstValue> {
        match self.variables.get(name.as_str()) {
            Some(value) => Some(value.clone()),
            None => self
                .variable_definitions
                .iter()
                .find(|definition| definition.node.name.node == *name)
                .and_then(|definition| definition.node.default_value.as_ref())
                .map(|value| value.node.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;
    use std::time::{Duration, Instant};

    use async_graphql::parser::parse_query;

    use super::*;

    static APP_TYPES: LazyLock<TypeInfo> =
        LazyLock::new(|| TypeInfo::from_sdl(&crate::graphql::sdl()).unwrap());

    const SPA_TREE_QUERY: &str = "{ objectives { id title progress expectedProgress status \
        periodStart periodEnd owner { id name } parent { id } children { id title } \
        latestPoint { at value progress status } keyResults { id title progress status \
        currentValue targetValue unit latestPoint { at value } dataSource { id state \
        lastSyncedAt lastError { code message } } } } }";

    /// graphql-js `getIntrospectionQuery()` with the options GraphiQL turns
    /// on (descriptions, specifiedByURL, isRepeatable, schema description,
    /// input value deprecation, oneOf).
    const INTROSPECTION_QUERY: &str = r#"
    query IntrospectionQuery {
      __schema {
        description
        queryType { name kind }
        mutationType { name kind }
        subscriptionType { name kind }
        types {
          ...FullType
        }
        directives {
          name
          description
          isRepeatable
          locations
          args(includeDeprecated: true) {
            ...InputValue
          }
        }
      }
    }

    fragment FullType on __Type {
      kind
      name
      description
      specifiedByURL
      isOneOf
      fields(includeDeprecated: true) {
        name
        description
        args(includeDeprecated: true) {
          ...InputValue
        }
        type {
          ...TypeRef
        }
        isDeprecated
        deprecationReason
      }
      inputFields(includeDeprecated: true) {
        ...InputValue
      }
      interfaces {
        ...TypeRef
      }
      enumValues(includeDeprecated: true) {
        name
        description
        isDeprecated
        deprecationReason
      }
      possibleTypes {
        ...TypeRef
      }
    }

    fragment InputValue on __InputValue {
      name
      description
      type { ...TypeRef }
      defaultValue
      isDeprecated
      deprecationReason
    }

    fragment TypeRef on __Type {
      kind
      name
      ofType {
        kind
        name
        ofType {
          kind
          name
          ofType {
            kind
            name
            ofType {
              kind
              name
              ofType {
                kind
                name
                ofType {
                  kind
                  name
                  ofType {
                    kind
                    name
                    ofType {
                      kind
                      name
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
    "#;

    fn measure_with(query: &str, operation: Option<&str>, variables: Variables) -> Cost {
        let doc = parse_query(query).unwrap();
        measure(&doc, operation, &variables, &APP_TYPES)
    }

    fn cost_of(query: &str) -> Cost {
        measure_with(query, None, Variables::default())
    }

    fn refusal(query: &str) -> Refusal {
        check(&cost_of(query), &Limits::default()).unwrap_err()
    }

    /// `levels` fragments on Objective, each spreading the previous twice.
    fn fragment_bomb(levels: usize) -> String {
        let mut query =
            format!("{{ objectives {{ ...F{levels} }} }}\nfragment F0 on Objective {{ id }}\n");
        for level in 1..=levels {
            let previous = level - 1;
            query.push_str(&format!(
                "fragment F{level} on Objective {{ ...F{previous} ...F{previous} }}\n"
            ));
        }
        query
    }

    fn test_types() -> TypeInfo {
        TypeInfo::from_sdl(
            "type Query { items(limit: Int): [Item!]! page(first: Int = 30): [Item!]! \
             all: [Item!]! one: Item }
             type Item { id: ID! tags: [String!]! subs: [Item!]! }",
        )
        .unwrap()
    }

    fn complexity_with(types: &TypeInfo, query: &str, variables: &str) -> u64 {
        let doc = parse_query(query).unwrap();
        let variables = Variables::from_json(serde_json::from_str(variables).unwrap());
        measure(&doc, None, &variables, types).complexity
    }

    #[test]
    fn a_fragment_bomb_is_refused_in_microseconds_without_expanding_it() {
        let query = fragment_bomb(24);
        assert!(query.len() < 1_500, "the bomb is {} bytes", query.len());

        let started = Instant::now();
        let doc = parse_query(&query).unwrap();
        let cost = measure(&doc, None, &Variables::default(), &APP_TYPES);
        let refused = check(&cost, &Limits::default()).unwrap_err();
        let took = started.elapsed();

        assert!(took < Duration::from_millis(100), "took {took:?}");
        assert_eq!(refused.what, "fields");
        assert_eq!(refused.measured, (1 << 24) + 1);
        assert_eq!(refused.limit, 1_000);
        assert!(
            refused.message().contains("16777217"),
            "{}",
            refused.message()
        );
    }

    #[test]
    fn a_bomb_too_big_for_64_bits_saturates_instead_of_overflowing() {
        let cost = cost_of(&fragment_bomb(100));
        assert_eq!(cost.fields, u64::MAX);
        assert_eq!(cost.complexity, u64::MAX);
        let refused = check(&cost, &Limits::default()).unwrap_err();
        assert_eq!((refused.what, refused.measured), ("fields", u64::MAX));
    }

    #[test]
    fn a_long_chain_of_fragments_does_not_exhaust_the_stack() {
        let mut query = String::from("{ objectives { ...F0 } }\n");
        for n in 0..5_000 {
            query.push_str(&format!(
                "fragment F{n} on Objective {{ id ...F{} }}\n",
                n + 1
            ));
        }
        query.push_str("fragment F5000 on Objective { id }\n");
        let cost = cost_of(&query);
        assert_eq!(cost.fields, 5_002);
        assert_eq!(refusal(&query).what, "fields");
    }

    #[test]
    fn a_fragment_cycle_is_refused() {
        let query = "{ objectives { ...A } }
            fragment A on Objective { id ...B }
            fragment B on Objective { title children { ...C } }
            fragment C on Objective { ...A }";
        let refused = refusal(query);
        assert_eq!(refused.what, "fragment_cycle");
        assert!(refused.fragment.is_some());
        assert!(
            refused.message().contains("spreads itself"),
            "{}",
            refused.message()
        );
    }

    #[test]
    fn a_fragment_that_spreads_itself_is_refused() {
        let refused = refusal("{ objectives { ...A } } fragment A on Objective { id ...A }");
        assert_eq!(refused.what, "fragment_cycle");
        assert_eq!(refused.fragment.as_deref(), Some("A"));
    }

    #[test]
    fn two_thousand_aliases_are_refused() {
        let mut query = String::from("{ ");
        for n in 0..2_000 {
            query.push_str(&format!("a{n}: __typename "));
        }
        query.push('}');
        let refused = refusal(&query);
        assert_eq!(refused.what, "aliases");
        assert_eq!((refused.measured, refused.limit), (2_000, 100));
    }

    #[test]
    fn a_six_deep_objectives_key_results_cycle_is_refused() {
        let query = "{ objectives { keyResults { objective { keyResults { objective \
                     { keyResults { objective { id } } } } } } } }";
        let refused = refusal(query);
        assert_eq!(refused.what, "complexity");
        assert!(refused.measured > 10 * refused.limit / 3, "{refused:?}");
        assert!(
            refused.message().contains("ask for fewer objects"),
            "{}",
            refused.message()
        );

        let shortest = "{ objectives { keyResults { objective { keyResults { objective \
                        { keyResults { id } } } } } } }";
        assert_eq!(cost_of(shortest).complexity, 11_105_000);
        assert_eq!(refusal(shortest).what, "complexity");
    }

    #[test]
    fn the_spa_tree_query_over_5000_objectives_fits_the_defaults() {
        let cost = cost_of(SPA_TREE_QUERY);
        assert_eq!(cost.depth, 5);
        assert_eq!(cost.fields, 39);
        assert_eq!(cost.aliases, 0);
        assert!(cost.complexity >= 5_000 * 200, "{cost:?}");
        assert_eq!(check(&cost, &Limits::default()), Ok(()));
    }

    #[test]
    fn graphiqls_introspection_query_passes() {
        let cost = cost_of(INTROSPECTION_QUERY);
        assert_eq!(check(&cost, &Limits::default()), Ok(()), "{cost:?}");
        assert_eq!(cost.depth, 14, "{cost:?}");
        // Headroom: the schema can grow a lot before introspection nears a limit.
        let limits = Limits::default();
        assert!(cost.fields < limits.max_fields / 3, "{cost:?}");
        assert!(cost.complexity < limits.max_complexity / 4, "{cost:?}");
    }

    #[test]
    fn an_introspection_query_that_cycles_through_types_is_refused() {
        let query = "{ __schema { types { fields { type { fields { type { fields \
                     { type { fields { type { fields { name } } } } } } } } } } } }";
        assert_eq!(refusal(query).what, "complexity");
    }

    #[test]
    fn typename_and_inline_fragments_count_like_fields() {
        let plain = cost_of("{ objectives { id title } }");
        let inline = cost_of("{ objectives { ... on Objective { id } ... { title } } }");
        assert_eq!(plain, inline);
        let typename = cost_of("{ __typename objectives { __typename id title } }");
        assert_eq!(typename.fields, plain.fields + 2);
    }

    #[test]
    fn a_fragment_costs_what_its_fields_cost_where_it_is_spread() {
        let inline = cost_of("{ objectives { id keyResults { id title } } }");
        let spread = cost_of(
            "{ objectives { ...O } } fragment O on Objective { id keyResults { ...K } } \
             fragment K on KeyResult { id title }",
        );
        assert_eq!(inline, spread);
    }

    #[test]
    fn the_depth_limit_refuses_deeper_queries() {
        let limits = Limits {
            max_depth: 3,
            ..Limits::default()
        };
        let shallow = cost_of("{ objectives { owner { id } } }");
        assert_eq!(shallow.depth, 3);
        assert_eq!(check(&shallow, &limits), Ok(()));

        let deep = cost_of("{ objectives { keyResults { dataSource { id } } } }");
        let refused = check(&deep, &limits).unwrap_err();
        assert_eq!(
            (refused.what, refused.measured, refused.limit),
            ("depth", 4, 3)
        );
        assert_eq!(
            refused.message(),
            "The query's depth is 4, above the limit of 3; nest fewer fields."
        );
    }

    #[test]
    fn an_unknown_operation_is_left_for_async_graphql_to_refuse() {
        let cost = measure_with(
            "query A { objectives { id } }",
            Some("B"),
            Variables::default(),
        );
        assert_eq!(cost.complexity, 0);
        assert_eq!(check(&cost, &Limits::default()), Ok(()));
    }

    #[test]
    fn only_the_operation_that_runs_counts_toward_complexity() {
        let query = "query Small { me { id } } query Big { objectives { id } }";
        let small = measure_with(query, Some("Small"), Variables::default());
        let big = measure_with(query, Some("Big"), Variables::default());
        assert_eq!(small.complexity, 2);
        assert_eq!(big.complexity, 2 * 5_000);
        // Both are walked by async-graphql's checks, so both count as fields.
        assert_eq!(small.fields, 4);
        assert_eq!(big.fields, 4);
    }

    #[test]
    fn a_limit_argument_sets_the_list_multiplier() {
        let types = test_types();
        assert_eq!(
            complexity_with(&types, "{ items(limit: 7) { id } }", "{}"),
            14
        );
        assert_eq!(
            complexity_with(
                &types,
                "query($n: Int) { items(limit: $n) { id } }",
                r#"{"n": 3}"#
            ),
            6
        );
        assert_eq!(
            complexity_with(
                &types,
                "query($n: Int = 4) { items(limit: $n) { id } }",
                "{}"
            ),
            8
        );
        // No value: the SDL's default, else the default list size.
        assert_eq!(complexity_with(&types, "{ page { id } }", "{}"), 60);
        assert_eq!(
            complexity_with(&types, "{ page(first: 2) { id } }", "{}"),
            4
        );
        assert_eq!(complexity_with(&types, "{ items { id } }", "{}"), 200);
        assert_eq!(complexity_with(&types, "{ all { id } }", "{}"), 200);
    }

    #[test]
    fn a_limit_is_clamped_to_the_documented_maximum() {
        let types = test_types();
        assert_eq!(
            complexity_with(&types, "{ items(limit: 1000000000) { id } }", "{}"),
            2 * MAX_LIST_SIZE
        );
        assert_eq!(
            complexity_with(&types, "{ items(limit: -5) { id } }", "{}"),
            2
        );
        assert_eq!(
            complexity_with(&types, "{ items(limit: 0) { id } }", "{}"),
            2
        );
    }

    #[test]
    fn nested_lists_multiply_and_scalar_lists_count_once() {
        let types = test_types();
        // items: (1 + id 1 + tags 1 + subs (1 + 1) × 100) × 2
        assert_eq!(
            complexity_with(&types, "{ items(limit: 2) { id tags subs { id } } }", "{}"),
            2 * (1 + 1 + 1 + 2 * 100)
        );
    }

    #[test]
    fn a_text_longer_than_the_byte_limit_is_refused_before_parsing() {
        let limits = Limits::default();
        assert_eq!(check_length(SPA_TREE_QUERY, &limits), Ok(()));
        let long = " ".repeat(limits.max_bytes + 1);
        let refused = check_length(&long, &limits).unwrap_err();
        assert_eq!(refused.what, "bytes");
        assert_eq!(refused.measured, 65_537);
    }

    #[test]
    fn the_complexity_message_gives_the_figure_and_the_limit() {
        let refused = Refusal::above("complexity", 3_210_000, 500_000);
        assert_eq!(
            refused.message(),
            "The query's complexity is 3210000, above the limit of 500000; \
             ask for fewer objects or page through lists."
        );
    }
}
