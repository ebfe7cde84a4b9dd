//! A minimal VM plugged into blockstm: each transaction adds to a named counter.

use blockstm_executor::{BlockExecutor, Config, Halt, ParallelExecutor, SequentialExecutor, TxnView, Vm};
use std::collections::HashMap;

/// Adds `amount` to `counter`, returning the new value.
struct AddTx {
    counter: &'static str,
    amount: u64,
}

#[derive(Debug)]
enum CounterError {
    Halted,
    Overflow,
}

impl From<Halt> for CounterError {
    fn from(_: Halt) -> Self {
        CounterError::Halted
    }
}

struct CounterVm;

impl Vm for CounterVm {
    type Key = &'static str;
    type Value = u64;
    type Transaction = AddTx;
    type Output = u64;
    type Error = CounterError;
    type Delta = blockstm_executor::NoDelta;

    fn execute<V: TxnView<Self::Key, u64>>(
        &self,
        _txn_idx: usize,
        tx: &AddTx,
        view: &mut V,
    ) -> Result<u64, CounterError> {
        let current = view.read(&tx.counter)?.unwrap_or(0);
        let next = current.checked_add(tx.amount).ok_or(CounterError::Overflow)?;
        view.write(tx.counter, next);
        Ok(next)
    }
}

fn main() {
    let storage = HashMap::from([("a", 100)]);
    let block: Vec<AddTx> =
        (0..100).map(|i| AddTx { counter: if i % 3 == 0 { "a" } else { "b" }, amount: i }).collect();

    let parallel =
        ParallelExecutor::new(CounterVm, Config::new(4).unwrap()).execute_block(&storage, &block).unwrap();
    let sequential = SequentialExecutor::new(CounterVm).execute_block(&storage, &block).unwrap();

    assert_eq!(parallel.outputs, sequential.outputs);
    assert_eq!(parallel.state, sequential.state);
    println!("final state: {:?} ({} executions)", parallel.state, parallel.stats.executions);
}
