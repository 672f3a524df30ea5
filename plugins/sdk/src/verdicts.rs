//! Conveniences on the generated hook types.

use crate::{Admission, Message, PublishVerdict};

impl Message {
    /// The first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Appends a header (headers may repeat).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

impl Admission {
    /// Deny with `reason`, shown to the client.
    pub fn deny(reason: impl Into<String>) -> Self {
        Admission::Deny(reason.into())
    }
}

impl PublishVerdict {
    /// Reject with `reason`, returned to the publisher.
    pub fn reject(reason: impl Into<String>) -> Self {
        PublishVerdict::Reject(reason.into())
    }
}
