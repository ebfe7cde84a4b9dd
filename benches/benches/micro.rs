//! criterion micro-benchmarks: the multi-version memory's read and record, and the scheduler's
//! next-task path. `cargo bench -p blockstm-benches --bench micro`.

use blockstm_mvmemory::{MvMemory, Version};
use blockstm_scheduler::{FinishExecution, Scheduler, Task, Worker};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;

const N: usize = 1_000;

fn mvmemory(c: &mut Criterion) {
    let mut group = c.benchmark_group("mvmemory");
    group.throughput(Throughput::Elements(N as u64));
    group.sample_size(20).measurement_time(Duration::from_secs(1));
    // N transactions, each writing its own location and a shared hot one.
    let mv: MvMemory<u32, u64> = MvMemory::new(N);
    for i in 0..N {
        mv.record(Version::new(i, 0), vec![(i as u32, i as u64), (u32::MAX, i as u64)]);
    }
    group.bench_function("read own-location hit", |b| {
        b.iter(|| {
            for i in 0..N {
                black_box(mv.read(&(i as u32), N));
            }
        })
    });
    group.bench_function("read hot location (1000 versions)", |b| {
        b.iter(|| {
            for i in 0..N {
                black_box(mv.read(&u32::MAX, i));
            }
        })
    });
    group.bench_function("read miss", |b| {
        b.iter(|| {
            for i in 0..N {
                black_box(mv.read(&(N as u32 + i as u32), N));
            }
        })
    });
    group.bench_function("record 2 new locations", |b| {
        b.iter_with_setup(
            || MvMemory::<u32, u64>::new(N),
            |mv| {
                for i in 0..N {
                    black_box(mv.record(Version::new(i, 0), vec![(2 * i as u32, 1), (2 * i as u32 + 1, 1)]));
                }
                mv
            },
        )
    });
    group.bench_function("re-record same locations", |b| {
        b.iter(|| {
            for i in 0..N {
                black_box(mv.record(Version::new(i, 1), vec![(i as u32, 1), (u32::MAX, 1)]));
            }
        })
    });
    group.finish();
}

fn scheduler(c: &mut Criterion) {
    let mut group = c.benchmark_group("scheduler");
    group.throughput(Throughput::Elements(N as u64));
    group.sample_size(20).measurement_time(Duration::from_secs(1));
    // One thread driving N transactions through execute -> validate -> commit.
    group.bench_function("next_task/finish/commit cycle", |b| {
        b.iter_with_setup(
            || Scheduler::new(N, 256),
            |s| {
                let w = &mut Worker::new(0, 1, 0);
                let wrote = FinishExecution { wrote_new_location: true, ..FinishExecution::default() };
                let mut task = s.next_task(w);
                while let Some(t) = task {
                    task = match t {
                        Task::Execute(version) => {
                            s.finish_execution(w, version, wrote).expect("executing").validation
                        }
                        Task::Validate { version, wave } => {
                            s.finish_validation(w, version, wave);
                            None
                        }
                    }
                    .or_else(|| {
                        if let Some(mut guard) = s.try_lock_commit() {
                            while guard.try_commit_next().is_some() {}
                        }
                        s.next_task(w)
                    });
                }
                black_box(s.committed())
            },
        )
    });
    group.finish();
}

criterion_group!(benches, mvmemory, scheduler);
criterion_main!(benches);
