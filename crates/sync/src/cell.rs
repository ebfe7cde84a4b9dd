//! A cell holding an `Arc<T>` that readers load without blocking writers.

use crate::Arc;
use std::fmt;

/// A shared, atomically replaceable `Arc<T>`.
///
/// Normally an `arc_swap::ArcSwap` (a load is a few uncontended atomic operations and never
/// waits for a store); under `cfg(loom)` a `Mutex<Arc<T>>`, which loom can see.
///
/// # Memory ordering
///
/// A `load` that observes a value written by `store` also observes everything the storing thread
/// did before the `store` (release/acquire, as `ArcSwap` and a mutex both guarantee).
pub struct ArcCell<T> {
    #[cfg(not(loom))]
    inner: arc_swap::ArcSwap<T>,
    #[cfg(loom)]
    inner: loom::sync::Mutex<Arc<T>>,
}

impl<T> ArcCell<T> {
    /// A cell holding `value`.
    pub fn new(value: Arc<T>) -> Self {
        #[cfg(not(loom))]
        {
            Self {
                inner: arc_swap::ArcSwap::new(value),
            }
        }
        #[cfg(loom)]
        {
            Self {
                inner: loom::sync::Mutex::new(value),
            }
        }
    }

    /// The current value.
    #[inline]
    pub fn load(&self) -> Arc<T> {
        #[cfg(not(loom))]
        {
            self.inner.load_full()
        }
        #[cfg(loom)]
        {
            Arc::clone(
                &self
                    .inner
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            )
        }
    }

    /// Replaces the value.
    #[inline]
    pub fn store(&self, value: Arc<T>) {
        #[cfg(not(loom))]
        {
            self.inner.store(value);
        }
        #[cfg(loom)]
        {
            *self
                .inner
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = value;
        }
    }
}

impl<T: Default> Default for ArcCell<T> {
    fn default() -> Self {
        Self::new(Arc::new(T::default()))
    }
}

impl<T> fmt::Debug for ArcCell<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ArcCell { .. }")
    }
}
