use super::*;

fn v(txn_idx: TxnIndex, incarnation: u32) -> Version {
    Version::new(txn_idx, incarnation)
}

fn reads(items: &[(u32, ReadOrigin)]) -> ReadSet<u32> {
    let mut set = ReadSet::new();
    for &(k, o) in items {
        set.push(k, o);
    }
    set
}

#[test]
fn empty_read_set_is_valid() {
    let mv: MvMemory<u32, u32> = MvMemory::new(2);
    assert_eq!(validate(&ReadSet::new(), &mv, 1), Validation::Valid);
}

#[test]
fn unchanged_versions_and_storage_reads_are_valid() {
    let mv: MvMemory<u32, u32> = MvMemory::new(4);
    mv.record(v(1, 3), vec![(1, 10)]);
    let set = reads(&[(1, ReadOrigin::Version(v(1, 3))), (2, ReadOrigin::Storage)]);
    assert!(validate(&set, &mv, 3).is_valid());
    // A write above the reader is invisible to it.
    mv.record(v(3, 0), vec![(2, 5)]);
    assert!(validate(&set, &mv, 3).is_valid());
}

#[test]
fn validation_fails_on_estimate() {
    let mv: MvMemory<u32, u32> = MvMemory::new(3);
    mv.record(v(0, 0), vec![(1, 10)]);
    mv.record(v(1, 0), vec![(2, 20)]);
    let set = reads(&[(1, ReadOrigin::Version(v(0, 0))), (2, ReadOrigin::Version(v(1, 0)))]);
    assert!(validate(&set, &mv, 2).is_valid());
    mv.convert_writes_to_estimates(1);
    assert_eq!(validate(&set, &mv, 2), Validation::Estimate { read: 1, blocking: 1 });
}

#[test]
fn validation_fails_on_changed_version() {
    let mv: MvMemory<u32, u32> = MvMemory::new(3);
    mv.record(v(1, 0), vec![(1, 10)]);
    let set = reads(&[(1, ReadOrigin::Version(v(1, 0)))]);
    // Same value, new incarnation: still a different version.
    mv.record(v(1, 1), vec![(1, 10)]);
    assert_eq!(validate(&set, &mv, 2), Validation::Changed { read: 0 });
}

#[test]
fn validation_fails_when_a_lower_transaction_writes_over_a_storage_read() {
    let mv: MvMemory<u32, u32> = MvMemory::new(3);
    let set = reads(&[(1, ReadOrigin::Storage)]);
    mv.record(v(0, 0), vec![(1, 1)]);
    assert_eq!(validate(&set, &mv, 2), Validation::Changed { read: 0 });
}

#[test]
fn validation_fails_when_the_read_version_is_removed() {
    let mv: MvMemory<u32, u32> = MvMemory::new(3);
    mv.record(v(1, 0), vec![(1, 10)]);
    let set = reads(&[(1, ReadOrigin::Version(v(1, 0)))]);
    mv.record(v(1, 1), vec![]);
    assert_eq!(validate(&set, &mv, 2), Validation::Changed { read: 0 });
}
