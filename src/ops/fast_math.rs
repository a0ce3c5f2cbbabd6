//! `exp`, `sigmoid` and `tanh` for f32 without libm calls, written so that a plain loop
//! over a slice vectorises (no branches: both sides of every case are computed and one
//! is selected; no `floor`/`round`, which are libm calls on baseline x86-64).
//!
//! Fast paths:
//! - `exp`: Cephes' `expf` scheme. `x = k ln2 + r` with `k` rounded by the
//!   `1.5 * 2^23` trick (the integer lands in the low mantissa bits, read back with
//!   integer ops), `r` in `[-ln2/2, ln2/2]` by a two-part ln2, a degree-6 polynomial for
//!   `e^r`, and `2^k` built in the exponent bits. Max error about 1 ulp over the range.
//! - `tanh`: for `|x| < 0.625` Cephes' odd polynomial (no cancellation near 0), else
//!   `1 - 2 / (e^{2|x|} + 1)` with the sign put back.
//! - `sigmoid`: `1 / (1 + e^{-x})`.
//!
//! Extremes and special values: inputs are clamped to `exp`'s finite range first, so
//! `exp(x)` for `x > 88.37` is `e^88.37` (about `2.4e38`, not `inf`) and for
//! `x < -87.33` is about `1.2e-38` (not a denormal or 0); `sigmoid(-inf) = 1.2e-38`
//! (≈ 0), `sigmoid(+inf) = 1`, `tanh(±inf) = ±1`. NaN in gives NaN out for all three.
//! Errors against f64 references (tests below): `exp` ≤ 2 ulp in range, `sigmoid` and
//! `tanh` ≤ 2e-7 absolute and ≤ 4 ulp relative where the result is above 1e-30.

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split so that `k * LN2_HI` is exact for the `k` that occur.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// `1.5 * 2^23`: adding it rounds a float of magnitude < 2^22 to an integer, which then
/// sits in the low mantissa bits.
const ROUNDER: f32 = 12_582_912.0;
const EXP_HI: f32 = 88.376_26;
const EXP_LO: f32 = -87.336_54;

/// `e^x` (see the module doc for range and accuracy).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    // `max`/`min` drop a NaN operand: put it back at the end.
    let xc = x.clamp(EXP_LO, EXP_HI);
    let kr = xc * LOG2E + ROUNDER;
    let kf = kr - ROUNDER;
    // The integer k as the low bits of kr (two's complement offset by 0x4B40_0000).
    let k = kr.to_bits().wrapping_sub(0x4B40_0000);
    let r = (xc - kf * LN2_HI) - kf * LN2_LO;
    let z = r * r;
    let p = ((((1.987_569_2e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let y = p * z + r + 1.0;
    // 2^k: k in [-126, 127] after the clamp, so k + 127 is a normal exponent.
    let scale = f32::from_bits(k.wrapping_add(127) << 23);
    let e = y * scale;
    if x.is_nan() {
        x
    } else {
        e
    }
}

/// `1 / (1 + e^{-x})`.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `tanh(x)` (see the module doc).
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let a = x.abs();
    // Small |x|: x + x^3 P(x^2) (Cephes tanhf), exact to a couple of ulp near 0
    // where 1 - 2/(e^2x + 1) would cancel.
    let z = x * x;
    let small =
        ((((-5.704_988_7e-3 * z + 2.063_909e-2) * z - 5.373_971_6e-2) * z + 1.333_144_2e-1) * z
            - 3.333_328e-1)
            * z
            * x
            + x;
    let e = exp(2.0 * a);
    let large = (1.0 - 2.0 / (e + 1.0)).copysign(x);
    if a < 0.625 {
        small
    } else {
        large
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two million evenly spaced points over `[lo, hi]`, plus every 1024th bit
    /// pattern of `(0, 1)` and its negation (dense in ulps near 0).
    fn sweep(lo: f32, hi: f32) -> Vec<f32> {
        let n = 2_000_000;
        let mut v: Vec<f32> = (0..=n)
            .map(|i| lo + (hi - lo) * (i as f32 / n as f32))
            .collect();
        for b in (1..1.0f32.to_bits()).step_by(1024) {
            let x = f32::from_bits(b);
            v.extend([x, -x]);
        }
        v
    }

    fn ulps(a: f32, b: f64) -> f64 {
        let b32 = b as f32;
        let ulp = (f32::from_bits(b32.abs().to_bits() + 1) - b32.abs()) as f64;
        (a as f64 - b).abs() / ulp
    }

    #[test]
    fn exp_within_2_ulp() {
        let mut worst = 0.0f64;
        for x in sweep(-87.0, 88.0) {
            let want = (x as f64).exp();
            worst = worst.max(ulps(exp(x), want));
        }
        assert!(worst <= 2.0, "exp worst {worst} ulp");
    }

    #[test]
    fn sigmoid_and_tanh_close_to_f64() {
        let (mut ws, mut wt, mut rs, mut rt) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
        for x in sweep(-100.0, 100.0) {
            let xd = x as f64;
            let s = 1.0 / (1.0 + (-xd).exp());
            let t = xd.tanh();
            ws = ws.max((sigmoid(x) as f64 - s).abs());
            wt = wt.max((tanh(x) as f64 - t).abs());
            if s > 1e-30 {
                rs = rs.max(ulps(sigmoid(x), s));
            }
            if t.abs() > 1e-30 {
                rt = rt.max(ulps(tanh(x), t));
            }
        }
        assert!(ws <= 2e-7 && wt <= 2e-7, "abs: sigmoid {ws}, tanh {wt}");
        assert!(rs <= 4.0 && rt <= 4.0, "ulp: sigmoid {rs}, tanh {rt}");
    }

    #[test]
    fn specials() {
        assert!(exp(f32::NAN).is_nan());
        assert!(sigmoid(f32::NAN).is_nan());
        assert!(tanh(f32::NAN).is_nan());
        assert_eq!(sigmoid(f32::INFINITY), 1.0);
        assert!(sigmoid(f32::NEG_INFINITY) < 1e-37);
        assert_eq!(tanh(f32::INFINITY), 1.0);
        assert_eq!(tanh(f32::NEG_INFINITY), -1.0);
        assert_eq!(tanh(0.0), 0.0);
        assert_eq!(tanh(-1e-30), -1e-30);
        assert!(exp(1000.0).is_finite() && exp(-1000.0) > 0.0);
        assert_eq!(exp(0.0), 1.0);
    }
}
