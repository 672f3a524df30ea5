//! Channel naming rules and the channel patterns carried in tokens.

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
}
