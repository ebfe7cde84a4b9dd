//! The sync shim: the only module of blockstm that names atomics, locks, `Arc`-swapping cells and
//! spin back-off.
//!
//! # Why
//!
//! Every other crate imports `blockstm_sync::{Mutex, Backoff, atomic::*}`. In a normal
//! build these are thin wrappers over `parking_lot`, `crossbeam-utils` and `std::sync::atomic`. Under `RUSTFLAGS="--cfg loom"` they become `loom`'s types, so the loom
//! models can explore every interleaving of the algorithm without the algorithm knowing.
//!
//! loom cannot see through `parking_lot` (its fast paths are its own atomics and can hang inside a
//! model) or `crossbeam-utils::Backoff` (it spins on the real CPU). Under `cfg(loom)` they are therefore replaced by:
//!
//! | normal build                 | under `cfg(loom)`                         |
//! |------------------------------|-------------------------------------------|
//! | `parking_lot::Mutex`         | `loom::sync::Mutex` (poison ignored)      |
//! | `crossbeam_utils::Backoff`   | `loom::thread::yield_now`                 |
//! | `std::sync::atomic::*`       | `loom::sync::atomic::*`                   |
//! | `std::sync::Arc`             | `loom::sync::Arc`                         |
//!
//! There is no reader-writer lock: its only user, the multi-version memory, takes one mutex
//! per shard (one locked read-modify-write pair per access instead of a read lock and a
//! location lock). loom 0.7's own `RwLock` model also asserted on valid read acquisitions in
//! our models, so a new one would need the same care.
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
pub use lock::{Mutex, MutexGuard};

mod backoff;
pub use backoff::{Backoff, SpinWait};

mod prefetch;
pub use prefetch::prefetch_for_write;
