//! Reading JSON values the way IdPs send them: keys in any case, booleans as strings.

use serde_json::Value;

/// `object[key]` with the key matched case-insensitively.
pub(crate) fn get_ci<'v>(object: &'v Value, key: &str) -> Option<&'v Value> {
    let map = object.as_object()?;
    map.get(key).or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

/// A boolean, or the strings `"true"` / `"false"` in any case (Entra sends `"True"`).
pub(crate) fn as_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}
