//! The session state machine driven in memory: frames in, actions out, on
//! a virtual clock. No sockets, no store.

mod harness;

mod edits;
mod handshake;
mod history;
mod plugins;
mod requests;
mod subscriptions;
mod tracking;
