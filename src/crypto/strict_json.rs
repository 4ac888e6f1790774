//! Strict JSON reader for signed events received from other nodes: before a signature is
//! checked, the bytes must have exactly one reading. No duplicate object keys, no numbers but
//! plain integer literals within ±(2^53 − 1), and bounded nesting.

use serde::de::{self, DeserializeSeed, Deserializer as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// Deepest nesting of arrays and objects that [`parse`] accepts: the outermost array or object
/// is at depth 1, a container inside it at depth 2, and so on; scalars do not count.
pub const MAX_DEPTH: usize = 32;

/// The largest integer magnitude accepted: 2^53 − 1 (I-JSON, RFC 7493). RFC 8785 writes
/// numbers as IEEE doubles, which hold every integer only up to there; beyond it one
/// canonicaliser rounds (2^53 + 1 becomes 9007199254740992) where another writes the digits, so
/// two correct writers would give one event two ids.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Why [`parse`] refused its input. Paths look like `$.body.actor.role` or `$.parents[2]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StrictJsonError {
    /// Invalid JSON or trailing data after the value; holds `serde_json`'s message.
    #[error("malformed JSON: {0}")]
    Malformed(String),
    /// An object holds `key` twice (compared after unescaping).
    #[error("duplicate key {key:?} at {path}")]
    DuplicateKey {
        /// The repeated key.
        key: String,
        /// Location of the object holding the key.
        path: String,
    },
    /// A number with a fractional part, such as `1.5`.
    #[error("float or non-integer number {text} at {path}")]
    Float {
        /// The parsed `f64`'s `Display` rendering (the source text is not available).
        text: String,
        /// Location of the number.
        path: String,
    },
    /// An integral number not written as a plain integer literal (`-0`, `1.0`, `1e3`, `1E3`).
    #[error("non-canonical number {text} at {path}")]
    NonCanonicalNumber {
        /// The parsed `f64`'s `Display` rendering (the source text is not available).
        text: String,
        /// Location of the number.
        path: String,
    },
    /// An integer beyond ±[`MAX_SAFE_INTEGER`], however written.
    #[error("integer {text} at {path} is outside ±(2^53 − 1)")]
    IntegerOutOfRange {
        /// The integer (beyond 64 bits: the parsed `f64`'s `Display` rendering).
        text: String,
        /// Location of the number.
        path: String,
    },
    /// Arrays and objects nest deeper than the limit held.
    #[error("nesting deeper than {0}")]
    TooDeep(usize),
}

/// Parses `bytes` as JSON, refusing duplicate object keys (at any depth), any number that is not a
/// plain integer literal (`-?(0|[1-9][0-9]*)`; `-0` refused) within ±(2^53 − 1), and nesting
/// deeper than [`MAX_DEPTH`]. Returns the `serde_json::Value`.
///
/// # Errors
///
/// The first violation met while reading, or [`StrictJsonError::Malformed`] for invalid JSON
/// and trailing non-whitespace data.
pub fn parse(bytes: &[u8]) -> Result<Value, StrictJsonError> {
    let mut state = State::default();
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let malformed = |err: serde_json::Error| StrictJsonError::Malformed(err.to_string());
    let value = deserializer.deserialize_any(Node { state: &mut state });
    let value = value.map_err(|err| state.error.take().unwrap_or_else(|| malformed(err)))?;
    deserializer.end().map_err(malformed)?;
    Ok(value)
}

/// Reading state: rendered path steps (`.key`, `["odd key"]`, `[2]`) and the violation met.
#[derive(Default)]
struct State {
    path: Vec<String>,
    error: Option<StrictJsonError>,
}

impl State {
    /// Renders the current location, such as `$.body.actor` or `$.parents[2]`.
    fn path(&self) -> String {
        format!("${}", self.path.concat())
    }

    /// Refuses a container opening inside [`MAX_DEPTH`] others (each added a path step).
    /// Errors are recorded here and mirrored into serde's error, which aborts the parse.
    fn check_depth<E: de::Error>(&mut self) -> Result<(), E> {
        if self.path.len() >= MAX_DEPTH {
            let error = StrictJsonError::TooDeep(MAX_DEPTH);
            return Err(E::custom(self.error.insert(error)));
        }
        Ok(())
    }
}

/// Path step for an object member; keys other than `[A-Za-z0-9_]+` are quoted in brackets.
fn key_step(key: &str) -> String {
    if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        format!(".{key}")
    } else {
        format!("[{key:?}]")
    }
}

/// Seed and visitor for one JSON value at the current location.
struct Node<'a> {
    state: &'a mut State,
}

impl Node<'_> {
    /// Records an integer out of range at the current location.
    fn out_of_range<E: de::Error>(self, text: String) -> E {
        let path = self.state.path();
        E::custom(
            self.state
                .error
                .insert(StrictJsonError::IntegerOutOfRange { text, path }),
        )
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a strict JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        if v.unsigned_abs() > MAX_SAFE_INTEGER {
            return Err(self.out_of_range(v.to_string()));
        }
        Ok(Value::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        if v > MAX_SAFE_INTEGER {
            return Err(self.out_of_range(v.to_string()));
        }
        Ok(Value::from(v))
    }
    /// `serde_json` gives `f64` for every literal with a fraction or exponent, for `-0`, and for
    /// integers outside the `i64`/`u64` ranges: all refused.
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        // 2^53 as a double, exactly.
        const LIMIT: f64 = 9_007_199_254_740_992.0;
        let (text, path) = (v.to_string(), self.state.path());
        let error = if v.is_finite() && v.fract() == 0.0 && v.abs() >= LIMIT {
            StrictJsonError::IntegerOutOfRange { text, path }
        } else if v.is_finite() && v.fract() == 0.0 {
            StrictJsonError::NonCanonicalNumber { text, path }
        } else {
            StrictJsonError::Float { text, path }
        };
        Err(E::custom(self.state.error.insert(error)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.state.check_depth()?;
        let mut items = Vec::new();
        self.state.path.push("[0]".to_owned());
        while let Some(item) = seq.next_element_seed(Node { state: self.state })? {
            items.push(item);
            self.state.path.pop();
            self.state.path.push(format!("[{}]", items.len()));
        }
        self.state.path.pop();
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        self.state.check_depth()?;
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                let path = self.state.path();
                let error = StrictJsonError::DuplicateKey { key, path };
                return Err(de::Error::custom(self.state.error.insert(error)));
            }
            self.state.path.push(key_step(&key));
            let value = access.next_value_seed(Node { state: self.state })?;
            self.state.path.pop();
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> StrictJsonError {
        parse(text.as_bytes()).unwrap_err()
    }

    fn same_as_serde_json(text: &str) {
        let expected: Value = serde_json::from_str(text).unwrap();
        assert_eq!(parse(text.as_bytes()).unwrap(), expected, "{text}");
    }

    #[test]
    fn valid_nested_object_round_trips() {
        same_as_serde_json(r#"{"body":{"actor":{"role":"admin","id":7},"t":["a",null,true]}}"#);
        same_as_serde_json(r#"{"parents":[1,-2,0],"e":{},"n":[],"s":"\u00e9\n"}"#);
        same_as_serde_json(" 0 ");
    }

    #[test]
    fn duplicate_keys_are_refused_with_key_and_path() {
        let dup = |key: &str, path: &str| StrictJsonError::DuplicateKey {
            key: key.into(),
            path: path.into(),
        };
        assert_eq!(err(r#"{"a":1,"b":2,"a":1}"#), dup("a", "$"));
        assert_eq!(err(r#"{"a":1,"\u0061":2}"#), dup("a", "$"));
        let text = r#"{"body":{"actor":{"role":"a","role":"b"}}}"#;
        assert_eq!(err(text), dup("role", "$.body.actor"));
        let text = err(r#"{"parents":[{},{},{"x y":{"k":1,"k":1}}]}"#).to_string();
        assert_eq!(text, r#"duplicate key "k" at $.parents[2]["x y"]"#);
    }

    #[test]
    fn floats_and_non_canonical_numbers_are_refused() {
        let text = err(r#"{"a":[0,1.5]}"#).to_string();
        assert_eq!(text, "float or non-integer number 1.5 at $.a[1]");
        assert_eq!(err("-0").to_string(), "non-canonical number -0 at $");
        let numbers = "1.0 1e3 1E3 -0 -0.0 9007199254740991.0";
        for text in numbers.split(' ') {
            let e = err(&format!(r#"{{"n":{text}}}"#));
            let ok =
                matches!(&e, StrictJsonError::NonCanonicalNumber { path, .. } if path == "$.n");
            assert!(ok, "{text}: {e:?}");
        }
    }

    #[test]
    fn integers_within_plus_minus_2_pow_53_minus_1_are_accepted_and_beyond_refused() {
        let max = MAX_SAFE_INTEGER;
        same_as_serde_json(&format!("[{max},-{max},0,-1]"));
        let beyond = format!(
            "{} -{} {} {} {} 18446744073709551616 -9223372036854775809 1e16 -9007199254740992.0",
            max + 1,
            max + 1,
            max + 2,
            i64::MIN,
            u64::MAX,
        );
        for text in beyond.split(' ') {
            let e = err(&format!(r#"{{"a":[1,{text}]}}"#));
            let ok =
                matches!(&e, StrictJsonError::IntegerOutOfRange { path, .. } if path == "$.a[1]");
            assert!(ok, "{text}: {e:?}");
        }
        assert_eq!(
            err("9007199254740993").to_string(),
            "integer 9007199254740993 at $ is outside ±(2^53 − 1)"
        );
    }

    #[test]
    fn trailing_data_and_bad_syntax_are_refused() {
        for text in ["{} x", "{}{}", "1 2", "", r#"{"a":}"#, "01", "+1", "[1,]"] {
            assert!(matches!(err(text), StrictJsonError::Malformed(_)), "{text}");
        }
    }

    #[test]
    fn depth_limit_is_32() {
        let arrays = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        let objects = |n: usize| format!("{}1{}", r#"{"k":"#.repeat(n), "}".repeat(n));
        for nest in [arrays, objects] {
            assert!(parse(nest(32).as_bytes()).is_ok());
            assert_eq!(err(&nest(33)), StrictJsonError::TooDeep(32));
        }
        same_as_serde_json(&format!("[{},{}]", arrays(31), arrays(31)));
    }

    #[test]
    fn number_like_strings_are_accepted() {
        same_as_serde_json(r#"{"a":"-0","b":"1.5","-0":"1e3","c":["-0 ","1.5e3"]}"#);
    }
}
