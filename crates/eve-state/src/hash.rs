//! The hash functions of the state: leaves, buckets and tree nodes, each in its own domain so
//! that no value of one kind can be passed off as another.

use eve_types::Digest;

const LEAF_DOMAIN: u8 = 0x00;
/// Buckets are hashed in blake3's keyed mode, which is its own domain, so that `n` leaves
/// make exactly `n / 2` 64-byte blocks.
const BUCKET_KEY: &[u8; 32] = b"eve merkle bucket, version 1 ---";
/// Inner nodes are hashed in blake3's keyed mode, which is its own domain, so that a node's
/// input is exactly one 64-byte block: half the cost of a prefixed 65-byte input.
const NODE_KEY: &[u8; 32] = b"eve merkle inner node, version 1";

/// The hash of one object: `H(0x00 || key length (u32 LE) || key || value)`.
pub fn leaf_hash(key: &[u8], value: &[u8]) -> Digest {
    // Small objects (most of them, and every reply-cache entry of a short reply) are laid out
    // in one buffer on the stack and hashed at once: cheaper than an incremental hasher.
    const INLINE: usize = 256;
    let len = 1 + 4 + key.len() + value.len();
    if len <= INLINE {
        let mut input = [0u8; INLINE];
        input[0] = LEAF_DOMAIN;
        input[1..5].copy_from_slice(&(key.len() as u32).to_le_bytes());
        input[5..5 + key.len()].copy_from_slice(key);
        input[5 + key.len()..len].copy_from_slice(value);
        return Digest(*blake3::hash(&input[..len]).as_bytes());
    }
    let mut hasher = blake3::Hasher::new();
    hasher.update(&[LEAF_DOMAIN]);
    hasher.update(&(key.len() as u32).to_le_bytes());
    hasher.update(key);
    hasher.update(value);
    Digest(*hasher.finalize().as_bytes())
}

/// The hash of a bucket from the leaf hashes of its objects in key order:
/// `keyed_H(BUCKET_KEY, leaf_1 || ... || leaf_n)`; an empty bucket hashes the empty input.
pub fn bucket_hash<'a>(leaves: impl IntoIterator<Item = &'a Digest>) -> Digest {
    // One contiguous input hashes faster than many 32-byte updates; buckets sized to the
    // state (a handful of objects) fit a buffer on the stack.
    const INLINE_LEAVES: usize = 32;
    let mut inline = [0u8; 32 * INLINE_LEAVES];
    let mut heap = Vec::new();
    let mut len = 0;
    for leaf in leaves {
        if len < inline.len() {
            inline[len..len + 32].copy_from_slice(leaf.as_bytes());
        } else {
            if heap.is_empty() {
                heap.extend_from_slice(&inline);
            }
            heap.extend_from_slice(leaf.as_bytes());
        }
        len += 32;
    }
    let input = if heap.is_empty() {
        &inline[..len]
    } else {
        &heap[..]
    };
    Digest(*blake3::keyed_hash(BUCKET_KEY, input).as_bytes())
}

/// The hash of an empty bucket.
pub fn empty_bucket_hash() -> Digest {
    bucket_hash([])
}

/// The hash of an inner tree node: `keyed_H(NODE_KEY, left || right)`.
pub fn node_hash(left: &Digest, right: &Digest) -> Digest {
    let mut input = [0u8; 64];
    input[..32].copy_from_slice(left.as_bytes());
    input[32..].copy_from_slice(right.as_bytes());
    Digest(*blake3::keyed_hash(NODE_KEY, &input).as_bytes())
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
    fn the_inline_paths_hash_what_the_incremental_ones_do() {
        for len in [0usize, 10, 250, 251, 252, 300, 5000] {
            let value = vec![7u8; len];
            let mut hasher = blake3::Hasher::new();
            hasher.update(&[LEAF_DOMAIN]);
            hasher.update(&1u32.to_le_bytes());
            hasher.update(b"k");
            hasher.update(&value);
            assert_eq!(
                leaf_hash(b"k", &value),
                Digest(*hasher.finalize().as_bytes())
            );
        }
        for n in [0usize, 1, 2, 31, 32, 33, 100] {
            let leaves: Vec<Digest> = (0..n).map(|i| Digest([i as u8; 32])).collect();
            let input: Vec<u8> = leaves.iter().flat_map(|l| l.as_bytes().to_vec()).collect();
            assert_eq!(
                bucket_hash(&leaves),
                Digest(*blake3::keyed_hash(BUCKET_KEY, &input).as_bytes())
            );
        }
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
