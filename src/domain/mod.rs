//! Pure types and rules, no I/O. Besides the standard library and chrono it
//! knows only the stored words of `entity::enums`.

/// Gives a parsed text newtype read access to its text.
macro_rules! text_newtype {
    ($name:ident) => {
        impl $name {
            /// The parsed text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The parsed text, owned.
            pub fn into_inner(self) -> String {
                self.0
            }
        }
    };
}

pub mod bounds;
pub mod inputs;
pub mod node;
pub mod progress;
pub mod sql_guard;
pub mod validate;
pub mod warehouse;

pub use node::Node;
