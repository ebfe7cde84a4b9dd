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

/// Waiting for a condition that another *running* thread is about to make true (a lower
/// transaction finishing its execution).
///
/// Spins with CPU pause hints between checks for a bounded number of checks, then yields between
/// checks. Yielding at once costs a system call per check and delays noticing the change; with
/// as many workers as cores the other thread is running, so the change comes within an
/// execution's time. Spinning forever would starve the thread being waited for when workers
/// outnumber cores, hence the switch to yielding. Under `cfg(loom)` every wait yields.
#[derive(Debug, Default)]
pub struct SpinWait {
    checks: u32,
}

#[cfg_attr(loom, allow(dead_code))]
impl SpinWait {
    /// Pause hints between two checks while spinning (a few hundred nanoseconds).
    const SPINS_PER_CHECK: u32 = 16;
    /// Checks made spinning before yielding instead (in the order of 100 microseconds).
    const SPIN_CHECKS: u32 = 256;

    /// A fresh wait.
    pub fn new() -> Self {
        Self { checks: 0 }
    }

    /// Waits a little before the caller checks its condition again.
    #[inline]
    pub fn wait(&mut self) {
        #[cfg(not(loom))]
        {
            if self.checks < Self::SPIN_CHECKS {
                self.checks += 1;
                for _ in 0..Self::SPINS_PER_CHECK {
                    std::hint::spin_loop();
                }
            } else {
                std::thread::yield_now();
            }
        }
        #[cfg(loom)]
        {
            self.checks = self.checks.wrapping_add(1);
            loom::thread::yield_now();
        }
    }
}
