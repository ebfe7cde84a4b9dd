//! criterion: each standard workload on the sequential baseline and the parallel executor at
//! 1 and 2 threads, throughput in transactions. `cargo bench -p blockstm-benches --bench workloads`.
//!
//! criterion reports absolute times with confidence intervals; the ratios that decide the
//! project's targets come from `blockstm bench` (interleaved pairs), see docs/benchmarks.md.

use blockstm::{BlockExecutor, Config, ParallelExecutor, SequentialExecutor};
use blockstm_workloads::{WorkVm, Workload};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;

const TXNS: usize = 2_000;

fn workloads(c: &mut Criterion) {
    let vm = WorkVm::calibrated(Duration::from_micros(5));
    for workload in Workload::ALL {
        let block = workload.generate(TXNS, 42);
        let mut group = c.benchmark_group(workload.to_string());
        group.throughput(Throughput::Elements(TXNS as u64));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1));
        let sequential = SequentialExecutor::new(vm);
        group.bench_function("sequential", |b| {
            b.iter(|| black_box(sequential.execute_block(&block.storage, &block.txns).expect("block runs")))
        });
        for threads in [1, 2] {
            let parallel = ParallelExecutor::new(vm, Config::new(threads).expect("threads > 0"));
            group.bench_with_input(BenchmarkId::new("parallel", threads), &threads, |b, _| {
                b.iter(|| black_box(parallel.execute_block(&block.storage, &block.txns).expect("block runs")))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, workloads);
criterion_main!(benches);
