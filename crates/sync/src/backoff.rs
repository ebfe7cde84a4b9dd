//! Back-off for threads that found no work.

use std::fmt;

/// Exponential back-off: spin a little, then yield the CPU.
///
/// Normally `crossbeam_utils::Backoff`. Under `cfg(loom)` every step is a
/// `loom::thread::yield_now`, which tells loom the thread cannot progress until another one runs
/// (a spinning loop would otherwise make a model explore an unbounded number of steps).
pub struct Backoff {
    #[cfg(not(loom))]
    inner: crossbeam_utils::Backoff,
}

impl Backoff {
    /// A fresh back-off.
    pub fn new() -> Self {
        Self {
            #[cfg(not(loom))]
            inner: crossbeam_utils::Backoff::new(),
        }
    }

    /// Waits a little longer each call: spins first, then yields the thread to the OS scheduler.
    /// Workers usually outnumber cores in tests, so yielding early matters.
    #[inline]
    pub fn snooze(&self) {
        #[cfg(not(loom))]
        {
            self.inner.snooze();
        }
        #[cfg(loom)]
        {
            loom::thread::yield_now();
        }
    }

    /// Starts over after progress.
    #[inline]
    pub fn reset(&self) {
        #[cfg(not(loom))]
        {
            self.inner.reset();
        }
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Backoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Backoff { .. }")
    }
}

/// Yields the current thread (loom-aware).
#[inline]
pub fn yield_now() {
    #[cfg(not(loom))]
    std::thread::yield_now();
    #[cfg(loom)]
    loom::thread::yield_now();
}
