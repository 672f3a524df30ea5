//! Subscriptions: per-tenant counts, uniqueness per channel, and slow
//! consumers.

use quiver_proto::fb::ErrorCode;
use quiver_session::{Action, Limits};

use crate::harness::{Harness, claims, closes_with, error_of};

#[test]
fn subscriptions_are_counted_and_unique_per_channel() {
    let mut h = Harness::new(Limits::default());
    h.hello(&claims("globex", "g"));
    let frame = h.enc.subscribe(1, "a", None);
    let actions = h.feed(0, frame);
    let [
        Action::Subscribe {
            subscription_id,
            channel,
            ..
        },
    ] = actions.as_slice()
    else {
        panic!()
    };
    assert_eq!(&*channel.tenant, "globex");
    let first = *subscription_id;
    let frame = h.enc.subscribe(2, "a", None);
    assert_eq!(
        error_of(&h.feed(0, frame)),
        (ErrorCode::AlreadySubscribed, false)
    );
    let frame = h.enc.subscribe(3, "b", None);
    assert!(matches!(
        h.feed(0, frame).as_slice(),
        [Action::Subscribe { .. }]
    ));
    // globex allows two subscriptions per connection.
    let frame = h.enc.subscribe(4, "c", None);
    assert_eq!(
        error_of(&h.feed(0, frame)),
        (ErrorCode::TooManySubscriptions, false)
    );
    let frame = h.enc.unsubscribe(5, first);
    let actions = h.feed(0, frame);
    assert!(
        matches!(actions[0], Action::Unsubscribe { subscription_id } if subscription_id == first)
    );
    let frame = h.enc.subscribe(6, "c", None);
    assert!(matches!(
        h.feed(0, frame).as_slice(),
        [Action::Subscribe { .. }]
    ));
}

#[test]
fn slow_consumers_are_closed() {
    let mut h = Harness::connected(Limits::default());
    let frame = h.enc.subscribe(1, "room", None);
    h.feed(0, frame);
    h.session.slow_consumer(1);
    let actions = h.drain();
    assert_eq!(error_of(&actions), (ErrorCode::SlowConsumer, true));
    assert!(closes_with(&actions, ErrorCode::SlowConsumer));
}
