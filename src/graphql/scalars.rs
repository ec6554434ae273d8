//! Scalars beyond GraphQL's own.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};

/// A 64-bit signed integer (byte counts), written as a JSON number. GraphQL's
/// `Int` is 32-bit, and clients that check it (graphql-js, Python gql)
/// refuse larger numbers. Accepted as a number or as a string of digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Int64(pub i64);

/// A 64-bit signed integer, for byte counts, written as a JSON number.
#[Scalar(name = "Int64")]
impl ScalarType for Int64 {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::Number(n) => n
                .as_i64()
                .map(Int64)
                .ok_or_else(|| InputValueError::custom("Int64 must be a whole number")),
            Value::String(s) => s
                .trim()
                .parse::<i64>()
                .map(Int64)
                .map_err(|_| InputValueError::custom("Int64 must be a whole number")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::Number(self.0.into())
    }
}
