//! Measuring a document: each fragment once, then each operation.

use std::collections::HashMap;

use async_graphql::parser::types::{
    ExecutableDocument, Field, FragmentDefinition, OperationDefinition, Selection, SelectionSet,
    VariableDefinition,
};
// `async_graphql::Value` is the constant value (no variables).
use async_graphql::{Name, Positioned, Value as ConstValue, Variables};

use super::schema::*;
use super::*;

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
        let own = children
            .complexity
            .saturating_add(info.map_or(1, |info| info.weight));
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
