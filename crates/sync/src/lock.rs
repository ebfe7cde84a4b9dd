//! Non-poisoning mutex and reader-writer lock with one shape for both backends.

use std::fmt;

#[cfg(not(loom))]
type MutexImpl<T> = parking_lot::Mutex<T>;
#[cfg(loom)]
type MutexImpl<T> = loom::sync::Mutex<T>;

#[cfg(not(loom))]
type RwLockImpl<T> = parking_lot::RwLock<T>;
// loom 0.7's RwLock model asserted ("expected to be able to acquire read lock") on valid
// read acquisitions in our mvmemory model; it has open bugs in its reader bookkeeping. Under
// loom the lock is therefore a mutex: readers are serialized, which is stronger exclusion than
// the real lock, and readers change nothing, so no interleaving of the algorithm is lost.
#[cfg(loom)]
type RwLockImpl<T> = loom::sync::Mutex<T>;

/// Guard of a [`Mutex`].
#[cfg(not(loom))]
pub type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;
/// Guard of a [`Mutex`].
#[cfg(loom)]
pub type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

/// Shared guard of a [`RwLock`].
#[cfg(not(loom))]
pub type RwLockReadGuard<'a, T> = parking_lot::RwLockReadGuard<'a, T>;
/// Shared guard of a [`RwLock`] (exclusive under loom, see above).
#[cfg(loom)]
pub type RwLockReadGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

/// Exclusive guard of a [`RwLock`].
#[cfg(not(loom))]
pub type RwLockWriteGuard<'a, T> = parking_lot::RwLockWriteGuard<'a, T>;
/// Exclusive guard of a [`RwLock`].
#[cfg(loom)]
pub type RwLockWriteGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

/// A mutual-exclusion lock that never poisons.
pub struct Mutex<T>(MutexImpl<T>);

impl<T> Mutex<T> {
    /// A new unlocked mutex holding `value`.
    pub fn new(value: T) -> Self {
        Self(MutexImpl::new(value))
    }

    /// Blocks until the lock is held.
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        #[cfg(not(loom))]
        {
            self.0.lock()
        }
        #[cfg(loom)]
        {
            self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
        }
    }

    /// Takes the lock if it is free right now.
    #[inline]
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        #[cfg(not(loom))]
        {
            self.0.try_lock()
        }
        #[cfg(loom)]
        {
            match self.0.try_lock() {
                Ok(guard) => Some(guard),
                Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            }
        }
    }

    /// The value, for the sole owner.
    pub fn into_inner(self) -> T {
        #[cfg(not(loom))]
        {
            self.0.into_inner()
        }
        #[cfg(loom)]
        {
            self.0.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner)
        }
    }

    /// The value, through an exclusive borrow: no locking (nobody else can hold the lock).
    #[inline]
    pub fn get_mut(&mut self) -> &mut T {
        #[cfg(not(loom))]
        {
            self.0.get_mut()
        }
        #[cfg(loom)]
        {
            self.0.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner)
        }
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Mutex { .. }")
    }
}

/// A reader-writer lock that never poisons.
pub struct RwLock<T>(RwLockImpl<T>);

impl<T> RwLock<T> {
    /// A new unlocked lock holding `value`.
    pub fn new(value: T) -> Self {
        Self(RwLockImpl::new(value))
    }

    /// Shared access.
    #[inline]
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        #[cfg(not(loom))]
        {
            self.0.read()
        }
        #[cfg(loom)]
        {
            self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
        }
    }

    /// Exclusive access.
    #[inline]
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        #[cfg(not(loom))]
        {
            self.0.write()
        }
        #[cfg(loom)]
        {
            self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
        }
    }

    /// The value, for the sole owner.
    pub fn into_inner(self) -> T {
        #[cfg(not(loom))]
        {
            self.0.into_inner()
        }
        #[cfg(loom)]
        {
            self.0.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner)
        }
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RwLock { .. }")
    }
}
