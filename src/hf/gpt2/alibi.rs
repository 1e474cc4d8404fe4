//! ALiBi for positions in GPT-2's block (BLOOM's, Falcon-RW's): each score of a head gains its
//! slope times the key's position, as transformers computes it for each family.

/// ALiBi: each score of head h gains slope_h · (key position) / `divisor` — with Falcon's
/// roundings where `bf16` (transformers' Falcon rounds each slope, and each slope · position,
/// to bf16 before dividing by √d_h; BLOOM's is exact).
#[derive(Clone, Debug)]
pub(super) struct Alibi {
    /// Per head.
    pub(super) slopes: Vec<f32>,
    /// What each slope · position is divided by (1, or Falcon's √d_h).
    pub(super) divisor: f32,
    /// Slopes and products rounded to bf16 (Falcon).
    pub(super) bf16: bool,
}

impl Alibi {
    /// The bias of head `h` at key position `j`.
    pub(super) fn at(&self, h: usize, j: usize) -> f32 {
        let m = self.slopes.get(h).copied().unwrap_or(0.0);
        let v = match self.bf16 {
            true => round_bf16(round_bf16(m) * j as f32),
            false => m * j as f32,
        };
        v / self.divisor
    }
}

/// `x` rounded to the nearest bf16 (ties to even), as PyTorch converts a float.
fn round_bf16(x: f32) -> f32 {
    let b = x.to_bits();
    let lsb = (b >> 16) & 1;
    f32::from_bits(b.wrapping_add(0x7FFF + lsb) & 0xFFFF_0000)
}

/// ALiBi's slopes for `heads` heads, as transformers' `build_alibi_tensor`: for the largest
/// power of two p ≤ heads, base^1 … base^p with base = 2^(−8/p); the heads past p take every
/// other power of 2^(−4/p) (1, 3, 5, …).
pub fn alibi_slopes(heads: usize) -> Vec<f32> {
    let p = 1usize << heads.max(1).ilog2();
    let base = 2f64.powf(-8.0 / p as f64);
    let mut slopes: Vec<f32> = (1..=p).map(|i| base.powi(i as i32) as f32).collect();
    if p != heads {
        let extra = 2f64.powf(-4.0 / p as f64);
        slopes.extend((0..heads - p).map(|i| extra.powi((2 * i + 1) as i32) as f32));
    }
    slopes
}

/// MPT's slopes for `heads` heads and its `alibi_bias_max` b, as transformers'
/// `build_mpt_alibi_tensor` and MPT's own code: for n the power of two at or above the heads,
/// 2^(−b·i/n) for i = 1 … n, and when n is not the heads, the even-numbered (i = 2, 4, …) then
/// the odd-numbered, cut to the heads: BLOOM's slopes when b is 8, as every MPT release has it.
pub fn mpt_alibi_slopes(heads: usize, bias_max: f64) -> Vec<f32> {
    let n = heads.max(1).next_power_of_two();
    let all: Vec<f32> = (1..=n)
        .map(|i| 2f64.powf(-(i as f64) * bias_max / n as f64) as f32)
        .collect();
    if n == heads {
        return all;
    }
    let even = all.iter().skip(1).step_by(2);
    even.chain(all.iter().step_by(2))
        .take(heads)
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{alibi_slopes, mpt_alibi_slopes, round_bf16};

    /// MPT's: 8 heads as BLOOM's; 6 heads from those of 8 (2^-1 … 2^-8), the even-numbered
    /// (2^-2, 2^-4, 2^-6, 2^-8) then the odd (2^-1, 2^-3), BLOOM's too; b = 4 halves each
    /// exponent.
    #[test]
    fn mpt_slopes_are_transformers() {
        assert_eq!(mpt_alibi_slopes(8, 8.0), alibi_slopes(8));
        let six: Vec<f32> = [2, 4, 6, 8, 1, 3].iter().map(|&k| 2f32.powi(-k)).collect();
        assert_eq!(mpt_alibi_slopes(6, 8.0), six);
        assert_eq!(mpt_alibi_slopes(6, 8.0), alibi_slopes(6));
        assert_eq!(mpt_alibi_slopes(1, 8.0), vec![2f32.powi(-8)]);
        let half = mpt_alibi_slopes(8, 4.0);
        for (i, s) in half.iter().enumerate() {
            assert!(
                (s - 2f32.powf(-(i as f32 + 1.0) / 2.0)).abs() < 1e-7,
                "{half:?}"
            );
        }
    }

    /// transformers' slopes: 8 heads 2^-1 … 2^-8; 6 heads the four of 4 (2^-2 … 2^-8) and then
    /// 2^-1, 2^-3 (every other power of 2^-(4/4)).
    #[test]
    fn the_slopes_are_transformers() {
        let close = |a: &[f32], b: &[f64]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (*x as f64 - y).abs() < 1e-7)
        };
        let eight: Vec<f64> = (1..=8).map(|i| 2f64.powi(-i)).collect();
        assert!(close(&alibi_slopes(8), &eight));
        let six = [0.25, 0.0625, 0.015625, 0.00390625, 0.5, 0.125];
        assert!(close(&alibi_slopes(6), &six), "{:?}", alibi_slopes(6));
        assert_eq!(alibi_slopes(1), vec![2f32.powi(-8)]);
    }

    /// PyTorch's float → bf16: to the nearest of 8 mantissa bits, ties to even.
    #[test]
    fn bf16_rounds_to_nearest_even() {
        assert_eq!(round_bf16(1.0), 1.0);
        assert_eq!(round_bf16(2f32.powi(-8)), 2f32.powi(-8));
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to the even one, 1.
        assert_eq!(round_bf16(1.0 + 2f32.powi(-8)), 1.0);
        // 1 + 3·2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties to 1 + 2^-6.
        assert_eq!(round_bf16(1.0 + 3.0 * 2f32.powi(-8)), 1.0 + 2f32.powi(-6));
        assert_eq!(
            round_bf16(1.0 + 2f32.powi(-8) + 2f32.powi(-12)),
            1.0 + 2f32.powi(-7)
        );
        assert_eq!(round_bf16(0.70710677), 0.70703125);
    }
}
