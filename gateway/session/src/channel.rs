//! Channel naming rules, channel kinds (by namespace), and the channel
//! patterns carried in tokens.

use std::time::Duration;

/// Longest channel name, in bytes. Storage keys length-prefix the name with
/// one byte.
pub const MAX_CHANNEL_BYTES: usize = 255;

/// Checks a channel name against the protocol's rules, returning a sentence
/// for the client when it breaks one.
pub fn validate_channel(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("channel name is empty".into());
    }
    if name.len() > MAX_CHANNEL_BYTES {
        return Err(format!(
            "channel name is {} bytes; the limit is {MAX_CHANNEL_BYTES}",
            name.len()
        ));
    }
    if let Some(c) = name.chars().find(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "channel name contains {c:?}; control characters and whitespace are not allowed"
        ));
    }
    Ok(())
}

/// Which channels a token allows for one operation: exact names and
/// prefixes written as `prefix*`. A token without the claim allows every
/// channel of its tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChannelPatterns {
    Any,
    Listed {
        exact: Vec<String>,
        prefixes: Vec<String>,
    },
}

impl ChannelPatterns {
    pub fn from_claim(claim: Option<Vec<String>>) -> Self {
        let Some(patterns) = claim else {
            return ChannelPatterns::Any;
        };
        let mut exact = Vec::new();
        let mut prefixes = Vec::new();
        for pattern in patterns {
            match pattern.strip_suffix('*') {
                Some("") => return ChannelPatterns::Any,
                Some(prefix) => prefixes.push(prefix.to_owned()),
                None => exact.push(pattern),
            }
        }
        ChannelPatterns::Listed { exact, prefixes }
    }

    pub fn allows(&self, channel: &str) -> bool {
        match self {
            ChannelPatterns::Any => true,
            ChannelPatterns::Listed { exact, prefixes } => {
                exact.iter().any(|e| e == channel)
                    || prefixes.iter().any(|p| channel.starts_with(p.as_str()))
            }
        }
    }
}

/// What a channel carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelKind {
    /// A durable, ordered log: chat messages, feed items.
    Messages,
    /// Latest-wins positions of moving entities (`Track`, `Positions`).
    Tracking,
}

/// How the channels of one namespace behave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelOptions {
    pub kind: ChannelKind,
    /// Subscribers get join and leave events, and the HTTP API lists who
    /// is connected.
    pub presence: bool,
    /// Tracking: the most positions per entity per second a subscriber
    /// receives; a subscriber may ask for fewer.
    pub max_position_rate: u32,
    /// Tracking: how long each stored position stays in the history.
    pub position_history_ttl: Duration,
}

impl ChannelOptions {
    /// A message channel without presence: what a channel is unless its
    /// namespace says otherwise.
    pub const MESSAGES: ChannelOptions = ChannelOptions {
        kind: ChannelKind::Messages,
        presence: false,
        max_position_rate: 10,
        position_history_ttl: Duration::from_secs(24 * 3600),
    };

    /// The built-in `track` namespace: tracking with presence.
    pub const TRACKING: ChannelOptions = ChannelOptions {
        kind: ChannelKind::Tracking,
        presence: true,
        ..ChannelOptions::MESSAGES
    };

    pub fn is_tracking(&self) -> bool {
        self.kind == ChannelKind::Tracking
    }
}

/// Channel options by namespace: the part of a channel name before its
/// first `:` (`track:city-1` is in namespace `track`). Names without a `:`
/// and namespaces not listed get the default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelRules {
    namespaces: Vec<(String, ChannelOptions)>,
    default: ChannelOptions,
}

impl Default for ChannelRules {
    /// `track:*` channels are tracking channels with presence; every other
    /// channel is a message channel without presence.
    fn default() -> Self {
        Self {
            namespaces: vec![("track".into(), ChannelOptions::TRACKING)],
            default: ChannelOptions::MESSAGES,
        }
    }
}

impl ChannelRules {
    /// The defaults, with `namespace` set to `options` (replacing a
    /// built-in entry of the same name).
    pub fn with_namespace(mut self, namespace: &str, options: ChannelOptions) -> Self {
        self.namespaces.retain(|(name, _)| name != namespace);
        self.namespaces.push((namespace.to_owned(), options));
        self
    }

    /// The options of `channel`'s namespace.
    pub fn options(&self, channel: &str) -> &ChannelOptions {
        let Some((namespace, _)) = channel.split_once(':') else {
            return &self.default;
        };
        self.namespaces
            .iter()
            .find(|(name, _)| name == namespace)
            .map_or(&self.default, |(_, options)| options)
    }
}

/// Longest tracked entity id, in bytes.
pub const MAX_ENTITY_BYTES: usize = 255;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_channel("chat:room-1").is_ok());
        assert!(validate_channel("ünïcødé/ok").is_ok());
        assert!(validate_channel("").is_err());
        assert!(validate_channel("has space").is_err());
        assert!(validate_channel("tab\there").is_err());
        assert!(validate_channel("nul\0").is_err());
        assert!(validate_channel(&"x".repeat(256)).is_err());
        assert!(validate_channel(&"x".repeat(255)).is_ok());
    }

    #[test]
    fn patterns() {
        let any = ChannelPatterns::from_claim(None);
        assert!(any.allows("anything"));
        let none = ChannelPatterns::from_claim(Some(vec![]));
        assert!(!none.allows("anything"));
        let some = ChannelPatterns::from_claim(Some(vec!["chat:*".into(), "news".into()]));
        assert!(some.allows("chat:1"));
        assert!(some.allows("news"));
        assert!(!some.allows("news2"));
        assert!(!some.allows("private:1"));
        let star = ChannelPatterns::from_claim(Some(vec!["*".into()]));
        assert!(star.allows("x"));
    }

    #[test]
    fn namespaces() {
        let rules = ChannelRules::default().with_namespace(
            "room",
            ChannelOptions {
                presence: true,
                ..ChannelOptions::MESSAGES
            },
        );
        assert!(rules.options("track:city").is_tracking());
        assert!(!rules.options("track").is_tracking());
        assert!(!rules.options("tracks:x").is_tracking());
        assert!(rules.options("room:1").presence);
        assert!(!rules.options("room").presence);
        assert!(!rules.options("chat:1").presence);
        let replaced = rules.with_namespace("track", ChannelOptions::MESSAGES);
        assert!(!replaced.options("track:city").is_tracking());
    }
}
