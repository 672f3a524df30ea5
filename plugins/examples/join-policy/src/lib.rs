//! Only members may subscribe to `private:*` channels. Membership lives in
//! the plugin's key-value store under `member:<channel>:<user>`; the users
//! listed in the config key `admins` manage it by publishing
//! `add <channel> <user>` or `remove <channel> <user>` to the control
//! channel (config `control_channel`, default `_members`). Each change is
//! announced on the channel itself (`alice joined`) and counted in the
//! metric `membership_changes`.

use quiver_plugin_sdk::{
    Admission, Message, Plugin, PublishVerdict, SessionInfo, channels, config, export, kv, log,
    metrics,
};

struct JoinPolicy;

fn member_key(channel: &str, user: &str) -> String {
    format!("member:{channel}:{user}")
}

impl Plugin for JoinPolicy {
    fn on_subscribe(session: &SessionInfo, channel: &str) -> Admission {
        if !channel.starts_with("private:") {
            return Admission::Allow;
        }
        match kv::get(&member_key(channel, &session.user)) {
            Ok(Some(_)) => Admission::Allow,
            Ok(None) => Admission::deny(format!("not a member of {channel}")),
            Err(_) => Admission::deny("membership unavailable, try again"),
        }
    }

    fn on_publish(session: &SessionInfo, channel: &str, message: Message) -> PublishVerdict {
        let control = config::get("control_channel").unwrap_or_else(|| "_members".into());
        if channel != control {
            return PublishVerdict::Accept;
        }
        let admins = config::get_list("admins").unwrap_or_default();
        if !admins.contains(&session.user) {
            return PublishVerdict::reject("only admins may change memberships");
        }
        let text = String::from_utf8_lossy(&message.payload);
        let (result, target, notice) = match text.split_whitespace().collect::<Vec<_>>()[..] {
            ["add", ch, user] => {
                let r = kv::set(&member_key(ch, user), "1", None);
                (r, ch, format!("{user} joined"))
            }
            ["remove", ch, user] => {
                let r = kv::delete(&member_key(ch, user)).map(|_| ());
                (r, ch, format!("{user} left"))
            }
            _ => return PublishVerdict::reject("expected `add|remove <channel> <user>`"),
        };
        if let Err(e) = result {
            return PublishVerdict::reject(format!("membership store error: {e}"));
        }
        log::info(
            "membership changed",
            &[("command", &text), ("by", &session.user)],
        );
        metrics::increment("membership_changes");
        // Tell the channel; a lost notice does not undo the change.
        let headers = [("x-system".to_string(), "membership".to_string())];
        if let Err(e) = channels::publish(target, notice, &headers) {
            log::warn("membership notice not published", &[("error", &e)]);
        }
        // Commands are applied, not stored: the control channel keeps no
        // history of them.
        PublishVerdict::Drop
    }
}

export!(JoinPolicy, hooks: [on_subscribe, on_publish]);
