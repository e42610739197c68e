//! Seeded randomness: per-tree generators and the few draws the forests need.
//!
//! All draws are written here (not taken from `rand`'s distributions) so a seeded
//! model stays bit-identical across `rand` upgrades.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The generator every tree uses.
pub(crate) type TreeRng = ChaCha8Rng;

/// SplitMix64 finaliser: spreads (seed, stream) pairs over the whole u64 range.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The generator for tree `index` of a forest seeded with `seed`: depends on the two
/// numbers only, never on which thread builds the tree or in what order.
pub(crate) fn tree_rng(seed: u64, stream: u64, index: usize) -> TreeRng {
    TreeRng::seed_from_u64(mix(mix(seed ^ mix(stream)).wrapping_add(index as u64)))
}

/// A uniform integer in `0..n` (`n > 0`), unbiased (Lemire's method with rejection).
#[inline]
pub(crate) fn below<R: Rng>(rng: &mut R, n: usize) -> usize {
    let n = n as u64;
    let mut m = u128::from(rng.next_u64()) * u128::from(n);
    if (m as u64) < n {
        let t = n.wrapping_neg() % n;
        while (m as u64) < t {
            m = u128::from(rng.next_u64()) * u128::from(n);
        }
    }
    (m >> 64) as usize
}

/// A uniform float in `[0, 1)` with 53 random bits.
#[inline]
pub(crate) fn unit_f64<R: Rng>(rng: &mut R) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut rng = tree_rng(7, 0, 3);
        let mut seen = [0usize; 5];
        for _ in 0..5000 {
            seen[below(&mut rng, 5)] += 1;
        }
        assert!(seen.iter().all(|&c| c > 800 && c < 1200), "{seen:?}");
    }

    #[test]
    fn streams_differ_per_tree_and_repeat_per_seed() {
        let a = tree_rng(1, 0, 0).next_u64();
        let b = tree_rng(1, 0, 1).next_u64();
        let c = tree_rng(1, 0, 0).next_u64();
        assert_ne!(a, b);
        assert_eq!(a, c);
        let u = unit_f64(&mut tree_rng(1, 0, 0));
        assert!((0.0..1.0).contains(&u));
    }
}
