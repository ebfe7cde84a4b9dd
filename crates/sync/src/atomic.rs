//! Atomic integers and flags: thin newtypes over `std::sync::atomic` (or `loom`'s under
//! `cfg(loom)`), so the rest of the workspace never names the underlying types and a
//! `clippy.toml` rule can enforce it.

pub use std::sync::atomic::Ordering;

#[cfg(loom)]
use loom::sync::atomic as imp;
#[cfg(not(loom))]
use std::sync::atomic as imp;

macro_rules! atomic_int {
    ($(#[$doc:meta])* $name:ident, $int:ty) => {
        $(#[$doc])*
        #[derive(Debug, Default)]
        #[repr(transparent)]
        pub struct $name(imp::$name);

        impl $name {
            /// A new atomic holding `value`.
            pub fn new(value: $int) -> Self {
                Self(imp::$name::new(value))
            }
            /// Loads the value.
            #[inline]
            pub fn load(&self, order: Ordering) -> $int {
                self.0.load(order)
            }
            /// Stores `value`.
            #[inline]
            pub fn store(&self, value: $int, order: Ordering) {
                self.0.store(value, order)
            }
            /// Adds, returning the previous value.
            #[inline]
            pub fn fetch_add(&self, value: $int, order: Ordering) -> $int {
                self.0.fetch_add(value, order)
            }
            /// Subtracts, returning the previous value.
            #[inline]
            pub fn fetch_sub(&self, value: $int, order: Ordering) -> $int {
                self.0.fetch_sub(value, order)
            }
            /// Stores the minimum of the current value and `value`, returning the previous value.
            #[inline]
            pub fn fetch_min(&self, value: $int, order: Ordering) -> $int {
                self.0.fetch_min(value, order)
            }
            /// Compare-and-exchange that may fail spuriously.
            #[inline]
            pub fn compare_exchange_weak(
                &self,
                current: $int,
                new: $int,
                success: Ordering,
                failure: Ordering,
            ) -> Result<$int, $int> {
                self.0.compare_exchange_weak(current, new, success, failure)
            }
        }
    };
}

atomic_int!(
    /// An atomic `usize`.
    AtomicUsize,
    usize
);
atomic_int!(
    /// An atomic `u64`.
    AtomicU64,
    u64
);

/// An atomic `bool`.
#[derive(Debug, Default)]
#[repr(transparent)]
pub struct AtomicBool(imp::AtomicBool);

impl AtomicBool {
    /// A new atomic holding `value`.
    pub fn new(value: bool) -> Self {
        Self(imp::AtomicBool::new(value))
    }
    /// Loads the value.
    #[inline]
    pub fn load(&self, order: Ordering) -> bool {
        self.0.load(order)
    }
    /// Stores `value`.
    #[inline]
    pub fn store(&self, value: bool, order: Ordering) {
        self.0.store(value, order)
    }
}
