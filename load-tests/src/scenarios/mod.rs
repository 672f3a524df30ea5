//! Load scenarios, one module each. A scenario takes the common flags and
//! its own, runs for a bounded time, and returns a report struct that is
//! printed, written as JSON and charted in the HTML report.

pub mod chat;
pub mod connections;
pub mod fanout;
pub mod persist;
pub mod reconnect;
pub mod tracking;
pub mod traffic;
