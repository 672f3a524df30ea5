//! `quiver apikey`: prints a tenant's key of the publish API, for a
//! backend's configuration or a curl command.

use anyhow::{Context as _, bail};
use clap::Args;
use quiver_server::setup::Loaded;
use quiver_server::tenants::{DEV_TENANT, dev_api_key, tenant_api_keys};

use super::ConfigArgs;

#[derive(Debug, Args)]
pub(super) struct ApiKeyArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Tenant id.
    #[arg(long)]
    tenant: String,
}

pub(super) fn run(args: ApiKeyArgs) -> anyhow::Result<()> {
    let mut loaded = Loaded::from_file(args.config.config.as_deref())?;
    if let Some(dir) = args.config.data_dir {
        loaded.config.server.data_dir = dir;
    }
    let key = if loaded.dev {
        if args.tenant != DEV_TENANT {
            bail!("without --config only the dev tenant {DEV_TENANT:?} exists");
        }
        dev_api_key(&loaded.config.server.data_dir)?
    } else {
        let section = loaded
            .config
            .tenants
            .iter()
            .find(|t| t.id == args.tenant)
            .with_context(|| format!("tenant {:?} is not in the config", args.tenant))?;
        tenant_api_keys(section, &loaded.base)?
            .into_iter()
            .next()
            .with_context(|| {
                format!(
                    "tenant {:?} has no API key; add api_key_files (or api_keys) to its [[tenants]] table",
                    args.tenant
                )
            })?
    };
    println!("{key}");
    Ok(())
}
