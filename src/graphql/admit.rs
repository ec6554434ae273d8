//! Admitting a request before it runs, the same over HTTP and WebSocket:
//! its text is bounded, it is parsed once (async-graphql reuses the
//! parse), and its cost is measured against the limits.

use async_graphql::{
    ErrorExtensionValues, Request, ServerError, parser::types::ExecutableDocument,
};

use super::cost::{self, Limits, TypeInfo};

/// The schema's types and the limits every request is measured against.
pub struct Admission {
    pub types: TypeInfo,
    pub limits: Limits,
}

impl Admission {
    /// Parses and measures a request; on refusal, the error to answer with
    /// (`GRAPHQL_PARSE_FAILED` or `QUERY_TOO_COMPLEX`).
    pub fn check<'a>(
        &self,
        request: &'a mut Request,
    ) -> Result<&'a ExecutableDocument, ServerError> {
        self.measure(request).map(|(doc, _)| doc)
    }

    /// Like [`Admission::check`], also returning the complexity measured,
    /// for a batch whose operations are summed.
    pub fn measure<'a>(
        &self,
        request: &'a mut Request,
    ) -> Result<(&'a ExecutableDocument, u64), ServerError> {
        cost::check_length(&request.query, &self.limits).map_err(too_complex)?;
        let operation_name = request.operation_name.clone();
        let variables = request.variables.clone();
        let doc = request.parsed_query().map_err(|mut err| {
            coded(&mut err, "GRAPHQL_PARSE_FAILED");
            err
        })?;
        let measured = cost::measure(doc, operation_name.as_deref(), &variables, &self.types);
        cost::check(&measured, &self.limits).map_err(too_complex)?;
        Ok((doc, measured.complexity))
    }

    /// Refuses a batch whose operations' complexities sum past the limit:
    /// ten operations may not cost ten times what one may.
    pub fn check_batch(&self, complexity: u64) -> Result<(), ServerError> {
        if complexity > self.limits.max_complexity {
            return Err(too_complex(cost::Refusal {
                what: "complexity",
                measured: complexity,
                limit: self.limits.max_complexity,
                fragment: None,
            }));
        }
        Ok(())
    }
}

/// A refusal of the cost check as a `QUERY_TOO_COMPLEX` error.
fn too_complex(refusal: cost::Refusal) -> ServerError {
    let mut err = ServerError::new(refusal.message(), None);
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", "QUERY_TOO_COMPLEX");
    extensions.set("limitName", refusal.what);
    extensions.set("measured", refusal.measured);
    extensions.set("limit", refusal.limit);
    err.extensions = Some(extensions);
    err
}

/// Sets an error's code unless it has one.
pub fn coded(err: &mut ServerError, code: &str) {
    let extensions = err.extensions.get_or_insert_with(Default::default);
    if extensions.get("code").is_none() {
        extensions.set("code", code);
    }
}

/// Most errors one operation's answer carries: a document of a thousand
/// unknown fields would otherwise answer with a thousand messages.
pub const MAX_ERRORS: usize = 100;

/// Keeps the first [`MAX_ERRORS`] errors, the last of them saying how many
/// more there were.
pub fn cap_errors(errors: &mut Vec<ServerError>) {
    if errors.len() <= MAX_ERRORS {
        return;
    }
    let left_out = errors.len() - (MAX_ERRORS - 1);
    errors.truncate(MAX_ERRORS - 1);
    let mut last = ServerError::new(
        format!("{left_out} more errors were left out of this answer."),
        None,
    );
    coded(&mut last, "TOO_MANY_ERRORS");
    errors.push(last);
}

/// Codes the errors async-graphql leaves without one: those without a path
/// come from validating the document (unknown fields, wrong variable types),
/// those with one from coercing an argument.
pub fn code_errors(errors: &mut [ServerError]) {
    for err in errors {
        if err.path.is_empty() {
            coded(err, "GRAPHQL_VALIDATION_FAILED");
        } else {
            coded(err, "BAD_USER_INPUT");
        }
    }
}
