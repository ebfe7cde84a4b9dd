//! Non-poisoning mutexes with one shape for both backends: [`Mutex`], which parks a waiting
//! thread, and [`SpinMutex`], whose release is a plain store.
//!
//! # Which one
//!
//! - [`SpinMutex`] for the hot, short critical sections: a multi-version memory shard, a
//!   transaction's status, its last-execution slot. Nothing in them blocks or calls user code;
//!   they last tens to hundreds of nanoseconds.
//! - [`Mutex`] for every lock that may be held while user code runs or for long (the commit
//!   lock and the commit sink, held while the commit hook runs; block-level bookkeeping).
//!
//! # Why a spin lock
//!
//! `parking_lot` releases with a locked compare-and-swap (it must see whether a thread parked).
//! On x86 a locked instruction waits until every earlier store of the thread has reached the
//! cache. The stores made inside a short critical section are often to cold lines (a new
//! multi-version entry, a result slot), so the release paid their cache misses in full: perf
//! put ~60 % of `record_writes` and ~40 % of `next_task` on the instruction after the release.
//! A release store is an ordinary `mov` on x86 (and `stlr` on ARM), so those misses complete in
//! the background while the thread goes on (`blockstm bench` at two threads gains on every
//! workload that commits many short critical sections).
//!
//! # Waiting
//!
//! A waiter spins on a plain load (no write to the line while it is held) with [`Backoff`]:
//! 1, 2, 4, ... 64 pause hints between checks, then `yield_now` between checks, so a holder
//! that was preempted (tests run more workers than cores) gets the core back. There is no parking:
//! parking needs the release to check for parked threads after its store, which needs a full
//! fence, which is the cost being avoided.
//!
//! # Memory ordering
//!
//! Acquire on the successful compare-and-swap that takes the lock, Release on the store that
//! frees it: everything written under the lock happens-before everything the next holder does
//! under it. The spinning load is Relaxed; it only decides when to try the compare-and-swap.
//!
//! Under `cfg(loom)` both are `loom::sync::Mutex`, so the models check the algorithm's use of
//! the locks, not the lock itself (an acquire/release flag, the textbook case).

#[cfg(not(loom))]
use crate::Backoff;
use std::fmt;

/// The lock behind a [`Mutex`]: `parking_lot`'s (parks waiters; releases with a locked
/// instruction).
#[cfg(not(loom))]
pub type Parking = parking_lot::RawMutex;
/// The lock behind a [`SpinMutex`]: [`RawSpinLock`].
#[cfg(not(loom))]
pub type Spin = RawSpinLock;

/// Marker for the parking lock under loom (both kinds are `loom::sync::Mutex`).
#[cfg(loom)]
#[derive(Debug)]
pub struct Parking;
/// Marker for the spin lock under loom (both kinds are `loom::sync::Mutex`).
#[cfg(loom)]
#[derive(Debug)]
pub struct Spin;

/// Guard of a [`Mutex`]: the lock is held until it is dropped.
#[cfg(not(loom))]
pub type MutexGuard<'a, T> = lock_api::MutexGuard<'a, Parking, T>;
/// Guard of a [`Mutex`]: the lock is held until it is dropped.
#[cfg(loom)]
pub type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

/// A mutual-exclusion lock that never poisons. `R` is the lock's kind: [`Parking`] (this
/// type's default) or [`Spin`] (see [`SpinMutex`]).
pub struct Mutex<T, R = Parking>(
    #[cfg(not(loom))] lock_api::Mutex<R, T>,
    #[cfg(loom)] loom::sync::Mutex<T>,
    #[cfg(loom)] std::marker::PhantomData<R>,
);

/// A [`Mutex`] for short critical sections that never block: waiters spin, and release is a
/// plain store (see the module docs).
pub type SpinMutex<T> = Mutex<T, Spin>;

#[cfg(not(loom))]
impl<T, R: lock_api::RawMutex> Mutex<T, R> {
    /// A new unlocked mutex holding `value`.
    pub fn new(value: T) -> Self {
        Self(lock_api::Mutex::new(value))
    }

    /// Blocks until the lock is held.
    #[inline]
    pub fn lock(&self) -> lock_api::MutexGuard<'_, R, T> {
        self.0.lock()
    }

    /// Takes the lock if it is free right now.
    #[inline]
    pub fn try_lock(&self) -> Option<lock_api::MutexGuard<'_, R, T>> {
        self.0.try_lock()
    }

    /// The value, for the sole owner.
    pub fn into_inner(self) -> T {
        self.0.into_inner()
    }
}

#[cfg(loom)]
impl<T, R> Mutex<T, R> {
    /// A new unlocked mutex holding `value`.
    pub fn new(value: T) -> Self {
        Self(loom::sync::Mutex::new(value), std::marker::PhantomData)
    }

    /// Blocks until the lock is held.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes the lock if it is free right now.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        match self.0.try_lock() {
            Ok(guard) => Some(guard),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// The value, for the sole owner.
    pub fn into_inner(self) -> T {
        self.0.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(not(loom))]
impl<T: Default, R: lock_api::RawMutex> Default for Mutex<T, R> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

#[cfg(loom)]
impl<T: Default, R> Default for Mutex<T, R> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T, R> fmt::Debug for Mutex<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Mutex { .. }")
    }
}

/// A test-and-test-and-set spin lock whose release is a plain store. See the module docs.
#[cfg(not(loom))]
#[derive(Debug)]
pub struct RawSpinLock {
    locked: std::sync::atomic::AtomicBool,
}

#[cfg(not(loom))]
impl RawSpinLock {
    #[inline]
    fn try_take(&self) -> bool {
        use std::sync::atomic::Ordering::{Acquire, Relaxed};
        self.locked.compare_exchange(false, true, Acquire, Relaxed).is_ok()
    }

    #[cold]
    fn lock_contended(&self) {
        // Exponential: 1, 2, 4, ... 64 pause hints between checks, then yields. A critical
        // section lasts tens of nanoseconds, so the first checks must come that soon;
        // `SpinWait`'s fixed 16 pauses (~1 us here) per check are meant for waiting out a
        // whole execution.
        let backoff = Backoff::new();
        loop {
            // Read-only while the lock is held: the holder keeps its line until it releases.
            while self.locked.load(std::sync::atomic::Ordering::Relaxed) {
                backoff.snooze();
            }
            if self.try_take() {
                return;
            }
        }
    }
}

// SAFETY: `lock` and `try_lock` return (true) only after the compare-and-swap from `false` to
// `true` succeeded, so at most one holder exists at a time; `unlock` is called by the holder
// only (lock_api's contract), and its Release store pairs with the Acquire of the next
// successful compare-and-swap.
#[cfg(not(loom))]
unsafe impl lock_api::RawMutex for RawSpinLock {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = Self { locked: std::sync::atomic::AtomicBool::new(false) };
    type GuardMarker = lock_api::GuardSend;

    #[inline]
    fn lock(&self) {
        if !self.try_take() {
            self.lock_contended();
        }
    }

    #[inline]
    fn try_lock(&self) -> bool {
        self.try_take()
    }

    #[inline]
    unsafe fn unlock(&self) {
        self.locked.store(false, std::sync::atomic::Ordering::Release);
    }
}

#[cfg(all(test, not(loom)))]
mod test {
    use super::{Mutex, SpinMutex};

    /// Mutual exclusion and visibility: threads (more than cores, so holders get preempted
    /// while others wait) do a read-modify-write of a plain value in two steps under the lock,
    /// with a yield in between; a second holder inside the section, or a release that did not
    /// publish the holder's writes, loses increments.
    fn counts_every_increment<R: lock_api::RawMutex + Send + Sync>(lock: &Mutex<u64, R>) {
        const THREADS: u64 = 8;
        const ROUNDS: u64 = 2_000;
        std::thread::scope(|scope| {
            for _ in 0..THREADS {
                scope.spawn(|| {
                    for round in 0..ROUNDS {
                        let mut value = lock.lock();
                        let seen = *value;
                        if round % 64 == 0 {
                            std::thread::yield_now();
                        }
                        *value = seen + 1;
                    }
                });
            }
        });
        assert_eq!(*lock.lock(), THREADS * ROUNDS);
    }

    #[test]
    fn spin_mutex_excludes_and_publishes() {
        counts_every_increment(&SpinMutex::new(0));
    }

    #[test]
    fn parking_mutex_excludes_and_publishes() {
        counts_every_increment(&Mutex::<u64>::new(0));
    }

    #[test]
    fn try_lock_fails_while_held_and_succeeds_after() {
        let lock = SpinMutex::new(1);
        let guard = lock.lock();
        assert!(lock.try_lock().is_none());
        drop(guard);
        assert_eq!(lock.try_lock().map(|value| *value), Some(1));
        assert_eq!(lock.into_inner(), 1);
    }
}
