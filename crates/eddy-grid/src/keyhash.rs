//! Stable key hashing and size estimation by walking a value's serde form.
//!
//! Both walk the primitives that `Serialize` emits, without allocating and
//! without producing an encoding, so a `u64` key costs one mixing step.
//!
//! # The key hash ("eddy key hash v1")
//!
//! Every primitive the key serializes is widened to little-endian 64-bit
//! words: integers and floats as their value (`i128`/`u128` as two words,
//! floats by their bit pattern), `bool`/`char`/unit as small integers,
//! strings and byte arrays as their length followed by their bytes in 8-byte
//! little-endian chunks (the last one zero-padded), enum variants by index,
//! `None` as 0 and `Some` as 1 before the value. Each word `w` is folded in as
//! `h = (h ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29)`, starting
//! from the seed [`KEY_HASH_SEED`], and the result goes through MurmurHash3's
//! 64-bit finaliser. It does not depend on the process, the platform or the
//! standard library's hasher, so every instance of Eddy puts a key in the
//! same partition. Changing it moves keys between partitions: treat it as a
//! wire format.
//!
//! # The size estimate
//!
//! [`heap_bytes`] counts what a value holds outside its inline size: string
//! and byte-array lengths, and the primitive widths of everything inside
//! sequences, maps and options. It is an estimate (allocator overhead and
//! spare capacity are not visible through serde), used for the `bytes`
//! statistic and for eviction by bytes.

use serde::ser::{self, Serialize};

/// Seed of the key hash; part of the stable hash definition, never change it.
pub const KEY_HASH_SEED: u64 = 0x6564_6479_2d67_7269; // "eddy-gri"

/// The stable 64-bit hash of `key` (see the module docs).
#[inline]
pub fn key_hash<K: Serialize + ?Sized>(key: &K) -> u64 {
    let mut walker = Walker {
        sink: Hash(KEY_HASH_SEED),
    };
    // The walker itself never fails; a failing Serialize impl of the key
    // still gives a deterministic (if poor) hash of what it emitted so far.
    let _ = key.serialize(&mut walker);
    fmix64(walker.sink.0)
}

/// The partition of a key hash among `partitions` partitions.
///
/// Uses the low 32 bits by multiply-shift (Lemire's fast range reduction),
/// which avoids a division and leaves the high bits, which hash tables use
/// to tag entries, uncorrelated with the partition.
#[inline]
pub fn partition_of(hash: u64, partitions: usize) -> usize {
    (((hash & 0xFFFF_FFFF) * partitions as u64) >> 32) as usize
}

/// Estimated heap bytes held by `value` (see the module docs).
pub fn heap_bytes<T: Serialize + ?Sized>(value: &T) -> usize {
    let mut walker = Walker {
        sink: Size { depth: 0, bytes: 0 },
    };
    let _ = value.serialize(&mut walker);
    walker.sink.bytes
}

#[inline]
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// What the walker feeds primitives into.
trait Sink {
    fn word(&mut self, w: u64, width: usize);
    fn bytes(&mut self, b: &[u8]);
    fn enter(&mut self) {}
    fn leave(&mut self) {}
}

struct Hash(u64);

impl Sink for Hash {
    #[inline]
    fn word(&mut self, w: u64, _width: usize) {
        self.0 = (self.0 ^ w)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29);
    }
    fn bytes(&mut self, b: &[u8]) {
        self.word(b.len() as u64, 8);
        let mut chunks = b.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes(c.try_into().expect("8-byte chunk")), 8);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.word(u64::from_le_bytes(last), 8);
        }
    }
}

struct Size {
    depth: usize,
    bytes: usize,
}

impl Sink for Size {
    #[inline]
    fn word(&mut self, _w: u64, width: usize) {
        if self.depth > 0 {
            self.bytes += width;
        }
    }
    fn bytes(&mut self, b: &[u8]) {
        self.bytes += b.len();
    }
    fn enter(&mut self) {
        self.depth += 1;
    }
    fn leave(&mut self) {
        self.depth -= 1;
    }
}

struct Walker<S> {
    sink: S,
}

/// The walker never fails on its own; errors only come from `Serialize`
/// impls that call `Error::custom`.
#[derive(Debug)]
struct WalkError;

impl std::fmt::Display for WalkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("serialize failed while hashing")
    }
}
impl std::error::Error for WalkError {}
impl ser::Error for WalkError {
    fn custom<T: std::fmt::Display>(_msg: T) -> Self {
        WalkError
    }
}

macro_rules! words {
    ($($name:ident: $ty:ty),*) => {$(
        #[inline]
        fn $name(self, v: $ty) -> Result<(), WalkError> {
            self.sink.word(v as u64, std::mem::size_of::<$ty>());
            Ok(())
        }
    )*};
}

impl<S: Sink> ser::Serializer for &mut Walker<S> {
    type Ok = ();
    type Error = WalkError;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    words!(serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_i64: i64, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_char: char);

    fn serialize_i128(self, v: i128) -> Result<(), WalkError> {
        self.serialize_u128(v as u128)
    }
    fn serialize_u128(self, v: u128) -> Result<(), WalkError> {
        self.sink.word(v as u64, 8);
        self.sink.word((v >> 64) as u64, 8);
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), WalkError> {
        self.sink.word(v.to_bits() as u64, 4);
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> Result<(), WalkError> {
        self.sink.word(v.to_bits(), 8);
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), WalkError> {
        self.sink.bytes(v.as_bytes());
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), WalkError> {
        self.sink.bytes(v);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), WalkError> {
        self.sink.word(0, 1);
        Ok(())
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), WalkError> {
        self.sink.word(1, 1);
        self.sink.enter();
        let r = value.serialize(&mut *self);
        self.sink.leave();
        r
    }
    fn serialize_unit(self) -> Result<(), WalkError> {
        self.sink.word(0, 0);
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), WalkError> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
    ) -> Result<(), WalkError> {
        self.sink.word(index as u64, 4);
        Ok(())
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), WalkError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        value: &T,
    ) -> Result<(), WalkError> {
        self.sink.word(index as u64, 4);
        value.serialize(self)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Self, WalkError> {
        self.sink.word(len.unwrap_or(0) as u64, 0);
        self.sink.enter();
        Ok(self)
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self, WalkError> {
        self.sink.enter();
        Ok(self)
    }
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Self, WalkError> {
        self.sink.enter();
        Ok(self)
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self, WalkError> {
        self.sink.word(index as u64, 4);
        self.sink.enter();
        Ok(self)
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Self, WalkError> {
        self.sink.word(len.unwrap_or(0) as u64, 0);
        self.sink.enter();
        Ok(self)
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self, WalkError> {
        self.sink.enter();
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self, WalkError> {
        self.sink.word(index as u64, 4);
        self.sink.enter();
        Ok(self)
    }
}

macro_rules! compound {
    ($trait:ident, $method:ident $(, $key:ident)?) => {
        impl<S: Sink> ser::$trait for &mut Walker<S> {
            type Ok = ();
            type Error = WalkError;
            fn $method<T: ?Sized + Serialize>(&mut self, $($key: &'static str,)? value: &T) -> Result<(), WalkError> {
                $(let _ = $key;)?
                value.serialize(&mut **self)
            }
            fn end(self) -> Result<(), WalkError> {
                self.sink.leave();
                Ok(())
            }
        }
    };
}

compound!(SerializeSeq, serialize_element);
compound!(SerializeTuple, serialize_element);
compound!(SerializeTupleStruct, serialize_field);
compound!(SerializeTupleVariant, serialize_field);
compound!(SerializeStruct, serialize_field, key);
compound!(SerializeStructVariant, serialize_field, key);

impl<S: Sink> ser::SerializeMap for &mut Walker<S> {
    type Ok = ();
    type Error = WalkError;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), WalkError> {
        key.serialize(&mut **self)
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), WalkError> {
        value.serialize(&mut **self)
    }
    fn end(self) -> Result<(), WalkError> {
        self.sink.leave();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_hashing_known_keys_then_values_are_stable() {
        // Pinned values: a change here moves keys between partitions on
        // every instance, which must be a deliberate, versioned decision.
        assert_eq!(key_hash(&0u64), key_hash(&0u64));
        let pinned = [key_hash(&42u64), key_hash("card-7"), key_hash(&(1u32, "a"))];
        assert_eq!(pinned, PINNED);
    }

    const PINNED: [u64; 3] = [
        11425237897758242018,
        4686595671508820183,
        3581994782101006978,
    ];

    #[test]
    fn when_keys_differ_then_partitions_spread() {
        let mut counts = vec![0usize; 271];
        for k in 0..271_000u64 {
            counts[partition_of(key_hash(&k), 271)] += 1;
        }
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(*min > 800 && *max < 1200, "min {min} max {max}");
    }

    #[test]
    fn when_value_has_strings_then_heap_bytes_counts_them() {
        assert_eq!(heap_bytes(&7u64), 0);
        assert_eq!(heap_bytes("hello"), 5);
        assert_eq!(heap_bytes(&vec![1u64, 2, 3]), 24);
        assert_eq!(heap_bytes(&Some(String::from("ab"))), 2);
    }
}
