//! `quiver:plugin/clock`: wall-clock time. Stateless; the host reads the
//! system clock.

use std::time::{SystemTime, UNIX_EPOCH};

use wasmtime::component::{HasData, Linker};

use crate::bindings::quiver::plugin::clock::{self, Host};

/// The capability has no state; this unit type is its host.
#[derive(Debug, Default)]
pub(crate) struct ClockHost;

struct HasClock;

impl HasData for HasClock {
    type Data<'a> = ClockHost;
}

pub(crate) fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    clock::add_to_linker::<T, HasClock>(linker, |_| ClockHost)
}

/// Unix milliseconds now (0 if the system clock is before 1970).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Host for ClockHost {
    async fn now_ms(&mut self) -> u64 {
        now_ms()
    }
}
