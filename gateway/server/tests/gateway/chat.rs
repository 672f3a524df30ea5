//! Live chat: ordering, fan-out, idempotency, history.

use std::collections::HashMap;
use std::time::Duration;

use quiver_client::{Direction, HistoryQuery, PublishOptions};

use crate::support::{FAST, TestServer};

const PER_PUBLISHER: usize = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_publishers_five_subscribers_see_one_order() {
    let server = TestServer::start(FAST).await;
    let mut subscribers = Vec::new();
    for i in 0..5 {
        let client = server.client("demo", &format!("reader{i}")).await;
        let subscription = client.subscribe("room", None).await.expect("subscribe");
        subscribers.push((client, subscription));
    }
    let mut publishers = Vec::new();
    for p in 0..3 {
        let client = server.client("demo", &format!("writer{p}")).await;
        publishers.push(tokio::spawn(async move {
            let mut acks = Vec::new();
            for k in 0..PER_PUBLISHER {
                let ack = client
                    .publish("room", format!("{p}:{k}"))
                    .await
                    .expect("publish");
                acks.push((format!("{p}:{k}"), ack.offset));
            }
            acks
        }));
    }
    let mut acked: HashMap<String, u64> = HashMap::new();
    for publisher in publishers {
        for (payload, offset) in publisher.await.expect("publisher") {
            acked.insert(payload, offset);
        }
    }
    let total = 3 * PER_PUBLISHER;
    let mut orders = Vec::new();
    for (_client, mut subscription) in subscribers {
        let mut seen = Vec::new();
        while seen.len() < total {
            let message = tokio::time::timeout(Duration::from_secs(10), subscription.next())
                .await
                .expect("message in time")
                .expect("subscription open")
                .expect("message");
            seen.push(message);
        }
        // Offsets 1..=total, each once, in order.
        let offsets: Vec<u64> = seen.iter().map(|m| m.offset).collect();
        assert_eq!(offsets, (1..=total as u64).collect::<Vec<_>>());
        for message in &seen {
            let payload = String::from_utf8(message.payload.to_vec()).expect("utf8");
            assert_eq!(
                acked[&payload], message.offset,
                "delivered offset equals the acked one"
            );
            let publisher = payload.split(':').next().expect("prefix");
            assert_eq!(message.sender, format!("writer{publisher}"));
        }
        orders.push(seen.into_iter().map(|m| m.payload).collect::<Vec<_>>());
    }
    assert!(
        orders.windows(2).all(|w| w[0] == w[1]),
        "every subscriber sees the same order"
    );
    // Each publisher's messages keep its own order.
    for p in 0..3 {
        let mine: Vec<u64> = (0..PER_PUBLISHER)
            .map(|k| acked[&format!("{p}:{k}")])
            .collect();
        assert!(mine.windows(2).all(|w| w[0] < w[1]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_retry_yields_one_message() {
    let server = TestServer::start(FAST).await;
    let client = server.client("demo", "alice").await;
    let mut options = PublishOptions::new("only once");
    options.key = Some("order-42".into());
    let first = client
        .publish_with("orders", options.clone())
        .await
        .expect("first");
    assert!(!first.duplicate);
    // A retry after a lost ack, from a new connection.
    let other = server.client("demo", "alice").await;
    let retry = other
        .publish_with("orders", options.clone())
        .await
        .expect("retry");
    assert_eq!(
        (retry.offset, retry.id, retry.duplicate),
        (first.offset, first.id, true)
    );
    // The same key on another channel is a different message.
    let elsewhere = other
        .publish_with("invoices", options)
        .await
        .expect("other channel");
    assert!(!elsewhere.duplicate);
    let page = client
        .history("orders", HistoryQuery::latest(10))
        .await
        .expect("history");
    assert_eq!(page.messages.len(), 1);
    assert_eq!(&page.messages[0].payload[..], b"only once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pages_newest_or_oldest_first() {
    let server = TestServer::start(FAST).await;
    let client = server.client("demo", "alice").await;
    for i in 1..=25 {
        client
            .publish("log", format!("m{i}"))
            .await
            .expect("publish");
    }
    let mut newest_first = Vec::new();
    let mut query = HistoryQuery::latest(10);
    loop {
        let page = client.history("log", query.clone()).await.expect("page");
        newest_first.extend(page.messages.iter().map(|m| m.offset));
        let Some(last) = page.messages.last() else {
            break;
        };
        if !page.has_more {
            break;
        }
        query = HistoryQuery::latest(10).before(last.offset);
    }
    assert_eq!(newest_first, (1..=25).rev().collect::<Vec<u64>>());

    let page = client
        .history(
            "log",
            HistoryQuery::latest(5)
                .after(20)
                .direction(Direction::Forward),
        )
        .await
        .expect("forward page");
    let offsets: Vec<u64> = page.messages.iter().map(|m| m.offset).collect();
    assert_eq!(offsets, vec![21, 22, 23, 24, 25]);
    assert!(!page.has_more);
    assert_eq!(&page.messages[0].payload[..], b"m21");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_stops_delivery_and_frees_the_slot() {
    let server = TestServer::start(&format!("{FAST}max_subscriptions = 1\n")).await;
    let client = server.client("demo", "alice").await;
    let subscription = client.subscribe("a", None).await.expect("subscribe a");
    subscription.unsubscribe().await.expect("unsubscribe");
    let mut b = client
        .subscribe("b", None)
        .await
        .expect("subscribe b after freeing a");
    client.publish("a", "to a").await.expect("publish a");
    client.publish("b", "to b").await.expect("publish b");
    let message = tokio::time::timeout(Duration::from_secs(5), b.next())
        .await
        .expect("in time")
        .expect("open")
        .expect("message");
    assert_eq!(&message.payload[..], b"to b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_streams_answer_on_their_own_stream_and_are_finished() {
    use quiver_proto::{Body, Encoder, FrameReader, NO_HEADERS};

    let server = TestServer::start(FAST).await;
    let raw =
        crate::raw::Raw::authenticated(server.addr, &server.ca(), &server.token("demo", "a")).await;
    let mut encoder = Encoder::new();
    // More request streams, one after another, than the server lets a
    // client hold open at once: each must be finished by the server.
    for i in 1..=20u64 {
        let (mut send, mut recv) = raw.connection.open_bi().await.expect("request stream");
        send.write_chunk(encoder.publish(i, "lanes", b"x", NO_HEADERS, None))
            .await
            .expect("write");
        let history = encoder.history_request(
            i + 100,
            "lanes",
            1,
            None,
            None,
            quiver_proto::fb::Direction::Backward,
        );
        send.write_chunk(history).await.expect("write");
        send.finish().expect("finish");
        let bytes = tokio::time::timeout(Duration::from_secs(5), recv.read_to_end(1 << 20))
            .await
            .expect("server finishes the stream")
            .expect("read");
        let mut reader = FrameReader::new(1 << 20);
        reader.push(&bytes);
        let mut answered = Vec::new();
        while let Some(frame) = reader.next_frame().expect("frames") {
            match quiver_proto::decode(&frame).expect("decode") {
                Body::PublishAck(ack) => answered.push((ack.request_id(), ack.offset())),
                Body::HistoryPage(page) => answered.push((page.request_id(), 0)),
                other => panic!("unexpected {}", other.name()),
            }
        }
        answered.sort_unstable();
        assert_eq!(answered, vec![(i, i), (i + 100, 0)]);
    }
}
