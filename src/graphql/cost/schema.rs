//! What the cost check knows of the schema, built once from the SDL.

use std::collections::{HashMap, HashSet};

use async_graphql::parser::types::{
    BaseType, FieldDefinition, OperationType, Type, TypeKind, TypeSystemDefinition,
};
// `async_graphql::Value` is the constant value (no variables).
use async_graphql::{Name, Number, Value as ConstValue};

use super::*;

/// The introspection types async-graphql serves, which the exported SDL
/// leaves out, plus the built-in scalars and directives (counted so that the
/// introspection list sizes cover them).
pub(super) const INTROSPECTION_SDL: &str = r#"
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

/// What the cost check knows of the schema: each object and interface
/// type's fields, with their return type and expected list size. Built once
/// from the SDL.
#[derive(Debug, Clone)]
pub struct TypeInfo {
    /// Fields by type name (objects, interfaces and the introspection types).
    pub(super) types: HashMap<Name, Fields>,
    /// The root type of queries.
    pub(super) query: Name,
    /// The root type of mutations, if any.
    pub(super) mutation: Option<Name>,
    /// The root type of subscriptions, if any.
    pub(super) subscription: Option<Name>,
}

pub(super) type Fields = HashMap<Name, FieldInfo>;

/// One field of an object or interface type.
#[derive(Debug, Clone)]
pub(super) struct FieldInfo {
    /// The named type it returns, lists and non-null unwrapped.
    pub(super) ty: Name,
    /// Whether it returns a list (at any level of wrapping).
    pub(super) list: bool,
    /// Its integer `limit` or `first` argument, whose value is the list size.
    pub(super) size_arg: Option<Name>,
    /// The list size when the request does not give `size_arg`: the SDL's
    /// default for it, else [`LIST_SIZES`], else [`DEFAULT_LIST_SIZE`].
    pub(super) default_size: u64,
    /// What the field itself costs: 1, or its [`TEXT_WEIGHTS`] entry.
    pub(super) weight: u64,
}

/// Counts over the schema that bound what introspection lists return.
#[derive(Default)]
pub(super) struct SchemaCounts {
    pub(super) type_names: HashSet<Name>,
    pub(super) directive_names: HashSet<Name>,
    pub(super) max_fields: usize,
    pub(super) max_interfaces: usize,
    pub(super) max_enum_values: usize,
    pub(super) max_input_fields: usize,
    pub(super) max_args: usize,
    pub(super) max_union_members: usize,
    pub(super) implementors: HashMap<Name, usize>,
}

impl TypeInfo {
    /// The same, with `type.field` expected to hold `size` items when a
    /// request gives no `limit`: the bound the data keeps (see
    /// [`crate::domain::bounds::TreeBounds`]).
    pub fn with_list_size(mut self, type_name: &str, field: &str, size: u64) -> Self {
        if let Some(info) = self
            .types
            .get_mut(type_name)
            .and_then(|fields| fields.get_mut(field))
        {
            info.default_size = size;
        }
        self
    }

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
                    weight: 1,
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

    pub(super) fn fields_of(&self, type_name: &str) -> Option<&Fields> {
        self.types.get(type_name)
    }

    pub(super) fn root(&self, operation: OperationType) -> Option<&Fields> {
        let name = match operation {
            OperationType::Query => Some(&self.query),
            OperationType::Mutation => self.mutation.as_ref(),
            OperationType::Subscription => self.subscription.as_ref(),
        };
        name.and_then(|name| self.fields_of(name))
    }
}

pub(super) fn field_info(type_name: &str, field: &FieldDefinition) -> FieldInfo {
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
    let weight = TEXT_WEIGHTS
        .iter()
        .find(|(ty, field, _)| *ty == type_name && *field == field_name)
        .map_or(1, |(_, _, weight)| *weight);
    FieldInfo {
        ty: ty.clone(),
        list,
        size_arg: size_arg.map(|arg| arg.name.node.clone()),
        default_size,
        weight,
    }
}

/// The named type inside any list and non-null wrapping, and whether a list
/// was among them.
pub(super) fn named_type(mut ty: &Type) -> (&Name, bool) {
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
pub(super) fn number_size(number: &Number) -> Option<u64> {
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

pub(super) fn clamp_size(n: u64) -> u64 {
    n.clamp(1, MAX_LIST_SIZE)
}

pub(super) fn const_size(value: &ConstValue) -> Option<u64> {
    match value {
        ConstValue::Number(number) => number_size(number),
        _ => None,
    }
}
