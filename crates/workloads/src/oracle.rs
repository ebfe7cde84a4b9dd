//! The oracle bound: the physical limit of a block (see `docs/benchmarks.md`).
//!
//! A sequential run records each transaction's true read set, write set and execution time.
//! Transaction `i` depends on `j < i` when `i` reads a location whose last writer before `i` is
//! `j` (with multi-version memory, write-after-write and write-after-read do not matter), or
//! when `j` applied a delta to it after that last writer (deltas commute with each other, so a
//! transaction that only applies deltas depends on nobody for them). That gives a DAG in block
//! order, from which:
//!
//! - `W`, the total work, and `CP`, the heaviest path: `W / CP` is the block's parallelism;
//! - `T(P)`, the makespan of list scheduling on `P` workers with the DAG known in advance
//!   (whenever a worker is free it starts the ready transaction with the lowest index), which
//!   satisfies `max(W / P, CP) <= T(P) <= W / P + CP`;
//! - `bound(P) = W / T(P)`: no executor that does not know the DAG in advance can do better,
//!   and `efficiency(P) = speedup(P) / bound(P)`.

use ahash::RandomState;
use blockstm_executor::{Halt, LayeredView, ReadBelow, ResolveError, Storage, Vm, Write};
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;
use std::time::Instant;

/// What one transaction of a profiled sequential run touched, and how long it took.
#[derive(Clone, Debug, PartialEq)]
pub struct TxnProfile<K> {
    /// Locations read from outside the transaction's own writes (each once).
    pub reads: Vec<K>,
    /// Locations written with a full value (each once).
    pub writes: Vec<K>,
    /// Locations only updated by deltas (each once).
    pub deltas: Vec<K>,
    /// Execution time in seconds.
    pub seconds: f64,
}

/// Runs `txns` sequentially over `storage`, recording each transaction's reads, writes and
/// time. Stops with an error message at the first transaction that fails.
pub fn profile<VM, S>(
    vm: &VM,
    storage: &S,
    txns: &[VM::Transaction],
) -> Result<Vec<TxnProfile<VM::Key>>, String>
where
    VM: Vm,
    S: Storage<VM::Key, VM::Value>,
{
    let mut state: HashMap<VM::Key, VM::Value, RandomState> = HashMap::default();
    let mut profiles = Vec::with_capacity(txns.len());
    for (txn_idx, txn) in txns.iter().enumerate() {
        let mut view =
            LayeredView::new(RecordingBelow { storage, state: &state, reads: Vec::new(), failure: None });
        let start = Instant::now();
        let result = vm.execute(txn_idx, txn, &mut view);
        let seconds = start.elapsed().as_secs_f64();
        if let Some(failure) = view.below.failure {
            return Err(format!("transaction {txn_idx}: {failure}"));
        }
        if let Err(error) = result {
            return Err(format!("transaction {txn_idx} failed: {error:?}"));
        }
        let LayeredView { writes, below: RecordingBelow { reads, .. } } = view;
        let (mut written, mut deltas) = (Vec::new(), Vec::new());
        for (key, write) in writes {
            match write {
                Write::Value(_) => written.push(key.clone()),
                Write::Deltas(_) => deltas.push(key.clone()),
            }
            let below = || match state.get(&key) {
                Some(value) => Ok(Some(value.clone())),
                None => storage.read(&key),
            };
            let value = write.resolve(below).map_err(|error| match error {
                ResolveError::Below(e) => format!("transaction {txn_idx}: storage failed: {e}"),
                ResolveError::Delta(e) => format!("transaction {txn_idx}: a delta to {key:?} failed: {e}"),
            })?;
            state.insert(key, value);
        }
        profiles.push(TxnProfile { reads, writes: written, deltas, seconds });
    }
    Ok(profiles)
}

/// Below a transaction of the profiled run: the block's writes so far, then storage. Records
/// each location read there (once), that is, every read from outside the transaction's own
/// writes; the writes and deltas themselves behave as in the executors ([`LayeredView`]).
struct RecordingBelow<'a, K, V, S> {
    storage: &'a S,
    state: &'a HashMap<K, V, RandomState>,
    reads: Vec<K>,
    failure: Option<String>,
}

impl<K, V, S> ReadBelow<K, V> for RecordingBelow<'_, K, V, S>
where
    K: Eq + Hash + Clone + std::fmt::Debug,
    V: Clone,
    S: Storage<K, V>,
{
    fn read_below(&mut self, key: &K) -> Result<Option<V>, Halt> {
        if !self.reads.contains(key) {
            self.reads.push(key.clone());
        }
        if let Some(v) = self.state.get(key) {
            return Ok(Some(v.clone()));
        }
        self.storage.read(key).map_err(|e| {
            self.failure = Some(format!("storage failed: {e}"));
            Halt::default()
        })
    }

    fn delta_failed(&mut self, key: &K, message: String) {
        self.failure = Some(format!("a delta to {key:?} failed: {message}"));
    }

    fn halted(&self) -> bool {
        self.failure.is_some()
    }
}

/// A dependency DAG in block order: `deps[i]` are the transactions `i` reads from, all `< i`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dag {
    weights: Vec<f64>,
    deps: Vec<Vec<usize>>,
}

impl Dag {
    /// A DAG from weights and dependencies. Panics if a dependency does not point to a lower
    /// transaction or the lengths differ (a programming error in the caller).
    pub fn new(weights: Vec<f64>, deps: Vec<Vec<usize>>) -> Self {
        assert_eq!(weights.len(), deps.len(), "one dependency list per transaction");
        for (i, d) in deps.iter().enumerate() {
            assert!(d.iter().all(|&j| j < i), "transaction {i} depends on a later one: {d:?}");
        }
        Self { weights, deps }
    }

    /// The DAG of a profiled run: `i` depends on the last writer before `i` of each location
    /// it read, and on every transaction that applied a delta to it since that writer.
    pub fn from_profiles<K: Eq + Hash + Clone>(profiles: &[TxnProfile<K>]) -> Self {
        // Per location: the last full writer and the delta writers after it.
        let mut writers: HashMap<&K, (Option<usize>, Vec<usize>), RandomState> = HashMap::default();
        let mut deps = Vec::with_capacity(profiles.len());
        for (i, p) in profiles.iter().enumerate() {
            let mut d: Vec<usize> = Vec::new();
            for k in &p.reads {
                if let Some((last, deltas)) = writers.get(k) {
                    d.extend(last.iter().chain(deltas.iter()).copied());
                }
            }
            d.sort_unstable();
            d.dedup();
            deps.push(d);
            for k in &p.writes {
                writers.insert(k, (Some(i), Vec::new()));
            }
            for k in &p.deltas {
                writers.entry(k).or_default().1.push(i);
            }
        }
        Self::new(profiles.iter().map(|p| p.seconds).collect(), deps)
    }

    /// Number of transactions.
    pub fn len(&self) -> usize {
        self.weights.len()
    }

    /// Whether the DAG is empty.
    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    /// Total work `W`.
    pub fn work(&self) -> f64 {
        self.weights.iter().sum()
    }

    /// The heaviest path `CP`.
    pub fn critical_path(&self) -> f64 {
        let mut finish = vec![0.0f64; self.len()];
        for i in 0..self.len() {
            let ready = self.deps[i].iter().map(|&j| finish[j]).fold(0.0, f64::max);
            finish[i] = ready + self.weights[i];
        }
        finish.into_iter().fold(0.0, f64::max)
    }

    /// Makespan `T(P)` of list scheduling on `workers` workers: whenever a worker is free it
    /// starts the ready transaction with the lowest index.
    pub fn makespan(&self, workers: usize) -> f64 {
        let workers = workers.max(1);
        let n = self.len();
        let mut missing: Vec<usize> = self.deps.iter().map(Vec::len).collect();
        let mut dependents = vec![Vec::new(); n];
        for (i, d) in self.deps.iter().enumerate() {
            for &j in d {
                dependents[j].push(i);
            }
        }
        let mut ready: BinaryHeap<Reverse<usize>> =
            (0..n).filter(|&i| missing[i] == 0).map(Reverse).collect();
        let mut running: BinaryHeap<Reverse<(Time, usize)>> = BinaryHeap::new();
        let (mut now, mut done) = (0.0, 0);
        while done < n {
            while running.len() < workers {
                let Some(Reverse(i)) = ready.pop() else { break };
                running.push(Reverse((Time(now + self.weights[i]), i)));
            }
            let Reverse((Time(finish), i)) =
                running.pop().expect("a DAG in block order always has work running");
            now = finish;
            done += 1;
            for &d in &dependents[i] {
                missing[d] -= 1;
                if missing[d] == 0 {
                    ready.push(Reverse(d));
                }
            }
        }
        now
    }

    /// `bound(P) = W / T(P)` (1 for an empty or weightless block).
    pub fn bound(&self, workers: usize) -> f64 {
        let makespan = self.makespan(workers);
        if makespan > 0.0 { self.work() / makespan } else { 1.0 }
    }
}

/// A time ordered totally (no NaN arises from sums of durations).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Time(f64);

impl Eq for Time {}

impl PartialOrd for Time {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Time {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn independent_transactions_split_over_workers() {
        let dag = Dag::new(vec![1.0; 4], vec![vec![]; 4]);
        assert!(close(dag.work(), 4.0) && close(dag.critical_path(), 1.0));
        assert!(close(dag.makespan(1), 4.0));
        assert!(close(dag.makespan(2), 2.0));
        assert!(close(dag.makespan(3), 2.0), "4 unit jobs on 3 workers take 2 rounds");
        assert!(close(dag.bound(2), 2.0) && close(dag.bound(8), 4.0));
    }

    #[test]
    fn a_chain_has_no_parallelism() {
        let dag = Dag::new(vec![1.0, 2.0, 3.0], vec![vec![], vec![0], vec![1]]);
        assert!(close(dag.critical_path(), 6.0));
        for p in [1, 2, 8] {
            assert!(close(dag.makespan(p), 6.0));
            assert!(close(dag.bound(p), 1.0));
        }
    }

    #[test]
    fn diamond() {
        // 0 (1) -> 1 (2), 2 (1) -> 3 (1) needs 1 and 2.
        let dag = Dag::new(vec![1.0, 2.0, 1.0, 1.0], vec![vec![], vec![0], vec![0], vec![1, 2]]);
        assert!(close(dag.work(), 5.0) && close(dag.critical_path(), 4.0));
        assert!(close(dag.makespan(1), 5.0));
        assert!(close(dag.makespan(2), 4.0));
        assert!(close(dag.bound(2), 1.25));
    }

    #[test]
    fn list_scheduling_takes_the_lowest_ready_index() {
        // 0 (3) alone; 1 (1) then 2 (1) after it; 3 (3) independent. With 2 workers: t=0 start
        // 0 and 1; t=1 start 2 (lowest ready, before 3); t=2 start 3; 3 ends at t=5.
        let dag = Dag::new(vec![3.0, 1.0, 1.0, 3.0], vec![vec![], vec![], vec![1], vec![]]);
        assert!(close(dag.makespan(2), 5.0));
        assert!(close(dag.bound(2), 8.0 / 5.0));
    }

    #[test]
    fn makespan_respects_the_classic_bounds() {
        let mut x = 1u64;
        let mut next = move || {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            x >> 33
        };
        for _ in 0..200 {
            let n = 1 + (next() % 40) as usize;
            let weights: Vec<f64> = (0..n).map(|_| 1.0 + (next() % 10) as f64).collect();
            let deps: Vec<Vec<usize>> =
                (0..n).map(|i| (0..i).filter(|_| next() % 5 == 0).collect()).collect();
            let dag = Dag::new(weights, deps);
            for p in [1, 2, 3, 8] {
                let (w, cp, t) = (dag.work(), dag.critical_path(), dag.makespan(p));
                assert!(t + 1e-9 >= (w / p as f64).max(cp), "lower bound: T={t} W={w} CP={cp} P={p}");
                assert!(t <= w / p as f64 + cp + 1e-9, "upper bound: T={t} W={w} CP={cp} P={p}");
            }
            assert!(close(dag.makespan(1), dag.work()));
        }
    }

    #[test]
    fn dependencies_come_from_the_last_writer_of_what_was_read() {
        let p = |reads: &[u8], writes: &[u8]| TxnProfile {
            reads: reads.to_vec(),
            writes: writes.to_vec(),
            deltas: Vec::new(),
            seconds: 1.0,
        };
        let profiles = vec![
            p(&[], b"a"),  // 0 writes a
            p(b"a", b"b"), // 1 reads a (0)
            p(b"c", &[]),  // 2 reads c: nobody wrote it
            p(b"ab", &[]), // 3 reads a (0) and b (1)
            p(&[], b"a"),  // 4 overwrites a: no dependency (write-after-read is free)
            p(b"a", &[]),  // 5 reads a: last writer is 4, not 0
        ];
        let dag = Dag::from_profiles(&profiles);
        assert_eq!(dag.deps, vec![vec![], vec![0], vec![], vec![0, 1], vec![], vec![4]]);
        assert!(close(dag.critical_path(), 3.0));
    }

    #[test]
    fn deltas_commute_but_a_reader_depends_on_every_delta_since_the_last_write() {
        let p = |reads: &[u8], writes: &[u8], deltas: &[u8]| TxnProfile {
            reads: reads.to_vec(),
            writes: writes.to_vec(),
            deltas: deltas.to_vec(),
            seconds: 1.0,
        };
        let profiles = vec![
            p(&[], &[], b"f"), // 0 credits f
            p(&[], &[], b"f"), // 1 credits f: independent of 0
            p(b"f", &[], &[]), // 2 reads f: after 0 and 1
            p(&[], b"f", &[]), // 3 overwrites f
            p(&[], &[], b"f"), // 4 credits f
            p(b"f", &[], &[]), // 5 reads f: after 3 and 4
        ];
        let dag = Dag::from_profiles(&profiles);
        assert_eq!(dag.deps, vec![vec![], vec![], vec![0, 1], vec![], vec![], vec![3, 4]]);
    }

    #[test]
    fn profiling_records_reads_writes_and_times() {
        use crate::{WorkTx, WorkVm};
        let storage: HashMap<u32, u64> = HashMap::from([(0, 100), (1, 100)]);
        let txns = vec![
            WorkTx::Transfer { from: 0, to: 1, amount: 5, fee: crate::Fee::None },
            WorkTx::Increment { key: 7, by_delta: false },
            WorkTx::Transfer { from: 1, to: 0, amount: 5, fee: crate::Fee::None },
        ];
        let profiles = profile(&WorkVm { rounds: 10 }, &storage, &txns).unwrap();
        assert_eq!(profiles[0].reads, vec![0, 1]);
        assert_eq!(profiles[0].writes, vec![0, 1]);
        assert_eq!(profiles[1].reads, vec![7]);
        let dag = Dag::from_profiles(&profiles);
        assert_eq!(dag.deps, vec![vec![], vec![], vec![0]]);
        assert!(profiles.iter().all(|p| p.seconds > 0.0));
    }
}
