//! An objective or a key result: what a value, a history point or a data
//! source belongs to.

use super::validate::Invalid;

/// One node of the OKR tree that can hold a value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Node {
    Objective(String),
    KeyResult(String),
}

impl Node {
    /// The node an input names with exactly one of its two ids.
    pub fn exactly_one(
        key_result_id: Option<String>,
        objective_id: Option<String>,
    ) -> Result<Node, Invalid> {
        match (key_result_id, objective_id) {
            (Some(id), None) => Ok(Node::KeyResult(id)),
            (None, Some(id)) => Ok(Node::Objective(id)),
            _ => Err(Invalid::new(
                "keyResultId",
                "Give exactly one of keyResultId and objectiveId.",
            )),
        }
    }

    /// The node a row belongs to, from its `objective_id` and
    /// `key_result_id` columns (a key result's row names only the key result).
    pub fn of_row(objective_id: Option<&str>, key_result_id: Option<&str>) -> Option<Node> {
        match (key_result_id, objective_id) {
            (Some(id), _) => Some(Node::KeyResult(id.to_owned())),
            (None, Some(id)) => Some(Node::Objective(id.to_owned())),
            (None, None) => None,
        }
    }

    /// The `(objective_id, key_result_id)` columns of a row that belongs here.
    pub fn columns(&self) -> (Option<String>, Option<String>) {
        match self {
            Node::Objective(id) => (Some(id.clone()), None),
            Node::KeyResult(id) => (None, Some(id.clone())),
        }
    }

    /// The node's own id.
    pub fn id(&self) -> &str {
        match self {
            Node::Objective(id) | Node::KeyResult(id) => id,
        }
    }
}

/// Splits nodes into objective ids and key result ids.
pub fn split(nodes: &[Node]) -> (Vec<String>, Vec<String>) {
    let mut objective_ids = Vec::new();
    let mut key_result_ids = Vec::new();
    for node in nodes {
        match node {
            Node::Objective(id) => objective_ids.push(id.clone()),
            Node::KeyResult(id) => key_result_ids.push(id.clone()),
        }
    }
    (objective_ids, key_result_ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_names_exactly_one_node() {
        assert_eq!(
            Node::exactly_one(Some("k".into()), None),
            Ok(Node::KeyResult("k".into()))
        );
        assert_eq!(
            Node::exactly_one(None, Some("o".into())),
            Ok(Node::Objective("o".into()))
        );
        assert!(Node::exactly_one(None, None).is_err());
        assert!(Node::exactly_one(Some("k".into()), Some("o".into())).is_err());
    }

    #[test]
    fn a_row_belongs_to_its_key_result_before_its_objective() {
        assert_eq!(
            Node::of_row(Some("o"), Some("k")),
            Some(Node::KeyResult("k".into()))
        );
        assert_eq!(Node::of_row(None, None), None);
        assert_eq!(
            Node::Objective("o".into()).columns(),
            (Some("o".into()), None)
        );
    }
}
