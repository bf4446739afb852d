//! A fixed-size set of small integers, one bit each: the search's record of which calls it has
//! linearized.

/// A set of the integers `0..len`, stored as 64-bit words.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Bitset {
    words: Vec<u64>,
    len: usize,
}

impl Bitset {
    /// An empty set able to hold `0..len`.
    pub(crate) fn new(len: usize) -> Self {
        Self {
            words: vec![0; len.div_ceil(64)],
            len,
        }
    }

    /// Adds `i`.
    pub(crate) fn insert(&mut self, i: usize) {
        assert!(i < self.len, "bit {i} is outside a set of {}", self.len);
        self.words[i / 64] |= 1 << (i % 64);
    }

    /// Removes `i`.
    pub(crate) fn remove(&mut self, i: usize) {
        assert!(i < self.len, "bit {i} is outside a set of {}", self.len);
        self.words[i / 64] &= !(1 << (i % 64));
    }

    /// Whether `i` is in the set.
    pub(crate) fn contains(&self, i: usize) -> bool {
        i < self.len && self.words[i / 64] & (1 << (i % 64)) != 0
    }

    /// The words holding bits `bits.start..bits.end`, widened to whole words (empty when the
    /// range is).
    pub(crate) fn words_covering(&self, bits: std::ops::Range<usize>) -> &[u64] {
        let first = bits.start / 64;
        let end = bits.end.div_ceil(64).min(self.words.len());
        if first >= end {
            &[]
        } else {
            &self.words[first..end]
        }
    }

    /// Every word of the set.
    pub(crate) fn words(&self) -> &[u64] {
        &self.words
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_remove_and_contains_agree_across_word_boundaries() {
        let mut set = Bitset::new(130);
        for i in [0, 63, 64, 129] {
            set.insert(i);
        }
        for i in 0..130 {
            assert_eq!(
                set.contains(i),
                [0, 63, 64, 129].contains(&i),
                "bit {i} is set exactly when inserted"
            );
        }
        set.remove(64);
        assert!(!set.contains(64), "a removed bit is gone");
        assert!(set.contains(63), "removing one bit leaves its neighbour");
        assert!(!set.contains(500), "a bit beyond the set is never in it");
    }

    #[test]
    fn words_covering_widens_to_whole_words() {
        let mut set = Bitset::new(200);
        set.insert(70);
        assert_eq!(
            set.words_covering(65..71),
            &[1 << 6],
            "bits 65..71 live in word 1"
        );
        assert_eq!(
            set.words_covering(0..129).len(),
            3,
            "bit 128 needs a third word"
        );
        assert!(
            set.words_covering(64..64).is_empty(),
            "an empty range covers nothing"
        );
    }
}
