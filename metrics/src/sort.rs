//! Sorting scores: f64 values mapped to order-preserving u64 keys and sorted
//! with an LSD radix sort, O(n) per pass and at most six passes.

/// Order-preserving map from a finite f64 to u64: `a < b` iff `key(a) < key(b)`.
///
/// `-0.0` is mapped like `+0.0`, so the two compare equal as in NumPy.
#[inline]
pub(crate) fn key(x: f64) -> u64 {
    // Adding +0.0 turns -0.0 into +0.0 and leaves every other value unchanged.
    let bits = (x + 0.0).to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// Inverse of [`key`].
#[inline]
pub(crate) fn unkey(k: u64) -> f64 {
    if k >> 63 == 1 {
        f64::from_bits(k & !(1 << 63))
    } else {
        f64::from_bits(!k)
    }
}

const DIGIT_BITS: usize = 11;
const BUCKETS: usize = 1 << DIGIT_BITS;
const PASSES: usize = 64_usize.div_ceil(DIGIT_BITS);
/// Below this length a comparison sort wins.
const SMALL: usize = 1 << 10;

/// Sorts `keys` ascending.
pub(crate) fn radix_sort(keys: &mut Vec<u64>) {
    let n = keys.len();
    if n < SMALL {
        keys.sort_unstable();
        return;
    }
    // All digit histograms in one read of the data.
    let mut hist = vec![[0usize; BUCKETS]; PASSES];
    for &k in keys.iter() {
        for (pass, h) in hist.iter_mut().enumerate() {
            h[((k >> (pass * DIGIT_BITS)) as usize) & (BUCKETS - 1)] += 1;
        }
    }
    let mut buf = vec![0u64; n];
    for (pass, h) in hist.iter().enumerate() {
        // A digit shared by every key would be a no-op pass (common for the
        // exponent bits of scores in [0, 1]).
        if h.contains(&n) {
            continue;
        }
        let mut offsets = [0usize; BUCKETS];
        let mut sum = 0;
        for (o, &c) in offsets.iter_mut().zip(h.iter()) {
            *o = sum;
            sum += c;
        }
        let shift = pass * DIGIT_BITS;
        for &k in keys.iter() {
            let b = ((k >> shift) as usize) & (BUCKETS - 1);
            buf[offsets[b]] = k;
            offsets[b] += 1;
        }
        std::mem::swap(keys, &mut buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_preserves_order_and_round_trips() {
        let xs = [
            f64::MIN,
            -1e300,
            -1.5,
            -1e-310,
            -0.0,
            0.0,
            1e-310,
            0.25,
            1.0,
            7e200,
            f64::MAX,
        ];
        for w in xs.windows(2) {
            assert!(key(w[0]) <= key(w[1]), "{} vs {}", w[0], w[1]);
        }
        assert_eq!(key(-0.0), key(0.0));
        for &x in &xs {
            assert_eq!(unkey(key(x)), x + 0.0);
        }
    }

    #[test]
    fn radix_sort_matches_std_sort() {
        let mut state = 0x1234_5678_9abc_def0_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for n in [0usize, 1, 5, 2000, 50_000] {
            let mut v: Vec<u64> = (0..n)
                .map(|_| key((next() % 1000) as f64 / 7.0 - 50.0))
                .collect();
            let mut want = v.clone();
            want.sort_unstable();
            radix_sort(&mut v);
            assert_eq!(v, want);
        }
    }
}
