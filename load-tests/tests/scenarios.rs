//! Every scenario, tiny, against a real gateway running in this process on
//! loopback port 0, through the real `quiver-load` binary: each must pass
//! its delivery checks (no gap, no loss) and leave its JSON and HTML files.
//! The floor is started the same way and checked with the fanout and
//! connections scenarios. Every run is bounded by a timeout.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use quiver_server::config::Config;
use quiver_server::setup::{Loaded, bind, open_store};
use tokio::process::Command;

const SECRET: &str = "load-test-secret-0123456789abcdef";
/// Longest any one tiny run may take.
const RUN_LIMIT: Duration = Duration::from_secs(90);

struct Gateway {
    addr: String,
    /// Ops listener (/metrics), host:port.
    ops: String,
    cert: PathBuf,
    _data: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

async fn start_gateway() -> Gateway {
    let data = tempfile::tempdir().expect("tempdir");
    let mut config: Config = toml::from_str(&format!(
        "[limits]\npublish_rate_per_sec = 100000\npublish_burst = 100000\n\
         [[tenants]]\nid = \"bench\"\nhs256_secret = \"{SECRET}\"\n"
    ))
    .expect("config");
    config.server.listen = "127.0.0.1:0".parse().expect("addr");
    config.server.ops_listen = "127.0.0.1:0".parse().expect("addr");
    config.api.listen = "127.0.0.1:0".parse().expect("addr");
    config.server.data_dir = data.path().to_path_buf();
    let loaded = Loaded {
        config,
        dev: false,
        base: PathBuf::from("."),
    };
    let store = open_store(&loaded.config).await.expect("store");
    let gateway = bind(&loaded, store.store()).await.expect("bind");
    let addr = gateway.local_addr().expect("addr").to_string();
    let ops = gateway.ops_addr().expect("ops addr").to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = gateway
            .run(async {
                let _ = stopped.await;
            })
            .await;
        store.close().await;
    });
    Gateway {
        addr,
        ops,
        cert: data.path().join("tls").join("dev-cert.pem"),
        _data: data,
        stop: Some(stop),
    }
}

/// Runs `quiver-load ARGS` and returns (success, stdout).
async fn quiver_load(args: &[&str]) -> (bool, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_quiver-load"))
        .args(args)
        .env("QUIVER_LOAD_SECRET", SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn quiver-load");
    let output = tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
        .await
        .expect("the run stopped by itself in time")
        .expect("output");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        eprintln!(
            "stdout:\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    (output.status.success(), stdout)
}

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("valid JSON")
}

fn html_ok(path: &Path) {
    let html = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(html.starts_with("<!DOCTYPE html>"), "{}", path.display());
    assert!(html.contains("<svg"), "{} has no chart", path.display());
    assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs_tiny_with_no_gap_and_writes_reports() {
    let gateway = start_gateway().await;
    let out = tempfile::tempdir().expect("out");
    let dir = out.path().to_str().expect("utf8").to_owned();
    let cert = gateway.cert.to_str().expect("utf8").to_owned();
    let common = |name: &str| -> Vec<String> {
        [
            "--server",
            &gateway.addr,
            "--ca",
            &cert,
            "--tenant",
            "bench",
            "--progress",
            "lines",
            "--warmup",
            "0.5",
            "--duration",
            "2",
            "--drain",
            "5",
            "--json",
            &format!("{dir}/{name}.json"),
            "--report",
            &dir,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let runs: Vec<(&str, Vec<&str>)> = vec![
        (
            "chat",
            vec!["--rooms", "2", "--members", "3", "--rate", "5"],
        ),
        ("fanout", vec!["--subscribers", "10", "--rate", "50"]),
        (
            "connections",
            vec!["--connections", "50", "--server-pid", "0"],
        ),
        (
            "reconnect-storm",
            vec![
                "--clients",
                "20",
                "--channels",
                "2",
                "--rate",
                "40",
                "--storm-after",
                "0.5",
            ],
        ),
        ("persist", vec!["--publishers", "2", "--inflight", "4"]),
    ];
    let own_pid = std::process::id().to_string();
    for (scenario, extra) in runs {
        let mut args = vec![scenario.to_owned()];
        args.extend(common(scenario));
        for e in extra {
            // The gateway runs in this process: its memory is ours.
            args.push(
                if e == "0" && args.last().is_some_and(|a| a == "--server-pid") {
                    own_pid.clone()
                } else {
                    e.to_owned()
                },
            );
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, stdout) = quiver_load(&argv).await;
        assert!(ok, "{scenario} failed:\n{stdout}");
        assert!(stdout.contains("PASS"), "{stdout}");
        let report = json(&out.path().join(format!("{scenario}.json")));
        assert_eq!(report["passed"], true, "{scenario}: {report}");
        for key in ["gaps", "duplicates", "undelivered", "lost"] {
            if let Some(n) = report.get(key) {
                assert_eq!(n, 0, "{scenario}: {key}");
            }
        }
        assert!(
            report["series"]["samples"]
                .as_array()
                .is_some_and(|s| !s.is_empty())
        );
        html_ok(&out.path().join(format!("{scenario}.html")));
    }
    let storm = json(&out.path().join("reconnect-storm.json"));
    assert_eq!(storm["resumed"], 20);
    let conns = json(&out.path().join("connections.json"));
    assert_eq!(conns["connected"], 50);
    assert!(conns["server_bytes_per_connection"].is_number());
    drop(gateway.stop);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracking_delivers_positions_and_reports_staleness() {
    let gateway = start_gateway().await;
    let out = tempfile::tempdir().expect("out");
    let dir = out.path().to_str().expect("utf8");
    let json_path = format!("{dir}/tracking.json");
    let cert = gateway.cert.to_str().expect("utf8");
    let metrics = format!("http://{}/metrics", gateway.ops);
    // 40 entities at 5/s over 4 channels, 8 watchers (2 per channel): each
    // watcher sees 10 entities, 50 positions/s; 200 positions/s sent over
    // 5 tracker connections (40/s each, under the default limit of 50).
    let args = [
        "tracking",
        "--server",
        &gateway.addr,
        "--ca",
        cert,
        "--tenant",
        "bench",
        "--progress",
        "lines",
        "--warmup",
        "0.5",
        "--duration",
        "2",
        "--drain",
        "1",
        "--entities",
        "40",
        "--rate",
        "5",
        "--channels",
        "4",
        "--watchers",
        "8",
        "--prefix",
        "itest",
        "--metrics",
        &metrics,
        "--json",
        &json_path,
        "--report",
        dir,
    ];
    let (ok, stdout) = quiver_load(&args).await;
    assert!(ok, "tracking failed:\n{stdout}");
    assert!(stdout.contains("staleness ms"), "{stdout}");
    let report = json(Path::new(&json_path));
    assert_eq!(report["passed"], true, "{report}");
    assert_eq!(report["trackers"], 5);
    assert!(
        report["sent_total"].as_u64().is_some_and(|n| n > 0),
        "{report}"
    );
    let delivered = report["delivered_total"].as_u64().expect("delivered");
    assert!(delivered > 0, "{report}");
    let rate = report["delivery_rate"].as_f64().expect("rate");
    // Expected 400/s; loopback datagrams at this size should nearly all
    // arrive, but leave room for a slow CI machine.
    assert!(rate > 100.0, "delivered {rate}/s: {report}");
    let staleness = &report["staleness"];
    assert!(
        staleness["count"].as_u64().is_some_and(|n| n > 0),
        "{report}"
    );
    for key in ["p50_ms", "p99_ms", "max_ms"] {
        let v = staleness[key].as_f64().expect(key);
        assert!(v > 0.0 && v < 5_000.0, "staleness {key} = {v}");
    }
    assert!(staleness["p50_ms"].as_f64() <= staleness["max_ms"].as_f64());
    assert_eq!(report["watches_failed"], 0);
    assert_eq!(report["send_errors"], 0);
    // The gateway's own counters: it took the positions and dropped none
    // for the rate limit (the scenario keeps each connection under it).
    let counted = &report["gateway"];
    assert!(
        counted["accepted"].as_u64().is_some_and(|n| n > 0),
        "{report}"
    );
    assert_eq!(counted["dropped"]["rate_limited"], 0, "{report}");
    html_ok(&out.path().join("tracking.html"));
    drop(gateway.stop);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_floor_serves_fanout_and_connections() {
    let floor = quiver_load::floor::server::bind(&quiver_load::floor::server::FloorArgs {
        listen: "127.0.0.1:0".parse().expect("addr"),
        cert: None,
        key: None,
        channel_buffer: 1024,
        idle_timeout: 60,
        exit_after: 0,
    })
    .expect("floor");
    let addr = floor.local_addr().expect("addr").to_string();
    tokio::spawn(quiver_load::floor::server::serve(floor, 1024));
    let out = tempfile::tempdir().expect("out");
    let dir = out.path().to_str().expect("utf8");
    // The helper exports QUIVER_LOAD_SECRET, which asks for a tenant; the
    // floor ignores both.
    let base = [
        "--tenant",
        "bench",
        "--server",
        &addr,
        "--insecure",
        "--progress",
        "off",
        "--warmup",
        "0.5",
        "--duration",
        "2",
    ];
    let mut fanout = vec![
        "fanout",
        "--floor",
        "--subscribers",
        "10",
        "--rate",
        "0",
        "--report",
        dir,
    ];
    fanout.extend(base);
    let json_path = format!("{dir}/fanout.json");
    fanout.extend(["--json", &json_path]);
    let (ok, stdout) = quiver_load(&fanout).await;
    assert!(ok, "{stdout}");
    let report = json(Path::new(&json_path));
    assert_eq!(report["target"], "floor");
    assert!(report["delivery_rate"].as_f64().is_some_and(|r| r > 0.0));
    assert_eq!(report["gaps"], 0);
    html_ok(&out.path().join("fanout.html"));

    let pid = std::process::id().to_string();
    let mut conns = vec![
        "connections",
        "--target",
        "floor",
        "--connections",
        "30",
        "--server-pid",
        &pid,
    ];
    conns.extend(base);
    let (ok, stdout) = quiver_load(&conns).await;
    assert!(ok, "{stdout}");
    assert!(stdout.contains("30 connected"), "{stdout}");
}
