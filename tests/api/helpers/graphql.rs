//! The GraphQL client tests use: requests as a caller, and the parts of an
//! error they look at.

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use super::{Caller, TestApp};

impl TestApp {
    /// Posts a GraphQL request with an optional raw Authorization header.
    pub async fn raw(&self, authorization: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.address))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(auth) = authorization {
            request = request.header("Authorization", auth);
        }
        let response = request.send().await.expect("send the GraphQL request");
        response.json().await.expect("a JSON GraphQL response")
    }

    /// Runs a GraphQL request as `caller` and returns the whole response.
    pub async fn gql(&self, caller: &Caller, query: &str, variables: Value) -> Value {
        let auth = format!("Bearer {}", self.token(caller));
        self.raw(Some(&auth), query, variables).await
    }

    /// Runs a request that must succeed and returns its `data`.
    pub async fn data(&self, caller: &Caller, query: &str, variables: Value) -> Value {
        let response = self.gql(caller, query, variables).await;
        assert!(
            response.get("errors").is_none(),
            "unexpected errors: {response:#}"
        );
        response["data"].clone()
    }

    /// Runs a request that must fail and returns its first error.
    pub async fn error(&self, caller: &Caller, query: &str, variables: Value) -> GqlError {
        let response = self.gql(caller, query, variables).await;
        GqlError::first(&response)
    }

    /// Creates an objective over the given days and returns its id.
    pub async fn objective(&self, caller: &Caller, input: Value) -> String {
        let data = self
            .data(
                caller,
                "mutation($input: CreateObjectiveInput!) { createObjective(input: $input) { id } }",
                json!({ "input": input }),
            )
            .await;
        data["createObjective"]["id"].as_str().unwrap().to_owned()
    }

    /// Creates a key result and returns its id.
    pub async fn key_result(&self, caller: &Caller, input: Value) -> String {
        let data = self
            .data(
                caller,
                "mutation($input: CreateKeyResultInput!) { createKeyResult(input: $input) { id } }",
                json!({ "input": input }),
            )
            .await;
        data["createKeyResult"]["id"].as_str().unwrap().to_owned()
    }

    /// Checks in a value on a key result.
    pub async fn check_in(&self, caller: &Caller, key_result_id: &str, value: f64) -> Value {
        let data = self
            .data(
                caller,
                "mutation($input: CheckInInput!) { checkIn(input: $input) { value progress expectedProgress status source } }",
                json!({ "input": { "keyResultId": key_result_id, "value": value } }),
            )
            .await;
        data["checkIn"].clone()
    }

    /// Rows in a table, to prove that a refused change saved nothing.
    pub async fn count_rows(&self, table: &str) -> i64 {
        let row = self
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                self.db.get_database_backend(),
                format!("SELECT COUNT(*) AS n FROM {table}"),
            ))
            .await
            .expect("count rows")
            .expect("one row");
        row.try_get::<i64>("", "n").expect("a count")
    }
}

/// The parts of a GraphQL error tests look at.
#[derive(Debug)]
pub struct GqlError {
    pub code: String,
    pub message: String,
    pub field: Option<String>,
    /// `extensions.reason` (BigQuery's or Google's reason).
    pub reason: Option<String>,
}

impl GqlError {
    /// The first error of a response, which must have one.
    pub fn first(response: &Value) -> GqlError {
        let err = &response["errors"][0];
        assert!(!err.is_null(), "expected an error, got {response:#}");
        GqlError {
            code: err["extensions"]["code"].as_str().unwrap_or("").to_owned(),
            message: err["message"].as_str().unwrap_or("").to_owned(),
            field: err["extensions"]["field"].as_str().map(str::to_owned),
            reason: err["extensions"]["reason"].as_str().map(str::to_owned),
        }
    }
}
