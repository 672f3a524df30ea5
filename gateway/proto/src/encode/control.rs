//! Frames that open, refuse and close a session: Hello, Welcome, Error,
//! GoAway.

use bytes::Bytes;

use super::Encoder;
use crate::{DecodeError, WelcomeInfo, fb};

impl Encoder {
    /// `Hello`: the client's first frame on the control stream.
    pub fn hello(&mut self, version: u16, token: &str, client: &str) -> Bytes {
        let token = self.fbb.create_string(token);
        let client = self.fbb.create_string(client);
        let body = fb::Hello::create(
            &mut self.fbb,
            &fb::HelloArgs {
                version,
                token: Some(token),
                client: Some(client),
            },
        );
        self.finish(fb::Body::Hello, body.as_union_value())
    }

    /// `Welcome`: the server's answer to a valid `Hello`.
    pub fn welcome(&mut self, info: &WelcomeInfo) -> Bytes {
        let session_id = self.fbb.create_string(&info.session_id);
        let tenant = self.fbb.create_string(&info.tenant);
        let user = self.fbb.create_string(&info.user);
        let body = fb::Welcome::create(
            &mut self.fbb,
            &fb::WelcomeArgs {
                version: info.version,
                session_id: Some(session_id),
                tenant: Some(tenant),
                user: Some(user),
                server_time_ms: info.server_time_ms,
                max_frame_bytes: info.max_frame_bytes,
                max_payload_bytes: info.max_payload_bytes,
                max_subscriptions: info.max_subscriptions,
                publish_rate_per_sec: info.publish_rate_per_sec,
                publish_burst: info.publish_burst,
                idle_timeout_ms: info.idle_timeout_ms,
                keepalive_interval_ms: info.keepalive_interval_ms,
            },
        );
        self.finish(fb::Body::Welcome, body.as_union_value())
    }

    /// `Error`: refuses the request `request_id` (0 when the refused frame
    /// was not a request). With `fatal`, the sender closes the connection
    /// with `code` right after this frame.
    pub fn error(
        &mut self,
        request_id: u64,
        code: fb::ErrorCode,
        message: &str,
        retryable: bool,
        fatal: bool,
        retry_after_ms: u32,
    ) -> Bytes {
        let message = self.fbb.create_string(message);
        let body = fb::Error::create(
            &mut self.fbb,
            &fb::ErrorArgs {
                request_id,
                code,
                message: Some(message),
                retryable,
                fatal,
                retry_after_ms,
            },
        );
        self.finish(fb::Body::Error, body.as_union_value())
    }

    /// The fatal `Error` that reports bytes a [`FrameReader`] or [`parse`]
    /// rejected: request id 0, the error's code and its message.
    ///
    /// [`FrameReader`]: crate::FrameReader
    /// [`parse`]: crate::parse
    pub fn decode_error(&mut self, error: &DecodeError) -> Bytes {
        self.error(0, error.code(), &error.to_string(), false, true, 0)
    }

    /// `GoAway`: the server is shutting down; reconnect after
    /// `reconnect_after_ms`.
    pub fn go_away(
        &mut self,
        code: fb::ErrorCode,
        message: &str,
        reconnect_after_ms: u32,
    ) -> Bytes {
        let message = self.fbb.create_string(message);
        let body = fb::GoAway::create(
            &mut self.fbb,
            &fb::GoAwayArgs {
                code,
                message: Some(message),
                reconnect_after_ms,
            },
        );
        self.finish(fb::Body::GoAway, body.as_union_value())
    }
}
