use super::*;
use blockstm_mvmemory::{Add, Write};
use smallvec::smallvec;

/// Storage for tests whose reads never need it.
fn no_storage(key: &u32) -> Result<Option<u32>, String> {
    panic!("storage read of {key} not expected")
}

fn v(txn_idx: TxnIndex, incarnation: u32) -> Version {
    Version::new(txn_idx, incarnation)
}

fn reads(items: &[(u32, ReadOrigin<u32>)]) -> ReadSet<u32, u32> {
    let mut set = ReadSet::new();
    for (k, o) in items {
        set.push(*k, o.clone());
    }
    set
}

#[test]
fn empty_read_set_is_valid() {
    let mv: MvMemory<u32, u32> = MvMemory::new(2);
    assert_eq!(validate(&ReadSet::new(), &mv, 1, no_storage), Validation::Valid);
}

#[test]
fn unchanged_versions_and_storage_reads_are_valid() {
    let mv: MvMemory<u32, u32> = MvMemory::new(4);
    mv.record(v(1, 3), vec![(1, 10)]);
    let set = reads(&[(1, ReadOrigin::Version(v(1, 3))), (2, ReadOrigin::Storage)]);
    assert!(validate(&set, &mv, 3, no_storage).is_valid());
    // A write above the reader is invisible to it.
    mv.record(v(3, 0), vec![(2, 5)]);
    assert!(validate(&set, &mv, 3, no_storage).is_valid());
}

#[test]
fn validation_fails_on_estimate() {
    let mv: MvMemory<u32, u32> = MvMemory::new(3);
    mv.record(v(0, 0), vec![(1, 10)]);
    mv.record(v(1, 0), vec![(2, 20)]);
    let set = reads(&[(1, ReadOrigin::Version(v(0, 0))), (2, ReadOrigin::Version(v(1, 0)))]);
    assert!(validate(&set, &mv, 2, no_storage).is_valid());
    mv.convert_writes_to_estimates(1);
    assert_eq!(validate(&set, &mv, 2, no_storage), Validation::Estimate { read: 1, blocking: 1 });
}

#[test]
fn validation_fails_on_changed_version() {
    let mv: MvMemory<u32, u32> = MvMemory::new(3);
    mv.record(v(1, 0), vec![(1, 10)]);
    let set = reads(&[(1, ReadOrigin::Version(v(1, 0)))]);
    // Same value, new incarnation: still a different version.
    mv.record(v(1, 1), vec![(1, 10)]);
    assert_eq!(validate(&set, &mv, 2, no_storage), Validation::Changed { read: 0 });
}

#[test]
fn validation_fails_when_a_lower_transaction_writes_over_a_storage_read() {
    let mv: MvMemory<u32, u32> = MvMemory::new(3);
    let set = reads(&[(1, ReadOrigin::Storage)]);
    mv.record(v(0, 0), vec![(1, 1)]);
    assert_eq!(validate(&set, &mv, 2, no_storage), Validation::Changed { read: 0 });
}

#[test]
fn validation_fails_when_the_read_version_is_removed() {
    let mv: MvMemory<u32, u32> = MvMemory::new(3);
    mv.record(v(1, 0), vec![(1, 10)]);
    let set = reads(&[(1, ReadOrigin::Version(v(1, 0)))]);
    mv.record(v(1, 1), vec![]);
    assert_eq!(validate(&set, &mv, 2, no_storage), Validation::Changed { read: 0 });
}

fn add(amounts: &[i128]) -> Write<u64, Add> {
    Write::Deltas(amounts.iter().map(|&a| Add(a)).collect())
}

/// Storage holding 100 at every location but 13, which fails.
fn hundred(key: &u32) -> Result<Option<u64>, String> {
    if *key == 13 { Err("unreadable".into()) } else { Ok(Some(100)) }
}

#[test]
fn deltas_resolve_on_the_nearest_value_or_storage() {
    let mv: MvMemory<u32, u64, Add> = MvMemory::new(5);
    mv.record_writes(v(1, 0), vec![(1, add(&[5]))]);
    mv.record_writes(v(2, 0), vec![(1, add(&[1, 2]))]);
    assert_eq!(resolve(&mv, &1, 3, &mut hundred), Resolution::Value(Some(108)), "storage base");
    assert_eq!(resolve(&mv, &1, 2, &mut hundred), Resolution::Value(Some(105)));
    mv.record(v(0, 0), vec![(1, 7)]);
    assert_eq!(resolve(&mv, &1, 3, &mut hundred), Resolution::Value(Some(15)), "value base");
    assert_eq!(
        mv.read(&1, 3),
        MvRead::Deltas { base: Some((v(0, 0), 7)), deltas: smallvec![Add(5), Add(1), Add(2)] }
    );
    mv.record_writes(v(3, 0), vec![(1, add(&[-16]))]);
    assert_eq!(resolve(&mv, &1, 4, &mut hundred), Resolution::DeltasFailed, "underflow");
    mv.convert_writes_to_estimates(1);
    assert_eq!(resolve(&mv, &1, 4, &mut hundred), Resolution::Estimate(1), "an ESTIMATE under deltas");
    mv.record_writes(v(1, 1), vec![(13, add(&[1]))]);
    assert_eq!(resolve(&mv, &13, 2, &mut hundred), Resolution::DeltasFailed, "storage under deltas");
    assert_eq!(resolve(&mv, &13, 1, &mut hundred), Resolution::StorageFailed);
}

#[test]
fn resolved_reads_are_validated_by_value() {
    let mv: MvMemory<u32, u64, Add> = MvMemory::new(4);
    mv.record_writes(v(1, 0), vec![(1, add(&[5]))]);
    let mut set = ReadSet::new();
    set.push(1, ReadOrigin::Resolved(Box::new(105)));
    assert!(validate(&set, &mv, 3, hundred).is_valid());
    // A re-execution applying the same amount: a new version, the same value.
    mv.record_writes(v(1, 1), vec![(1, add(&[5]))]);
    assert!(validate(&set, &mv, 3, hundred).is_valid());
    // Two deltas with the same sum, then a plain value equal to the resolution.
    mv.record_writes(v(1, 2), vec![(1, add(&[2, 3]))]);
    assert!(validate(&set, &mv, 3, hundred).is_valid());
    mv.record(v(2, 0), vec![(1, 105)]);
    assert!(validate(&set, &mv, 3, hundred).is_valid());
    // Another amount: invalid.
    mv.record(v(2, 1), vec![(1, 104)]);
    assert_eq!(validate(&set, &mv, 3, hundred), Validation::Changed { read: 0 });
    mv.record(v(2, 2), vec![]);
    mv.convert_writes_to_estimates(1);
    assert_eq!(validate(&set, &mv, 3, hundred), Validation::Estimate { read: 0, blocking: 1 });
}

#[test]
fn a_version_read_fails_when_deltas_land_above_it_and_a_failed_resolution_must_still_fail() {
    let mv: MvMemory<u32, u64, Add> = MvMemory::new(4);
    mv.record(v(0, 0), vec![(1, 7)]);
    let mut set = ReadSet::new();
    set.push(1, ReadOrigin::Version(v(0, 0)));
    assert!(validate(&set, &mv, 3, hundred).is_valid());
    mv.record_writes(v(1, 0), vec![(1, add(&[0]))]);
    assert_eq!(validate(&set, &mv, 3, hundred), Validation::Changed { read: 0 });

    let mut failed = ReadSet::new();
    failed.push(1, ReadOrigin::Unresolvable);
    mv.record_writes(v(2, 0), vec![(1, add(&[-8]))]);
    assert!(validate(&failed, &mv, 3, hundred).is_valid());
    mv.record_writes(v(2, 1), vec![(1, add(&[-7]))]);
    assert_eq!(validate(&failed, &mv, 3, hundred), Validation::Changed { read: 0 });
    // A storage failure without deltas is not the failure that was captured.
    let mut storage_read = ReadSet::new();
    storage_read.push(13, ReadOrigin::Unresolvable);
    assert_eq!(validate(&storage_read, &mv, 3, hundred), Validation::Changed { read: 0 });
}
