//! Element-type conversion kernels: plain functions over slices, `dst[i] = convert(src[i])`.
//!
//! Rules (the same on every path; `naive` below is the readable spec the tests compare
//! every fast path against, bit for bit):
//! - f32 -> f16 / bf16: IEEE round to nearest, ties to even; values beyond the largest
//!   finite value become +-inf; results too small become subnormals or +-0 (never
//!   flushed); NaN stays NaN (quiet, sign kept).
//! - f16 / bf16 / i8 / u8 -> f32: exact. i64 -> f32: nearest f32 (ties to even).
//! - f32 -> i8 / u8 / i64: round to nearest, ties to even (as quantizers do), then
//!   saturate to the type's range; NaN becomes 0.
//!
//! Fast paths (chosen at run time with `is_x86_feature_detected!`, scalar otherwise):
//! - f32 -> f16: AVX512-F `vcvtps2ph` on 16 lanes, else F16C on 8 lanes.
//! - f16 -> f32: AVX512-F `vcvtph2ps` on 16 lanes, else F16C on 8 lanes.
//! - f32 -> bf16: AVX512-BF16 `vcvtneps2bf16` on 16 lanes. That instruction flushes
//!   subnormal inputs to zero, so a block of 16 holding a subnormal takes the scalar
//!   rule instead (one compare per block; subnormals are rare in weights and
//!   activations).
//! - bf16 -> f32 is a 16-bit shift, which the compiler vectorises unaided.
//!
//! Measured (`measure_conversion_speed`, run by hand with `--ignored`; AMD EPYC with AVX-512 and AVX512-BF16,
//! one core of a loaded 2-core machine; GB/s of f32 read or written):
//!
//! | conversion | 256 Ki elements (in cache): this file / `half` / scalar | 16 Mi (memory) |
//! |------------|------------------------------------------------|----------------|
//! | f32 -> f16 | 58 / 12 / 0.3                                  | 5-6, all paths |
//! | f16 -> f32 | 25 / 7.9                                       | 6-7            |
//! | f32 -> bf16| 24 / 5.0 / 6.0 (the integer rule, vectorised by the compiler) | 6 |
//! | bf16 -> f32| 18                                            | 7              |
//!
//! So the hand-written paths pay where data is in cache (a layer's activations between
//! two layers); a large tensor is bound by memory whichever path runs.

use half::{bf16, f16};
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Lanes per AVX-512 vector of f32.
const V: usize = 16;

pub fn f32_to_f16(dst: &mut [f16], src: &[f32]) {
    assert_eq!(dst.len(), src.len());
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked just above).
            unsafe { f32_to_f16_avx512(dst, src) };
            return;
        }
        if is_x86_feature_detected!("f16c") && is_x86_feature_detected!("avx") {
            // SAFETY: the CPU has F16C and AVX (checked just above).
            unsafe { f32_to_f16_f16c(dst, src) };
            return;
        }
    }
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = f16::from_f32(s);
    }
}

pub fn f16_to_f32(dst: &mut [f32], src: &[f16]) {
    assert_eq!(dst.len(), src.len());
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked just above).
            unsafe { f16_to_f32_avx512(dst, src) };
            return;
        }
        if is_x86_feature_detected!("f16c") && is_x86_feature_detected!("avx") {
            // SAFETY: the CPU has F16C and AVX (checked just above).
            unsafe { f16_to_f32_f16c(dst, src) };
            return;
        }
    }
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = s.to_f32();
    }
}

pub fn f32_to_bf16(dst: &mut [bf16], src: &[f32]) {
    assert_eq!(dst.len(), src.len());
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx512bf16") && is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F and AVX512-BF16 (checked just above).
        unsafe { f32_to_bf16_avx512(dst, src) };
        return;
    }
    f32_to_bf16_scalar(dst, src);
}

pub fn bf16_to_f32(dst: &mut [f32], src: &[bf16]) {
    assert_eq!(dst.len(), src.len());
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = f32::from_bits((s.to_bits() as u32) << 16);
    }
}

fn f32_to_bf16_scalar(dst: &mut [bf16], src: &[f32]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = bf16::from_bits(naive::f32_to_bf16_bits(s));
    }
}

/// Round half to even, then saturate; NaN -> 0 (Rust's `as` saturates and maps NaN to 0).
pub fn f32_to_i8(dst: &mut [i8], src: &[f32]) {
    assert_eq!(dst.len(), src.len());
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = s.round_ties_even() as i8;
    }
}

pub fn f32_to_u8(dst: &mut [u8], src: &[f32]) {
    assert_eq!(dst.len(), src.len());
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = s.round_ties_even() as u8;
    }
}

pub fn f32_to_i64(dst: &mut [i64], src: &[f32]) {
    assert_eq!(dst.len(), src.len());
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = s.round_ties_even() as i64;
    }
}

pub fn i8_to_f32(dst: &mut [f32], src: &[i8]) {
    assert_eq!(dst.len(), src.len());
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = s as f32;
    }
}

pub fn u8_to_f32(dst: &mut [f32], src: &[u8]) {
    assert_eq!(dst.len(), src.len());
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = s as f32;
    }
}

pub fn i64_to_f32(dst: &mut [f32], src: &[i64]) {
    assert_eq!(dst.len(), src.len());
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = s as f32;
    }
}

/// # Safety
/// The CPU must have AVX-512F; `dst.len() == src.len()`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn f32_to_f16_avx512(dst: &mut [f16], src: &[f32]) {
    let n = src.len() / V * V;
    for i in (0..n).step_by(V) {
        // SAFETY: i + 16 <= n <= len of both slices; unaligned loads and stores.
        unsafe {
            let x = _mm512_loadu_ps(src.as_ptr().add(i));
            let h = _mm512_cvtps_ph::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(x);
            _mm256_storeu_si256(dst.as_mut_ptr().add(i) as *mut __m256i, h);
        }
    }
    for i in n..src.len() {
        dst[i] = f16::from_f32(src[i]);
    }
}

/// # Safety
/// The CPU must have AVX-512F; `dst.len() == src.len()`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn f16_to_f32_avx512(dst: &mut [f32], src: &[f16]) {
    let n = src.len() / V * V;
    for i in (0..n).step_by(V) {
        // SAFETY: i + 16 <= n <= len of both slices; unaligned loads and stores.
        unsafe {
            let h = _mm256_loadu_si256(src.as_ptr().add(i) as *const __m256i);
            _mm512_storeu_ps(dst.as_mut_ptr().add(i), _mm512_cvtph_ps(h));
        }
    }
    for i in n..src.len() {
        dst[i] = src[i].to_f32();
    }
}

/// # Safety
/// The CPU must have F16C and AVX; `dst.len() == src.len()`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,f16c")]
unsafe fn f32_to_f16_f16c(dst: &mut [f16], src: &[f32]) {
    let n = src.len() / 8 * 8;
    for i in (0..n).step_by(8) {
        // SAFETY: i + 8 <= n <= len of both slices; unaligned loads and stores.
        unsafe {
            let x = _mm256_loadu_ps(src.as_ptr().add(i));
            let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(x);
            _mm_storeu_si128(dst.as_mut_ptr().add(i) as *mut __m128i, h);
        }
    }
    for i in n..src.len() {
        dst[i] = f16::from_f32(src[i]);
    }
}

/// # Safety
/// The CPU must have F16C and AVX; `dst.len() == src.len()`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,f16c")]
unsafe fn f16_to_f32_f16c(dst: &mut [f32], src: &[f16]) {
    let n = src.len() / 8 * 8;
    for i in (0..n).step_by(8) {
        // SAFETY: i + 8 <= n <= len of both slices; unaligned loads and stores.
        unsafe {
            let h = _mm_loadu_si128(src.as_ptr().add(i) as *const __m128i);
            _mm256_storeu_ps(dst.as_mut_ptr().add(i), _mm256_cvtph_ps(h));
        }
    }
    for i in n..src.len() {
        dst[i] = src[i].to_f32();
    }
}

/// # Safety
/// The CPU must have AVX-512F and AVX512-BF16; `dst.len() == src.len()`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn f32_to_bf16_avx512(dst: &mut [bf16], src: &[f32]) {
    let n = src.len() / V * V;
    let abs_mask = _mm512_set1_epi32(0x7fff_ffff);
    let max_subnormal = _mm512_set1_epi32(0x007f_ffff);
    let one = _mm512_set1_epi32(1);
    for i in (0..n).step_by(V) {
        // SAFETY: i + 16 <= n <= len of both slices; unaligned loads and stores.
        let x = unsafe { _mm512_loadu_ps(src.as_ptr().add(i)) };
        // |x| - 1 < 0x7fffff (unsigned) exactly when x is subnormal: 0 wraps around.
        let abs = _mm512_and_si512(_mm512_castps_si512(x), abs_mask);
        let subnormal = _mm512_cmplt_epu32_mask(_mm512_sub_epi32(abs, one), max_subnormal);
        if subnormal != 0 {
            f32_to_bf16_scalar(&mut dst[i..i + V], &src[i..i + V]);
            continue;
        }
        let h = _mm512_cvtneps_pbh(x);
        // SAFETY: as for the load; __m256bh is 16 x 16 bits, the layout of [bf16; 16].
        unsafe {
            _mm256_storeu_si256(
                dst.as_mut_ptr().add(i) as *mut __m256i,
                std::mem::transmute::<__m256bh, __m256i>(h),
            )
        };
    }
    f32_to_bf16_scalar(&mut dst[n..], &src[n..]);
}

/// The readable spec: bit-level conversions written from the IEEE formats, used by the
/// tests to check every fast path and the `half` crate.
pub mod naive {
    /// f32 -> bf16 bits: keep the top 16 bits, rounding the dropped 16 to nearest even.
    pub fn f32_to_bf16_bits(x: f32) -> u16 {
        let b = x.to_bits();
        if x.is_nan() {
            // Quiet NaN, sign and top payload bits kept.
            return ((b >> 16) as u16) | 0x0040;
        }
        let lsb = (b >> 16) & 1;
        // Adding 0x7fff rounds up when the dropped part exceeds half; adding the kept
        // part's lowest bit makes an exact half round to even. A carry into the exponent
        // is right (it rounds up to the next binade, or to inf).
        ((b + 0x7fff + lsb) >> 16) as u16
    }

    /// f32 -> f16 bits (1 sign, 5 exponent bits with bias 15, 10 mantissa bits).
    pub fn f32_to_f16_bits(x: f32) -> u16 {
        let b = x.to_bits();
        let sign = ((b >> 16) & 0x8000) as u16;
        let exp = ((b >> 23) & 0xff) as i32;
        let man = b & 0x007f_ffff;
        if exp == 0xff {
            // inf, or NaN made quiet with the top payload bits kept.
            return if man == 0 {
                sign | 0x7c00
            } else {
                sign | 0x7e00 | (man >> 13) as u16
            };
        }
        // The value is 1.man * 2^(exp - 127) (or 0.man * 2^-126 for f32 subnormals,
        // which are far below f16's range and round to zero below).
        let e = exp - 127 + 15;
        if e >= 0x1f {
            return sign | 0x7c00; // overflow -> inf
        }
        // Significand with its implicit bit, as an integer m: value = m * 2^(exp-150).
        let m = if exp == 0 { man } else { man | 0x0080_0000 };
        // f16 keeps 11 significant bits for normals; for subnormals the unit in the
        // last place is fixed at 2^-24. `shift` is how many low bits of m are dropped.
        let shift = if e >= 1 { 13 } else { 14 - e }; // 13 + (1 - e) for subnormals
        if shift > 31 {
            return sign; // far below the smallest subnormal: +-0
        }
        let shift = shift as u32;
        let kept = m >> shift;
        let rest = m & ((1u32 << shift) - 1);
        let half = 1u32 << (shift - 1);
        let rounded = if rest > half || (rest == half && kept & 1 == 1) {
            kept + 1
        } else {
            kept
        };
        if e >= 1 {
            // Normal: the implicit bit sits at 2^10; a carry out of the mantissa bumps
            // the exponent (and may reach inf, which is right).
            sign | ((((e as u32) << 10) + (rounded - 0x400)) as u16)
        } else {
            // Subnormal (exponent field 0); rounding up to 0x400 yields the smallest
            // normal, whose bits are exactly 0x400.
            sign | rounded as u16
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bit patterns that exercise every rounding case: specials, both sides of each
    /// format's overflow and subnormal limits, exact halves, and a pseudo-random sweep.
    fn probe_values() -> Vec<f32> {
        let mut bits: Vec<u32> = vec![
            0,
            0x8000_0000,
            0x7f80_0000,
            0xff80_0000,
            0x7fc0_0000,
            0xffc0_0001,
            0x7f80_0001, // signalling NaN
            0x0000_0001, // smallest f32 subnormal
            0x007f_ffff, // largest f32 subnormal
            0x8040_0000,
            0x0080_0000, // smallest f32 normal
            0x7f7f_ffff, // largest finite f32
            0x3f80_8000, // 1 + 2^-8: a tie for bf16 (rounds to even: 1.0)
            0x3f81_8000, // a tie that rounds up for bf16
            0x3f80_1000, // 1 + 2^-11: a tie for f16
            0x3f80_3000, // a tie that rounds up for f16
            0x477f_f000, // 65520: rounds to inf in f16
            0x477f_efff, // just below: 65504
            0x3380_0000, // 2^-24, the smallest f16 subnormal
            0x3300_0000, // 2^-25: a tie between 0 and 2^-24 (-> 0)
            0x3300_0001, // just above: -> 2^-24
            0x3880_0000, // 2^-14, the smallest f16 normal
            0x387f_e000, // a tie just below it
        ];
        // Random sweep across all exponents (xorshift: reproducible, no dependency).
        let mut s = 0x2545_f491_u32;
        for _ in 0..200_000 {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            bits.push(s);
        }
        // Dense sweep over f16's subnormal and overflow edges.
        for k in 0..4096u32 {
            bits.push(0x3300_0000 + k * 0x1000);
            bits.push(0x4770_0000 + k * 0x10);
        }
        bits.into_iter().map(f32::from_bits).collect()
    }

    fn same_bits_or_both_nan_f16(a: f16, b: u16) -> bool {
        a.to_bits() == b || (a.is_nan() && f16::from_bits(b).is_nan())
    }

    #[test]
    fn f16_matches_the_naive_spec_bit_for_bit() {
        let xs = probe_values();
        let mut fast = vec![f16::ZERO; xs.len()];
        f32_to_f16(&mut fast, &xs);
        for (i, &x) in xs.iter().enumerate() {
            let want = naive::f32_to_f16_bits(x);
            assert!(
                same_bits_or_both_nan_f16(fast[i], want),
                "{x:e} ({:#010x}): fast {:#06x}, spec {want:#06x}",
                x.to_bits(),
                fast[i].to_bits()
            );
            // The `half` crate (the scalar fallback) agrees with the spec too.
            assert!(same_bits_or_both_nan_f16(f16::from_f32(x), want), "{x:e}");
        }
        assert_eq!(naive::f32_to_f16_bits(65504.0), 0x7bff);
        assert_eq!(naive::f32_to_f16_bits(1.0 + 1.0 / 2048.0), 0x3c00); // tie -> even
        assert_eq!(naive::f32_to_f16_bits(5.960_464_5e-8), 0x0001); // 2^-24
    }

    #[test]
    fn f16_widens_exactly() {
        let all: Vec<f16> = (0..=u16::MAX).map(f16::from_bits).collect();
        let mut fast = vec![0.0f32; all.len()];
        f16_to_f32(&mut fast, &all);
        for (h, f) in all.iter().zip(&fast) {
            if h.is_nan() {
                assert!(f.is_nan());
            } else {
                assert_eq!(*f, h.to_f32(), "{:#06x}", h.to_bits());
                // Round trip back is the identity on non-NaN values.
                assert_eq!(naive::f32_to_f16_bits(*f), h.to_bits());
            }
        }
    }

    #[test]
    fn bf16_matches_the_naive_spec_bit_for_bit() {
        let xs = probe_values();
        let mut fast = vec![bf16::ZERO; xs.len()];
        f32_to_bf16(&mut fast, &xs);
        for (i, &x) in xs.iter().enumerate() {
            let want = naive::f32_to_bf16_bits(x);
            let ok = fast[i].to_bits() == want || (x.is_nan() && fast[i].is_nan());
            assert!(
                ok,
                "{x:e}: fast {:#06x}, spec {want:#06x}",
                fast[i].to_bits()
            );
            let h = bf16::from_f32(x);
            assert!(
                h.to_bits() == want || (x.is_nan() && h.is_nan()),
                "half: {x:e}"
            );
        }
        // Subnormals are kept (the hardware instruction alone would flush them).
        let sub = [f32::from_bits(1); 20];
        let mut out = [bf16::ZERO; 20];
        f32_to_bf16(&mut out, &sub);
        assert!(out.iter().all(|b| b.to_bits() == 0x0000)); // 2^-149 rounds to +0
        let sub = [f32::from_bits(0x0040_0000); 20]; // 2^-127
        f32_to_bf16(&mut out, &sub);
        assert!(out.iter().all(|b| b.to_bits() == 0x0040));
        let all: Vec<bf16> = (0..=u16::MAX).map(bf16::from_bits).collect();
        let mut wide = vec![0.0f32; all.len()];
        bf16_to_f32(&mut wide, &all);
        for (h, f) in all.iter().zip(&wide) {
            assert!(h.is_nan() && f.is_nan() || h.to_f32() == *f);
        }
    }

    #[test]
    fn integers_round_half_to_even_and_saturate() {
        let xs = [
            0.5,
            1.5,
            2.5,
            -0.5,
            -1.5,
            126.6,
            300.0,
            -300.0,
            f32::NAN,
            1e30,
        ];
        let mut i8s = [0i8; 10];
        f32_to_i8(&mut i8s, &xs);
        assert_eq!(i8s, [0, 2, 2, 0, -2, 127, 127, -128, 0, 127]);
        let mut u8s = [0u8; 10];
        f32_to_u8(&mut u8s, &xs);
        assert_eq!(u8s, [0, 2, 2, 0, 0, 127, 255, 0, 0, 255]);
        let mut i64s = [0i64; 10];
        f32_to_i64(&mut i64s, &xs);
        assert_eq!(i64s[..8], [0, 2, 2, 0, -2, 127, 300, -300]);
        assert_eq!(i64s[8], 0);
        assert_eq!(i64s[9], i64::MAX); // saturated
        let mut back = [0.0f32; 3];
        i64_to_f32(&mut back, &[(1 << 24) + 1, -7, i64::MAX]);
        assert_eq!(back, [16_777_216.0, -7.0, 9.223_372e18]);
        u8_to_f32(&mut back, &[0, 128, 255]);
        assert_eq!(back, [0.0, 128.0, 255.0]);
        i8_to_f32(&mut back, &[-128, 0, 127]);
        assert_eq!(back, [-128.0, 0.0, 127.0]);
    }

    /// Throughput of each path, in GB/s of f32 read. Not a correctness test: run by hand
    /// with `cargo test --release --lib measure_conversion_speed -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn measure_conversion_speed() {
        // 256 Ki elements stay in cache (compute bound); 16 Mi go to memory.
        for n in [1 << 18, 1 << 24] {
            println!("{n} elements:");
            measure_at(n);
        }
    }

    fn measure_at(n: usize) {
        let reps = (1 << 27) / n;
        let xs: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin() * 100.0).collect();
        let mut h = vec![f16::ZERO; n];
        let mut b = vec![bf16::ZERO; n];
        let mut back = vec![0.0f32; n];
        let gbs = |f: &mut dyn FnMut()| {
            f();
            let t = std::time::Instant::now();
            for _ in 0..reps {
                f();
            }
            (reps * n * 4) as f64 / t.elapsed().as_secs_f64() / 1e9
        };
        use half::slice::HalfFloatSliceExt;
        println!(
            "f32->f16 nabla     {:.2} GB/s",
            gbs(&mut || f32_to_f16(&mut h, &xs))
        );
        println!(
            "f32->f16 half      {:.2} GB/s",
            gbs(&mut || h.convert_from_f32_slice(&xs))
        );
        println!(
            "f32->f16 scalar    {:.2} GB/s",
            gbs(&mut || {
                for (d, &s) in h.iter_mut().zip(&xs) {
                    *d = f16::from_bits(naive::f32_to_f16_bits(s));
                }
            })
        );
        println!(
            "f16->f32 nabla     {:.2} GB/s",
            gbs(&mut || f16_to_f32(&mut back, &h))
        );
        println!(
            "f16->f32 half      {:.2} GB/s",
            gbs(&mut || h.convert_to_f32_slice(&mut back))
        );
        println!(
            "f32->bf16 nabla    {:.2} GB/s",
            gbs(&mut || f32_to_bf16(&mut b, &xs))
        );
        println!(
            "f32->bf16 scalar   {:.2} GB/s",
            gbs(&mut || f32_to_bf16_scalar(&mut b, &xs))
        );
        println!(
            "f32->bf16 half     {:.2} GB/s",
            gbs(&mut || b.convert_from_f32_slice(&xs))
        );
        println!(
            "bf16->f32 nabla    {:.2} GB/s",
            gbs(&mut || bf16_to_f32(&mut back, &b))
        );
    }
}
