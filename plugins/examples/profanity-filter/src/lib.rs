//! Masks listed words in text messages: "what the heck" becomes
//! "what the ****". Words come from the config key `words` (comma
//! separated) and match whole words, ASCII case-insensitively.

use std::sync::OnceLock;

use quiver_plugin_sdk::{Message, Plugin, PublishVerdict, SessionInfo, config, export};

struct ProfanityFilter;

/// Read once per instance: the config cannot change under a running
/// version (a new config is a new upload, hence a new instance).
fn words() -> &'static [String] {
    static WORDS: OnceLock<Vec<String>> = OnceLock::new();
    WORDS.get_or_init(|| {
        config::get_list("words")
            .unwrap_or_else(|| vec!["darn".into(), "heck".into(), "frak".into()])
            .into_iter()
            .map(|w| w.to_ascii_lowercase())
            .collect()
    })
}

impl Plugin for ProfanityFilter {
    fn on_publish(_: &SessionInfo, _: &str, message: Message) -> PublishVerdict {
        match profanity_filter_core::mask(&message.payload, words()) {
            // The common case allocates nothing and copies nothing back.
            None => PublishVerdict::Accept,
            Some(payload) => PublishVerdict::Rewrite(Message { payload, ..message }),
        }
    }
}

export!(ProfanityFilter, hooks: [on_publish]);

/// The masking itself, free of host calls so it reads (and tests) alone.
mod profanity_filter_core {
    /// The payload with every listed word replaced by `*`s, or `None` when
    /// nothing matched (or the payload is not UTF-8 text).
    pub(crate) fn mask(payload: &[u8], words: &[String]) -> Option<Vec<u8>> {
        let text = std::str::from_utf8(payload).ok()?;
        let mut out: Option<Vec<u8>> = None;
        let bytes = text.as_bytes();
        let mut start = 0;
        while start < bytes.len() {
            // Split on anything that is not a letter, digit or apostrophe.
            let end = bytes[start..]
                .iter()
                .position(|b| !(b.is_ascii_alphanumeric() || *b == b'\''))
                .map_or(bytes.len(), |p| start + p);
            let word = &bytes[start..end];
            if !word.is_empty()
                && words
                    .iter()
                    .any(|w| w.as_bytes().eq_ignore_ascii_case(word))
            {
                let buf = out.get_or_insert_with(|| payload.to_vec());
                buf[start..end].fill(b'*');
            }
            start = end + 1;
        }
        out
    }
}

// Pure logic tests run natively: `cargo test -p profanity-filter
// --manifest-path plugins/examples/Cargo.toml` (no wasm target needed).
#[cfg(test)]
mod tests {
    use super::profanity_filter_core::mask;

    #[test]
    fn masks_whole_words_case_insensitively() {
        let words = vec!["heck".to_string()];
        assert_eq!(mask(b"oh HECK!", &words).as_deref(), Some(&b"oh ****!"[..]));
        assert_eq!(mask(b"checkers", &words), None);
        assert_eq!(mask(&[0xff, 0xfe], &words), None, "not UTF-8: untouched");
    }
}
