//! `quiver plugin`: manage a tenant's plugins through the admin HTTP API.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use serde_json::Value;

#[derive(Debug, Args)]
pub(super) struct PluginArgs {
    #[command(subcommand)]
    command: PluginCommand,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Upload a component as the plugin's next version and activate it.
    Upload {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
        /// The component, built for wasm32-wasip2.
        file: PathBuf,
        /// The plugin's config, as JSON.
        #[arg(long)]
        config: Option<String>,
    },
    /// List the tenant's plugins as JSON lines.
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Activate an earlier version.
    Activate {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        version: u32,
    },
    /// Re-activate the version that was active before the current one.
    Rollback {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
    },
    /// Delete the plugin and all its versions.
    Delete {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
    },
}

/// Where the admin API is and how to authenticate to it.
#[derive(Debug, Args)]
struct ApiArgs {
    /// Base URL of the gateway's HTTP API.
    #[arg(
        long,
        global = true,
        env = "QUIVER_API",
        default_value = "http://127.0.0.1:8080"
    )]
    api: String,
    /// Admin bearer token. Without one, DATA_DIR/admin.token is read.
    #[arg(
        long,
        global = true,
        env = "QUIVER_ADMIN_TOKEN",
        hide_env_values = true
    )]
    admin_token: Option<String>,
    /// The gateway's data directory (dev setup), to find its admin token.
    #[arg(long, global = true, env = "QUIVER_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
}

impl ApiArgs {
    fn token(&self) -> anyhow::Result<String> {
        if let Some(token) = &self.admin_token {
            return Ok(token.clone());
        }
        let path = quiver_server::tenants::admin_token_path(&self.data_dir);
        let token = std::fs::read_to_string(&path)
            .with_context(|| format!("no --admin-token and cannot read {}", path.display()))?;
        Ok(token.trim().to_string())
    }

    fn url(&self, tenant: &str, rest: &str) -> String {
        format!(
            "{}/v1/tenants/{tenant}/plugins{rest}",
            self.api.trim_end_matches('/')
        )
    }
}

pub(super) async fn run(args: PluginArgs) -> anyhow::Result<()> {
    let token = args.api.token()?;
    let http = reqwest::Client::new();
    let request = match &args.command {
        PluginCommand::Upload {
            tenant,
            name,
            file,
            config,
        } => {
            let bytes =
                std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            let mut request = http
                .put(args.api.url(tenant, &format!("/{name}")))
                .header("content-type", "application/wasm")
                .body(bytes);
            if let Some(config) = config {
                request = request.query(&[("config", config)]);
            }
            request
        }
        PluginCommand::List { tenant } => http.get(args.api.url(tenant, "")),
        PluginCommand::Activate {
            tenant,
            name,
            version,
        } => http
            .post(args.api.url(tenant, &format!("/{name}/activate")))
            .json(&serde_json::json!({ "version": version })),
        PluginCommand::Rollback { tenant, name } => {
            http.post(args.api.url(tenant, &format!("/{name}/rollback")))
        }
        PluginCommand::Delete { tenant, name } => {
            http.delete(args.api.url(tenant, &format!("/{name}")))
        }
    };
    let response = request
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| format!("cannot reach the HTTP API at {}", args.api.api))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let json: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&body).unwrap_or(Value::String(body))
    };
    if !status.is_success() {
        let message = json["error"]["message"]
            .as_str()
            .map_or_else(|| json.to_string(), str::to_string);
        let code = json["error"]["code"].as_str().unwrap_or("error");
        bail!("{} {code}: {message}", status.as_u16());
    }
    match (&args.command, &json) {
        (PluginCommand::List { .. }, Value::Object(map)) => {
            for plugin in map
                .get("plugins")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                println!("{plugin}");
            }
        }
        (_, Value::Null) => {}
        (_, other) => println!("{other}"),
    }
    Ok(())
}
