//! The machine's own parallel ceiling for the benchmark VM's work: the same total hashing
//! done on one thread and split over N threads, no executor involved.
//! `cargo run --release --example ceiling [-- THREADS]`
use blockstm_workloads::work;
use std::time::Instant;

fn main() {
    let threads: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2);
    let total: u32 = 200_000_000;
    let mut ratios = Vec::new();
    for _ in 0..7 {
        let start = Instant::now();
        work(1, total);
        let one = start.elapsed().as_secs_f64();
        let start = Instant::now();
        std::thread::scope(|s| {
            for t in 0..threads {
                s.spawn(move || work(t as u64, total / threads as u32));
            }
        });
        let many = start.elapsed().as_secs_f64();
        ratios.push(one / many);
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "pure work on {threads} threads vs 1: median {:.3}x (range {:.3}x..{:.3}x)",
        ratios[3], ratios[0], ratios[6]
    );
}
