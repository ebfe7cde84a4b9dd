//! What one execution produced, independent of where it ran.

use crate::local::Failure;
use crate::{BlockError, StorageError};
use blockstm_mvmemory::TxnIndex;
use std::any::Any;

/// The result of one incarnation.
#[derive(Debug)]
pub(crate) enum Outcome<O, E> {
    Output(O),
    Error(E),
    Panic(String),
    Storage(StorageError),
    Delta { key: String, message: String },
    Doomed,
}

impl<O, E> Outcome<O, E> {
    /// Classifies an execution. A failure the view met (storage, a delta) wins over whatever
    /// the VM did after it (the VM only saw `Halt`), and a panic's message is kept.
    pub(crate) fn of(result: std::thread::Result<Result<O, E>>, failure: Option<Failure>) -> Self {
        match failure {
            Some(Failure::Storage(error)) => return Outcome::Storage(error),
            Some(Failure::Delta { key, message }) => return Outcome::Delta { key, message },
            Some(Failure::Doomed) => return Outcome::Doomed,
            None => {}
        }
        match result {
            Ok(Ok(output)) => Outcome::Output(output),
            Ok(Err(error)) => Outcome::Error(error),
            Err(payload) => Outcome::Panic(panic_message(payload.as_ref())),
        }
    }

    pub(crate) fn is_output(&self) -> bool {
        matches!(self, Outcome::Output(_))
    }

    /// The output, or the block error this outcome is once final.
    pub(crate) fn into_result(self, txn_idx: TxnIndex) -> Result<O, BlockError<E>> {
        match self {
            Outcome::Output(output) => Ok(output),
            Outcome::Error(error) => Err(BlockError::Vm { txn_idx, error }),
            Outcome::Panic(message) => Err(BlockError::Panic { txn_idx, message }),
            Outcome::Storage(error) => Err(BlockError::Storage { txn_idx, error }),
            Outcome::Delta { key, message } => Err(BlockError::Delta { txn_idx, key, message }),
            Outcome::Doomed => Err(BlockError::Internal(format!(
                "transaction {txn_idx} committed an execution that read through failing deltas"
            ))),
        }
    }
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
