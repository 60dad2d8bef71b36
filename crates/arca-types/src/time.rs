//! Time as Arca stores it (milliseconds since the Unix epoch) and as the wire shows it
//! (epoch seconds with a fraction). A `Clock` is injected so tests never wait.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Milliseconds since the Unix epoch, UTC.
pub type Millis = i64;

pub const MILLIS_PER_DAY: Millis = 86_400_000;

/// Wire form of a timestamp: epoch seconds as a JSON number with a fraction.
pub fn to_wire(ms: Millis) -> f64 {
    ms as f64 / 1000.0
}

/// Truncates to the start of the UTC day (LastAccessedDate has day granularity).
pub fn day_floor(ms: Millis) -> Millis {
    ms.div_euclid(MILLIS_PER_DAY) * MILLIS_PER_DAY
}

pub trait Clock: Send + Sync + 'static {
    fn now_millis(&self) -> Millis;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> Millis {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as Millis)
            .unwrap_or(0)
    }
}

/// A clock that tests move by hand.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start: Millis) -> Self {
        Self(Arc::new(AtomicI64::new(start)))
    }
    pub fn advance(&self, by: Millis) {
        self.0.fetch_add(by, Ordering::SeqCst);
    }
    pub fn set(&self, to: Millis) {
        self.0.store(to, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> Millis {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_floor_truncates() {
        assert_eq!(day_floor(MILLIS_PER_DAY + 5), MILLIS_PER_DAY);
        assert_eq!(to_wire(1500), 1.5);
    }
}

/// Real time plus an offset that only moves forward: `--dev` uses it so a test suite can
/// end a 7-day deletion window in a second without faking time anywhere else.
#[derive(Debug, Clone, Default)]
pub struct OffsetClock(Arc<AtomicI64>);

impl OffsetClock {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn advance(&self, by: Millis) {
        if by > 0 {
            self.0.fetch_add(by, Ordering::SeqCst);
        }
    }
}

impl Clock for OffsetClock {
    fn now_millis(&self) -> Millis {
        SystemClock.now_millis() + self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod offset_tests {
    use super::*;

    #[test]
    fn offset_clock_moves_forward_only() {
        let c = OffsetClock::new();
        let before = c.now_millis();
        c.advance(MILLIS_PER_DAY);
        c.advance(-5 * MILLIS_PER_DAY);
        assert!(c.now_millis() >= before + MILLIS_PER_DAY);
        assert!(c.now_millis() < before + 2 * MILLIS_PER_DAY);
    }
}
