//! The plugin's config: the JSON object given at upload (for example
//! `quiver plugin upload ... --config '{"limit": 5}'`).

use crate::bindings::quiver::plugin::config as wit;

/// The top-level value of `key`: a JSON string as its text, any other JSON
/// value (number, bool, array, object) as its JSON text.
pub fn get(key: &str) -> Option<String> {
    wit::get(key)
}

/// The value of `key` parsed as `T` (for numbers and bools), or `default`
/// when absent or unparsable.
pub fn get_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    get(key)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// A comma-separated string value split into trimmed, non-empty items
/// (`"a, b,c"` gives `["a", "b", "c"]`).
pub fn get_list(key: &str) -> Option<Vec<String>> {
    get(key).map(|v| {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    })
}

/// The whole config as JSON text; `{}` when none was given.
pub fn all() -> String {
    wit::all()
}
