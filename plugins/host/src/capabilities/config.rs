//! `quiver:plugin/config`: the plugin's config JSON as uploaded. Parsed
//! once per plugin version and shared by all its instances.

use std::sync::Arc;

use serde_json::{Map, Value};
use wasmtime::component::{HasData, Linker};

use crate::bindings::quiver::plugin::config::{self, Host};

/// A plugin version's config: the parsed object and its JSON text.
#[derive(Debug)]
pub(crate) struct PluginConfig {
    pub(crate) values: Map<String, Value>,
    pub(crate) json: String,
}

impl PluginConfig {
    /// Parses `json`, which must be an object (empty text counts as `{}`).
    pub(crate) fn parse(json: &str) -> Result<Self, String> {
        if json.trim().is_empty() {
            return Ok(Self {
                values: Map::new(),
                json: "{}".into(),
            });
        }
        match serde_json::from_str::<Value>(json) {
            Ok(Value::Object(values)) => Ok(Self {
                values,
                json: json.to_owned(),
            }),
            Ok(_) => Err("the config must be a JSON object".into()),
            Err(e) => Err(format!("the config is not valid JSON: {e}")),
        }
    }
}

pub(crate) type ConfigCtx = Arc<PluginConfig>;

pub(crate) trait ConfigView: Send {
    fn config(&mut self) -> &ConfigCtx;
}

struct HasConfig;

impl HasData for HasConfig {
    type Data<'a> = &'a PluginConfig;
}

pub(crate) fn add_to_linker<T: ConfigView + 'static>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    config::add_to_linker::<T, HasConfig>(linker, |t| t.config().as_ref())
}

impl Host for &PluginConfig {
    async fn get(&mut self, key: String) -> Option<String> {
        self.values.get(&key).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }

    async fn all(&mut self) -> String {
        self.json.clone()
    }
}
