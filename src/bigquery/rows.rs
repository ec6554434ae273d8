//! What `jobs.query` and `getQueryResults` said about a query, merged
//! across polls, and the one number read from its rows.

use google_cloud_bigquery_v2::model::{GetQueryResultsResponse, JobReference, QueryResponse};

use super::WarehouseError;

/// A query's state as the latest reply tells it.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub complete: bool,
    pub job: Option<JobReference>,
    /// BigQuery's query id, for a query run without a job.
    pub query_id: Option<String>,
    pub total_rows: Option<u64>,
    pub page_token: Option<String>,
    /// Rows in REST form: `{"f": [{"v": "42"}]}`.
    pub rows: Vec<serde_json::Map<String, serde_json::Value>>,
    pub bytes_processed: Option<i64>,
}

impl From<QueryResponse> for Reply {
    fn from(r: QueryResponse) -> Reply {
        Reply {
            complete: r.job_complete.unwrap_or(false),
            job: r.job_reference,
            query_id: Some(r.query_id).filter(|id| !id.is_empty()),
            total_rows: r.total_rows,
            page_token: Some(r.page_token).filter(|t| !t.is_empty()),
            rows: r.rows,
            bytes_processed: r.total_bytes_processed,
        }
    }
}

impl From<GetQueryResultsResponse> for Reply {
    fn from(r: GetQueryResultsResponse) -> Reply {
        Reply {
            complete: r.job_complete.unwrap_or(false),
            job: r.job_reference,
            query_id: None,
            total_rows: r.total_rows,
            page_token: Some(r.page_token).filter(|t| !t.is_empty()),
            rows: r.rows,
            bytes_processed: r.total_bytes_processed,
        }
    }
}

impl Reply {
    /// Takes what a later reply knows, keeping what it leaves out.
    pub fn merge(&mut self, next: Reply) {
        self.complete = next.complete;
        if next.job.is_some() {
            self.job = next.job;
        }
        if next.total_rows.is_some() {
            self.total_rows = next.total_rows;
        }
        self.page_token = next.page_token.or(self.page_token.take());
        if !next.rows.is_empty() {
            self.rows = next.rows;
        }
        if next.bytes_processed.is_some() {
            self.bytes_processed = next.bytes_processed;
        }
    }
}

/// The one non-NULL finite number in the first column of exactly one row.
pub fn first_values(
    rows: &[serde_json::Map<String, serde_json::Value>],
) -> Result<f64, WarehouseError> {
    let shape = |message: &str| WarehouseError::Shape {
        message: message.to_owned(),
    };
    let row = match rows {
        [row] => row,
        [] => {
            return Err(shape(
                "The query returned no rows; it must return exactly one row (use an aggregate such as COUNT or SUM).",
            ));
        }
        _ => {
            return Err(shape(
                "The query returned more than one row; it must return exactly one (aggregate, or add LIMIT 1).",
            ));
        }
    };
    let cell = row
        .get("f")
        .and_then(|f| f.as_array())
        .and_then(|cells| cells.first())
        .map(|cell| &cell["v"]);
    let value = match cell {
        None | Some(serde_json::Value::Null) => {
            return Err(shape(
                "The query returned NULL; wrap the value in COALESCE(…, 0) or make sure rows match.",
            ));
        }
        Some(serde_json::Value::String(text)) => text.trim().parse::<f64>().ok(),
        Some(serde_json::Value::Number(number)) => number.as_f64(),
        Some(_) => None,
    };
    match value {
        Some(value) if value.is_finite() => Ok(value),
        Some(_) => Err(shape(
            "The query returned a value that is not a finite number.",
        )),
        None => Err(shape("The query's value is not a number.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(json: serde_json::Value) -> Vec<serde_json::Map<String, serde_json::Value>> {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn one_row_of_one_number_is_read_from_its_rest_form() {
        assert_eq!(
            first_values(&rows(serde_json::json!([{"f": [{"v": "42.5"}]}]))).unwrap(),
            42.5
        );
        assert_eq!(
            first_values(&rows(serde_json::json!([{"f": [{"v": "-3"}]}]))).unwrap(),
            -3.0
        );
    }

    #[test]
    fn no_rows_several_rows_null_and_text_are_shape_errors() {
        for json in [
            serde_json::json!([]),
            serde_json::json!([{"f": [{"v": "1"}]}, {"f": [{"v": "2"}]}]),
            serde_json::json!([{"f": [{"v": null}]}]),
            serde_json::json!([{"f": [{"v": "abc"}]}]),
            serde_json::json!([{"f": [{"v": "inf"}]}]),
        ] {
            let err = first_values(&rows(json.clone())).unwrap_err();
            assert_eq!(err.code(), "QUERY_SHAPE", "{json}");
        }
    }

    #[test]
    fn a_later_reply_keeps_what_an_earlier_one_said_and_it_left_out() {
        let mut reply = Reply {
            job: Some(JobReference::new().set_job_id("j1")),
            page_token: Some("t".into()),
            ..Reply::default()
        };
        reply.merge(Reply {
            complete: true,
            total_rows: Some(1),
            ..Reply::default()
        });
        assert!(reply.complete);
        assert_eq!(reply.job.unwrap().job_id, "j1");
        assert_eq!(reply.page_token.as_deref(), Some("t"));
        assert_eq!(reply.total_rows, Some(1));
    }
}
