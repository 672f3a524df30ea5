//! Live tracking on a real gateway: positions as QUIC datagrams from real
//! clients, coalesced fan-out, loss, persistence, plugins and refusals.

mod lossy;

use std::collections::HashMap;
use std::time::Duration;

use quiver_client::{
    Client, ClientConfig, ErrorCode, Position, Reconnect, Trust, Watch, WatchEvent,
};
use quiver_session::Claims;
use tokio::time::Instant;

use crate::support::{FAST, TestServer, eventually, now_secs};
use lossy::LossyPath;

fn config() -> String {
    format!("{FAST}track_rate_per_sec = 1000\n")
}

/// A demo-tenant client allowed to report positions of `entities`.
async fn tracker(server: &TestServer, user: &str, entities: &[&str]) -> Client {
    Client::connect(tracker_config(
        server,
        user,
        entities,
        server.addr.to_string(),
    ))
    .await
    .expect("connect")
}

fn tracker_config(
    server: &TestServer,
    user: &str,
    entities: &[&str],
    addr: String,
) -> ClientConfig {
    let token = tracker_token(server, user, entities);
    ClientConfig::new(addr, token, Trust::CaPem(server.ca())).reconnect(Reconnect::disabled())
}

fn tracker_token(server: &TestServer, user: &str, entities: &[&str]) -> String {
    server.token_with(Claims {
        sub: user.into(),
        tenant: "demo".into(),
        exp: now_secs() + 3600,
        nbf: None,
        subscribe: None,
        publish: None,
        track: Some(entities.iter().map(|e| (*e).to_owned()).collect()),
    })
}

async fn next_event(watch: &mut Watch, within: Duration) -> Option<WatchEvent> {
    match tokio::time::timeout(within, watch.next()).await {
        Ok(Some(Ok(event))) => Some(event),
        Ok(Some(Err(error))) => panic!("watch failed: {error}"),
        Ok(None) | Err(_) => None,
    }
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|line| line.split_whitespace().next() == Some(name))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_watcher_gets_at_most_its_rate_and_always_the_newest() {
    let server = TestServer::start(&config()).await;
    let courier = tracker(&server, "courier", &["courier-*"]).await;
    let viewer = server.client("demo", "viewer").await;
    let mut watch = viewer.watch("track:city", 5).await.expect("watch");
    // The empty snapshot arrives as no event; updates start now.
    let start_ms = now_secs() * 1000;
    let started = Instant::now();
    let mut sent = Vec::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    for i in 0..150u64 {
        ticker.tick().await;
        let position =
            Position::new("courier-7", 52.0 + i as f64 * 1e-4, 13.0).at(start_ms + i * 20);
        courier.track("track:city", &position).await.expect("track");
        sent.push(position.timestamp_ms);
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
    // The server sends one position per 200 ms; which one is the newest it
    // holds then. Arrival times are skewed by the network, so the gaps are
    // measured on the fixes' own timestamps (one per 20 ms sent).
    let stamps: Vec<u64> = received.iter().map(|r| r.1).collect();
    for pair in stamps.windows(2) {
        assert!(
            pair[1] > pair[0],
            "an older position followed a newer one: {stamps:?}"
        );
        assert!(
            pair[1] - pair[0] >= 140,
            "two positions closer than 5/s allows: {stamps:?}"
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positions_are_persisted_behind_the_live_path_and_survive_a_restart() {
    let data = std::sync::Arc::new(tempfile::TempDir::new().expect("tempdir"));
    let server = TestServer::start_in(data.clone(), &config()).await;
    let courier = tracker(&server, "courier", &["truck-*"]).await;
    courier
        .track(
            "track:depot",
            &Position::new("truck-1", 51.5, -0.12).at(1_700_000_000_500),
        )
        .await
        .expect("track");
    eventually(Duration::from_secs(10), async || {
        let (_, body) = server.http_get("/metrics").await;
        metric(&body, "quiver_positions_persisted_total") >= 1.0
    })
    .await;
    courier.close().await;
    server.stop().await;

    let server = TestServer::start_in(data, &config()).await;
    let viewer = server.client("demo", "viewer").await;
    let mut watch = viewer.watch("track:depot", 0).await.expect("watch");
    let event = next_event(&mut watch, Duration::from_secs(5))
        .await
        .expect("snapshot after restart");
    assert!(event.snapshot);
    assert_eq!(event.position.entity, "truck-1");
    assert_eq!(
        (event.position.lat, event.position.timestamp_ms),
        (51.5, 1_700_000_000_500)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_and_malformed_positions_are_dropped_and_counted_and_nothing_breaks() {
    let server = TestServer::start(&config()).await;
    let viewer = server.client("demo", "viewer").await;
    let mut watch = viewer.watch("track:city", 0).await.expect("watch");
    // No `track` claim: the entity is not this user's to report.
    let stranger = server.client("demo", "stranger").await;
    stranger
        .track("track:city", &Position::new("courier-1", 1.0, 1.0))
        .await
        .expect("sent");
    // Not a tracking channel.
    let courier = tracker(&server, "courier", &["courier-1"]).await;
    courier
        .track("chat:lobby", &Position::new("courier-1", 1.0, 1.0))
        .await
        .expect("sent");
    // Out of range.
    courier
        .track("track:city", &Position::new("courier-1", 91.0, 1.0))
        .await
        .expect("sent");
    // Garbage and a non-Track frame as datagrams, from a raw connection.
    let raw =
        crate::raw::Raw::authenticated(server.addr, &server.ca(), &server.token("demo", "raw"))
            .await;
    raw.connection
        .send_datagram(bytes::Bytes::from_static(b"\x05\x00\x00\x00garbage"))
        .expect("datagram");
    let hello = quiver_proto::Encoder::new().hello(1, "x", "y");
    raw.connection.send_datagram(hello).expect("datagram");
    eventually(Duration::from_secs(5), async || {
        let (_, body) = server.http_get("/metrics").await;
        metric(
            &body,
            r#"quiver_positions_dropped_total{reason="forbidden"}"#,
        ) >= 1.0
            && metric(
                &body,
                r#"quiver_positions_dropped_total{reason="wrong_channel_kind"}"#,
            ) >= 1.0
            && metric(&body, r#"quiver_positions_dropped_total{reason="invalid"}"#) >= 1.0
            && metric(
                &body,
                r#"quiver_positions_dropped_total{reason="malformed"}"#,
            ) >= 2.0
    })
    .await;
    // None of it reached the watcher, and every connection still works.
    assert!(
        next_event(&mut watch, Duration::from_millis(300))
            .await
            .is_none()
    );
    courier
        .track("track:city", &Position::new("courier-1", 1.5, 1.5))
        .await
        .expect("sent");
    let event = next_event(&mut watch, Duration::from_secs(5))
        .await
        .expect("valid position");
    assert_eq!(event.position.lat, 1.5);
    let ack = stranger
        .publish("chat:lobby", "still here")
        .await
        .expect("publish");
    assert!(ack.offset >= 1);
    // Messages are not for tracking channels.
    let refused = courier
        .publish("track:city", "hello")
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), Some(ErrorCode::WrongChannelKind));
}

/// The geofence example plugin on a real gateway: exactly one alert message
/// per crossing, published to the channel its config names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_geofence_plugin_raises_exactly_one_alert_per_crossing() {
    let server = TestServer::start(&config()).await;
    let fence =
        r#"{"polygon":[[0,0],[0,1],[1,1],[1,0]],"alert_channel":"alerts:depot","name":"depot"}"#;
    crate::plugins::upload_ok(&server, "demo", "geofence", "geofence", Some(fence)).await;
    let ops = server.client("demo", "ops").await;
    let mut alerts = ops
        .subscribe("alerts:depot", None)
        .await
        .expect("subscribe");
    let viewer = server.client("demo", "viewer").await;
    let mut watch = viewer.watch("track:yard", 0).await.expect("watch");
    let courier = tracker(&server, "courier", &["van-*"]).await;
    // outside, inside, inside, outside, outside, inside
    let path = [
        (2.0, 2.0),
        (0.5, 0.5),
        (0.6, 0.5),
        (1.5, 0.5),
        (1.6, 0.5),
        (0.5, 0.4),
    ];
    for (i, (lat, lon)) in path.into_iter().enumerate() {
        let position = Position::new("van-3", lat, lon).at(1_700_000_000_000 + i as u64 * 1000);
        courier.track("track:yard", &position).await.expect("track");
        // One at a time, so each crossing is judged against the last.
        let event = next_event(&mut watch, Duration::from_secs(10))
            .await
            .expect("position");
        assert_eq!(event.position.lat, lat);
    }
    let mut events = Vec::new();
    while let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(2), alerts.next()).await
    {
        let message = message.expect("alert");
        let alert: serde_json::Value =
            serde_json::from_slice(&message.payload).expect("json alert");
        assert_eq!(alert["fence"], "depot");
        assert_eq!(alert["entity"], "van-3");
        events.push(alert["event"].as_str().expect("event").to_owned());
    }
    assert_eq!(events, ["enter", "leave", "enter"]);
}

/// `quiver track` and `quiver watch`, run as a user runs them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_track_and_watch_commands() {
    use tokio::io::AsyncBufReadExt as _;
    let dir = tempfile::TempDir::new().expect("tempdir");
    let server = crate::support::ChildServer::spawn(dir.path(), None).await;
    let data = dir.path().join("data");
    let quiver = |args: &[&str]| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_quiver"));
        command.args(args);
        command
    };
    let token = |extra: &[&str]| {
        let mut args = vec![
            "token",
            "--data-dir",
            data.to_str().expect("utf8"),
            "--tenant",
            "demo",
            "--user",
            "courier",
        ];
        args.extend_from_slice(extra);
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_quiver"))
            .args(&args)
            .output()
            .expect("token");
        assert!(output.status.success());
        String::from_utf8(output.stdout)
            .expect("utf8")
            .trim()
            .to_owned()
    };
    let tracker_token = token(&["--track", "courier-*"]);
    let viewer_token = token(&[]);
    let server_addr = server.addr.to_string();
    let ca = data.join("tls/dev-cert.pem");
    let common = [
        "--server",
        server_addr.as_str(),
        "--ca",
        ca.to_str().expect("utf8"),
    ];
    let track = async |lat: &str, lon: &str, token: &str| {
        let out = quiver(&[
            "track",
            "track:city",
            "courier-1",
            lat,
            lon,
            "--speed",
            "4.5",
        ])
        .args(common)
        .args(["--token", token])
        .output()
        .await
        .expect("quiver track");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json line");
        assert_eq!(printed["entity"], "courier-1");
    };
    // Tracked before the watch starts, this one arrives as the snapshot.
    track("52.52", "13.40", &tracker_token).await;
    let mut watch = quiver(&["watch", "track:city", "--count", "2"])
        .args(common)
        .args(["--token", &viewer_token])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("quiver watch");
    let mut lines = tokio::io::BufReader::new(watch.stdout.take().expect("stdout")).lines();
    let mut next_line = async || -> serde_json::Value {
        let line = tokio::time::timeout(Duration::from_secs(15), lines.next_line())
            .await
            .expect("a position in time")
            .expect("read")
            .expect("a line");
        serde_json::from_str(&line).expect("json line")
    };
    let first = next_line().await;
    assert_eq!(
        (first["lat"].as_f64(), first["snapshot"].as_bool()),
        (Some(52.52), Some(true))
    );
    assert_eq!(first["user"], "courier");
    assert_eq!(first["speed"], 4.5);
    track("-33.86", "151.2", &tracker_token).await;
    let second = next_line().await;
    assert_eq!(
        (second["lat"].as_f64(), second["lon"].as_f64()),
        (Some(-33.86), Some(151.2))
    );
    assert_eq!(second["snapshot"], false);
    let status = tokio::time::timeout(Duration::from_secs(10), watch.wait())
        .await
        .expect("watch exits after --count")
        .expect("wait");
    assert!(status.success());
    // Without a track claim the position is refused: the latest stays.
    track("1", "1", &viewer_token).await;
    let key = quiver_server::tenants::dev_api_key(&data).expect("api key");
    let (status, body) =
        crate::support::http_get_with(server.api, "/v1/channels/track:city/positions", Some(&key))
            .await;
    assert_eq!(status, 200);
    let body: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(body["positions"][0]["lat"], -33.86);
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
