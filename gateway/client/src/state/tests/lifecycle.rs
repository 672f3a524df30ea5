//! Reconnects, GoAway, fatal errors and shutdown.

use std::time::Duration;

use quiver_proto::{Body, Encoder, decode};
use tokio::sync::{mpsc, oneshot};

use super::*;
use crate::command::Command;
use crate::error::{ClientError, ErrorCode};

#[test]
fn reconnect_resubscribes_from_last_delivered_and_resends_publishes() {
    let mut state = connected();
    let live = subscribe(&mut state, 1, None);
    let replay = subscribe(&mut state, 2, Some(5));
    let fresh = subscribe(&mut state, 3, Some(8));
    let frames = sent(&mut state);
    let mut enc = Encoder::new();
    let (id1, _) = subscribe_fields(&frames[0]);
    let (id2, _) = subscribe_fields(&frames[1]);
    state
        .on_frame(&enc.subscribed(id1, 11, "room", 100))
        .expect("ok");
    state
        .on_frame(&enc.subscribed(id2, 12, "room", 100))
        .expect("ok");
    // The third Subscribe is still unanswered when the link drops.
    assert_eq!(
        replay.shared.resume(),
        5,
        "replay subscriptions resume from since"
    );
    live.shared.set_resume(103); // the user received up to 103

    let _answer = publish(&mut state, "same-key");
    let (_, key) = publish_fields(&sent(&mut state)[0]);

    state.on_disconnected();
    assert!(sent(&mut state).is_empty());
    state.on_connected(1 << 20);
    let frames = sent(&mut state);
    let subscribes: Vec<Option<u64>> = frames
        .iter()
        .filter_map(|f| match decode(f) {
            Ok(Body::Subscribe(s)) => Some(s.since()),
            _ => None,
        })
        .collect();
    // Resubscribes from the resume points, then the unanswered Subscribe
    // again with the caller's own since.
    assert_eq!(subscribes, [Some(103), Some(5), Some(8)]);
    let resent: Vec<String> = frames
        .iter()
        .filter(|f| matches!(decode(f), Ok(Body::Publish(_))))
        .map(|f| publish_fields(f).1)
        .collect();
    assert_eq!(resent, [key], "publish re-sent with its idempotency key");
    drop(fresh);
}

#[test]
fn refused_resubscribe_ends_that_subscription_with_the_reason() {
    let mut state = connected();
    let mut sub = subscribe(&mut state, 1, None);
    let (id, _) = subscribe_fields(&sent(&mut state)[0]);
    let mut enc = Encoder::new();
    state
        .on_frame(&enc.subscribed(id, 5, "room", 0))
        .expect("ok");
    state.on_disconnected();
    state.on_connected(1 << 20);
    let (resub, since) = subscribe_fields(&sent(&mut state)[0]);
    assert_eq!(since, Some(0));
    let refused = enc.error(
        resub,
        ErrorCode::Forbidden,
        "no longer allowed",
        false,
        false,
        0,
    );
    assert!(state.on_frame(&refused).expect("error").is_none());
    assert_eq!(state.subscription_len(), 0);
    assert!(matches!(
        sub.rx.try_recv(),
        Err(mpsc::error::TryRecvError::Disconnected)
    ));
    drop(sub.answer);
}

#[test]
fn fatal_errors_keep_requests_for_the_next_connection() {
    let mut state = connected();
    let mut answer = publish(&mut state, "k");
    sent(&mut state);
    let slow = Encoder::new().error(0, ErrorCode::SlowConsumer, "too slow", true, true, 0);
    let signal = state.on_frame(&slow).expect("signal");
    assert!(matches!(
        signal,
        Some(Signal::Fatal(ClientError::Server {
            code: ErrorCode::SlowConsumer,
            ..
        }))
    ));
    assert!(answer.try_recv().is_err(), "still waiting");
    assert_eq!(state.pending_len(), 1);
}

#[test]
fn goaway_holds_new_requests_until_the_next_connection() {
    let mut state = connected();
    let goaway = Encoder::new().go_away(ErrorCode::GoingAway, "restart", 1500);
    match state.on_frame(&goaway).expect("signal") {
        Some(Signal::GoAway { after, message }) => {
            assert_eq!(after, Duration::from_millis(1500));
            assert_eq!(message, "restart");
        }
        other => panic!("expected GoAway, got {other:?}"),
    }
    let _answer = publish(&mut state, "k");
    assert!(
        sent(&mut state).is_empty(),
        "nothing new on a draining connection"
    );
    state.on_disconnected();
    state.on_connected(1 << 20);
    assert_eq!(sent(&mut state).len(), 1);
}

#[test]
fn disconnect_completes_unsubscribes_and_forgets_abandoned_requests() {
    let mut state = connected();
    let sub = subscribe(&mut state, 1, None);
    let (id, _) = subscribe_fields(&sent(&mut state)[0]);
    state
        .on_frame(&Encoder::new().subscribed(id, 9, "room", 0))
        .expect("ok");
    let (reply, mut unsubscribed) = oneshot::channel();
    state.submit(Command::Unsubscribe {
        id: 1,
        reply,
        permit: permit(),
    });
    assert!(matches!(
        decode(&sent(&mut state)[0]),
        Ok(Body::Unsubscribe(_))
    ));
    drop(publish(&mut state, "abandoned"));

    state.on_disconnected();
    assert!(unsubscribed.try_recv().expect("answered").is_ok());
    assert_eq!(state.pending_len(), 0);
    assert_eq!(state.subscription_len(), 0);
    drop(sub);
}

#[test]
fn fail_all_and_close_all_answer_everyone() {
    let mut state = connected();
    let mut answer = publish(&mut state, "k");
    let mut sub = subscribe(&mut state, 1, None);
    let (id, _) = subscribe_fields(&sent(&mut state)[1]);
    state
        .on_frame(&Encoder::new().subscribed(id, 1, "room", 0))
        .expect("ok");
    let expired = ClientError::Server {
        code: ErrorCode::TokenExpired,
        message: "exp".into(),
        retryable: false,
        fatal: true,
        retry_after: None,
    };
    state.fail_all(&expired);
    assert!(
        answer
            .try_recv()
            .expect("answered")
            .expect_err("failed")
            .is_auth_failure()
    );
    assert!(matches!(
        sub.rx.try_recv(),
        Err(mpsc::error::TryRecvError::Disconnected)
    ));

    let mut state = connected();
    let mut answer = publish(&mut state, "k");
    state.close_all();
    assert!(matches!(answer.try_recv(), Ok(Err(ClientError::Closed))));
}

#[test]
fn draining_ends_once_every_written_request_is_answered() {
    let mut state = connected();
    let _answer = publish(&mut state, "k");
    let (id, _) = publish_fields(&sent(&mut state)[0]);
    assert!(!state.drained(), "not draining before GoAway");
    let goaway = Encoder::new().go_away(ErrorCode::GoingAway, "restart", 0);
    state.on_frame(&goaway).expect("goaway");
    let _held = publish(&mut state, "held for the next connection");
    assert!(!state.drained(), "the first publish is unanswered");
    state.on_frame(&ack(id, 1)).expect("ack");
    assert!(state.drained(), "held requests do not count");
}

#[test]
fn going_away_refusals_are_retried_on_the_next_connection() {
    let mut state = connected();
    let mut answer = publish(&mut state, "k");
    let (id, key) = publish_fields(&sent(&mut state)[0]);
    let mut enc = Encoder::new();
    state
        .on_frame(&enc.go_away(ErrorCode::GoingAway, "restart", 0))
        .expect("goaway");
    let refused = enc.error(id, ErrorCode::GoingAway, "shutting down", true, false, 0);
    assert!(state.on_frame(&refused).expect("error").is_none());
    assert!(answer.try_recv().is_err(), "the caller keeps waiting");
    assert!(state.drained());
    state.on_disconnected();
    state.on_connected(1 << 20);
    assert_eq!(publish_fields(&sent(&mut state)[0]).1, key);
}

#[test]
fn non_retryable_fatal_errors_stop_reconnecting() {
    let fatal = |code, retryable| ClientError::Server {
        code,
        message: String::new(),
        retryable,
        fatal: true,
        retry_after: None,
    };
    assert!(!fatal(ErrorCode::TokenExpired, false).allows_reconnect());
    assert!(!fatal(ErrorCode::MalformedFrame, false).allows_reconnect());
    assert!(fatal(ErrorCode::SlowConsumer, true).allows_reconnect());
    assert!(ClientError::Io("reset".into()).allows_reconnect());
    assert!(crate::error::close_code_retryable(ErrorCode::GoingAway));
    assert!(crate::error::close_code_retryable(ErrorCode(999)));
    assert!(!crate::error::close_code_retryable(ErrorCode::Unauthorized));
}
