//! Feeds: updates and deletes of earlier items, live and in history, and
//! subscriptions that start with the latest N messages.

use std::time::Duration;

use quiver_client::{
    Direction, ErrorCode, HistoryQuery, ItemState, Message, MessageKind, PublishOptions,
    SubscribeOptions, Subscription,
};
use serde_json::json;

use crate::http_api::{call, dev_key, error_code};
use crate::support::{FAST, TestServer};

async fn next(subscription: &mut Subscription) -> Message {
    tokio::time::timeout(Duration::from_secs(10), subscription.next())
        .await
        .expect("message in time")
        .expect("open")
        .expect("message")
}

fn text(message: &Message) -> &str {
    std::str::from_utf8(&message.payload).expect("utf8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_and_deletes_reach_subscribers_and_change_history() {
    let server = TestServer::start(FAST).await;
    let reader = server.client("demo", "reader").await;
    let writer = server.client("demo", "writer").await;
    let mut feed = reader.subscribe("news", None).await.expect("subscribe");

    let first = writer.publish("news", "first").await.expect("publish");
    let second = writer.publish("news", "second").await.expect("publish");
    let update = writer
        .edit(
            "news",
            first.offset,
            PublishOptions::new("first, corrected").header("v", "2"),
        )
        .await
        .expect("update");
    let delete = writer.delete("news", second.offset).await.expect("delete");
    assert_eq!(
        (first.offset, second.offset, update.offset, delete.offset),
        (1, 2, 3, 4)
    );

    // Live: the items as published, then the edits, in offset order.
    let items = [next(&mut feed).await, next(&mut feed).await];
    assert!(items.iter().all(|m| m.kind == MessageKind::Item));
    assert!(items.iter().all(|m| m.target.is_none()));
    assert!(items.iter().all(|m| m.state == ItemState::Original));
    let live_update = next(&mut feed).await;
    assert_eq!(live_update.kind, MessageKind::Update);
    assert_eq!(live_update.target, Some(1));
    assert_eq!(text(&live_update), "first, corrected");
    assert_eq!(live_update.headers, vec![("v".into(), "2".into())]);
    let live_delete = next(&mut feed).await;
    assert_eq!(
        (live_delete.kind, live_delete.target, live_delete.offset),
        (MessageKind::Delete, Some(2), 4)
    );
    assert!(live_delete.payload.is_empty());

    // History: the items in their current state, and the edit records.
    let page = reader
        .history(
            "news",
            HistoryQuery::latest(10).direction(Direction::Forward),
        )
        .await
        .expect("history");
    let got: Vec<(u64, MessageKind, Option<u64>, ItemState, String)> = page
        .messages
        .iter()
        .map(|m| (m.offset, m.kind, m.target, m.state, text(m).to_owned()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                1,
                MessageKind::Item,
                None,
                ItemState::Updated,
                "first, corrected".into()
            ),
            (
                2,
                MessageKind::Item,
                None,
                ItemState::Deleted,
                String::new()
            ),
            (
                3,
                MessageKind::Update,
                Some(1),
                ItemState::Original,
                "first, corrected".into()
            ),
            (
                4,
                MessageKind::Delete,
                Some(2),
                ItemState::Original,
                String::new()
            ),
        ]
    );
    assert!(page.messages[1].headers.is_empty());

    // A replay reads the log as it is now.
    feed.unsubscribe().await.expect("unsubscribe");
    let mut again = reader
        .subscribe("news", Some(0))
        .await
        .expect("resubscribe");
    let replayed = next(&mut again).await;
    assert_eq!((replayed.offset, replayed.state), (1, ItemState::Updated));
    assert_eq!(text(&replayed), "first, corrected");
    reader.close().await;
    writer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_of_missing_deleted_or_edit_targets_are_not_found() {
    let server = TestServer::start(FAST).await;
    let client = server.client("demo", "alice").await;
    let item = client.publish("feed", "item").await.expect("publish");

    let never = client
        .edit("feed", 99, PublishOptions::new("x"))
        .await
        .expect_err("no item at 99");
    assert_eq!(never.code(), Some(ErrorCode::NotFound), "{never}");

    let update = client
        .edit("feed", item.offset, PublishOptions::new("v2"))
        .await
        .expect("update");
    let of_edit = client
        .edit("feed", update.offset, PublishOptions::new("v3"))
        .await
        .expect_err("an edit is not an item");
    assert_eq!(of_edit.code(), Some(ErrorCode::NotFound), "{of_edit}");
    let delete_edit = client
        .delete("feed", update.offset)
        .await
        .expect_err("an edit cannot be deleted");
    assert_eq!(delete_edit.code(), Some(ErrorCode::NotFound));

    client.delete("feed", item.offset).await.expect("delete");
    let twice = client
        .delete("feed", item.offset)
        .await
        .expect_err("deleted already");
    assert_eq!(twice.code(), Some(ErrorCode::NotFound), "{twice}");
    let update_deleted = client
        .edit("feed", item.offset, PublishOptions::new("back"))
        .await
        .expect_err("deleted items stay deleted");
    assert_eq!(update_deleted.code(), Some(ErrorCode::NotFound));

    // Refusals wrote nothing: the log holds the item and two edits.
    let page = client
        .history("feed", HistoryQuery::latest(10))
        .await
        .expect("history");
    assert_eq!(page.messages.len(), 3);
    // A tracking channel takes no edits.
    let wrong = client
        .edit("track:city", 1, PublishOptions::new("x"))
        .await
        .expect_err("tracking channel");
    assert_eq!(wrong.code(), Some(ErrorCode::WrongChannelKind));
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_can_start_with_the_latest_messages() {
    let server = TestServer::start(FAST).await;
    let client = server.client("demo", "alice").await;
    for i in 1..=10 {
        client
            .publish("wall", format!("m{i}"))
            .await
            .expect("publish");
    }
    let mut latest = client
        .subscribe_with("wall", SubscribeOptions::last(3))
        .await
        .expect("subscribe");
    assert_eq!(latest.head_offset(), 10);
    for expected in 8..=10 {
        assert_eq!(next(&mut latest).await.offset, expected);
    }
    client.publish("wall", "m11").await.expect("publish");
    let live = next(&mut latest).await;
    assert_eq!((live.offset, text(&live)), (11, "m11"));

    // More than the channel holds: everything.
    let other = server.client("demo", "bob").await;
    let mut all = other
        .subscribe_with("wall", SubscribeOptions::last(100))
        .await
        .expect("subscribe");
    assert_eq!(next(&mut all).await.offset, 1);
    // An empty channel: live only.
    let mut empty = other
        .subscribe_with("empty-wall", SubscribeOptions::last(5))
        .await
        .expect("subscribe");
    other.publish("empty-wall", "hello").await.expect("publish");
    assert_eq!(next(&mut empty).await.offset, 1);
    client.close().await;
    other.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backends_update_and_delete_over_http() {
    let server = TestServer::start(FAST).await;
    let key = dev_key(&server);
    let phone = server.client("demo", "phone").await;
    let mut feed = phone.subscribe("news", None).await.expect("subscribe");
    let item = phone.publish("news", "draft").await.expect("publish");

    let body = json!({ "payload": "final", "headers": { "rev": "2" } });
    let (status, _, ack) = call(
        &server,
        "PATCH",
        &format!("/v1/channels/news/messages/{}", item.offset),
        Some(&key),
        Some(body.to_string().into()),
    )
    .await;
    assert_eq!(status, 200, "{ack}");
    assert_eq!(ack["offset"], 2);
    assert_eq!(ack["target"], 1);
    assert_eq!(ack["duplicate"], false);

    let (status, _, ack) = call(
        &server,
        "DELETE",
        "/v1/channels/news/messages/1",
        Some(&key),
        None,
    )
    .await;
    assert_eq!(status, 200, "{ack}");
    assert_eq!(
        (ack["offset"].as_u64(), ack["target"].as_u64()),
        (Some(3), Some(1))
    );

    let _item = next(&mut feed).await;
    let update = next(&mut feed).await;
    assert_eq!(
        (update.kind, update.target, update.sender.as_str()),
        (MessageKind::Update, Some(1), "api")
    );
    assert_eq!(text(&update), "final");
    assert_eq!(next(&mut feed).await.kind, MessageKind::Delete);

    // History JSON shows kinds, targets and states.
    let (status, _, page) = call(
        &server,
        "GET",
        "/v1/channels/news/messages?direction=forward",
        Some(&key),
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let messages = page["messages"].as_array().expect("messages");
    assert_eq!(messages[0]["kind"], "item");
    assert_eq!(messages[0]["state"], "deleted");
    assert!(messages[0].get("target").is_none());
    assert_eq!(messages[1]["kind"], "update");
    assert_eq!(messages[1]["target"], 1);
    assert_eq!(messages[2]["kind"], "delete");
    assert_eq!(messages[2]["state"], "original");

    // Missing targets, deleted ones and edits are 404.
    for (method, path) in [
        ("DELETE", "/v1/channels/news/messages/1"),
        ("DELETE", "/v1/channels/news/messages/2"),
        ("DELETE", "/v1/channels/news/messages/40"),
        ("DELETE", "/v1/channels/other/messages/1"),
    ] {
        let (status, _, body) = call(&server, method, path, Some(&key), None).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert_eq!(error_code(&body), "not_found");
    }
    let (status, _, body) = call(
        &server,
        "PATCH",
        "/v1/channels/news/messages/1",
        Some(&key),
        Some(json!({ "payload": "again" }).to_string().into()),
    )
    .await;
    assert_eq!((status, error_code(&body)), (404, "not_found"), "{body}");
    let (status, _, body) = call(
        &server,
        "DELETE",
        "/v1/channels/news/messages/zero",
        Some(&key),
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    // A wrong key is 401.
    let (status, _, _) = call(
        &server,
        "DELETE",
        "/v1/channels/news/messages/2",
        Some("not-a-key"),
        None,
    )
    .await;
    assert_eq!(status, 401);

    // Tracking channels take no messages over HTTP.
    for (method, path, body) in [
        (
            "POST",
            "/v1/channels/track:city/messages",
            json!({ "payload": "x" }),
        ),
        (
            "PATCH",
            "/v1/channels/track:city/messages/1",
            json!({ "payload": "x" }),
        ),
        (
            "POST",
            "/v1/messages/batch",
            json!({ "messages": [{ "channel": "track:city", "payload": "x" }] }),
        ),
    ] {
        let (status, _, body) = call(
            &server,
            method,
            path,
            Some(&key),
            Some(body.to_string().into()),
        )
        .await;
        assert_eq!(status, 409, "{method} {path}: {body}");
        assert_eq!(error_code(&body), "wrong_channel_kind", "{body}");
    }
    phone.close().await;
}
