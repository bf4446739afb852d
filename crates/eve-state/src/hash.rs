//! The hash functions of the state: leaves, buckets and tree nodes, each in its own domain so
//! that no value of one kind can be passed off as another.

use eve_types::Digest;

const LEAF_DOMAIN: u8 = 0x00;
const BUCKET_DOMAIN: u8 = 0x01;
const NODE_DOMAIN: u8 = 0x02;

/// The hash of one object: `H(0x00 || key length (u32 LE) || key || value)`.
pub fn leaf_hash(key: &[u8], value: &[u8]) -> Digest {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[LEAF_DOMAIN]);
    hasher.update(&(key.len() as u32).to_le_bytes());
    hasher.update(key);
    hasher.update(value);
    Digest(*hasher.finalize().as_bytes())
}

/// The hash of a bucket from the leaf hashes of its objects in key order:
/// `H(0x01 || leaf_1 || ... || leaf_n)`; an empty bucket is `H(0x01)`.
pub fn bucket_hash<'a>(leaves: impl IntoIterator<Item = &'a Digest>) -> Digest {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[BUCKET_DOMAIN]);
    for leaf in leaves {
        hasher.update(leaf.as_bytes());
    }
    Digest(*hasher.finalize().as_bytes())
}

/// The hash of an empty bucket.
pub fn empty_bucket_hash() -> Digest {
    bucket_hash([])
}

/// The hash of an inner tree node: `H(0x02 || left || right)`.
pub fn node_hash(left: &Digest, right: &Digest) -> Digest {
    let mut input = [0u8; 65];
    input[0] = NODE_DOMAIN;
    input[1..33].copy_from_slice(left.as_bytes());
    input[33..].copy_from_slice(right.as_bytes());
    Digest(*blake3::hash(&input).as_bytes())
}

/// The bucket an object key falls in, for a tree of `2^bits` buckets: the top `bits` bits of
/// the key's xxh3 hash. The function is fixed, so every replica puts a key in the same bucket.
pub fn bucket_of(key: &[u8], bits: u8) -> u32 {
    debug_assert!((1..=32).contains(&bits));
    (xxhash_rust::xxh3::xxh3_64(key) >> (64 - u32::from(bits))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_separate_leaf_bucket_and_node() {
        let zero = Digest::ZERO;
        assert_ne!(bucket_hash([&zero, &zero]), node_hash(&zero, &zero));
        assert_ne!(leaf_hash(b"", b""), empty_bucket_hash());
    }

    #[test]
    fn leaf_hash_binds_the_key_boundary() {
        assert_ne!(leaf_hash(b"ab", b"c"), leaf_hash(b"a", b"bc"));
    }

    #[test]
    fn bucket_of_stays_in_range() {
        for bits in [4u8, 8, 16, 22] {
            for i in 0..1000u32 {
                assert!(bucket_of(&i.to_le_bytes(), bits) < (1 << bits));
            }
        }
    }
}
