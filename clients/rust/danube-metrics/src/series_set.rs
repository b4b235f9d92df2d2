//! A set of series indices as a bitmap: the flusher's "may differ from what was sent" and "sent, not
//! acknowledged" sets. A bitmap because it is walked in index order (frames carry series in id order) and
//! inserting an index already present, the common case for a busy series, is one OR without hashing.

#[derive(Clone, Default)]
pub(crate) struct SeriesSet {
    words: Vec<u64>,
}

impl SeriesSet {
    #[cfg(test)]
    pub fn contains(&self, index: usize) -> bool {
        self.words.get(index >> 6).is_some_and(|w| w & (1 << (index & 63)) != 0)
    }

    pub fn insert(&mut self, index: usize) {
        let word = index >> 6;
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        self.words[word] |= 1 << (index & 63);
    }

    pub fn remove(&mut self, index: usize) {
        if let Some(word) = self.words.get_mut(index >> 6) {
            *word &= !(1 << (index & 63));
        }
    }

    pub fn clear(&mut self) {
        self.words.clear();
    }

    /// The indices in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(w, &word)| {
            let mut bits = word;
            std::iter::from_fn(move || {
                (bits != 0).then(|| {
                    let index = w << 6 | bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    index
                })
            })
        })
    }

    /// The number of indices in `self` or `other`.
    pub fn union_len(&self, other: &SeriesSet) -> usize {
        let longest = self.words.len().max(other.words.len());
        (0..longest)
            .map(|w| {
                let a = self.words.get(w).copied().unwrap_or(0);
                let b = other.words.get(w).copied().unwrap_or(0);
                (a | b).count_ones() as usize
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_removes_and_walks_in_order() {
        let mut set = SeriesSet::default();
        for i in [130, 3, 64, 3, 0] {
            set.insert(i);
        }
        assert_eq!(set.iter().collect::<Vec<_>>(), [0, 3, 64, 130]);
        set.remove(64);
        set.remove(999);
        assert!(!set.contains(64) && set.contains(130));
        let mut other = SeriesSet::default();
        other.insert(3);
        other.insert(500);
        assert_eq!(set.union_len(&other), 4);
    }
}
