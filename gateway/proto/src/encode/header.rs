//! What the encoder accepts as one application header.

use crate::fb;

/// One application header, as the [`Encoder`](crate::Encoder) reads it.
///
/// Implemented for `(name, value)` tuples of anything string-like (and
/// references to them), and for received [`fb::Header`]s, so headers can be
/// passed from wherever they live without collecting them:
///
/// - `[("content-type", "text/plain")]`, or [`NO_HEADERS`] for none;
/// - `&stored` where `stored: Vec<(String, String)>`;
/// - `other.iter().map(|h| (h.name.as_str(), h.value.as_str()))` for any
///   other type;
/// - `publish.headers().into_iter().flatten()` to forward received headers.
pub trait HeaderPair {
    /// The header name.
    fn name(&self) -> &str;
    /// The header value.
    fn value(&self) -> &str;
}

impl<N: AsRef<str>, V: AsRef<str>> HeaderPair for (N, V) {
    fn name(&self) -> &str {
        self.0.as_ref()
    }
    fn value(&self) -> &str {
        self.1.as_ref()
    }
}

impl<T: HeaderPair + ?Sized> HeaderPair for &T {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn value(&self) -> &str {
        (**self).value()
    }
}

impl HeaderPair for fb::Header<'_> {
    fn name(&self) -> &str {
        fb::Header::name(self)
    }
    fn value(&self) -> &str {
        fb::Header::value(self)
    }
}

/// No headers, for calls that have none (`std::iter::empty()` would need a
/// type annotation).
pub const NO_HEADERS: [(&str, &str); 0] = [];
