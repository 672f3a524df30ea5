//! `quiver track` and `quiver watch`: report a position, and print a
//! tracking channel's positions as JSON lines.

use std::time::Duration;

use clap::Args;
use quiver_client::Position;
use serde_json::json;

use super::client::ClientArgs;

/// How long `track` keeps the connection open after its last position, so
/// the datagram leaves before the close (datagrams are never acknowledged).
const LINGER: Duration = Duration::from_millis(300);

#[derive(Debug, Args)]
pub(super) struct TrackArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// A tracking channel, such as track:city-1.
    channel: String,
    /// The entity whose position this is; the token needs `--track ENTITY`.
    entity: String,
    /// Latitude, WGS 84 degrees.
    #[arg(allow_hyphen_values = true)]
    lat: f64,
    /// Longitude, WGS 84 degrees.
    #[arg(allow_hyphen_values = true)]
    lon: f64,
    /// Accuracy in metres.
    #[arg(long)]
    accuracy: Option<f64>,
    /// Heading, degrees clockwise from north.
    #[arg(long)]
    heading: Option<f64>,
    /// Speed in metres per second.
    #[arg(long)]
    speed: Option<f64>,
}

#[derive(Debug, Args)]
pub(super) struct WatchArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// A tracking channel, such as track:city-1.
    channel: String,
    /// Exit after this many positions.
    #[arg(long)]
    count: Option<u64>,
    /// At most this many positions per entity per second (0: the server's
    /// maximum).
    #[arg(long, default_value_t = 0)]
    max_rate: u32,
}

pub(super) async fn track(args: TrackArgs) -> anyhow::Result<()> {
    let client = args.client.connect().await?;
    let position = Position::new(args.entity, args.lat, args.lon).motion(
        args.accuracy,
        args.heading,
        args.speed,
    );
    client.track(&args.channel, &position).await?;
    tokio::time::sleep(LINGER).await;
    println!(
        "{}",
        json!({
            "channel": args.channel,
            "entity": position.entity,
            "lat": position.lat,
            "lon": position.lon,
            "timestamp_ms": position.timestamp_ms,
        })
    );
    client.close().await;
    Ok(())
}

pub(super) async fn watch(args: WatchArgs) -> anyhow::Result<()> {
    let client = args.client.connect().await?;
    let mut watch = client.watch(&args.channel, args.max_rate).await?;
    let mut printed = 0u64;
    while args.count.is_none_or(|count| printed < count) {
        let Some(event) = watch.next().await else {
            break;
        };
        let event = event?;
        let p = &event.position;
        println!(
            "{}",
            json!({
                "entity": p.entity,
                "lat": p.lat,
                "lon": p.lon,
                "accuracy": p.accuracy,
                "heading": p.heading,
                "speed": p.speed,
                "timestamp_ms": p.timestamp_ms,
                "user": p.user,
                "snapshot": event.snapshot,
            })
        );
        printed += 1;
    }
    client.close().await;
    Ok(())
}
