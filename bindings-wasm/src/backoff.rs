//! How long to wait before the next reconnection attempt.

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use std::time::Duration;

/// The `reconnect` option: the bounds of the delay between two connection attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reconnect {
    pub min_ms: u32,
    pub max_ms: u32,
}

impl Default for Reconnect {
    fn default() -> Reconnect {
        Reconnect {
            min_ms: 500,
            max_ms: 30_000,
        }
    }
}

impl Reconnect {
    /// The delays of one run of failed attempts, reset once a connection succeeds.
    pub fn delays(self) -> Delays {
        Delays {
            max: Duration::from_millis(self.max_ms.into()),
            // backon's jitter adds a random share of up to 100 % to each delay; its base
            // doubles from min up to max / 2, so every delay lies within [min, max] and
            // clients that lost the same server do not come back in step.
            inner: ExponentialBuilder::new()
                .with_min_delay(Duration::from_millis(self.min_ms.into()))
                .with_max_delay(Duration::from_millis(
                    (self.max_ms / 2).max(self.min_ms).into(),
                ))
                .with_jitter()
                .with_jitter_seed(seed())
                .without_max_times()
                .build(),
        }
    }
}

/// An endless run of growing, jittered delays.
pub(crate) struct Delays {
    inner: ExponentialBackoff,
    max: Duration,
}

impl Delays {
    /// The next delay, in milliseconds.
    pub fn next_ms(&mut self) -> u32 {
        let delay = self.inner.next().unwrap_or(self.max).min(self.max);
        delay.as_millis().try_into().unwrap_or(u32::MAX)
    }
}

/// A seed for the jitter. Without `std`, backon would use one fixed seed in every browser,
/// which is exactly the lockstep jitter exists to break.
fn seed() -> u64 {
    #[cfg(target_arch = "wasm32")]
    {
        let high = (js_sys::Math::random() * 4_294_967_296.0) as u64;
        let low = (js_sys::Math::random() * 4_294_967_296.0) as u64;
        (high << 32) | low
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0x5eed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_within_bounds() {
        let mut delays = Reconnect {
            min_ms: 100,
            max_ms: 2_000,
        }
        .delays();
        let first: Vec<u32> = (0..20).map(|_| delays.next_ms()).collect();
        assert!(
            first.iter().all(|&d| (100..=2_000).contains(&d)),
            "{first:?}"
        );
        assert!(first[0] < 200, "{first:?}");
        // After a few doublings the base is max / 2, so the delays lie in [1000, 2000].
        assert!(first[10..].iter().all(|&d| d >= 1_000), "{first:?}");
    }

    #[test]
    fn max_below_twice_min_still_bounds_the_delay() {
        let mut delays = Reconnect {
            min_ms: 100,
            max_ms: 150,
        }
        .delays();
        assert!((0..10).map(|_| delays.next_ms()).all(|d| d <= 150));
    }
}
