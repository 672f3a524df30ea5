//! Consistency of the deployment files with the gateway's `Config` and
//! with each other: the compose gateway config, the Dockerfile, compose,
//! the systemd unit and the Prometheus config agree on ports, paths and
//! stop timeouts.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use quiver_server::config::Config;
use serde_yaml::Value as Yaml;

use crate::support::{duration, path, read, yaml};

/// `[host_ip:]host_port:container_port[/proto]` of a compose `ports` entry.
struct Published {
    host_ip: Option<String>,
    container: String,
}

fn published_ports(compose: &Yaml, service: &str) -> Vec<Published> {
    compose["services"][service]["ports"]
        .as_sequence()
        .into_iter()
        .flatten()
        .map(|entry| {
            let entry = entry.as_str().expect("ports as strings");
            let (mapping, proto) = entry.split_once('/').unwrap_or((entry, "tcp"));
            let parts: Vec<&str> = mapping.split(':').collect();
            Published {
                host_ip: (parts.len() == 3).then(|| parts[0].to_owned()),
                container: format!("{}/{proto}", parts[parts.len() - 1]),
            }
        })
        .collect()
}

/// The gateway's three listeners as `port/proto`.
fn listener_ports(config: &Config) -> BTreeSet<String> {
    BTreeSet::from([
        format!("{}/udp", config.server.listen.port()),
        format!("{}/tcp", config.server.ops_listen.port()),
        format!("{}/tcp", config.api.listen.port()),
    ])
}

/// Reads the compose gateway config; returns it and its store URL.
fn compose_config() -> (Config, String) {
    let text = read("compose/quiver.toml");
    let config = toml::from_str::<Config>(&text).unwrap_or_else(|error| {
        panic!("compose/quiver.toml is not a valid gateway config: {error}")
    });
    let url = config.store.url.clone();
    (config, url)
}

/// Closing connections and flushing the store follow the grace period;
/// a few seconds were seen on a loaded 2-core machine.
const STOP_MARGIN: Duration = Duration::from_secs(5);

#[test]
fn the_compose_gateway_config_is_valid_and_matches_compose() {
    let (config, url) = compose_config();
    config.limits.to_limits().expect("valid limits");
    let compose = yaml("compose.yaml");
    let services = compose["services"].as_mapping().expect("services");
    let gateway = &compose["services"]["gateway"];

    // Reachable from outside the container: not loopback.
    for addr in [
        config.server.listen,
        config.server.ops_listen,
        config.api.listen,
    ] {
        assert!(
            addr.ip().is_unspecified(),
            "{addr}: bind 0.0.0.0 in a container"
        );
    }
    // The store URL names the compose ScyllaDB service.
    let hosts = url
        .strip_prefix("scylla://")
        .and_then(|rest| rest.split_once('/'))
        .map(|(hosts, _)| hosts)
        .unwrap_or_else(|| panic!("store url {url:?}: scylla://host:port/keyspace"));
    for host in hosts.split(',') {
        let (name, port) = host.split_once(':').unwrap_or((host, "9042"));
        assert!(
            services.contains_key(name),
            "store host {name} is a compose service"
        );
        assert_eq!(port, "9042");
    }
    // Mounts: the config where the image's CMD reads it, the data volume
    // at data_dir, the tenant secret where compose puts it.
    let volumes: Vec<&str> = gateway["volumes"]
        .as_sequence()
        .expect("gateway volumes")
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    assert!(volumes.contains(&"./compose/quiver.toml:/etc/quiver/quiver.toml:ro"));
    assert!(
        volumes
            .iter()
            .any(|v| v.split(':').nth(1) == config.server.data_dir.to_str()),
        "a volume at data_dir {}",
        config.server.data_dir.display()
    );
    let secret = config.tenants[0]
        .hs256_secret_file
        .as_ref()
        .expect("the demo tenant reads its secret from a file");
    let secret_name = secret
        .strip_prefix("/run/secrets")
        .expect("a compose secret")
        .to_str()
        .expect("utf-8");
    assert!(
        gateway["secrets"]
            .as_sequence()
            .is_some_and(|list| list.iter().any(|s| s.as_str() == Some(secret_name))),
        "the gateway mounts secret {secret_name}"
    );
    assert!(compose["secrets"][secret_name]["file"].is_string());
    // Docker must wait for the drain before it kills the gateway.
    let stop = duration(
        gateway["stop_grace_period"]
            .as_str()
            .expect("stop_grace_period"),
    );
    let grace = Duration::from_millis(config.server.shutdown_grace_ms);
    assert!(
        stop >= grace + STOP_MARGIN,
        "stop_grace_period {stop:?} vs grace {grace:?}"
    );
}

#[test]
fn ports_agree_with_the_config_defaults() {
    let defaults = listener_ports(&Config::default());
    let (compose_config, _) = compose_config();
    assert_eq!(
        listener_ports(&compose_config),
        defaults,
        "compose/quiver.toml"
    );

    let dockerfile = read("Dockerfile");
    let exposed: BTreeSet<String> = dockerfile
        .lines()
        .filter_map(|line| line.strip_prefix("EXPOSE "))
        .flat_map(str::split_whitespace)
        .map(|port| match port.contains('/') {
            true => port.to_owned(),
            false => format!("{port}/tcp"),
        })
        .collect();
    assert_eq!(exposed, defaults, "Dockerfile EXPOSE");

    let compose = yaml("compose.yaml");
    let published = published_ports(&compose, "gateway");
    let containers: BTreeSet<String> = published.iter().map(|p| p.container.clone()).collect();
    assert_eq!(containers, defaults, "compose gateway ports");
    // Only QUIC leaves the host; everything else is published on loopback.
    let quic = format!("{}/udp", compose_config.server.listen.port());
    for service in compose["services"].as_mapping().expect("services").keys() {
        let service = service.as_str().expect("service name");
        for port in published_ports(&compose, service) {
            if !(service == "gateway" && port.container == quic) {
                assert_eq!(
                    port.host_ip.as_deref(),
                    Some("127.0.0.1"),
                    "{service} publishes {} beyond this host",
                    port.container
                );
            }
        }
    }

    // Prometheus scrapes the gateway service on its ops port.
    let prometheus = yaml("prometheus/prometheus.yml");
    let job = prometheus["scrape_configs"]
        .as_sequence()
        .expect("scrape_configs")
        .iter()
        .find(|job| job["job_name"] == "quiver")
        .expect("a scrape job named quiver (the alerts select job=\"quiver\")");
    let targets = job["static_configs"][0]["targets"]
        .as_sequence()
        .expect("targets");
    let ops_port = compose_config.server.ops_listen.port().to_string();
    for target in targets {
        let (host, port) = target
            .as_str()
            .and_then(|t| t.split_once(':'))
            .expect("host:port");
        assert!(
            compose["services"]
                .as_mapping()
                .expect("services")
                .contains_key(host)
        );
        assert_eq!(port, ops_port, "Prometheus scrapes ops_listen");
    }
    for file in prometheus["rule_files"].as_sequence().expect("rule_files") {
        let file = file.as_str().expect("a rule file name");
        assert!(path("prometheus").join(file).is_file(), "rule file {file}");
    }
}

#[test]
fn the_image_and_the_units_agree_on_paths() {
    let dockerfile = read("Dockerfile");
    for line in [
        r#"ENTRYPOINT ["quiver"]"#,
        r#"CMD ["serve", "--config", "/etc/quiver/quiver.toml"]"#,
        r#"VOLUME ["/var/lib/quiver"]"#,
    ] {
        assert!(dockerfile.lines().any(|l| l == line), "Dockerfile: {line}");
    }
    assert!(
        dockerfile
            .lines()
            .any(|l| l.starts_with("USER ") && !l.contains("root"))
    );

    // The provisioned dashboard folder is where compose mounts the JSON.
    let provider = yaml("grafana/provisioning/dashboards/quiver.yml");
    let folder = provider["providers"][0]["options"]["path"]
        .as_str()
        .expect("path");
    let compose = read("compose.yaml");
    assert!(compose.contains(&format!(
        "./grafana/quiver-dashboard.json:{folder}/quiver-dashboard.json:ro"
    )));
}

#[test]
fn systemd_waits_longer_than_the_drain() {
    let unit = read("systemd/quiver.service");
    let setting = |key: &str| {
        unit.lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("quiver.service: {key}="))
            .trim()
            .to_owned()
    };
    let example: Config = toml::from_str(&read("quiver.example.toml")).expect("example config");
    let stop = duration(&setting("TimeoutStopSec"));
    for grace in [
        example.server.shutdown_grace_ms,
        Config::default().server.shutdown_grace_ms,
    ] {
        let grace = Duration::from_millis(grace);
        assert!(
            stop >= grace + STOP_MARGIN,
            "TimeoutStopSec {stop:?} vs grace {grace:?}"
        );
    }
    assert_eq!(setting("KillSignal"), "SIGTERM");
    // The unit's directories are the example config's.
    assert_eq!(setting("StateDirectory"), "quiver");
    assert_eq!(example.server.data_dir, Path::new("/var/lib/quiver"));
    assert_eq!(setting("ConfigurationDirectory"), "quiver");
    assert!(setting("ExecStart").contains("--config /etc/quiver/quiver.toml"));
}
