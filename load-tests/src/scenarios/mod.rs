//! Load scenarios, one module each. A scenario takes the common flags and
//! its own, runs for a bounded time, and returns a report struct that is
//! both printed and written as JSON.

pub mod fanout;
