//! Kafka's key partitioning: the murmur2 hash of the Java client's default
//! partitioner, bit for bit.
//!
//! The Java client (and librdkafka's `murmur2_random` partitioner, which the
//! [`KafkaSink`](crate::KafkaSink) configures) put a keyed record in
//! partition `(murmur2(key) & 0x7fffffff) % partitions`. Using the same
//! function here means the same key lands in the same partition whichever
//! client wrote it, which keyed state that follows partitions relies on.

/// The seed of the Java client's `Utils.murmur2`.
const SEED: u32 = 0x9747_b28c;
/// The multiplier and shift of MurmurHash2.
const M: u32 = 0x5bd1_e995;
const R: u32 = 24;

/// MurmurHash2 (32 bit) exactly as Kafka's Java `Utils.murmur2` computes it,
/// as a signed 32-bit value like Java's `int`.
pub fn murmur2(data: &[u8]) -> i32 {
    let length = data.len() as u32;
    let mut h = SEED ^ length;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    // Java sign-extends nothing here: it masks each byte with 0xff.
    if tail.len() >= 3 {
        h ^= (tail[2] as u32) << 16;
    }
    if tail.len() >= 2 {
        h ^= (tail[1] as u32) << 8;
    }
    if !tail.is_empty() {
        h ^= tail[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition the Java client's default partitioner picks for a record
/// with this (serialised) key among `partitions` partitions.
///
/// Returns `None` when `partitions` is not positive.
pub fn partition_for_key(key: &[u8], partitions: i32) -> Option<i32> {
    if partitions <= 0 {
        return None;
    }
    Some((murmur2(key) & 0x7fff_ffff) % partitions)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hashes and partitions computed by the Java client itself
    /// (`org.apache.kafka.common.utils.Utils.murmur2` of kafka-clients
    /// 4.1.1, `toPositive(h) % 7` and `% 12`), over UTF-8 keys of every
    /// tail length, including multi-byte characters.
    const JAVA_VECTORS: [(&str, i32, i32, i32); 12] = [
        ("", 275646681, 2, 9),
        ("a", -1563381124, 5, 4),
        ("ab", 316155434, 0, 2),
        ("abc", 479470107, 4, 3),
        ("21", -973932308, 3, 0),
        ("foobar", -790332482, 0, 6),
        ("kafka", -798503068, 3, 4),
        ("giberish123456789", -1890243828, 5, 8),
        ("a-little-bit-long-string", -985981536, 1, 8),
        (
            "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
            -58897971,
            3,
            5,
        ),
        ("card-0042", -831087013, 1, 7),
        ("\u{e9}t\u{e9}-\u{2603}", -1164816711, 0, 5),
    ];

    #[test]
    fn when_hashing_keys_then_results_match_the_java_client() {
        for (key, hash, _, _) in JAVA_VECTORS {
            assert_eq!(murmur2(key.as_bytes()), hash, "murmur2({key:?})");
        }
        let all_bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(murmur2(&all_bytes), -1948347274);
    }

    #[test]
    fn when_partitioning_keys_then_partitions_match_the_java_client() {
        for (key, _, of_7, of_12) in JAVA_VECTORS {
            assert_eq!(
                partition_for_key(key.as_bytes(), 7),
                Some(of_7),
                "{key:?} of 7"
            );
            assert_eq!(
                partition_for_key(key.as_bytes(), 12),
                Some(of_12),
                "{key:?} of 12"
            );
        }
    }

    #[test]
    fn when_partitions_not_positive_then_none() {
        assert_eq!(partition_for_key(b"k", 0), None);
        assert_eq!(partition_for_key(b"k", -3), None);
    }
}
