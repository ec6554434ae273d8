//! The cost check's unit tests.
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use async_graphql::parser::parse_query;

use async_graphql::Variables;

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
    assert_eq!(cost_of(shortest).complexity, 162_755_000);
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

#[test]
fn long_text_costs_by_its_longest_allowed_length() {
    let short = cost_of("{ objectives { title } }");
    let long = cost_of("{ objectives { description } }");
    assert_eq!(short.complexity, 5_000 * 2);
    assert_eq!(long.complexity, 5_000 * (1 + 10));
    let notes = cost_of("{ objectives { history(limit: 10) { note } } }");
    assert_eq!(notes.complexity, 5_000 * (1 + 10 * (1 + 2)));
}

#[test]
fn the_dashboards_own_tree_query_over_5000_objectives_fits_the_defaults() {
    // web/src/api.ts: fetchObjectives with OBJECTIVE_FIELDS.
    let data_source = "id state sql syncIntervalSeconds lastValue lastSyncedAt nextSyncAt \
                       lastError { code message at } connection { id name }";
    let key_result = format!(
        "id title kind kpiCondition startValue targetValue currentValue unit weight \
         progress expectedProgress status dataSource {{ {data_source} }}"
    );
    let query = format!(
        "query Tree($periodFrom: NaiveDate, $periodTo: NaiveDate) {{ \
         objectives(periodFrom: $periodFrom, periodTo: $periodTo) {{ \
         id title description periodStart periodEnd progressMode startValue targetValue \
         currentValue weight progress expectedProgress status owner {{ id name }} \
         parent {{ id }} dataSource {{ {data_source} }} keyResults {{ {key_result} }} }} }}"
    );
    let cost = cost_of(&query);
    assert_eq!(check(&cost, &Limits::default()), Ok(()), "{cost:?}");
}
