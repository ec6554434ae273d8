//! The runtime budget behind the cost estimate: per request (a whole
//! batch), the objects resolved and the bytes of output are counted as
//! execution goes. Past either limit every further field stops at once
//! (null, or an error that cancels the rest of its list), and the answer of
//! each operation that ran past it is replaced by one `QUERY_TOO_COMPLEX`
//! error (`limitName: response`), so memory stays bounded whatever the
//! estimate missed.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicU64, Ordering},
};

use async_graphql::{
    QueryPathSegment, Response, ServerError, ServerResult, Value,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextExecute, NextResolve, ResolveInfo,
    },
};

/// The most one request may produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetLimits {
    /// Bytes of output (`GRAPHQL_MAX_RESPONSE_BYTES`), counted from field
    /// names and values as they resolve.
    pub max_bytes: u64,
    /// Fields resolved, objects and scalars alike (`GRAPHQL_MAX_RESOLVED_OBJECTS`).
    pub max_objects: u64,
}

impl Default for BudgetLimits {
    fn default() -> Self {
        BudgetLimits {
            max_bytes: 32 * 1024 * 1024,
            max_objects: 1_000_000,
        }
    }
}

/// What one request has spent so far; shared by every operation of a batch.
#[derive(Debug)]
pub struct Budget {
    limits: BudgetLimits,
    objects: AtomicU64,
    bytes: AtomicU64,
    exceeded: AtomicBool,
}

impl Budget {
    /// A fresh budget for one request.
    pub fn new(limits: BudgetLimits) -> Arc<Budget> {
        Arc::new(Budget {
            limits,
            objects: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            exceeded: AtomicBool::new(false),
        })
    }

    /// Spends `bytes` on one more field; false once past a limit.
    fn charge(&self, bytes: u64) -> bool {
        let objects = self.objects.fetch_add(1, Ordering::Relaxed) + 1;
        let bytes = self.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if objects > self.limits.max_objects || bytes > self.limits.max_bytes {
            self.exceeded.store(true, Ordering::Relaxed);
        }
        !self.exceeded()
    }

    /// Whether the request went past a limit.
    pub fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::Relaxed)
    }

    /// The one error an operation past the budget answers with.
    pub fn error(&self) -> ServerError {
        let mut err = ServerError::new(
            format!(
                "The answer grew past {} objects or {} bytes; ask for fewer objects (smaller limits, fewer nested lists) or page through them.",
                self.limits.max_objects, self.limits.max_bytes
            ),
            None,
        );
        let mut extensions = async_graphql::ErrorExtensionValues::default();
        extensions.set("code", "QUERY_TOO_COMPLEX");
        extensions.set("limitName", "response");
        extensions.set("maxObjects", self.limits.max_objects);
        extensions.set("maxBytes", self.limits.max_bytes);
        err.extensions = Some(extensions);
        err
    }
}

/// Bytes a resolved value adds to the JSON answer, its children aside
/// (they are counted when they resolve).
fn value_bytes(value: &Value) -> u64 {
    match value {
        Value::Null => 4,
        Value::Boolean(_) => 5,
        Value::Number(_) => 24,
        Value::String(s) => s.len() as u64 + 2,
        Value::Enum(name) => name.len() as u64 + 2,
        Value::Binary(bytes) => bytes.len() as u64 * 2,
        Value::List(items) => 2 + items.iter().map(value_bytes).sum::<u64>(),
        // An object's fields resolve (and are counted) on their own.
        Value::Object(_) => 2,
    }
}

/// Installs [`BudgetCounter`] on every request that carries a [`Budget`].
pub struct BudgetExtension;

impl ExtensionFactory for BudgetExtension {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(BudgetCounter)
    }
}

/// Counts each resolved field against the request's [`Budget`].
struct BudgetCounter;

#[async_trait::async_trait]
impl Extension for BudgetCounter {
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let response = next.run(ctx, operation_name).await;
        match ctx.data_opt::<Arc<Budget>>() {
            Some(budget) if budget.exceeded() => Response::from_errors(vec![budget.error()]),
            _ => response,
        }
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let Some(budget) = ctx.data_opt::<Arc<Budget>>() else {
            return next.run(ctx, info).await;
        };
        let list_item = matches!(info.path_node.segment, QueryPathSegment::Index(_));
        let name = info.alias.unwrap_or(info.name).len() as u64 + 3;
        let stop = || {
            if list_item {
                // A list item must resolve to a value or an error; an error
                // cancels the rest of the list at once.
                Err(budget.error())
            } else {
                Ok(None)
            }
        };
        if budget.exceeded() {
            return stop();
        }
        let value = next.run(ctx, info).await?;
        let bytes = name + value.as_ref().map_or(4, value_bytes);
        if budget.charge(bytes) {
            Ok(value)
        } else {
            stop()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_is_exceeded_past_either_limit() {
        let budget = Budget::new(BudgetLimits {
            max_bytes: 100,
            max_objects: 3,
        });
        assert!(budget.charge(10));
        assert!(budget.charge(10));
        assert!(budget.charge(10));
        assert!(!budget.charge(10));
        assert!(budget.exceeded());
        let bytes = Budget::new(BudgetLimits {
            max_bytes: 100,
            max_objects: 1_000,
        });
        assert!(bytes.charge(60));
        assert!(!bytes.charge(60));
    }

    #[test]
    fn strings_count_by_length_and_objects_by_their_braces() {
        assert_eq!(value_bytes(&Value::String("abcd".into())), 6);
        assert_eq!(value_bytes(&Value::Object(Default::default())), 2);
        assert_eq!(
            value_bytes(&Value::List(vec![Value::Boolean(true), Value::Null])),
            11
        );
    }
}
