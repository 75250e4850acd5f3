//! How long to wait before the next reconnection attempt: exponential backoff with jitter.
//!
//! A few lines rather than a backoff crate: the one this used (backon) computed with
//! `Duration`s and its own random generator, which weighed more in the package than the
//! rule itself.

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
            base: self.min_ms.into(),
            ceiling: (self.max_ms / 2).max(self.min_ms).into(),
            max: self.max_ms.into(),
        }
    }
}

/// An endless run of growing, jittered delays: a base that doubles from `min` up to
/// `max / 2`, plus a random share of up to 100 % of it, so that every delay lies within
/// [min, max] and clients that lost the same server do not come back in step.
pub(crate) struct Delays {
    base: f64,
    ceiling: f64,
    max: f64,
}

impl Delays {
    /// The next delay, in milliseconds.
    pub fn next_ms(&mut self) -> u32 {
        let base = self.base;
        self.base = (base * 2.0).min(self.ceiling);
        (base + base * random()).min(self.max) as u32
    }
}

/// A random number in [0, 1).
fn random() -> f64 {
    #[cfg(target_arch = "wasm32")]
    {
        js_sys::Math::random()
    }
    // The host's tests: any share will do.
    #[cfg(not(target_arch = "wasm32"))]
    {
        0.5
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
