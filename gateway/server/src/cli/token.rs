use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use clap::Args;
use quiver_server::tenants::{dev_secret, hs256_secret};
use quiver_session::Claims;

use super::{ConfigArgs, TenantSource, tenant_source};

#[derive(Debug, Args)]
pub(super) struct TokenArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Tenant id.
    #[arg(long)]
    tenant: String,
    /// User id (the token's `sub`).
    #[arg(long)]
    user: String,
    /// Lifetime, such as 90s, 30m, 12h or 7d.
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    ttl: Duration,
    /// Channel pattern the user may subscribe to (repeatable; `chat:*`
    /// matches a prefix). Without any, every channel is allowed.
    #[arg(long = "subscribe")]
    subscribe: Vec<String>,
    /// Channel pattern the user may publish to (repeatable).
    #[arg(long = "publish")]
    publish: Vec<String>,
    /// Entity id the user may report positions for (repeatable; `courier-*`
    /// matches a prefix, `*` any). Without any, the user may track nothing.
    #[arg(long = "track")]
    track: Vec<String>,
}

pub(super) fn run(args: TokenArgs) -> anyhow::Result<()> {
    let loaded = args.config.load()?;
    let secret = match tenant_source(&loaded, &args.tenant)? {
        TenantSource::Dev(data_dir) => dev_secret(data_dir)?,
        TenantSource::Configured { section, base } => {
            hs256_secret(section, base)?.with_context(|| {
                format!(
                    "tenant {:?} has no HS256 secret; sign its tokens with your own private key",
                    args.tenant
                )
            })?
        }
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let claims = Claims {
        sub: args.user,
        tenant: args.tenant,
        exp: now + args.ttl.as_secs(),
        nbf: None,
        subscribe: (!args.subscribe.is_empty()).then_some(args.subscribe),
        publish: (!args.publish.is_empty()).then_some(args.publish),
        track: (!args.track.is_empty()).then_some(args.track),
    };
    println!("{}", claims.sign_hs256(&secret)?);
    Ok(())
}

/// Parses `90s`, `30m`, `12h`, `7d` or plain seconds.
pub(super) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 90s, 30m, 12h or 7d"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("unknown unit {unit:?}; use s, m, h or d")),
    };
    Ok(Duration::from_secs(number.saturating_mul(seconds)))
}
