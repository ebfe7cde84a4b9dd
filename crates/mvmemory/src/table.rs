//! The hash table of one shard: its locations stored densely in insertion order, and an
//! open-addressing index of them (linear probing, a byte of the hash per slot so a probe compares
//! keys only on a likely match).
//!
//! # Why not `hashbrown`
//!
//! A location's first write stores its key and versions (176 bytes for an EVM account) into
//! memory that is almost never in cache: a gigagas block of transfers creates ~95 000 locations
//! at random places of hashbrown's bucket array. The store itself misses quietly, but the next
//! locked instruction (the next shard lock) waits for the store buffer to drain, so the miss
//! was paid in full: on gigagas native transfers at one thread, about two thirds of
//! `record_writes`, itself about the whole difference to the sequential baseline. Here the next
//! location is stored at the end of the shard's entry vector, a place known before the write: a
//! read that finds no location (a transaction usually reads what it then writes) prefetches it
//! for writing ([`Table::prefetch_next`]), and the VM's work in between hides the miss.
//!
//! The entries are not kept in the index's slots because every slot would then have to be
//! initialised when the table is made (safe Rust has no uninitialised slot): for a gigagas block
//! that was several times hashbrown's set-up, paid before any worker starts. The index is zeroed memory, which the allocator gets from the OS untouched.
//!
//! # Layout and invariants
//!
//! - `entries` holds every location, in insertion order; nothing is ever removed (only the whole
//!   table is taken, at the end of a block).
//! - `slots[i]` is [`EMPTY`] or `(tag(hash) << 56) | (position + 1)` for the entry at
//!   `position` whose key has hash `hash`; each entry has exactly one slot.
//! - `slots` has a power-of-two length; an entry with hash `h` sits at the first slot, from
//!   `h & mask` onwards (wrapping), that was empty when it was inserted. With nothing removed,
//!   the probe of a key never crosses an empty slot before reaching it.
//! - At most three quarters of the slots are used, so every probe meets an empty slot and ends.

use blockstm_sync::{CachePadded, prefetch_for_write};

/// An empty slot.
const EMPTY: u64 = 0;

/// Where a slot keeps its tag: the top byte.
const TAG_SHIFT: u32 = 56;

/// The bits of a slot that hold the entry's position plus one.
const POSITION_MASK: u64 = (1 << TAG_SHIFT) - 1;

/// The tag of a key: the top seven bits of its hash (the low bits pick the slot, bits from 40
/// the shard), with the high bit set, so a used slot is never [`EMPTY`].
#[inline]
fn tag(hash: u64) -> u64 {
    0x80 | (hash >> 57)
}

/// The slot of the entry at `position` whose key has hash `hash`.
#[inline]
fn pack(hash: u64, position: usize) -> u64 {
    (tag(hash) << TAG_SHIFT) | (position as u64 + 1)
}

/// A shard's table. See the [module docs](self).
#[derive(Debug)]
pub(crate) struct Table<T> {
    slots: Box<[u64]>,
    /// Padded to their own cache lines (128 bytes on x86_64, where the adjacent-line prefetcher
    /// pairs lines): consecutive entries of a shard are mostly created by different workers,
    /// and unpadded they shared the line at their boundary, which slowed independent transfers
    /// at two threads by a few percent (`blockstm bench -w independent`); 64-byte alignment
    /// was not enough. The larger entries cost nothing measurable on gigagas transfers.
    entries: Vec<CachePadded<T>>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl<T> Table<T> {
    /// A table that holds `capacity` entries without growing.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        // Used slots at most 3/4: `capacity * 4 / 3` slots, rounded up to a power of two.
        let slots = capacity.saturating_mul(4).div_ceil(3).max(2).next_power_of_two();
        Self { slots: vec![EMPTY; slots].into_boxed_slice(), entries: Vec::with_capacity(capacity) }
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The slot holding the entry with hash `hash` for which `eq` holds or, if there is none,
    /// the first empty slot of the probe (where an insert would put it now).
    #[inline]
    fn probe(&self, hash: u64, mut eq: impl FnMut(&T) -> bool) -> (usize, Option<usize>) {
        let mask = self.slots.len() - 1;
        let wanted = tag(hash);
        // Truncation intended: the low bits pick the slot.
        let mut i = hash as usize & mask;
        loop {
            let slot = self.slots[i];
            if slot == EMPTY {
                return (i, None);
            }
            if slot >> TAG_SHIFT == wanted {
                let position = (slot & POSITION_MASK) as usize - 1;
                if self.entries.get(position).is_some_and(|entry| eq(entry)) {
                    return (i, Some(position));
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// The entry with hash `hash` for which `eq` holds.
    #[inline]
    pub(crate) fn find(&self, hash: u64, eq: impl FnMut(&T) -> bool) -> Option<&T> {
        let (_, position) = self.probe(hash, eq);
        position.map(|p| &*self.entries[p])
    }

    /// The entry with hash `hash` for which `eq` holds or, if there is none, the slot an insert
    /// would take now (for [`insert`](Self::insert)).
    #[inline]
    pub(crate) fn find_mut(&mut self, hash: u64, eq: impl FnMut(&T) -> bool) -> Result<&mut T, usize> {
        match self.probe(hash, eq) {
            (_, Some(position)) => Ok(&mut *self.entries[position]),
            (slot, None) => Err(slot),
        }
    }

    /// Starts fetching, for writing, the place the next inserted entry will take (a hint only;
    /// none when the entry vector is full and the next insert moves it).
    #[inline]
    pub(crate) fn prefetch_next(&mut self) {
        if let Some(next) = self.entries.spare_capacity_mut().first() {
            prefetch_for_write(next);
        }
    }

    /// Inserts `value`, whose hash is `hash`, at `vacant` (the slot [`find_mut`](Self::find_mut)
    /// just returned for it, with no insert since), growing the index first if it is full.
    /// `rehash` gives the hash of an entry already in the table.
    pub(crate) fn insert(&mut self, vacant: usize, hash: u64, value: T, rehash: impl Fn(&T) -> u64) {
        let slot = if (self.entries.len() + 1) * 4 > self.slots.len() * 3 {
            self.grow(rehash);
            self.first_empty(hash)
        } else {
            vacant
        };
        debug_assert_eq!(self.slots[slot], EMPTY, "insert into a used slot");
        self.slots[slot] = pack(hash, self.entries.len());
        self.entries.push(CachePadded::new(value));
    }

    /// The first empty slot of the probe of `hash`: the probe of a key that matches nothing.
    fn first_empty(&self, hash: u64) -> usize {
        self.probe(hash, |_| false).0
    }

    /// Doubles the number of slots and re-indexes every entry (the entries do not move).
    #[cold]
    fn grow(&mut self, rehash: impl Fn(&T) -> u64) {
        self.slots = vec![EMPTY; self.slots.len() * 2].into_boxed_slice();
        for position in 0..self.entries.len() {
            let hash = rehash(&self.entries[position]);
            let slot = self.first_empty(hash);
            self.slots[slot] = pack(hash, position);
        }
    }

    /// Every entry, in insertion order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.entries.iter().map(|entry| &**entry)
    }
}

impl<T> IntoIterator for Table<T> {
    type Item = T;
    type IntoIter = std::iter::Map<std::vec::IntoIter<CachePadded<T>>, fn(CachePadded<T>) -> T>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter().map(CachePadded::into_inner)
    }
}

#[cfg(test)]
mod test {
    use super::Table;

    /// A hash that puts every key in one of three home slots, so probes collide and wrap.
    fn crowded(key: u64) -> u64 {
        (key % 3) | (key << 57)
    }

    fn insert(table: &mut Table<u64>, key: u64) -> usize {
        let hash = crowded(key);
        let vacant = table.find_mut(hash, |k| *k == key).expect_err("inserted twice");
        table.insert(vacant, hash, key, |k| crowded(*k));
        vacant
    }

    #[test]
    fn finds_what_was_inserted_through_collisions_and_growth() {
        let mut table: Table<u64> = Table::with_capacity(2);
        for key in 0..200u64 {
            insert(&mut table, key);
            assert_eq!(table.len(), key as usize + 1);
            for old in 0..=key {
                assert_eq!(table.find(crowded(old), |k| *k == old), Some(&old), "{old} lost");
            }
            assert_eq!(table.find(crowded(key + 1), |k| *k == key + 1), None);
        }
        *table.find_mut(crowded(7), |k| *k == 7).expect("present") = 7;
        assert_eq!(table.iter().copied().collect::<Vec<_>>(), (0..200).collect::<Vec<_>>());
        assert_eq!(table.into_iter().collect::<Vec<_>>(), (0..200).collect::<Vec<_>>());
    }

    #[test]
    fn an_insert_takes_the_slot_find_returned() {
        let mut table: Table<u64> = Table::with_capacity(64);
        for key in 0..48u64 {
            let vacant = insert(&mut table, key);
            // Without growth the key is found at that slot: its probe now stops there.
            assert_eq!(table.probe(crowded(key), |k| *k == key), (vacant, Some(key as usize)));
        }
    }

    #[test]
    fn an_empty_table_grows() {
        let mut table: Table<u64> = Table::default();
        for key in 0..5 {
            table.prefetch_next();
            insert(&mut table, key);
        }
        assert_eq!(table.len(), 5);
        assert!(table.iter().all(|k| table.find(crowded(*k), |x| x == k) == Some(k)));
    }
}
