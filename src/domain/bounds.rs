//! How large an organization's OKR tree may grow. The query cost check
//! multiplies an objective's `keyResults` and `children` by these bounds,
//! so they must hold for the estimate to be a true upper bound: every
//! write that adds a key result, a child or a level checks them.

use super::validate::Invalid;

/// The bounds of the OKR tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeBounds {
    /// Most key results one objective holds (`MAX_KEY_RESULTS_PER_OBJECTIVE`).
    pub key_results_per_objective: u64,
    /// Most child objectives one objective holds (`MAX_CHILDREN_PER_OBJECTIVE`).
    pub children_per_objective: u64,
    /// Most levels of alignment, a root being level 1 (`MAX_TREE_DEPTH`).
    pub depth: u64,
}

impl Default for TreeBounds {
    /// OKR practice is 3–5 key results per objective and a few levels of
    /// alignment (company, department, team, person); the defaults leave
    /// ample room while keeping the worst query a small multiple of a
    /// real one.
    fn default() -> Self {
        TreeBounds {
            key_results_per_objective: 25,
            children_per_objective: 100,
            depth: 12,
        }
    }
}

impl TreeBounds {
    /// Refuses one more key result on an objective that holds `held`.
    pub fn check_key_result(&self, held: u64) -> Result<(), Invalid> {
        if held >= self.key_results_per_objective {
            return Err(Invalid::new(
                "objectiveId",
                format!(
                    "An objective holds at most {} key results (MAX_KEY_RESULTS_PER_OBJECTIVE) and this one is full; split it into child objectives.",
                    self.key_results_per_objective
                ),
            ));
        }
        Ok(())
    }

    /// Refuses `added` more children on a parent that holds `held`.
    pub fn check_children(&self, held: u64, added: u64) -> Result<(), Invalid> {
        if held.saturating_add(added) > self.children_per_objective {
            return Err(Invalid::new(
                "parentId",
                format!(
                    "An objective holds at most {} child objectives (MAX_CHILDREN_PER_OBJECTIVE) and that parent has {held}; align to another objective.",
                    self.children_per_objective
                ),
            ));
        }
        Ok(())
    }

    /// Refuses a subtree `height` levels tall (1 for a leaf) placed under a
    /// parent at level `parent_level` (a root is level 1).
    pub fn check_depth(&self, parent_level: u64, height: u64) -> Result<(), Invalid> {
        if parent_level.saturating_add(height) > self.depth {
            return Err(Invalid::new(
                "parentId",
                format!(
                    "Alignment may be at most {} levels deep (MAX_TREE_DEPTH); under that parent this objective{} would reach level {}.",
                    self.depth,
                    if height > 1 {
                        " and its sub-objectives"
                    } else {
                        ""
                    },
                    parent_level + height
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_objective_takes_no_more_key_results() {
        let bounds = TreeBounds::default();
        assert!(bounds.check_key_result(24).is_ok());
        let err = bounds.check_key_result(25).unwrap_err();
        assert_eq!(err.field, "objectiveId");
        assert!(err.message.contains("25"), "{}", err.message);
    }

    #[test]
    fn children_are_counted_with_those_that_move_in() {
        let bounds = TreeBounds::default();
        assert!(bounds.check_children(99, 1).is_ok());
        assert!(bounds.check_children(100, 1).is_err());
        assert!(bounds.check_children(60, 41).is_err());
    }

    #[test]
    fn a_subtree_may_not_reach_below_the_deepest_level() {
        let bounds = TreeBounds::default();
        assert!(bounds.check_depth(11, 1).is_ok());
        assert!(bounds.check_depth(12, 1).is_err());
        let err = bounds.check_depth(10, 3).unwrap_err();
        assert!(err.message.contains("level 13"), "{}", err.message);
    }
}
