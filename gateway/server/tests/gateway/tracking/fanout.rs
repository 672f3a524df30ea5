//! Coalesced fan-out to watchers: the rate cap, loss on the datagram path,
//! the snapshot a new watcher (or a backend over HTTP) gets first, and the
//! stream fallback for a peer without datagrams.

use std::collections::HashMap;
use std::time::Duration;

use quiver_client::{Client, ClientConfig, Position, Reconnect, Trust};
use tokio::time::Instant;

use super::lossy::LossyPath;
use super::{config, next_event, tracker, tracker_token};
use crate::support::{TestServer, now_secs};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_watcher_gets_at_most_its_rate_and_always_the_newest() {
    let server = TestServer::start(&config()).await;
    let courier = tracker(&server, "courier", &["courier-*"]).await;
    let viewer = server.client("demo", "viewer").await;
    let mut watch = viewer.watch("track:city", 5).await.expect("watch");
    // The empty snapshot arrives as no event; updates start now, each
    // stamped with the wall clock when sent (strictly increasing).
    let started = Instant::now();
    let mut sent: Vec<u64> = Vec::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    for i in 0..150u64 {
        ticker.tick().await;
        let position = Position::new("courier-7", 52.0 + i as f64 * 1e-4, 13.0);
        let stamp = position
            .timestamp_ms
            .max(sent.last().map_or(0, |last| last + 1));
        let position = position.at(stamp);
        courier.track("track:city", &position).await.expect("track");
        sent.push(stamp);
    }
    let publishing = started.elapsed();
    let mut received = Vec::new();
    while let Some(event) = next_event(&mut watch, Duration::from_millis(800)).await {
        assert!(!event.snapshot, "nothing was known when the watch started");
        assert_eq!(event.position.entity, "courier-7");
        assert_eq!(event.position.user.as_deref(), Some("courier"));
        received.push((Instant::now(), event.position.timestamp_ms));
    }
    // At most 5 per second: one at once, then one per 200 ms interval.
    let window = publishing.as_secs_f64() + 0.8;
    let cap = (window * 5.0).ceil() as usize + 1;
    assert!(
        received.len() <= cap,
        "{} positions in {window:.1} s is over 5/s",
        received.len()
    );
    assert!(
        received.len() >= 10,
        "only {} positions arrived",
        received.len()
    );
    // The server sends one position per 200 ms: the newest it holds then.
    // Measured on the fixes' send times, six consecutive ones span at least
    // a second; the slack covers scheduling jitter on a busy machine, while
    // twice the rate would span half a second.
    let stamps: Vec<u64> = received.iter().map(|r| r.1).collect();
    for pair in stamps.windows(2) {
        assert!(
            pair[1] > pair[0],
            "an older position followed a newer one: {stamps:?}"
        );
    }
    for six in stamps.windows(6) {
        assert!(
            six[5] - six[0] >= 800,
            "six positions within {} ms exceed 5/s: {stamps:?}",
            six[5] - six[0]
        );
    }
    // Coalescing delivers the newest, never a backlog: the last position
    // received is the last one sent.
    assert_eq!(received.last().map(|r| r.1), sent.last().copied());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datagram_loss_never_delivers_an_older_position_after_a_newer_one() {
    let config = format!(
        "{}\n[[channels]]\nnamespace = \"fleet\"\nkind = \"tracking\"\nmax_position_rate = 100\n",
        config()
    );
    let server = TestServer::start(&config).await;
    let path = LossyPath::start(server.addr, 250).await;
    let courier = tracker(&server, "courier", &["*"]).await;
    let viewer_config = ClientConfig::new(
        path.addr.to_string(),
        server.token("demo", "viewer"),
        Trust::CaPem(server.ca()),
    )
    .reconnect(Reconnect::disabled());
    let viewer = Client::connect(viewer_config)
        .await
        .expect("connect through the lossy path");
    let mut watch = viewer.watch("fleet:paris", 0).await.expect("watch");
    let start_ms = now_secs() * 1000;
    let sender = tokio::spawn(async move {
        for i in 0..400u64 {
            for entity in ["van-1", "van-2", "van-3"] {
                let position =
                    Position::new(entity, 48.0, 2.0 + i as f64 * 1e-4).at(start_ms + i * 5);
                courier
                    .track("fleet:paris", &position)
                    .await
                    .expect("track");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        courier
    });
    let mut newest: HashMap<String, u64> = HashMap::new();
    let mut received = 0;
    while let Some(event) = next_event(&mut watch, Duration::from_secs(2)).await {
        let p = event.position;
        if let Some(previous) = newest.insert(p.entity.clone(), p.timestamp_ms) {
            assert!(
                p.timestamp_ms > previous,
                "{}: {} after {previous}",
                p.entity,
                p.timestamp_ms
            );
        }
        received += 1;
    }
    let _courier = sender.await.expect("sender");
    let dropped = path.dropped.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("lossy path: {received} positions received, {dropped} packets dropped");
    assert!(
        dropped > 20,
        "the path dropped only {dropped} packets; the test proves nothing"
    );
    assert!(received > 100, "only {received} positions arrived");
    assert_eq!(newest.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_watcher_first_gets_the_latest_known_positions() {
    let server = TestServer::start(&config()).await;
    let courier = tracker(&server, "courier", &["bike-*"]).await;
    let viewer = server.client("demo", "viewer").await;
    let mut early = viewer.watch("track:zone-9", 0).await.expect("watch");
    for (i, entity) in ["bike-1", "bike-2", "bike-1"].iter().enumerate() {
        let position =
            Position::new(*entity, 40.0 + i as f64, -3.0).at(1_700_000_000_000 + i as u64);
        courier
            .track("track:zone-9", &position)
            .await
            .expect("track");
    }
    // Three updates, of which the early watcher sees all (rate is high).
    for _ in 0..3 {
        next_event(&mut early, Duration::from_secs(5))
            .await
            .expect("live update");
    }
    let late = server.client("demo", "late").await;
    let mut watch = late.watch("track:zone-9", 0).await.expect("watch");
    let mut snapshot = HashMap::new();
    for _ in 0..2 {
        let event = next_event(&mut watch, Duration::from_secs(5))
            .await
            .expect("snapshot");
        assert!(event.snapshot);
        snapshot.insert(event.position.entity.clone(), event.position.lat);
    }
    // Tracking channels have presence: who else watches came first.
    let mut present: Vec<(String, bool)> = watch.presence().map(|p| (p.user, p.joined)).collect();
    present.sort();
    assert_eq!(
        present,
        [("late".to_owned(), true), ("viewer".to_owned(), true)]
    );
    assert_eq!(
        snapshot,
        HashMap::from([("bike-1".to_owned(), 42.0), ("bike-2".to_owned(), 41.0)])
    );
    // Backends read the same over HTTP, with the tenant's API key.
    let key = quiver_server::tenants::dev_api_key(server.data.path()).expect("api key");
    let (status, body) = crate::support::http_get_with(
        server.api,
        "/v1/channels/track:zone-9/positions",
        Some(&key),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).expect("json");
    let entities: Vec<(&str, f64)> = body["positions"]
        .as_array()
        .expect("positions")
        .iter()
        .map(|p| {
            (
                p["entity"].as_str().expect("entity"),
                p["lat"].as_f64().expect("lat"),
            )
        })
        .collect();
    assert_eq!(entities, [("bike-1", 42.0), ("bike-2", 41.0)]);
    let (status, _) = crate::support::http_get_with(
        server.api,
        "/v1/channels/track:zone-9/positions",
        Some("not-a-key"),
    )
    .await;
    assert_eq!(status, 401);
}

/// A peer without QUIC datagrams loses nothing: its positions go out on a
/// stream, and what it watches arrives on the subscription stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_datagrams_positions_travel_on_streams() {
    use quiver_proto::{Body, Encoder, FrameReader, PositionRef};
    let server = TestServer::start(&config()).await;
    let token = tracker_token(&server, "driver", &["cab-*"]);
    let mut raw = crate::raw::Raw::without_datagrams(server.addr, &server.ca(), &token).await;
    // The server may still take datagrams; this client takes none, so the
    // server must use the stream.
    let mut enc = Encoder::new();
    raw.write(enc.subscribe(1, "track:rank", None)).await;
    let subscribed = raw.next_frame().await.expect("Subscribed");
    let Ok(Body::Subscribed(s)) = quiver_proto::decode(&subscribed) else {
        panic!("expected Subscribed");
    };
    let subscription_id = s.subscription_id();
    let mut stream = raw
        .connection
        .accept_uni()
        .await
        .expect("subscription stream");
    let mut reader = FrameReader::new(1 << 20);
    let mut next = async || loop {
        if let Some(frame) = reader.next_frame().expect("valid") {
            return frame;
        }
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.read_chunk(1 << 16, true))
            .await
            .expect("in time")
            .expect("read")
            .expect("open");
        reader.push_bytes(chunk.bytes);
    };
    assert!(matches!(
        quiver_proto::decode(&next().await),
        Ok(Body::StreamHeader(_))
    ));
    // The (empty) snapshot, then the presence of the subscriber itself.
    let mut saw_snapshot = false;
    let fix = PositionRef {
        entity: "cab-9",
        lat: 35.68,
        lon: 139.76,
        accuracy: Some(3.0),
        heading: None,
        speed: None,
        timestamp_ms: now_secs() * 1000,
        user: None,
    };
    raw.write(enc.track("track:rank", &fix)).await;
    let position = loop {
        let frame = next().await;
        match quiver_proto::decode(&frame) {
            Ok(Body::Positions(p)) if p.snapshot() => saw_snapshot = true,
            Ok(Body::Positions(p)) => {
                assert_eq!(p.subscription_id(), subscription_id);
                let positions = p.positions().expect("positions");
                let got = PositionRef::from_table(positions.get(0));
                break (
                    got.entity.to_owned(),
                    got.lat,
                    got.accuracy,
                    got.user.map(str::to_owned),
                );
            }
            Ok(Body::Presence(_)) => {}
            other => panic!("unexpected {:?}", other.map(|b| b.name())),
        }
    };
    assert!(saw_snapshot);
    assert_eq!(
        position,
        ("cab-9".into(), 35.68, Some(3.0), Some("driver".into()))
    );
}
