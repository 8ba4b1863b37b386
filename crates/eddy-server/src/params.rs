//! Parsing of request input: map keys in paths, paging, predicates, query
//! strings, job ids and snapshot export parameters. Pure functions, so they are property-tested for
//! panics on any input (`tests` below and `tests/api.rs`).

use crate::error::ApiError;
use serde_json::Value;

/// Entries per page when the request names no `page_size`.
pub const PAGE_SIZE_DEFAULT: usize = 50;
/// Largest `page_size` accepted: a page is built in memory and sent whole,
/// so this bounds the memory and the response size of one query.
pub const PAGE_SIZE_MAX: usize = 1000;
/// Largest predicate or aggregation text accepted, in bytes: generous for
/// hand-written predicates, small enough that parsing stays cheap.
pub const PREDICATE_BYTES_MAX: usize = 4096;
/// Largest page number accepted. Pages are counted from 0; the bound keeps
/// `page * page_size` far from overflow.
pub const PAGE_MAX: usize = 1_000_000;

/// A page of a query: which one and how large.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    /// Page number, from 0.
    pub page: usize,
    /// Entries per page, 1 to [`PAGE_SIZE_MAX`].
    pub page_size: usize,
}

/// The parameters of `GET /api/maps/{name}/query`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryParams {
    /// Predicate text; `None` matches every entry.
    pub predicate: Option<String>,
    /// Which page.
    pub paging: Paging,
}

/// The parameters of `GET /api/maps/{name}/aggregate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateParams {
    /// Aggregation text such as `count` or `sum(amount)`.
    pub aggregation: String,
    /// Predicate text; `None` aggregates every entry.
    pub predicate: Option<String>,
}

/// The parameters of `POST /api/jobs/{id}/export`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportParams {
    /// Name the snapshot is kept under (letters, digits, `-`, `_`, `.`).
    pub name: String,
    /// Whether the job stops once the snapshot is durable.
    pub cancel: bool,
}

/// Splits a raw query string into its decoded pairs; a parameter given
/// twice is an error, since silently taking one of them hides mistakes.
pub fn query_pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        if pairs.iter().any(|(seen, _)| *seen == k) {
            return Err(ApiError::bad_request(format!(
                "query parameter '{k}' is given twice; give it once"
            )));
        }
        pairs.push((k.into_owned(), v.into_owned()));
    }
    Ok(pairs)
}

fn take(pairs: &mut Vec<(String, String)>, name: &str) -> Option<String> {
    let at = pairs.iter().position(|(k, _)| k == name)?;
    Some(pairs.swap_remove(at).1)
}

fn reject_unknown(pairs: &[(String, String)], known: &str) -> Result<(), ApiError> {
    match pairs.first() {
        None => Ok(()),
        Some((k, _)) => Err(ApiError::bad_request(format!(
            "unknown query parameter '{k}'; this endpoint takes {known}"
        ))),
    }
}

/// Parses the query string of a map query: `predicate`, `page`, `page_size`.
pub fn parse_query_params(raw: Option<&str>) -> Result<QueryParams, ApiError> {
    let mut pairs = query_pairs(raw)?;
    let predicate = take(&mut pairs, "predicate");
    let page = take(&mut pairs, "page");
    let page_size = take(&mut pairs, "page_size");
    reject_unknown(&pairs, "predicate, page and page_size")?;
    Ok(QueryParams {
        predicate: parse_predicate_text(predicate)?,
        paging: parse_paging(page.as_deref(), page_size.as_deref())?,
    })
}

/// Parses the query string of an aggregation: `aggregation`, `predicate`.
pub fn parse_aggregate_params(raw: Option<&str>) -> Result<AggregateParams, ApiError> {
    let mut pairs = query_pairs(raw)?;
    let aggregation = take(&mut pairs, "aggregation");
    let predicate = take(&mut pairs, "predicate");
    reject_unknown(&pairs, "aggregation and predicate")?;
    let aggregation = aggregation.filter(|a| !a.trim().is_empty()).ok_or_else(|| {
        ApiError::bad_request(
            "missing query parameter 'aggregation'; give one of count, sum(path), avg(path), min(path), max(path), distinct(path)",
        )
    })?;
    check_text_len("aggregation", &aggregation)?;
    Ok(AggregateParams {
        aggregation,
        predicate: parse_predicate_text(predicate)?,
    })
}

/// Parses the query string of a put: an optional `ttl_ms`.
pub fn parse_put_params(raw: Option<&str>) -> Result<Option<std::time::Duration>, ApiError> {
    let mut pairs = query_pairs(raw)?;
    let ttl = take(&mut pairs, "ttl_ms");
    reject_unknown(&pairs, "ttl_ms")?;
    ttl.map(|t| match t.parse::<u64>() {
        Ok(ms) if ms > 0 => Ok(std::time::Duration::from_millis(ms)),
        _ => Err(ApiError::bad_request(format!(
            "ttl_ms '{t}' is not a positive whole number of milliseconds; give e.g. ttl_ms=60000, or leave it out for the map's default"
        ))),
    })
    .transpose()
}

/// Parses the query string of a snapshot export: `name` and an optional
/// `cancel` (`true` or `false`).
pub fn parse_export_params(raw: Option<&str>) -> Result<ExportParams, ApiError> {
    let mut pairs = query_pairs(raw)?;
    let name = take(&mut pairs, "name");
    let cancel = take(&mut pairs, "cancel");
    reject_unknown(&pairs, "name and cancel")?;
    let name = name.filter(|n| !n.is_empty()).ok_or_else(|| {
        ApiError::bad_request(
            "missing query parameter 'name': give the name to keep the snapshot under, e.g. ?name=before-upgrade",
        )
    })?;
    // The runtime's rule for export names, checked here so that a bad name
    // is the request's error (400) rather than the job's state (409).
    eddy_runtime::snapshot::exported_snapshot_path(std::path::Path::new(""), &name)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let cancel = match cancel.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "cancel '{other}' is not true or false; give cancel=true to stop the job after the export"
            )))
        }
    };
    Ok(ExportParams { name, cancel })
}

/// Refuses any query parameter, for the job actions that take none.
pub fn reject_query(raw: Option<&str>, action: &str) -> Result<(), ApiError> {
    reject_unknown(
        &query_pairs(raw)?,
        &format!("none (POST /api/jobs/{{id}}/{action} takes no parameters)"),
    )
}

fn check_text_len(what: &str, text: &str) -> Result<(), ApiError> {
    if text.len() > PREDICATE_BYTES_MAX {
        return Err(ApiError::new(
            axum::http::StatusCode::URI_TOO_LONG,
            format!(
                "{what} is {} bytes, more than the {PREDICATE_BYTES_MAX} accepted; shorten it",
                text.len()
            ),
        ));
    }
    Ok(())
}

/// An absent or blank predicate matches everything; a long one is refused.
/// Whether it parses is the grid's to say (its error names the position).
pub fn parse_predicate_text(text: Option<String>) -> Result<Option<String>, ApiError> {
    match text {
        Some(t) if !t.trim().is_empty() => {
            check_text_len("predicate", &t)?;
            Ok(Some(t))
        }
        _ => Ok(None),
    }
}

/// Parses `page` and `page_size`, with defaults when absent.
pub fn parse_paging(page: Option<&str>, page_size: Option<&str>) -> Result<Paging, ApiError> {
    let page = match page {
        None => 0,
        Some(p) => match p.trim().parse::<usize>() {
            Ok(n) if n <= PAGE_MAX => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "page '{p}' is not a page number from 0 to {PAGE_MAX}; pages count from 0"
                )))
            }
        },
    };
    let page_size = match page_size {
        None => PAGE_SIZE_DEFAULT,
        Some(s) => match s.trim().parse::<usize>() {
            Ok(n) if (1..=PAGE_SIZE_MAX).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "page_size '{s}' is not a number from 1 to {PAGE_SIZE_MAX}; ask for smaller pages and page through them"
                )))
            }
        },
    };
    Ok(Paging { page, page_size })
}

/// The ways a key in a URL path may be meant, most likely first.
///
/// A path segment is text, but map keys are typed: `42` is a number for a
/// map with integer keys and a string for a map with string keys. A segment
/// that is valid JSON is tried as that JSON first (`42`, `"42"`, `[1,2]`),
/// then as the plain string; the first the map's key type accepts wins.
pub fn key_candidates(raw: &str) -> Vec<Value> {
    let mut out = Vec::with_capacity(2);
    if let Ok(v) = serde_json::from_str::<Value>(raw) {
        out.push(v);
    }
    let plain = Value::String(raw.to_owned());
    if !out.contains(&plain) {
        out.push(plain);
    }
    out
}

/// Parses a job id from a path segment.
pub fn parse_job_id(raw: &str) -> Result<u64, ApiError> {
    raw.parse::<u64>().map_err(|_| {
        ApiError::bad_request(format!(
            "job id '{raw}' is not a number; list the jobs with GET /api/jobs to find its id"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn when_no_paging_given_then_defaults_apply() {
        assert_eq!(
            parse_paging(None, None).unwrap(),
            Paging {
                page: 0,
                page_size: PAGE_SIZE_DEFAULT
            }
        );
    }

    #[test]
    fn when_page_size_is_zero_or_too_large_then_bad_request() {
        assert!(parse_paging(None, Some("0")).is_err());
        assert!(parse_paging(None, Some("1001")).is_err());
        assert!(parse_paging(Some("-1"), None).is_err());
    }

    #[test]
    fn when_key_is_a_json_number_then_number_then_string_are_tried() {
        assert_eq!(
            key_candidates("42"),
            vec![Value::from(42), Value::from("42")]
        );
        assert_eq!(key_candidates("card-7"), vec![Value::from("card-7")]);
        assert_eq!(
            key_candidates("\"a\""),
            vec![Value::from("a"), Value::from("\"a\"")]
        );
    }

    #[test]
    fn when_a_parameter_repeats_or_is_unknown_then_bad_request() {
        assert!(parse_query_params(Some("page=1&page=2")).is_err());
        assert!(parse_query_params(Some("pagesize=2")).is_err());
        let q =
            parse_query_params(Some("predicate=rule%20%3D%20%27x%27&page=2&page_size=10")).unwrap();
        assert_eq!(q.predicate.as_deref(), Some("rule = 'x'"));
        assert_eq!(
            q.paging,
            Paging {
                page: 2,
                page_size: 10
            }
        );
    }

    #[test]
    fn when_an_export_name_is_missing_or_unsafe_then_bad_request() {
        assert_eq!(
            parse_export_params(Some("name=v2&cancel=true")).unwrap(),
            ExportParams {
                name: "v2".into(),
                cancel: true
            }
        );
        assert!(!parse_export_params(Some("name=v2")).unwrap().cancel);
        for bad in [
            "",
            "cancel=true",
            "name=",
            "name=..%2Fx",
            "name=a%2Fb",
            "name=v&cancel=yes",
            "name=v&x=1",
        ] {
            let e = parse_export_params(Some(bad)).unwrap_err();
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST, "{bad}: {e}");
        }
        assert!(reject_query(None, "cancel").is_ok());
        assert!(reject_query(Some("force=1"), "cancel").is_err());
    }

    proptest! {
        #[test]
        fn parsing_any_query_string_never_panics(raw in ".{0,200}") {
            let _ = parse_query_params(Some(&raw));
            let _ = parse_aggregate_params(Some(&raw));
            let _ = parse_put_params(Some(&raw));
            let _ = parse_export_params(Some(&raw));
        }

        #[test]
        fn parsing_any_paging_never_panics_and_stays_in_bounds(page in ".{0,30}", size in ".{0,30}") {
            if let Ok(p) = parse_paging(Some(&page), Some(&size)) {
                prop_assert!(p.page <= PAGE_MAX);
                prop_assert!((1..=PAGE_SIZE_MAX).contains(&p.page_size));
            }
        }

        #[test]
        fn any_key_has_its_plain_string_as_a_candidate(raw in ".{0,100}") {
            let c = key_candidates(&raw);
            prop_assert!(c.contains(&Value::String(raw.clone())));
            prop_assert!(c.len() <= 2);
        }

        #[test]
        fn parsing_any_job_id_never_panics(raw in ".{0,40}") {
            let _ = parse_job_id(&raw);
        }
    }
}
