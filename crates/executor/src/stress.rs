//! Test-only schedule perturbation (feature `stress`): random yield points in the worker loop,
//! before executions and after validations, so that a stress run explores interleavings that
//! the OS scheduler alone rarely produces. Off until [`set_yield_permille`] is called.
// Test infrastructure, not part of the algorithm: plain std atomics in statics (the shim's
// atomics are not const-constructible under loom, and this feature is never built with loom).
#![allow(clippy::disallowed_types)]

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

static PERMILLE: AtomicU32 = AtomicU32::new(0);
static STATE: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);

/// Yield at about `permille` of the yield points (0 turns perturbation off, 1000 yields at all).
pub fn set_yield_permille(permille: u32) {
    PERMILLE.store(permille.min(1000), Ordering::Relaxed);
}

/// A yield point: with the configured probability yields the thread, sometimes spins a little.
#[inline]
pub(crate) fn point() {
    let permille = PERMILLE.load(Ordering::Relaxed);
    if permille == 0 {
        return;
    }
    // A shared counter hashed by splitmix64: cheap, and the contention on it is more noise.
    let mut z = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    if (z % 1000) < u64::from(permille) {
        if z & 0x1000 == 0 {
            std::thread::yield_now();
        } else {
            for _ in 0..(z >> 40) % 2000 {
                std::hint::spin_loop();
            }
        }
    }
}
