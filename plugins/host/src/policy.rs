//! What the gateway does when a plugin call fails, per hook. Read by the
//! host from the plugin's config JSON, key `failure_policy`:
//!
//! - `"failure_policy": "fail-open"` sets every hook;
//! - `"failure_policy": {"publish": "fail-open"}` sets one hook (keys
//!   `connect`, `subscribe`, `publish`, `track`); unnamed hooks keep the
//!   default.
//!
//! The default is fail-closed everywhere: a plugin that cannot answer
//! never lets through what it was installed to check.

use serde_json::{Map, Value};

use crate::Hook;

/// Whether a failed call blocks (closed) or is skipped (open).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FailureMode {
    /// Deny / reject / drop, as if the plugin said no.
    #[default]
    FailClosed,
    /// Carry on as if the plugin were not installed.
    FailOpen,
}

/// The mode of each hook.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FailurePolicy {
    modes: [FailureMode; 4],
}

impl FailurePolicy {
    /// The mode for `hook`.
    pub fn mode(&self, hook: Hook) -> FailureMode {
        self.modes[hook.index()]
    }

    /// Reads `failure_policy` from a plugin's config.
    pub(crate) fn from_config(config: &Map<String, Value>) -> Result<Self, String> {
        let mut policy = FailurePolicy::default();
        match config.get("failure_policy") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => policy.modes = [parse_mode(s)?; 4],
            Some(Value::Object(per_hook)) => {
                for (key, value) in per_hook {
                    let hook = match key.as_str() {
                        "connect" => Hook::Connect,
                        "subscribe" => Hook::Subscribe,
                        "publish" => Hook::Publish,
                        "track" => Hook::Track,
                        other => {
                            return Err(format!(
                                "failure_policy: unknown hook `{other}` (use connect, subscribe, publish, track)"
                            ));
                        }
                    };
                    let Value::String(mode) = value else {
                        return Err(format!(
                            "failure_policy.{key} must be \"fail-open\" or \"fail-closed\""
                        ));
                    };
                    policy.modes[hook.index()] = parse_mode(mode)?;
                }
            }
            Some(_) => {
                return Err(
                    "failure_policy must be \"fail-open\", \"fail-closed\" or an object of hooks"
                        .into(),
                );
            }
        }
        Ok(policy)
    }
}

fn parse_mode(s: &str) -> Result<FailureMode, String> {
    match s {
        "fail-closed" => Ok(FailureMode::FailClosed),
        "fail-open" => Ok(FailureMode::FailOpen),
        other => Err(format!(
            "failure mode `{other}`: use \"fail-open\" or \"fail-closed\""
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<FailurePolicy, String> {
        let Value::Object(map) = serde_json::from_str(json).map_err(|e| e.to_string())? else {
            return Err("not an object".into());
        };
        FailurePolicy::from_config(&map)
    }

    #[test]
    fn defaults_to_fail_closed_and_reads_overrides() {
        let p = parse("{}").unwrap();
        assert!(
            Hook::ALL
                .iter()
                .all(|h| p.mode(*h) == FailureMode::FailClosed)
        );
        let p = parse(r#"{"failure_policy": {"publish": "fail-open"}}"#).unwrap();
        assert_eq!(p.mode(Hook::Publish), FailureMode::FailOpen);
        assert_eq!(p.mode(Hook::Connect), FailureMode::FailClosed);
        let p = parse(r#"{"failure_policy": "fail-open"}"#).unwrap();
        assert_eq!(p.mode(Hook::Subscribe), FailureMode::FailOpen);
        assert!(parse(r#"{"failure_policy": {"join": "fail-open"}}"#).is_err());
        assert!(parse(r#"{"failure_policy": "maybe"}"#).is_err());
    }
}
