//! Stable key hashing and the partition table of partitioned edges.
//!
//! Keys map to one of [`PARTITION_COUNT`] partitions by a fixed-seed hash, and
//! partitions map to processor instances. The hash never depends on the
//! process, so state saved by one run can be redistributed by key in another,
//! at another parallelism.

use std::hash::{BuildHasher, Hash};

/// Number of partitions keys are hashed into.
///
/// 271, as in Hazelcast: a prime, so that partition ids spread evenly over any
/// instance count, and large enough that instances up to a few dozen get
/// nearly equal shares. Changing it changes which instance owns a key, so
/// saved snapshots would need redistribution.
pub const PARTITION_COUNT: u32 = 271;

/// The fixed seed of the key hash. Never change it: snapshot redistribution
/// relies on the same key hashing to the same partition in every run.
const KEY_HASH_SEED: u64 = 0x5eed_edd1_2024_0001;

/// Hashes a key with a fixed-seed hash (the same in every process).
#[inline]
pub fn key_hash<K: Hash + ?Sized>(key: &K) -> u64 {
    foldhash::fast::FixedState::with_seed(KEY_HASH_SEED).hash_one(key)
}

/// The partition of a key hash.
#[inline]
pub fn partition_of_hash(hash: u64) -> u32 {
    // Use the high bits: the low bits of foldhash are weaker for small ints.
    ((hash >> 32) % u64::from(PARTITION_COUNT)) as u32
}

/// The instance, out of `parallelism`, that owns `partition`.
#[inline]
pub fn owner_of_partition(partition: u32, parallelism: usize) -> usize {
    partition as usize % parallelism
}

/// The instance, out of `parallelism`, that owns a key.
#[inline]
pub fn owner_of_key<K: Hash + ?Sized>(key: &K, parallelism: usize) -> usize {
    owner_of_partition(partition_of_hash(key_hash(key)), parallelism)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_same_key_hashed_twice_then_same_partition() {
        assert_eq!(key_hash(&42u64), key_hash(&42u64));
        assert_eq!(
            partition_of_hash(key_hash("card-1")),
            partition_of_hash(key_hash("card-1"))
        );
    }

    #[test]
    fn when_many_keys_then_partitions_are_all_used() {
        let mut seen = vec![false; PARTITION_COUNT as usize];
        for k in 0u64..100_000 {
            seen[partition_of_hash(key_hash(&k)) as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }
}
