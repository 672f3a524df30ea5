//! Requests and their answers on a healthy connection.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use quiver_proto::{Body, Encoder, MessageRef, NO_HEADERS, decode, fb};
use tokio::sync::oneshot;

use super::*;
use crate::command::Command;
use crate::error::{ClientError, ErrorCode};
use crate::types::{HistoryQuery, PublishOptions};

#[test]
fn responses_dispatch_by_request_id_in_any_order() {
    let mut state = connected();
    let mut first = publish(&mut state, "k1");
    let mut second = publish(&mut state, "k2");
    let frames = sent(&mut state);
    let ids: Vec<u64> = frames.iter().map(|f| publish_fields(f).0).collect();
    assert!(!ids.contains(&0), "request id 0 is reserved");
    assert_ne!(ids[0], ids[1]);

    assert!(state.on_frame(&ack(ids[1], 20)).expect("ack").is_none());
    assert!(state.on_frame(&ack(ids[0], 10)).expect("ack").is_none());
    assert_eq!(first.try_recv().expect("answered").expect("ok").offset, 10);
    assert_eq!(second.try_recv().expect("answered").expect("ok").offset, 20);
    assert_eq!(state.pending_len(), 0);
    // A stray answer is ignored rather than fatal.
    assert!(state.on_frame(&ack(999, 1)).expect("stray").is_none());
}

#[test]
fn a_response_of_the_wrong_kind_is_a_violation_and_keeps_the_request() {
    let mut state = connected();
    let _answer = publish(&mut state, "k");
    let (id, _) = publish_fields(&sent(&mut state)[0]);
    let wrong = Encoder::new().unsubscribed(id, 3);
    assert!(matches!(
        state.on_frame(&wrong),
        Err(ClientError::UnexpectedFrame(_))
    ));
    assert_eq!(state.pending_len(), 1);
    assert!(matches!(
        state.on_frame(&Bytes::from_static(b"\x02\0\0\0xx")),
        Err(ClientError::Protocol(_))
    ));
    let welcome = Encoder::new().welcome(&quiver_proto::WelcomeInfo::default());
    assert!(matches!(
        state.on_frame(&welcome),
        Err(ClientError::UnexpectedFrame(_))
    ));
}

#[test]
fn stream_arriving_before_subscribed_is_parked_then_routed() {
    let mut state = connected();
    let mut sub = subscribe(&mut state, 1, None);
    let (request_id, since) = subscribe_fields(&sent(&mut state)[0]);
    assert_eq!(since, None);

    let (reply, mut route) = oneshot::channel();
    state.route(77, reply);
    assert!(route.try_recv().is_err(), "parked until Subscribed");

    let subscribed = Encoder::new().subscribed(request_id, 77, "room", 41);
    assert!(state.on_frame(&subscribed).expect("subscribed").is_none());
    assert_eq!(sub.answer.try_recv().expect("answered").expect("ok"), 41);
    assert_eq!(
        sub.shared.resume(),
        41,
        "live subscriptions resume from the head"
    );

    let route = route.try_recv().expect("routed");
    assert_eq!(&*route.channel, "room");
    // Later streams for a known id are routed at once.
    let (reply, mut again) = oneshot::channel();
    state.route(77, reply);
    assert!(again.try_recv().is_ok());
    drop(route);
    drop(again);
    assert!(sub.rx.try_recv().is_err());
}

#[test]
fn non_fatal_errors_answer_their_request() {
    let mut state = connected();
    let mut answer = publish(&mut state, "k");
    let (id, _) = publish_fields(&sent(&mut state)[0]);
    let limited = Encoder::new().error(id, ErrorCode::RateLimited, "slow down", true, false, 250);
    assert!(state.on_frame(&limited).expect("error").is_none());
    let error = answer.try_recv().expect("answered").expect_err("refused");
    assert_eq!(error.code(), Some(ErrorCode::RateLimited));
    assert_eq!(error.retry_after(), Some(Duration::from_millis(250)));
}

#[test]
fn subscribed_for_an_abandoned_subscribe_is_undone() {
    let mut state = connected();
    let sub = subscribe(&mut state, 1, None);
    let (id, _) = subscribe_fields(&sent(&mut state)[0]);
    drop(sub.answer); // the caller timed out
    state
        .on_frame(&Encoder::new().subscribed(id, 4, "room", 0))
        .expect("ok");
    let frames = sent(&mut state);
    match decode(&frames[0]) {
        Ok(Body::Unsubscribe(u)) => assert_eq!(u.subscription_id(), 4),
        other => panic!("expected Unsubscribe, got {other:?}"),
    }
    assert_eq!(state.subscription_len(), 0);
}

#[test]
fn dropped_subscription_is_unsubscribed() {
    let mut state = connected();
    let sub = subscribe(&mut state, 1, None);
    let (id, _) = subscribe_fields(&sent(&mut state)[0]);
    state
        .on_frame(&Encoder::new().subscribed(id, 4, "room", 0))
        .expect("ok");
    state.on_subscription_dropped(1);
    assert!(matches!(
        decode(&sent(&mut state)[0]),
        Ok(Body::Unsubscribe(_))
    ));
    drop(sub);
}

#[test]
fn oversized_requests_are_refused_locally() {
    let mut state = State::new();
    state.on_connected(64);
    let (reply, mut answer) = oneshot::channel();
    state.submit(Command::Publish {
        channel: "room".into(),
        options: PublishOptions::new(vec![0u8; 100]),
        reply,
        permit: permit(),
    });
    assert!(matches!(
        answer.try_recv(),
        Ok(Err(ClientError::RequestTooLarge { max: 64, .. }))
    ));
    assert!(sent(&mut state).is_empty());
}

#[test]
fn history_pages_decode_with_zero_copy_payloads() {
    let mut state = connected();
    let (reply, mut answer) = oneshot::channel();
    state.submit(Command::History {
        channel: Arc::from("room"),
        query: HistoryQuery::latest(2),
        reply,
        permit: permit(),
    });
    let id = match decode(&sent(&mut state)[0]) {
        Ok(Body::HistoryRequest(h)) => {
            assert_eq!((h.limit(), h.direction()), (2, fb::Direction::Backward));
            h.request_id()
        }
        other => panic!("expected HistoryRequest, got {other:?}"),
    };
    let message = |offset| MessageRef {
        offset,
        id: 1,
        sender: "bob",
        timestamp_ms: 5,
        payload: b"p",
        headers: NO_HEADERS,
        meta: quiver_proto::MessageMeta::ITEM,
    };
    let page = Encoder::new().history_page(id, [message(2), message(1)], true);
    state.on_frame(&page).expect("page");
    let page = answer.try_recv().expect("answered").expect("ok");
    assert!(page.has_more);
    let offsets: Vec<u64> = page.messages.iter().map(|m| m.offset).collect();
    assert_eq!(offsets, [2, 1]);
    assert_eq!(&*page.messages[0].channel, "room");
}

#[test]
fn edits_are_sent_as_edit_frames_and_resent_after_a_reconnect() {
    let mut state = connected();
    let (reply, mut answer) = oneshot::channel();
    state.submit(Command::Edit {
        channel: "feed".into(),
        target: 7,
        delete: true,
        options: PublishOptions::default().key("k-del"),
        reply,
        permit: permit(),
    });
    let frames = sent(&mut state);
    let (id, target, delete, key) = match decode(&frames[0]) {
        Ok(Body::Edit(e)) => (
            e.request_id(),
            e.target(),
            e.delete(),
            e.key().unwrap_or_default().to_owned(),
        ),
        other => panic!("expected Edit, got {other:?}"),
    };
    assert_eq!((target, delete, key.as_str()), (7, true, "k-del"));
    state.on_disconnected();
    state.on_connected(1 << 20);
    assert_eq!(sent(&mut state), frames, "re-sent unchanged, key included");
    state.on_frame(&ack(id, 8)).expect("ack");
    assert_eq!(answer.try_recv().expect("answered").expect("ok").offset, 8);
}

#[test]
fn a_subscription_for_the_latest_messages_starts_below_the_head() {
    let mut state = connected();
    let shared = Arc::new(crate::subscription::SubShared::new(1, Arc::from("feed")));
    let (tx, _rx) = tokio::sync::mpsc::channel(4);
    let (reply, _answer) = oneshot::channel();
    state.submit(Command::Subscribe {
        shared: Arc::clone(&shared),
        since: None,
        last: 3,
        tx,
        reply,
        permit: permit(),
    });
    let frames = sent(&mut state);
    let (id, last) = match decode(&frames[0]) {
        Ok(Body::Subscribe(s)) => (s.request_id(), s.last()),
        other => panic!("expected Subscribe, got {other:?}"),
    };
    assert_eq!(last, 3);
    let subscribed = Encoder::new().subscribed(id, 1, "feed", 10);
    state.on_frame(&subscribed).expect("subscribed");
    assert_eq!(shared.resume(), 7, "offsets 8 to 10 are to be delivered");
}
