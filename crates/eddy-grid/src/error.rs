//! Errors of the grid: what went wrong and what the caller can do about it.

use std::path::PathBuf;

use crate::query::ParseError;

/// Everything a grid operation can fail with.
///
/// Map operations on typed handles do not fail: only operations that take
/// input from outside (JSON, predicate text, files) or configuration return
/// this error.
#[derive(Debug, thiserror::Error)]
pub enum GridError {
    /// A map exists with other key or value types than the handle asked for.
    #[error("map '{map}' holds {existing} but was requested as {requested}; use the same key and value types for every handle of a map, or pick another map name")]
    TypeMismatch {
        /// Name of the map.
        map: String,
        /// `(key, value)` type names of the existing map.
        existing: String,
        /// `(key, value)` type names that were requested.
        requested: String,
    },
    /// A map exists with another configuration than the one given.
    #[error("map '{map}' already exists with another configuration; call `Grid::map` to use it as it is, or destroy it first")]
    ConfigConflict {
        /// Name of the map.
        map: String,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration `{field}`: {reason}")]
    InvalidConfig {
        /// The field that is wrong, e.g. `MapConfig::max_idle`.
        field: &'static str,
        /// Why it is wrong and what would be accepted.
        reason: String,
    },
    /// No map of that name exists.
    #[error("no map named '{map}'; create it with `Grid::map` first or check the name")]
    NoSuchMap {
        /// Name that was looked up.
        map: String,
    },
    /// A predicate did not parse.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// An attribute path was empty or had an empty segment.
    #[error("invalid attribute path '{path}': use dot-separated names such as `address.city` or `__key`")]
    InvalidPath {
        /// The path as given.
        path: String,
    },
    /// A JSON key or value does not fit the map's types.
    #[error("{what} does not match the types of map '{map}': {source}; send JSON of the map's {what} type")]
    Json {
        /// Name of the map.
        map: String,
        /// `key` or `value`.
        what: &'static str,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
    /// A key or value could not be turned into JSON (a `Serialize` impl failed).
    #[error("could not encode a {what} of map '{map}' as JSON: {source}; check the type's Serialize impl")]
    Encode {
        /// Name of the map.
        map: String,
        /// `key` or `value`.
        what: &'static str,
        /// The encoding error.
        #[source]
        source: serde_json::Error,
    },
    /// Reading or writing a snapshot file failed.
    #[error("snapshot file {path}: {source}; check the path, its permissions and free disk space")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A snapshot file is not a complete snapshot of this format.
    #[error("snapshot file {path} is not a valid snapshot ({reason}); restore it from a backup or delete it to start empty")]
    CorruptSnapshot {
        /// The file.
        path: PathBuf,
        /// What was wrong, with the line number where known.
        reason: String,
    },
}
