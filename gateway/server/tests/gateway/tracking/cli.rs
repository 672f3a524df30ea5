//! The `quiver track` and `quiver watch` commands.

use std::time::Duration;

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
