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
    ///
    /// ```
    /// use layercake_backends::Timestamp;
    /// assert!(Timestamp::now().as_millis() > 0);
    /// ```
    pub fn now() -> Self {
        static ANCHOR: OnceLock<(u64, tokio::time::Instant)> = OnceLock::new();
        let (wall, at) = ANCHOR.get_or_init(|| {
            let wall = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            (duration_millis(wall), tokio::time::Instant::now())
        });
        // An instant before the anchor (another runtime's paused clock, say) still maps to its
        // own point in time, so every clock moves exactly as its instants do. Floored in
        // milliseconds, so the rounding is the same on both sides of the anchor. In `u64`
        // arithmetic: a 128-bit division was a tenth of a typed hit.
        let now = tokio::time::Instant::now();
        let millis = match now.checked_duration_since(*at) {
            Some(after) => wall.saturating_add(floor_millis(after)),
            None => {
                let before = *at - now;
                let ceil = floor_millis(before) + u64::from(before.subsec_nanos() % 1_000_000 != 0);
                wall.saturating_sub(ceil)
            }
        };
        Timestamp(millis)
    }

    /// A timestamp from milliseconds since the Unix epoch.
    ///
    /// ```
    /// use layercake_backends::Timestamp;
    /// assert_eq!(Timestamp::from_millis(42).as_millis(), 42);
    /// ```
    pub const fn from_millis(millis: u64) -> Self {
        Timestamp(millis)
    }

    /// Milliseconds since the Unix epoch.
    ///
    /// ```
    /// use layercake_backends::Timestamp;
    /// assert_eq!(Timestamp::from_millis(7).as_millis(), 7);
    /// ```
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// The time from `earlier` to `self`, or zero when `earlier` is later.
    ///
    /// ```
    /// use std::time::Duration;
    /// use layercake_backends::Timestamp;
    /// let (a, b) = (Timestamp::from_millis(1_000), Timestamp::from_millis(3_000));
    /// assert_eq!(b.saturating_duration_since(a), Duration::from_secs(2));
    /// assert_eq!(a.saturating_duration_since(b), Duration::ZERO);
    /// ```
    pub fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl std::ops::Sub<Duration> for Timestamp {
    type Output = Timestamp;

    /// Saturates at the epoch.
    fn sub(self, rhs: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(duration_millis(rhs)))
    }
}

impl From<SystemTime> for Timestamp {
    /// Times before the epoch saturate to it.
    fn from(time: SystemTime) -> Self {
        Timestamp(duration_millis(
            time.duration_since(UNIX_EPOCH).unwrap_or_default(),
        ))
    }
}

impl From<Timestamp> for SystemTime {
    fn from(time: Timestamp) -> Self {
        UNIX_EPOCH + Duration::from_millis(time.0)
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

/// Whole milliseconds in `d`, saturating (a division of a `u32` by a constant, not of a
/// `u128`).
fn floor_millis(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1_000)
        .saturating_add(u64::from(d.subsec_millis()))
}

fn duration_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Timestamp;

    /// A current-thread runtime whose clock starts paused.
    fn paused_runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
    }

    #[test]
    fn whole_milliseconds_floor_on_both_sides_of_the_anchor() {
        use super::floor_millis;
        assert_eq!(floor_millis(Duration::from_nanos(1_999_999)), 1);
        assert_eq!(floor_millis(Duration::from_secs(3)), 3_000);
        assert_eq!(floor_millis(Duration::MAX), u64::MAX);
        // Inside a paused runtime (usually behind the anchor, see below), as outside it.
        let runtime = paused_runtime();
        let outside = Timestamp::now();
        runtime.block_on(async {
            let t0 = Timestamp::now();
            tokio::time::advance(Duration::from_micros(1_500)).await;
            let t1 = Timestamp::now();
            // Whatever side of the anchor the paused clock is on, 1.5 ms moves it by 1 or 2
            // whole milliseconds, never 0 or 3.
            let moved = t1.saturating_duration_since(t0);
            assert!(moved == Duration::from_millis(1) || moved == Duration::from_millis(2));
        });
        assert!(Timestamp::now() >= outside);
    }

    #[test]
    fn clocks_behind_the_anchor_still_move() {
        // A paused runtime's clock stops where the runtime was built; the anchor is set after
        // that, so inside the runtime, now is behind the anchor. Its time must move anyway.
        let runtime = paused_runtime();
        let first = Timestamp::now();
        runtime.block_on(async {
            let t0 = Timestamp::now();
            tokio::time::advance(Duration::from_secs(5)).await;
            assert_eq!(
                Timestamp::now().saturating_duration_since(t0),
                Duration::from_secs(5)
            );
        });
        assert!(Timestamp::now() >= first);
    }
}
