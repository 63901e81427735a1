//! The one clock every freshness decision reads.

use std::{
    fmt,
    sync::OnceLock,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// A point in wall-clock time, in milliseconds since the Unix epoch.
///
/// Entries carry absolute timestamps so that instances sharing a byte tier agree on when an
/// entry was stored and until when it is fresh. [`Timestamp::now`] is read from tokio's clock,
/// anchored once to the system clock, so tests that pause and advance tokio's clock
/// (`#[tokio::test(start_paused = true)]`, `tokio::time::advance`) move it too, and no test of
/// expiry has to sleep.
///
/// ```
/// use std::time::Duration;
/// use layercake_backends::Timestamp;
///
/// let now = Timestamp::now();
/// let later = now + Duration::from_secs(5);
/// assert_eq!(later.saturating_duration_since(now), Duration::from_secs(5));
/// assert_eq!(now.saturating_duration_since(later), Duration::ZERO);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        static ANCHOR: OnceLock<(u64, tokio::time::Instant)> = OnceLock::new();
        let (wall, at) = ANCHOR.get_or_init(|| {
            let wall = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            (duration_millis(wall), tokio::time::Instant::now())
        });
        let elapsed = tokio::time::Instant::now().saturating_duration_since(*at);
        Timestamp(wall.saturating_add(duration_millis(elapsed)))
    }

    /// A timestamp from milliseconds since the Unix epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Timestamp(millis)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// The time from `earlier` to `self`, or zero when `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl std::ops::Add<Duration> for Timestamp {
    type Output = Timestamp;

    fn add(self, rhs: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(duration_millis(rhs)))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({}ms)", self.0)
    }
}

fn duration_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
