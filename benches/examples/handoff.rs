//! What one cache line costs to move between two cores on this machine: two threads pass a
//! counter back and forth through one atomic (each waits to see the other's value, then
//! writes the next), so every step is one line moving from one core's cache to the other's.
//! The figure is the time per step: the price of every line that two workers of a parallel
//! executor both write (a shared index, a lock, a transaction's status), paid at each change
//! of hands.
//!
//! `cargo run --release -p blockstm-benches --example handoff`
use blockstm_sync::CachePadded;
use blockstm_sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Steps per measurement.
const STEPS: u64 = 2_000_000;

/// Waits for each value of `counter` of the given parity below [`STEPS`] and writes the next.
fn play(counter: &AtomicU64, first: u64) {
    let mut expected = first;
    while expected < STEPS {
        if counter.load(Ordering::Acquire) == expected {
            counter.store(expected + 1, Ordering::Release);
            expected += 2;
        } else {
            std::hint::spin_loop();
        }
    }
}

fn main() {
    let counter = CachePadded::new(AtomicU64::new(0));
    let mut per_step = Vec::new();
    for _ in 0..7 {
        counter.store(0, Ordering::SeqCst);
        let start = Instant::now();
        std::thread::scope(|s| {
            s.spawn(|| play(&counter, 1));
            play(&counter, 0);
        });
        per_step.push(start.elapsed().as_nanos() as f64 / STEPS as f64);
    }
    per_step.sort_by(f64::total_cmp);
    println!(
        "one cache-line handoff between two threads: median {:.0} ns (range {:.0}..{:.0} ns) over 7 runs",
        per_step[3], per_step[0], per_step[6]
    );
}
