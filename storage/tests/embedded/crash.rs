//! A real crash: a child process appends in a loop and prints each acked
//! offset; the parent SIGKILLs it mid-stream, reopens the data directory,
//! and checks that every ack survived.
//!
//! The child is this same test binary, re-executed with only
//! `crash::child_writer` selected and `CHILD_DIR_VAR` naming the directory.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use quiver_storage::{ChannelKey, MessageId, MessageLog, NewMessage, ReadRange};

use super::open;

const CHILD_DIR_VAR: &str = "QUIVER_STORAGE_CRASH_CHILD_DIR";
const CHILD_TASKS: u128 = 4;
/// The child stops on its own after this many appends per task or this long,
/// so a parent that fails to kill it leaves nothing running.
const CHILD_MAX_APPENDS: u128 = 5_000;
const CHILD_MAX_TIME: Duration = Duration::from_secs(60);
/// The parent kills the child after seeing this many acks.
const KILL_AFTER_ACKS: usize = 300;

fn room() -> ChannelKey {
    ChannelKey::new("crash", "room")
}

/// Not a test on its own: does nothing unless started by the parent below.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_writer() {
    let Some(dir) = std::env::var_os(CHILD_DIR_VAR) else {
        return;
    };
    let store = std::sync::Arc::new(open(std::path::Path::new(&dir)));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..CHILD_TASKS {
        let store = std::sync::Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for i in 0..CHILD_MAX_APPENDS {
                if started.elapsed() > CHILD_MAX_TIME {
                    return;
                }
                let id = (task << 64) | i;
                let msg = NewMessage {
                    channel: room(),
                    id: MessageId(id),
                    timestamp_ms: 1,
                    sender: "child".into(),
                    payload: Bytes::from(format!("task {task} message {i}")),
                    headers: Vec::new(),
                    idempotency_key: None,
                    edit: None,
                };
                let line = match store.append(vec![msg]).await {
                    Ok(out) => format!("ACK {} {id}\n", out[0].offset),
                    Err(e) => format!("ERR {e}\n"),
                };
                let mut stdout = std::io::stdout().lock();
                let _ = stdout
                    .write_all(line.as_bytes())
                    .and_then(|()| stdout.flush());
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_keeps_every_acked_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = Command::new(exe)
        .args([
            "crash::child_writer",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_VAR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");

    // Read the child's lines on a thread; it ends at EOF, after the kill.
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut lines = Vec::new();
    while lines
        .iter()
        .filter(|l: &&String| l.starts_with("ACK "))
        .count()
        < KILL_AFTER_ACKS
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(_) => break,
        }
    }
    child.kill().expect("SIGKILL the child"); // SIGKILL on unix
    let status = child.wait().expect("reap the child");
    reader.join().expect("reader thread");
    lines.extend(rx.try_iter());
    assert!(!status.success(), "the child must have been killed mid-run");

    let acked: Vec<(u64, u128)> = lines
        .iter()
        .filter_map(|l| {
            let mut parts = l.strip_prefix("ACK ")?.split(' ');
            Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
        })
        .collect();
    let errors: Vec<_> = lines.iter().filter(|l| l.starts_with("ERR")).collect();
    assert!(errors.is_empty(), "child append errors: {errors:?}");
    assert!(
        acked.len() >= KILL_AFTER_ACKS,
        "child acked only {} appends: {lines:?}",
        acked.len()
    );

    let store = open(dir.path());
    let stored = store
        .read(&room(), ReadRange::forward_after(0, usize::MAX))
        .await
        .expect("read");
    let head = store.head(&room()).await.expect("head");
    assert_eq!(
        stored.len() as u64,
        head,
        "the log must be gap-free up to its head"
    );
    assert!(
        stored
            .iter()
            .enumerate()
            .all(|(i, m)| m.offset == i as u64 + 1)
    );
    for (offset, id) in &acked {
        let found = stored
            .get((*offset as usize).wrapping_sub(1))
            .map(|m| m.id.0);
        assert_eq!(
            found,
            Some(*id),
            "acked offset {offset} lost or changed after SIGKILL"
        );
    }
    let max_acked = acked.iter().map(|a| a.0).max().unwrap_or(0);
    assert!(head >= max_acked);
    eprintln!(
        "child acked {} appends (highest offset {max_acked}); head after SIGKILL: {head}",
        acked.len()
    );

    let next = NewMessage {
        channel: room(),
        id: MessageId(u128::MAX),
        timestamp_ms: 2,
        sender: "parent".into(),
        payload: Bytes::new(),
        headers: Vec::new(),
        idempotency_key: None,
        edit: None,
    };
    let out = store.append(vec![next]).await.expect("append after crash");
    assert_eq!(out[0].offset, head + 1, "offsets continue after a crash");
}
