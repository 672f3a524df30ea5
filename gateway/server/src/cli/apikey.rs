//! `quiver apikey`: prints a tenant's key of the publish API, for a
//! backend's configuration or a curl command.

use anyhow::Context as _;
use clap::Args;
use quiver_server::tenants::{dev_api_key, tenant_api_keys};

use super::{ConfigArgs, TenantSource, tenant_source};

#[derive(Debug, Args)]
pub(super) struct ApiKeyArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Tenant id.
    #[arg(long)]
    tenant: String,
}

pub(super) fn run(args: ApiKeyArgs) -> anyhow::Result<()> {
    let loaded = args.config.load()?;
    let key = match tenant_source(&loaded, &args.tenant)? {
        TenantSource::Dev(data_dir) => dev_api_key(data_dir)?,
        TenantSource::Configured { section, base } => tenant_api_keys(section, base)?
            .into_iter()
            .next()
            .with_context(|| {
                format!(
                    "tenant {:?} has no API key; add api_key_files (or api_keys) to its [[tenants]] table",
                    args.tenant
                )
            })?,
    };
    println!("{key}");
    Ok(())
}
