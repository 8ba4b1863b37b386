//! Serialisation of record keys and values: bytes, UTF-8 strings, JSON into
//! a serde type, and Avro with a given schema.
//!
//! A source decodes with a [`Decoder`], a sink encodes with an [`Encoder`];
//! each format type implements both where its value type allows, so a sink
//! writes what a source of the same format reads. Decoding errors are data,
//! not panics: the source sends the record to its dead-letter sink with the
//! error as the reason.

use apache_avro::Schema;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::marker::PhantomData;
use std::sync::Arc;

/// Turns the bytes of a key or value into a typed value.
///
/// Thread safety: decoders are shared by a source's consumer threads, which
/// call `decode` concurrently; implementations hold no per-call state.
pub trait Decoder: Send + Sync + 'static {
    /// The decoded type.
    type Value: Clone + Send + 'static;
    /// Decodes `bytes`; the error says what is wrong with them.
    fn decode(&self, bytes: &[u8]) -> Result<Self::Value, String>;
}

/// Turns a typed key or value into bytes.
pub trait Encoder: Send + Sync + 'static {
    /// The encoded type.
    type Value;
    /// Appends the encoding of `value` to `out`; the error says why the value
    /// cannot be encoded.
    fn encode(&self, value: &Self::Value, out: &mut Vec<u8>) -> Result<(), String>;
}

/// Raw bytes, unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bytes;

impl Decoder for Bytes {
    type Value = Vec<u8>;
    fn decode(&self, bytes: &[u8]) -> Result<Vec<u8>, String> {
        Ok(bytes.to_vec())
    }
}

impl Encoder for Bytes {
    type Value = Vec<u8>;
    fn encode(&self, value: &Vec<u8>, out: &mut Vec<u8>) -> Result<(), String> {
        out.extend_from_slice(value);
        Ok(())
    }
}

/// UTF-8 text; invalid UTF-8 is a decoding error, not replaced.
#[derive(Debug, Clone, Copy, Default)]
pub struct Utf8;

impl Decoder for Utf8 {
    type Value = String;
    fn decode(&self, bytes: &[u8]) -> Result<String, String> {
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|e| format!("not valid UTF-8: {e}"))
    }
}

impl Encoder for Utf8 {
    type Value = String;
    fn encode(&self, value: &String, out: &mut Vec<u8>) -> Result<(), String> {
        out.extend_from_slice(value.as_bytes());
        Ok(())
    }
}

/// JSON into (and from) the serde type `T`.
pub struct Json<T>(PhantomData<fn() -> T>);

impl<T> Json<T> {
    /// The JSON format of `T`.
    pub fn new() -> Self {
        Json(PhantomData)
    }
}

impl<T> Default for Json<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for Json<T> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl<T: DeserializeOwned + Clone + Send + 'static> Decoder for Json<T> {
    type Value = T;
    fn decode(&self, bytes: &[u8]) -> Result<T, String> {
        serde_json::from_slice(bytes)
            .map_err(|e| format!("invalid JSON for {}: {e}", short_type_name::<T>()))
    }
}

impl<T: Serialize + 'static> Encoder for Json<T> {
    type Value = T;
    fn encode(&self, value: &T, out: &mut Vec<u8>) -> Result<(), String> {
        serde_json::to_writer(out, value)
            .map_err(|e| format!("cannot write {} as JSON: {e}", short_type_name::<T>()))
    }
}

/// Avro binary datums (no container header, no schema-registry prefix) of
/// one schema, into (and from) the serde type `T`.
pub struct Avro<T> {
    schema: Arc<Schema>,
    _t: PhantomData<fn() -> T>,
}

impl<T> Avro<T> {
    /// The Avro format of `schema` (Avro's JSON schema notation). The error
    /// says what is wrong with the schema.
    pub fn new(schema_json: &str) -> Result<Self, crate::KafkaError> {
        let schema = Schema::parse_str(schema_json).map_err(|e| {
            crate::KafkaError::Config(format!(
                "the Avro schema does not parse: {e}; give a schema in Avro's JSON notation"
            ))
        })?;
        Ok(Avro {
            schema: Arc::new(schema),
            _t: PhantomData,
        })
    }
}

impl<T> Clone for Avro<T> {
    fn clone(&self) -> Self {
        Avro {
            schema: self.schema.clone(),
            _t: PhantomData,
        }
    }
}

impl<T: DeserializeOwned + Clone + Send + 'static> Decoder for Avro<T> {
    type Value = T;
    fn decode(&self, bytes: &[u8]) -> Result<T, String> {
        let mut reader = bytes;
        let value = apache_avro::from_avro_datum(&self.schema, &mut reader, None)
            .map_err(|e| format!("invalid Avro datum: {e}"))?;
        if !reader.is_empty() {
            return Err(format!("{} bytes left after the Avro datum", reader.len()));
        }
        apache_avro::from_value(&value)
            .map_err(|e| format!("Avro datum does not fit {}: {e}", short_type_name::<T>()))
    }
}

impl<T: Serialize + 'static> Encoder for Avro<T> {
    type Value = T;
    fn encode(&self, value: &T, out: &mut Vec<u8>) -> Result<(), String> {
        let value = apache_avro::to_value(value)
            .and_then(|v| v.resolve(&self.schema))
            .map_err(|e| {
                format!(
                    "{} does not fit the Avro schema: {e}",
                    short_type_name::<T>()
                )
            })?;
        let bytes = apache_avro::to_avro_datum(&self.schema, value)
            .map_err(|e| format!("cannot write the Avro datum: {e}"))?;
        out.extend_from_slice(&bytes);
        Ok(())
    }
}

/// `Txn` for `my_crate::model::Txn`: short enough for an error message.
fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Reading {
        sensor: String,
        value: f64,
    }

    const READING_SCHEMA: &str = r#"{"type":"record","name":"Reading","fields":[
        {"name":"sensor","type":"string"},{"name":"value","type":"double"}]}"#;

    #[test]
    fn when_json_round_trips_then_value_is_equal() {
        let r = Reading {
            sensor: "s1".into(),
            value: 2.5,
        };
        let mut buf = Vec::new();
        Json::<Reading>::new().encode(&r, &mut buf).unwrap();
        assert_eq!(Json::<Reading>::new().decode(&buf).unwrap(), r);
    }

    #[test]
    fn when_json_is_malformed_then_error_names_the_type() {
        let err = Json::<Reading>::new().decode(b"{not json").unwrap_err();
        assert!(err.contains("invalid JSON for Reading"), "{err}");
    }

    #[test]
    fn when_avro_round_trips_then_value_is_equal() {
        let avro = Avro::<Reading>::new(READING_SCHEMA).unwrap();
        let r = Reading {
            sensor: "s2".into(),
            value: -1.0,
        };
        let mut buf = Vec::new();
        avro.encode(&r, &mut buf).unwrap();
        assert_eq!(avro.decode(&buf).unwrap(), r);
        assert!(avro.decode(&buf[..3]).is_err());
    }

    #[test]
    fn when_avro_schema_is_invalid_then_config_error() {
        let err = Avro::<Reading>::new("{\"type\":\"nonsense\"}")
            .err()
            .unwrap();
        assert!(err.to_string().contains("Avro schema"), "{err}");
    }

    #[test]
    fn when_utf8_is_invalid_then_error() {
        assert!(Utf8.decode(&[0xff, 0xfe]).is_err());
        assert_eq!(Utf8.decode(b"ok").unwrap(), "ok");
    }
}
