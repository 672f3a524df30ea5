//! docs/openapi.yaml against the routes the API serves.

use std::path::Path;

use super::{call, dev_key};
use crate::support::{FAST, TestServer};

/// Every operation in docs/openapi.yaml is served (without credentials it
/// is refused with 401, never 404 or 405), and every route in the API's
/// source is documented.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_matches_the_routes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text =
        std::fs::read_to_string(root.join("../../docs/openapi.yaml")).expect("docs/openapi.yaml");
    let spec: serde_yaml::Value = serde_yaml::from_str(&text).expect("valid YAML");
    assert!(
        spec["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1"))
    );
    let paths = spec["paths"].as_mapping().expect("paths");
    let documented: Vec<String> = paths
        .keys()
        .filter_map(|k| k.as_str().map(str::to_owned))
        .collect();

    let server = TestServer::start(FAST).await;
    let key = dev_key(&server);
    let mut operations = 0;
    for (path, item) in paths {
        let path = path.as_str().expect("path");
        let concrete = path
            .replace("{channel}", "doc-check")
            .replace("{tenant}", "demo")
            .replace("{name}", "doc-check");
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            operations += 1;
            let (status, _, body) =
                call(&server, method, &concrete, None, Some(b"{}".to_vec())).await;
            assert_eq!(status, 401, "{method} {path}: {body}");
            if path.starts_with("/v1/channels") || path.starts_with("/v1/messages") {
                let (status, _, body) =
                    call(&server, method, &concrete, Some(&key), Some(b"{}".to_vec())).await;
                assert!(
                    ![404, 405].contains(&status),
                    "{method} {path} with a key: {status} {body}"
                );
            }
        }
    }
    assert!(operations >= 8, "{operations} operations documented");

    // Routes in the source (plugin routes are nested under their prefix).
    for (file, prefix) in [
        ("src/api/channels.rs", ""),
        ("src/api/edits.rs", ""),
        ("src/api/presence.rs", ""),
        ("src/api/positions.rs", ""),
        ("src/api/plugins.rs", "/v1/tenants/{tenant}/plugins"),
    ] {
        let source = std::fs::read_to_string(root.join(file)).expect("source");
        for piece in source.split(".route(").skip(1) {
            let route = piece.split('"').nth(1).expect("a route literal");
            let full = format!("{prefix}{}", route.trim_end_matches('/'));
            assert!(
                documented.contains(&full),
                "{full} (from {file}) is not in docs/openapi.yaml"
            );
        }
    }
}
