//! The README's quickstart, run the way a new user runs it: the `quiver`
//! binary for the server, the token, and the client commands.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::support::ChildServer;

fn quiver(args: &[&str], env: &[(&str, &str)]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_quiver"));
    command.args(args).kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    command
}

async fn output(mut command: tokio::process::Command) -> Vec<Value> {
    let out = tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .expect("command finishes")
        .expect("command runs");
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect()
}

fn data(dir: &Path) -> String {
    dir.join("data").display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickstart_token_sub_pub_history() {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let server = ChildServer::spawn(dir.path(), None).await;
    let data = data(dir.path());
    let token = tokio::time::timeout(
        Duration::from_secs(30),
        quiver(
            &[
                "token",
                "--data-dir",
                &data,
                "--tenant",
                "demo",
                "--user",
                "alice",
            ],
            &[],
        )
        .output(),
    )
    .await
    .expect("token in time")
    .expect("token runs");
    assert!(token.status.success());
    let token = String::from_utf8(token.stdout)
        .expect("utf8")
        .trim()
        .to_string();
    assert_eq!(token.split('.').count(), 3, "a JWT");

    let addr = server.addr.to_string();
    let ca = format!("{data}/tls/dev-cert.pem");
    let env = [
        ("QUIVER_TOKEN", token.as_str()),
        ("QUIVER_SERVER", addr.as_str()),
        ("QUIVER_CA", ca.as_str()),
    ];

    let sub = tokio::spawn(output(quiver(
        &["sub", "room1", "--since", "0", "--count", "2"],
        &env,
    )));
    let first = output(quiver(&["pub", "room1", "hello from alice"], &env)).await;
    let second = output(quiver(&["pub", "room1", "again", "--key", "k1"], &env)).await;
    let retry = output(quiver(&["pub", "room1", "again", "--key", "k1"], &env)).await;
    assert_eq!(first[0]["offset"], 1);
    assert_eq!(first[0]["channel"], "room1");
    assert_eq!(first[0]["id"].as_str().map(str::len), Some(26), "a ULID");
    assert_eq!(second[0]["offset"], 2);
    assert_eq!(
        (retry[0]["offset"].clone(), retry[0]["duplicate"].clone()),
        (2.into(), true.into())
    );

    let received = sub.await.expect("sub task");
    assert_eq!(received.len(), 2);
    assert_eq!(received[0]["payload"], "hello from alice");
    assert_eq!(received[0]["sender"], "alice");
    assert_eq!(received[1]["offset"], 2);
    assert_eq!(received[0]["id"], first[0]["id"]);

    let history = output(quiver(&["history", "room1", "--limit", "10"], &env)).await;
    let offsets: Vec<_> = history.iter().map(|m| m["offset"].as_u64()).collect();
    assert_eq!(
        offsets,
        vec![Some(2), Some(1)],
        "newest first, the retry stored once"
    );

    // A wrong token gets a clear error and a non-zero exit.
    let bad = [
        ("QUIVER_TOKEN", "not-a-token"),
        ("QUIVER_SERVER", addr.as_str()),
        ("QUIVER_CA", ca.as_str()),
    ];
    let out = quiver(&["pub", "room1", "x"], &bad)
        .output()
        .await
        .expect("runs");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Unauthorized")
            || String::from_utf8_lossy(&out.stderr).contains("JWT"),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_commands_upload_list_and_roll_back() {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let server = ChildServer::spawn(dir.path(), None).await;
    let data = data(dir.path());
    let api = format!("http://{}", server.api);
    let wasm = crate::plugins::build::built().join("enricher.wasm");
    let wasm = wasm.display().to_string();
    let common = [
        "--api",
        api.as_str(),
        "--data-dir",
        data.as_str(),
        "--tenant",
        "demo",
    ];
    for config in [
        r#"{"sender_header": "x-v1"}"#,
        r#"{"sender_header": "x-v2"}"#,
    ] {
        let mut args = vec!["plugin", "upload"];
        args.extend(common);
        args.extend(["--name", "30-enrich", wasm.as_str(), "--config", config]);
        let uploaded = output(quiver(&args, &[])).await;
        assert_eq!(uploaded[0]["active"], true);
    }
    let mut args = vec!["plugin", "list"];
    args.extend(common);
    let listed = output(quiver(&args, &[])).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["name"], "30-enrich");
    assert_eq!(listed[0]["active"], 2);
    assert_eq!(listed[0]["versions"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        listed[0]["versions"][0]["sha256"].as_str().map(str::len),
        Some(64)
    );

    let mut args = vec!["plugin", "rollback"];
    args.extend(common);
    args.extend(["--name", "30-enrich"]);
    let rolled = output(quiver(&args, &[])).await;
    assert_eq!(rolled[0]["active"], 1);

    // A wrong admin token is refused with the API's message.
    let out = quiver(
        &[
            "plugin",
            "list",
            "--api",
            &api,
            "--admin-token",
            "wrong",
            "--tenant",
            "demo",
        ],
        &[],
    )
    .output()
    .await
    .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
}
