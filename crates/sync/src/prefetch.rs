//! Cache prefetch hints.

/// Asks the CPU to start bringing every cache line of `*value` into this core's cache, for
/// writing, without waiting for it.
///
/// Why it matters here: the executor stores a transaction's results into per-transaction slots
/// of arrays sized by the block (tens of megabytes for a gigagas block), which are cold by the
/// time the transaction runs. A plain store would miss quietly in the store buffer, but every
/// store here is followed by a lock acquisition, a locked compare-and-swap that waits for the
/// store buffer to drain (the spin lock's release is a plain store and does not wait; the
/// parking lock's is locked too): the miss is paid in full on the critical path. Prefetching
/// the slot when the transaction starts overlaps that miss with the VM's work. The
/// multi-version memory does the same for the place its next new location will take, at the
/// read that finds no location.
///
/// A hint only: it changes no value and nothing depends on it for correctness. It is a no-op
/// off x86_64 and under `cfg(loom)`.
#[inline]
pub fn prefetch_for_write<T>(value: &T) {
    #[cfg(all(target_arch = "x86_64", not(loom)))]
    {
        use std::arch::x86_64::{_MM_HINT_ET0, _mm_prefetch};
        const LINE: usize = 64;
        let start = std::ptr::from_ref(value).cast::<i8>();
        let mut offset = 0;
        while offset < size_of::<T>() {
            // SAFETY: `_mm_prefetch` only needs SSE, which every x86_64 CPU has; a prefetch never
            // faults and reads or writes no memory, and the address is inside `*value` anyway.
            unsafe { _mm_prefetch::<_MM_HINT_ET0>(start.wrapping_add(offset)) };
            offset += LINE;
        }
    }
    #[cfg(not(all(target_arch = "x86_64", not(loom))))]
    {
        let _ = value;
    }
}
