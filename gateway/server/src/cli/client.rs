//! The client commands: thin wrappers over `quiver-client` that print JSON
//! lines, one per ack or message, for scripts and pipes.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Args;
use quiver_client::{
    Client, ClientConfig, Direction, HistoryQuery, Message, PublishOptions, Trust,
};
use quiver_server::api::json::{headers_json, put_payload, ulid_string};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt as _;

use super::init_logging;

/// How to reach and authenticate to a gateway.
#[derive(Debug, Args)]
pub(super) struct ClientArgs {
    /// Gateway address, host:port.
    #[arg(long, env = "QUIVER_SERVER", default_value = "127.0.0.1:4433")]
    server: String,
    /// JWT from `quiver token` or your backend.
    #[arg(long, env = "QUIVER_TOKEN", hide_env_values = true)]
    token: String,
    /// PEM certificate to trust (the dev one is data/tls/dev-cert.pem).
    #[arg(long, env = "QUIVER_CA")]
    ca: Option<PathBuf>,
    /// Skip certificate verification (testing only).
    #[arg(long, conflicts_with = "ca")]
    insecure: bool,
}

impl ClientArgs {
    pub(super) async fn connect(self) -> anyhow::Result<Client> {
        init_logging("warn", false);
        let trust = match (self.ca, self.insecure) {
            (Some(ca), _) => Trust::CaPem(ca),
            (None, true) => Trust::Insecure,
            (None, false) => bail!(
                "no certificate to trust: pass --ca PEM (for the dev server: --ca data/tls/dev-cert.pem) or --insecure"
            ),
        };
        let config = ClientConfig::new(self.server.clone(), self.token, trust)
            .client_name(concat!("quiver-cli/", env!("CARGO_PKG_VERSION")));
        Client::connect(config)
            .await
            .with_context(|| format!("cannot connect to {}", self.server))
    }
}

#[derive(Debug, Args)]
pub(super) struct PubArgs {
    #[command(flatten)]
    client: ClientArgs,
    channel: String,
    message: String,
    /// Idempotency key: publishing again with it returns the first offset.
    #[arg(long)]
    key: Option<String>,
    /// Header as name=value (repeatable).
    #[arg(long = "header", value_parser = parse_header)]
    headers: Vec<(String, String)>,
}

#[derive(Debug, Args)]
pub(super) struct SubArgs {
    #[command(flatten)]
    client: ClientArgs,
    channel: String,
    /// Replay every message after this offset first (0 = from the start).
    #[arg(long)]
    since: Option<u64>,
    /// Exit after this many messages.
    #[arg(long)]
    count: Option<u64>,
}

#[derive(Debug, Args)]
pub(super) struct HistoryArgs {
    #[command(flatten)]
    client: ClientArgs,
    channel: String,
    /// Messages per page.
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// Only messages with a lower offset (page backwards).
    #[arg(long)]
    before: Option<u64>,
    /// Only messages with a higher offset.
    #[arg(long)]
    after: Option<u64>,
    /// Oldest first instead of newest first.
    #[arg(long)]
    oldest_first: bool,
}

#[derive(Debug, Args)]
pub(super) struct ChatArgs {
    #[command(flatten)]
    client: ClientArgs,
    channel: String,
    /// Show this many earlier messages first.
    #[arg(long, default_value_t = 10)]
    backlog: u64,
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{text:?} is not name=value"))
}

pub(super) async fn publish(args: PubArgs) -> anyhow::Result<()> {
    let client = args.client.connect().await?;
    let mut options = PublishOptions::new(args.message.into_bytes());
    options.headers = args.headers;
    options.key = args.key;
    let ack = client.publish_with(&args.channel, options).await?;
    println!(
        "{}",
        json!({
            "channel": args.channel,
            "offset": ack.offset,
            "id": ulid_string(ack.id),
            "duplicate": ack.duplicate,
        })
    );
    client.close().await;
    Ok(())
}

pub(super) async fn subscribe(args: SubArgs) -> anyhow::Result<()> {
    let client = args.client.connect().await?;
    let mut subscription = client.subscribe(&args.channel, args.since).await?;
    let mut printed = 0;
    while args.count.is_none_or(|count| printed < count) {
        let Some(message) = subscription.next().await else {
            bail!("subscription ended");
        };
        println!("{}", message_json(&message?));
        printed += 1;
    }
    client.close().await;
    Ok(())
}

pub(super) async fn history(args: HistoryArgs) -> anyhow::Result<()> {
    let client = args.client.connect().await?;
    let mut query = HistoryQuery::latest(args.limit);
    if let Some(before) = args.before {
        query = query.before(before);
    }
    if let Some(after) = args.after {
        query = query.after(after);
    }
    if args.oldest_first {
        query = query.direction(Direction::Forward);
    }
    let page = client.history(&args.channel, query).await?;
    for message in &page.messages {
        println!("{}", message_json(message));
    }
    client.close().await;
    Ok(())
}

pub(super) async fn chat(args: ChatArgs) -> anyhow::Result<()> {
    let client = args.client.connect().await?;
    let head = client
        .history(&args.channel, HistoryQuery::latest(1))
        .await?
        .messages
        .first()
        .map_or(0, |m| m.offset);
    let since = head.saturating_sub(args.backlog);
    let mut subscription = client.subscribe(&args.channel, Some(since)).await?;
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    eprintln!(
        "joined {} — type a message and press Enter; Ctrl-D leaves",
        args.channel
    );
    loop {
        tokio::select! {
            line = lines.next_line() => match line? {
                Some(line) if line.trim().is_empty() => {}
                Some(line) => {
                    if let Err(error) = client.publish(&args.channel, line.into_bytes()).await {
                        eprintln!("not sent: {error}");
                    }
                }
                None => break,
            },
            message = subscription.next() => match message {
                Some(Ok(m)) => println!(
                    "[{}] {}: {}",
                    m.offset,
                    m.sender,
                    String::from_utf8_lossy(&m.payload)
                ),
                Some(Err(error)) => bail!(error),
                None => bail!("subscription ended"),
            },
        }
    }
    client.close().await;
    Ok(())
}

fn message_json(message: &Message) -> Value {
    let mut value = json!({
        "channel": &*message.channel,
        "offset": message.offset,
        "id": ulid_string(message.id),
        "sender": message.sender,
        "timestamp_ms": message.timestamp_ms,
    });
    put_payload(&mut value, &message.payload);
    if !message.headers.is_empty() {
        value["headers"] = headers_json(
            message
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str())),
        );
    }
    value
}
