//! Per-channel standardisation: `x -> (x - mean[c]) / std[c]`, the usual input transform
//! for colour image sets (CIFAR-10, ImageNet) after scaling pixels to [0, 1].
//!
//! Compute the statistics on the training set only, and apply the same ones to the test
//! set and to every image given to the trained model.
//!
//! Decisions:
//! - The channel axis is axis 1 (NCHW, or `[N, features]` for tabular data, where each
//!   feature is standardised).
//! - `std` is the population standard deviation (divide by the count, not count - 1), as
//!   NumPy's default and the published CIFAR-10/ImageNet constants use.
//! - Sums are taken in f64: CIFAR-10's 51 million values per channel would lose digits
//!   in an f32 running sum.
//!
//! ```
//! use nabla::data::{channel_mean_std, normalize_per_channel};
//! use nabla::Tensor;
//! // Two 1x2 images with two channels: [N, C, H, W] = [2, 2, 1, 2].
//! let x = Tensor::from_vec(vec![0.0, 1.0, 0.5, 0.5, 1.0, 0.0, 0.5, 0.5], &[2, 2, 1, 2]);
//! let (mean, std) = channel_mean_std(&x).unwrap();
//! assert_eq!((mean.as_slice(), std.as_slice()), (&[0.5, 0.5][..], &[0.5, 0.0][..]));
//! // A constant channel has std 0 and cannot be divided by it: pass 1 for it.
//! let z = normalize_per_channel(&x, &mean, &[0.5, 1.0]).unwrap();
//! assert_eq!(z.data(), &[-1.0, 1.0, 0.0, 0.0, 1.0, -1.0, 0.0, 0.0]);
//! ```

use crate::engine::Tensor;
use crate::error::{Error, Result};

/// The `(channels, values per channel in one sample)` of `x`, checking it has a channel
/// axis.
fn channel_dims(x: &Tensor, what: &str) -> Result<(usize, usize)> {
    if x.ndim() < 2 {
        return Err(Error::shape(format!(
            "{what}: expected a tensor [N, C, ...] with a channel axis, got shape {:?}",
            x.shape()
        )));
    }
    Ok((x.shape()[1], x.shape()[2..].iter().product()))
}

/// The mean and population standard deviation of each channel (axis 1) of `x`, over all
/// samples and positions.
///
/// # Shapes
/// `x`: `[N, C, ...]` with N > 0 -> two vectors of length `C`.
pub fn channel_mean_std(x: &Tensor) -> Result<(Vec<f32>, Vec<f32>)> {
    let (c, inner) = channel_dims(x, "channel_mean_std")?;
    if x.numel() == 0 {
        return Err(Error::shape(format!(
            "channel_mean_std: no values to average in a tensor of shape {:?}",
            x.shape()
        )));
    }
    let mut sum = vec![0f64; c];
    let mut sum_sq = vec![0f64; c];
    // Samples are [C, inner] blocks; channel k of every sample is one contiguous run.
    for (i, run) in x.data().chunks_exact(inner).enumerate() {
        let k = i % c;
        let (s, sq) = run.iter().fold((0f64, 0f64), |(s, sq), &v| {
            let v = v as f64;
            (s + v, sq + v * v)
        });
        sum[k] += s;
        sum_sq[k] += sq;
    }
    let count = (x.numel() / c) as f64;
    let mean: Vec<f64> = sum.iter().map(|s| s / count).collect();
    // E[x^2] - E[x]^2 in f64 is exact enough for values in a small range such as [0, 1];
    // clamp the rounding error that can make it slightly negative.
    let std = sum_sq
        .iter()
        .zip(&mean)
        .map(|(sq, m)| ((sq / count - m * m).max(0.0)).sqrt() as f32)
        .collect();
    Ok((mean.iter().map(|&m| m as f32).collect(), std))
}

/// `(x - mean[c]) / std[c]` for each channel `c` (axis 1) of `x`.
///
/// # Shapes
/// `x`: `[N, C, ...]`, `mean` and `std`: `[C]` -> `[N, C, ...]`.
///
/// Every `std` must be finite and above 0 (a constant channel has std 0: pass 1 for it to
/// only centre it), and every `mean` finite; the error names the first that is not.
pub fn normalize_per_channel(x: &Tensor, mean: &[f32], std: &[f32]) -> Result<Tensor> {
    let (c, inner) = channel_dims(x, "normalize_per_channel")?;
    if mean.len() != c || std.len() != c {
        return Err(Error::shape(format!(
            "normalize_per_channel: x has shape {:?} ({c} channels) but got {} means and {} \
             standard deviations",
            x.shape(),
            mean.len(),
            std.len()
        )));
    }
    if let Some((k, m)) = mean.iter().enumerate().find(|(_, m)| !m.is_finite()) {
        return Err(Error::invalid(format!(
            "normalize_per_channel: mean[{k}] is {m}, not a finite number"
        )));
    }
    if let Some((k, s)) = std
        .iter()
        .enumerate()
        .find(|(_, s)| !(s.is_finite() && **s > 0.0))
    {
        return Err(Error::invalid(format!(
            "normalize_per_channel: std[{k}] is {s}; it must be finite and above 0 (for a \
             constant channel, pass 1 to only subtract its mean)"
        )));
    }
    let mut out = x.data().to_vec();
    if inner > 0 {
        for (i, run) in out.chunks_exact_mut(inner).enumerate() {
            let k = i % c;
            // Multiply by the reciprocal: one division per channel, not per value.
            let (m, r) = (mean[k], 1.0 / std[k]);
            run.iter_mut().for_each(|v| *v = (*v - m) * r);
        }
    }
    Ok(Tensor::from_vec(out, x.shape()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic [n, 3, 4, 5] tensor whose channels have different ranges.
    fn sample(n: usize) -> Tensor {
        let (c, hw) = (3, 20);
        let data = (0..n * c * hw)
            .map(|i| {
                let ch = (i / hw) % c;
                let t = ((i * 7919) % 101) as f32 / 100.0;
                0.2 * ch as f32 + t * (1.0 + ch as f32) * 0.1
            })
            .collect();
        Tensor::from_vec(data, &[n, c, 4, 5])
    }

    /// Mean and std of channel `k`, the obvious way.
    fn naive(x: &Tensor, k: usize) -> (f64, f64) {
        let (c, inner) = (x.shape()[1], x.shape()[2..].iter().product::<usize>());
        let vals: Vec<f64> = x
            .data()
            .chunks_exact(inner)
            .enumerate()
            .filter(|(i, _)| i % c == k)
            .flat_map(|(_, r)| r.iter().map(|&v| v as f64))
            .collect();
        let m = vals.iter().sum::<f64>() / vals.len() as f64;
        let var = vals.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / vals.len() as f64;
        (m, var.sqrt())
    }

    #[test]
    fn statistics_match_the_naive_computation() {
        let x = sample(6);
        let (mean, std) = channel_mean_std(&x).unwrap();
        assert_eq!((mean.len(), std.len()), (3, 3));
        for k in 0..3 {
            let (m, s) = naive(&x, k);
            assert!(
                (mean[k] as f64 - m).abs() < 1e-6,
                "mean[{k}] {} vs {m}",
                mean[k]
            );
            assert!(
                (std[k] as f64 - s).abs() < 1e-6,
                "std[{k}] {} vs {s}",
                std[k]
            );
        }
        assert!(mean[0] < mean[1] && mean[1] < mean[2]);
    }

    #[test]
    fn normalized_channels_have_zero_mean_unit_std() {
        let x = sample(5);
        let (mean, std) = channel_mean_std(&x).unwrap();
        let z = normalize_per_channel(&x, &mean, &std).unwrap();
        assert_eq!(z.shape(), x.shape());
        let (m2, s2) = channel_mean_std(&z).unwrap();
        for k in 0..3 {
            assert!(m2[k].abs() < 1e-5, "mean {}", m2[k]);
            assert!((s2[k] - 1.0).abs() < 1e-4, "std {}", s2[k]);
        }
        // Rank 2: each column is a feature.
        let t = Tensor::from_vec(vec![1.0, 10.0, 3.0, 30.0], &[2, 2]);
        let (m, s) = channel_mean_std(&t).unwrap();
        assert_eq!((m, s.clone()), (vec![2.0, 20.0], vec![1.0, 10.0]));
        let z = normalize_per_channel(&t, &[2.0, 20.0], &s).unwrap();
        assert_eq!(z.data(), &[-1.0, -1.0, 1.0, 1.0]);
    }

    #[test]
    fn bad_arguments_are_named() {
        let x = sample(2);
        let msg = normalize_per_channel(&x, &[0.0; 2], &[1.0; 3])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("[2, 3, 4, 5] (3 channels)"), "{msg}");
        assert!(msg.contains("2 means and 3 standard deviations"), "{msg}");
        let msg = normalize_per_channel(&x, &[0.0; 3], &[1.0, 0.0, 1.0])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("std[1] is 0"), "{msg}");
        let msg = normalize_per_channel(&x, &[0.0, f32::NAN, 0.0], &[1.0; 3])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("mean[1] is NaN"), "{msg}");
        let flat = Tensor::from_vec(vec![1.0, 2.0], &[2]);
        assert!(channel_mean_std(&flat).is_err());
        assert!(normalize_per_channel(&flat, &[0.0], &[1.0]).is_err());
        let msg = channel_mean_std(&Tensor::zeros(&[0, 3, 2, 2]))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("no values"), "{msg}");
    }
}
