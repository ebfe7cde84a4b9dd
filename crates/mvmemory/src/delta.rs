//! Commutative writes: deltas.
//!
//! A delta updates a location without reading it ("add 5"), so transactions that only apply
//! deltas to a hot location (a fee recipient, a counter) do not conflict with each other. The
//! VM chooses its delta type and says how one applies to its value type ([`Delta::apply`]),
//! including how it fails (an overflow).
//!
//! Deltas of one location are applied in block order, each on the value the transactions below
//! left, so the result is exactly what sequential execution gives, failures included: only the
//! *reading* of the location is deferred, never the order of the updates.

use std::fmt::{Debug, Display};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// An update of a value that does not need to read it first.
///
/// `apply` must be deterministic. It is called by whichever thread resolves a read or commits
/// the transaction; a panic in it is caught and reported like a failed application.
pub trait Delta<V>: Clone + Send + Sync + Debug {
    /// Why an application failed (an overflow, an underflow).
    type Error: Display;

    /// The value after applying this delta to `base` (`None`: the location is absent).
    fn apply(&self, base: Option<&V>) -> Result<V, Self::Error>;
}

/// The delta type of a VM that uses none: it has no values, so no delta ever exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoDelta {}

impl<V> Delta<V> for NoDelta {
    type Error = std::convert::Infallible;

    fn apply(&self, _: Option<&V>) -> Result<V, Self::Error> {
        match *self {}
    }
}

/// Adds a signed amount to an integer value, an absent location counting as zero. Fails when
/// the result does not fit the value type.
///
/// ```
/// use blockstm_mvmemory::{Add, Delta};
///
/// assert_eq!(Add(5).apply(Some(&10u64)).unwrap(), 15);
/// assert_eq!(Add(-3).apply(None::<&u64>).unwrap_err().to_string(), "0 + -3 does not fit in u64");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Add(pub i128);

/// An [`Add`] whose result does not fit the value type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddOverflow {
    /// The value the amount was added to, as text.
    pub base: String,
    /// The amount.
    pub amount: i128,
    /// The value type.
    pub ty: &'static str,
}

impl Display for AddOverflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} + {} does not fit in {}", self.base, self.amount, self.ty)
    }
}

impl std::error::Error for AddOverflow {}

macro_rules! add_for {
    ($($t:ty),*) => {$(
        impl Delta<$t> for Add {
            type Error = AddOverflow;

            fn apply(&self, base: Option<&$t>) -> Result<$t, AddOverflow> {
                let base = base.copied().unwrap_or(0);
                i128::try_from(base)
                    .ok()
                    .and_then(|b| b.checked_add(self.0))
                    .and_then(|sum| <$t>::try_from(sum).ok())
                    .ok_or_else(|| AddOverflow { base: base.to_string(), amount: self.0, ty: stringify!($t) })
            }
        }
    )*};
}

add_for!(u8, u16, u32, u64, i8, i16, i32, i64, i128);

impl Delta<u128> for Add {
    type Error = AddOverflow;

    fn apply(&self, base: Option<&u128>) -> Result<u128, AddOverflow> {
        let base = base.copied().unwrap_or(0);
        let sum = if self.0 >= 0 {
            base.checked_add(self.0.unsigned_abs())
        } else {
            base.checked_sub(self.0.unsigned_abs())
        };
        sum.ok_or_else(|| AddOverflow { base: base.to_string(), amount: self.0, ty: "u128" })
    }
}

/// Applies `deltas` in order on top of `base`. The error is the failing delta's error as text
/// (or its panic message): the executor reports it, it does not act on it.
pub fn apply_deltas<V, D: Delta<V>>(base: Option<&V>, deltas: &[D]) -> Result<V, String> {
    let (first, rest) = deltas.split_first().ok_or_else(|| "no delta to apply".to_owned())?;
    // AssertUnwindSafe: `apply` only gets shared references; nothing is left half-changed.
    let applied = catch_unwind(AssertUnwindSafe(|| -> Result<V, String> {
        let mut value = first.apply(base).map_err(|e| e.to_string())?;
        for delta in rest {
            value = delta.apply(Some(&value)).map_err(|e| e.to_string())?;
        }
        Ok(value)
    }));
    applied.unwrap_or_else(|payload| Err(format!("delta application panicked: {}", panic_text(&*payload))))
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_applies_in_order_and_reports_the_first_failure() {
        assert_eq!(apply_deltas(Some(&5u64), &[Add(3), Add(-8)]), Ok(0));
        assert_eq!(
            apply_deltas(None::<&u64>, &[Add(3), Add(-4), Add(10)]),
            Err("3 + -4 does not fit in u64".into())
        );
        assert_eq!(Add(1).apply(Some(&u128::MAX)).unwrap_err().ty, "u128");
        assert_eq!(
            Add(-1).apply(Some(&i64::MIN)).unwrap_err().to_string(),
            format!("{} + -1 does not fit in i64", i64::MIN)
        );
        assert_eq!(Add(1).apply(Some(&7i128)), Ok(8));
    }

    #[derive(Clone, Debug)]
    struct Panics;

    impl Delta<u64> for Panics {
        type Error = String;
        fn apply(&self, _: Option<&u64>) -> Result<u64, String> {
            panic!("boom")
        }
    }

    #[test]
    fn a_panicking_delta_is_a_failure() {
        let err = apply_deltas(Some(&1u64), &[Panics]).unwrap_err();
        assert_eq!(err, "delta application panicked: boom");
    }
}
