//! The sync shim: the only module of blockstm that names atomics, locks, `Arc`-swapping cells and
//! spin back-off.
//!
//! # Why
//!
//! Every other crate imports `blockstm_sync::{Mutex, SpinMutex, Backoff, atomic::*}`. In a
//! normal build these are thin wrappers over `parking_lot`, a spin lock of our own (through
//! `lock_api`), `crossbeam-utils` and `std::sync::atomic`. Under `RUSTFLAGS="--cfg loom"` they
//! become `loom`'s types, so the loom models can explore every interleaving of the algorithm
//! without the algorithm knowing.
//!
//! loom cannot see through `parking_lot` (its fast paths are its own atomics and can hang inside a
//! model) or `crossbeam-utils::Backoff` (it spins on the real CPU). Under `cfg(loom)` they are therefore replaced by:
//!
//! | normal build                 | under `cfg(loom)`                         |
//! |------------------------------|-------------------------------------------|
//! | `parking_lot::Mutex`         | `loom::sync::Mutex` (poison ignored)      |
//! | [`SpinMutex`] ([`RawSpinLock`]) | `loom::sync::Mutex` (poison ignored)   |
//! | `crossbeam_utils::Backoff`   | `loom::thread::yield_now`                 |
//! | `std::sync::atomic::*`       | `loom::sync::atomic::*`                   |
//! | `std::sync::Arc`             | `loom::sync::Arc`                         |
//!
//! There is no reader-writer lock: its only user, the multi-version memory, takes one mutex
//! per shard (one locked read-modify-write pair per access instead of a read lock and a
//! location lock). loom 0.7's own `RwLock` model also asserted on valid read acquisitions in
//! our models, so a new one would need the same care.
//!
//! # Two kinds of lock
//!
//! [`SpinMutex`] for the short critical sections on the hot paths (multi-version memory shards,
//! transaction status, last-execution slots): its release is a plain store, so it does not wait
//! for the holder's stores to cold lines. [`Mutex`] (parking) for locks held while user code
//! runs (the commit lock and sink, held across the commit hook). See the `lock` module docs.
//! The spin lock itself is not a loom model (loom's atomics cannot build a `const` lock); it is
//! a test-and-test-and-set flag with an Acquire compare-and-swap and a Release store, tested in
//! `lock::test` with more threads than cores.
//!
//! # Locks never poison
//!
//! A panic in VM code is caught before it can unwind through a held lock, but even if one did,
//! the wrappers expose one non-poisoning `lock()` shape: `parking_lot` does not poison, and the
//! loom wrappers take the guard out of a `PoisonError`.
//!
//! # Prefetch
//!
//! [`prefetch_for_write`] is a cache hint (an x86_64 prefetch instruction, a no-op elsewhere
//! and under loom). It lives here as the shim's one `unsafe` block, so the other crates keep
//! none: it changes no value, so it needs no model.
//!
//! A `clippy.toml` `disallowed-types` list keeps the rest of the workspace from naming the
//! underlying types directly.
#![allow(clippy::disallowed_types)]

pub mod atomic;

pub use crossbeam_utils::CachePadded;
#[cfg(loom)]
pub use loom::sync::Arc;
#[cfg(not(loom))]
pub use std::sync::Arc;

mod lock;
#[cfg(not(loom))]
pub use lock::RawSpinLock;
pub use lock::{Mutex, MutexGuard, Parking, Spin, SpinMutex};

mod backoff;
pub use backoff::{Backoff, SpinWait};

mod prefetch;
pub use prefetch::prefetch_for_write;
