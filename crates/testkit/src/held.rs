//! A dependency chain with a forced schedule, for tests that need a speculative execution to
//! happen on every run rather than by chance.

use crate::faults::Fault;
use crate::vm::{PANIC_PREFIX, TestError};
use crate::wait_until;
use blockstm_executor::{Halt, TxnView, Vm};
use blockstm_sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Transaction `i` writes location `i` with the value of location `i - 1` plus one. Transaction
/// 0 holds its execution until transaction 1 has started, so transaction 1's first incarnation
/// reads location 0 before transaction 0 has written it, on every run with two or more
/// workers: it must then be aborted (or wait), whatever the OS scheduler does. `on_stale` is
/// what transaction 1 does when it sees location 0 unset, which only such a speculative
/// execution can: go on (as 0), fail, or panic.
#[derive(Debug)]
pub struct HeldChainVm {
    started_1: AtomicBool,
    on_stale: Option<Fault>,
}

impl HeldChainVm {
    /// Holds transaction 0 until transaction 1 has started.
    pub fn new(on_stale: Option<Fault>) -> Self {
        Self { started_1: AtomicBool::new(false), on_stale }
    }

    /// Does not hold transaction 0 (for the sequential reference run, where transaction 1 only
    /// starts after it).
    pub fn released(on_stale: Option<Fault>) -> Self {
        Self { started_1: AtomicBool::new(true), on_stale }
    }
}

impl Vm for HeldChainVm {
    type Key = u32;
    type Value = u64;
    type Transaction = ();
    type Output = u64;
    type Error = TestError;
    type Delta = blockstm_executor::NoDelta;

    fn execute<V: TxnView<u32, u64>>(&self, txn_idx: usize, _: &(), view: &mut V) -> Result<u64, TestError> {
        // SeqCst: a test handshake, not part of the algorithm.
        match txn_idx {
            0 => wait_until(|| self.started_1.load(Ordering::SeqCst), Duration::from_secs(20)),
            1 => self.started_1.store(true, Ordering::SeqCst),
            _ => {}
        }
        let i = txn_idx as u32;
        let prev = match i {
            0 => 0,
            _ => match view.read(&(i - 1)).map_err(|_: Halt| TestError::Halted)? {
                Some(v) => v,
                None if i == 1 => match self.on_stale {
                    Some(Fault::Panic) => panic!("{PANIC_PREFIX}: transaction 1 saw location 0 unset"),
                    Some(Fault::Error) => return Err(TestError::Failed { acc: 0 }),
                    None => 0,
                },
                None => 0,
            },
        };
        view.write(i, prev + 1);
        Ok(prev + 1)
    }
}
