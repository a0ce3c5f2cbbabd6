//! On-the-fly, seeded data augmentation of image batches (`[N, C, H, W]`): random crop
//! with zero padding, horizontal flip, small rotations, shifts and zooms, brightness and
//! contrast.
//!
//! `Augmentation` is plain data (it is saved in `run.json`); `nabla train --augment
//! crop=4,flip,rotate=10` builds one with [`Augmentation::parse`]. `fit` applies it to
//! each training batch on its producer thread, never to validation or test data.
//!
//! Per image, in this order: pad-and-crop, flip, one affine warp for rotation + shift +
//! scale (bilinear, zeros outside), contrast, brightness. Each enabled op draws its
//! parameters independently for every image; disabled ops draw nothing and cost nothing.
//!
//! Seeding: a batch's random numbers come from [`batch_rng`]`(seed, epoch, batch)`, not
//! from a generator shared with the training loop, so the augmented batches depend only
//! on the seed and the batch's position, not on which thread prepares them or when.
//!
//! ```
//! use nabla::data::augment::Augmentation;
//! use nabla::Tensor;
//! let aug = Augmentation::parse("crop=4,flip,rotate=10").unwrap();
//! let x = Tensor::full(&[2, 3, 32, 32], 0.5);
//! let a = aug.apply_batch(&x, 7, 0, 0).unwrap();
//! assert_eq!(a.shape(), &[2, 3, 32, 32]);
//! assert_eq!(a.data(), aug.apply_batch(&x, 7, 0, 0).unwrap().data());
//! ```

use super::transforms::{self, Affine, Chw};
use crate::engine::{Rng, Tensor};
use crate::error::{Error, Result};
use crate::training::BatchTransform;
use serde::{Deserialize, Serialize};

/// Which augmentations to apply, and how strongly. The default does nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Augmentation {
    /// Pad by this many zero pixels on every side, then crop a random `H x W` window
    /// (torchvision's `RandomCrop(size, padding=P)`). 0: off.
    pub crop_padding: usize,
    /// Mirror left-right with probability 1/2.
    pub horizontal_flip: bool,
    /// Rotate by an angle drawn uniformly from `[-D, D]` degrees. 0: off.
    pub rotation_degrees: f32,
    /// Shift by up to this fraction of the width (horizontally) and of the height
    /// (vertically), each drawn uniformly from `[-f, f]`. 0: off.
    pub shift: f32,
    /// Zoom by a factor drawn uniformly from `[1 - s, 1 + s]`. 0: off.
    pub scale: f32,
    /// Add a delta drawn uniformly from `[-b, b]` to every pixel. 0: off.
    pub brightness: f32,
    /// Multiply each pixel's distance from the image's mean by a factor drawn uniformly
    /// from `[1 - c, 1 + c]`. 0: off.
    pub contrast: f32,
}

/// The keys of an augmentation spec, in the order `to_spec` writes them.
pub const SPEC_KEYS: [&str; 7] = [
    "crop",
    "flip",
    "rotate",
    "shift",
    "scale",
    "brightness",
    "contrast",
];

impl Augmentation {
    /// Parses a spec such as `crop=4,flip,rotate=10,shift=0.1,scale=0.1,brightness=0.2,
    /// contrast=0.2`: comma-separated keys, each with a value except `flip`. An unknown
    /// key, a missing or malformed value, a value out of range or a repeated key is an
    /// error naming the key.
    pub fn parse(spec: &str) -> Result<Augmentation> {
        let err = |msg: String| Error::invalid(format!("--augment \"{spec}\": {msg}"));
        let mut aug = Augmentation::default();
        let mut seen: Vec<&str> = Vec::new();
        for item in spec.split(',').map(str::trim) {
            if item.is_empty() {
                return Err(err(format!(
                    "empty item; expected comma-separated keys ({})",
                    SPEC_KEYS.join(", ")
                )));
            }
            let (key, value) = match item.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (item, None),
            };
            if !SPEC_KEYS.contains(&key) {
                return Err(err(format!(
                    "unknown key \"{key}\"; known keys: {}",
                    SPEC_KEYS.join(", ")
                )));
            }
            if seen.contains(&key) {
                return Err(err(format!("\"{key}\" is given twice")));
            }
            seen.push(key);
            if key == "flip" {
                if let Some(v) = value {
                    return Err(err(format!(
                        "\"flip\" takes no value (got \"flip={v}\"); write just \"flip\""
                    )));
                }
                aug.horizontal_flip = true;
                continue;
            }
            let Some(value) = value else {
                return Err(err(format!(
                    "\"{key}\" needs a value, e.g. \"{key}={}\"",
                    example(key)
                )));
            };
            if key == "crop" {
                aug.crop_padding = value.parse().map_err(|_| {
                    err(format!(
                        "crop={value}: expected a whole number of pixels of padding, e.g. crop=4"
                    ))
                })?;
                continue;
            }
            let v: f32 = value
                .parse()
                .map_err(|_| err(format!("{key}={value}: expected a number")))?;
            match key {
                "rotate" => aug.rotation_degrees = v,
                "shift" => aug.shift = v,
                "scale" => aug.scale = v,
                "brightness" => aug.brightness = v,
                "contrast" => aug.contrast = v,
                _ => unreachable!("every key in SPEC_KEYS is handled"),
            }
        }
        aug.validate()
            .map_err(|e| err(e.to_string().replace("augmentation: ", "")))?;
        Ok(aug)
    }

    /// The spec that `parse` turns back into this augmentation (`crop=4,flip,...`), or
    /// `none`.
    pub fn to_spec(&self) -> String {
        let mut parts = Vec::new();
        if self.crop_padding > 0 {
            parts.push(format!("crop={}", self.crop_padding));
        }
        if self.horizontal_flip {
            parts.push("flip".to_string());
        }
        for (key, v) in [
            ("rotate", self.rotation_degrees),
            ("shift", self.shift),
            ("scale", self.scale),
            ("brightness", self.brightness),
            ("contrast", self.contrast),
        ] {
            if v != 0.0 {
                parts.push(format!("{key}={v}"));
            }
        }
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(",")
        }
    }

    /// Checks every range (also for configs read from JSON): rotation in [0, 180]
    /// degrees, shift, scale and contrast in [0, 1), brightness in [0, 1]. Errors
    /// name the key as the spec writes it.
    pub fn validate(&self) -> Result<()> {
        let check = |key: &str, v: f32, ok: bool, range: &str| -> Result<()> {
            if ok && v.is_finite() {
                Ok(())
            } else {
                Err(Error::invalid(format!(
                    "augmentation: {key}={v} is out of range; {key} must be {range}"
                )))
            }
        };
        let r = self.rotation_degrees;
        check(
            "rotate",
            r,
            (0.0..=180.0).contains(&r),
            "in [0, 180] degrees",
        )?;
        // A shift of a whole image or more, or a zoom to nothing, would leave no picture.
        check(
            "shift",
            self.shift,
            (0.0..1.0).contains(&self.shift),
            "in [0, 1)",
        )?;
        check(
            "scale",
            self.scale,
            (0.0..1.0).contains(&self.scale),
            "in [0, 1)",
        )?;
        let b = self.brightness;
        // Pixels are in [0, 1]: an offset beyond 1 turns every image white or black.
        check("brightness", b, (0.0..=1.0).contains(&b), "in [0, 1]")?;
        let c = self.contrast;
        check("contrast", c, (0.0..1.0).contains(&c), "in [0, 1)")?;
        Ok(())
    }

    /// True when no op is enabled (the batches would come back unchanged).
    pub fn is_identity(&self) -> bool {
        *self == Augmentation::default()
    }

    /// Fails unless `shape` is a batch of images `[N, C, H, W]`, naming the shape.
    pub fn check_input(&self, shape: &[usize]) -> Result<()> {
        if shape.len() != 4 {
            return Err(Error::shape(format!(
                "augmentation needs image batches [N, C, H, W] (channels first), but the \
                 training inputs have shape {shape:?}"
            )));
        }
        // Padding beyond the image's own size crops mostly zeros, and its padded copy
        // grows with the square of the padding.
        let side = shape[2].min(shape[3]);
        if self.crop_padding > side {
            return Err(Error::invalid(format!(
                "augmentation: crop={} pads more than the images' {}x{} pixels; crop must \
                 be at most {side}",
                self.crop_padding, shape[2], shape[3]
            )));
        }
        Ok(())
    }

    /// Augments the batch `x` (`[N, C, H, W]`) with random numbers from
    /// [`batch_rng`]`(seed, epoch, batch)`: the same arguments give the same result.
    pub fn apply_batch(&self, x: &Tensor, seed: u64, epoch: usize, batch: usize) -> Result<Tensor> {
        self.apply(x, &mut batch_rng(seed, epoch, batch))
    }

    /// Augments every image of `x` (`[N, C, H, W]`), drawing from `rng` image by image.
    pub fn apply(&self, x: &Tensor, rng: &mut Rng) -> Result<Tensor> {
        self.validate()?;
        self.check_input(x.shape())?;
        let s = x.shape();
        let dims = Chw {
            c: s[1],
            h: s[2],
            w: s[3],
        };
        let mut out = x.data().to_vec();
        if self.is_identity() || dims.is_empty() {
            return Ok(Tensor::from_vec(out, s));
        }
        let mut scratch = vec![0f32; dims.len()];
        for img in out.chunks_exact_mut(dims.len()) {
            self.apply_one(img, &mut scratch, dims, rng);
        }
        Ok(Tensor::from_vec(out, s))
    }

    /// One image in place; `scratch` is a buffer of the same size.
    fn apply_one(&self, img: &mut [f32], scratch: &mut [f32], dims: Chw, rng: &mut Rng) {
        let p = self.crop_padding;
        if p > 0 {
            let top = rng.below(2 * p + 1);
            let left = rng.below(2 * p + 1);
            transforms::pad_crop(img, scratch, dims, p, top, left);
            img.copy_from_slice(scratch);
        }
        if self.horizontal_flip && rng.uniform() < 0.5 {
            transforms::flip_horizontal(img, dims);
        }
        let mut t = Affine::IDENTITY;
        if self.rotation_degrees > 0.0 {
            let d = self.rotation_degrees;
            t.degrees = rng.uniform_range(-d, d) as f64;
        }
        if self.shift > 0.0 {
            let (fx, fy) = (self.shift * dims.w as f32, self.shift * dims.h as f32);
            t.shift_x = rng.uniform_range(-fx, fx) as f64;
            t.shift_y = rng.uniform_range(-fy, fy) as f64;
        }
        if self.scale > 0.0 {
            t.scale = rng.uniform_range(1.0 - self.scale, 1.0 + self.scale) as f64;
        }
        if t != Affine::IDENTITY {
            transforms::warp_affine(img, scratch, dims, &t);
            img.copy_from_slice(scratch);
        }
        if self.contrast > 0.0 {
            let c = self.contrast;
            transforms::adjust_contrast(img, rng.uniform_range(1.0 - c, 1.0 + c));
        }
        if self.brightness > 0.0 {
            let b = self.brightness;
            transforms::adjust_brightness(img, rng.uniform_range(-b, b));
        }
    }
}

/// A value to show in "needs a value" errors.
fn example(key: &str) -> &'static str {
    match key {
        "crop" => "4",
        "rotate" => "10",
        _ => "0.1",
    }
}

/// The generator for one batch of one epoch: `seed`, `epoch` and `batch` mixed by
/// SplitMix64 steps (so neighbouring batches get unrelated streams) into a ChaCha8 seed.
pub fn batch_rng(seed: u64, epoch: usize, batch: usize) -> Rng {
    let mut h = splitmix64(seed);
    h = splitmix64(h ^ epoch as u64);
    h = splitmix64(h ^ batch as u64);
    Rng::new(h)
}

/// One step of SplitMix64 (Steele, Lea and Flood 2014), a bijective 64-bit mixer.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `fit`'s view of an augmentation (see `training::transform`).
impl BatchTransform for Augmentation {
    fn is_identity(&self) -> bool {
        Augmentation::is_identity(self)
    }
    fn check_input(&self, shape: &[usize]) -> Result<()> {
        self.validate()?;
        Augmentation::check_input(self, shape)
    }
    fn apply_batch(&self, x: &Tensor, seed: u64, epoch: usize, batch: usize) -> Result<Tensor> {
        Augmentation::apply_batch(self, x, seed, epoch, batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = "crop=4,flip,rotate=10,shift=0.1,scale=0.1,brightness=0.2,contrast=0.2";

    fn images(n: usize, c: usize, h: usize, w: usize) -> Tensor {
        let len = n * c * h * w;
        Tensor::from_vec(
            (0..len)
                .map(|v| ((v * 7919) % 256) as f32 / 255.0)
                .collect(),
            &[n, c, h, w],
        )
    }

    #[test]
    fn parse_reads_every_key_and_round_trips() {
        let aug = Augmentation::parse(FULL).unwrap();
        assert_eq!(
            aug,
            Augmentation {
                crop_padding: 4,
                horizontal_flip: true,
                rotation_degrees: 10.0,
                shift: 0.1,
                scale: 0.1,
                brightness: 0.2,
                contrast: 0.2,
            }
        );
        assert_eq!(aug.to_spec(), FULL);
        assert_eq!(Augmentation::parse(&aug.to_spec()).unwrap(), aug);
        assert_eq!(
            Augmentation::parse(" flip , crop = 2 ").unwrap().to_spec(),
            "crop=2,flip"
        );
        assert_eq!(Augmentation::default().to_spec(), "none");
        // JSON round trip (run.json), missing fields default, unknown ones are refused.
        let json = serde_json::to_string(&aug).unwrap();
        assert_eq!(serde_json::from_str::<Augmentation>(&json).unwrap(), aug);
        let partial: Augmentation = serde_json::from_str(r#"{"horizontal_flip": true}"#).unwrap();
        assert!(partial.horizontal_flip && partial.crop_padding == 0);
        assert!(serde_json::from_str::<Augmentation>(r#"{"flip": true}"#).is_err());
    }

    #[test]
    fn parse_errors_name_the_key() {
        for (spec, needles) in [
            (
                "crop=4,zoom=0.1",
                &["unknown key \"zoom\"", "crop, flip, rotate"][..],
            ),
            ("crop=abc", &["crop=abc", "whole number"]),
            ("crop=-1", &["crop=-1", "whole number"]),
            ("rotate=ten", &["rotate=ten", "expected a number"]),
            ("rotate", &["\"rotate\" needs a value", "rotate=10"]),
            ("flip=1", &["\"flip\" takes no value"]),
            ("flip,flip", &["\"flip\" is given twice"]),
            ("crop=4,,flip", &["empty item"]),
            ("", &["empty item"]),
            ("rotate=200", &["rotate=200", "[0, 180]"]),
            ("shift=1.5", &["shift=1.5", "[0, 1)"]),
            ("scale=-0.1", &["scale=-0.1"]),
            ("brightness=NaN", &["brightness=NaN"]),
            ("contrast=inf", &["contrast=inf"]),
        ] {
            let msg = Augmentation::parse(spec).unwrap_err().to_string();
            assert!(msg.starts_with(&format!("--augment \"{spec}\": ")), "{msg}");
            for n in needles {
                assert!(msg.contains(n), "{spec}: expected {n:?} in {msg}");
            }
        }
    }

    #[test]
    fn disabled_ops_give_the_batch_back_unchanged() {
        let x = images(3, 2, 5, 6);
        let a = Augmentation::default().apply_batch(&x, 1, 0, 0).unwrap();
        assert_eq!(a.data(), x.data());
        assert_eq!(a.shape(), x.shape());
    }

    #[test]
    fn same_seed_same_batches_other_seed_or_batch_other_batches() {
        let aug = Augmentation::parse(FULL).unwrap();
        let x = images(8, 3, 12, 12);
        let a = aug.apply_batch(&x, 42, 3, 5).unwrap();
        assert_eq!(a.data(), aug.apply_batch(&x, 42, 3, 5).unwrap().data());
        for (seed, epoch, batch) in [(43, 3, 5), (42, 4, 5), (42, 3, 6)] {
            let b = aug.apply_batch(&x, seed, epoch, batch).unwrap();
            assert_ne!(a.data(), b.data(), "({seed}, {epoch}, {batch})");
        }
        assert_eq!(a.shape(), x.shape());
        assert!(a.all_finite());
        assert_ne!(a.data(), x.data(), "actually augmented");
    }

    #[test]
    fn images_of_a_batch_are_augmented_independently() {
        // Eight copies of one image: each must come out differently.
        let one = images(1, 1, 10, 10);
        let mut data = Vec::new();
        for _ in 0..8 {
            data.extend_from_slice(one.data());
        }
        let x = Tensor::from_vec(data, &[8, 1, 10, 10]);
        let aug = Augmentation::parse("rotate=20,shift=0.2").unwrap();
        let a = aug.apply_batch(&x, 9, 0, 0).unwrap();
        let outs: Vec<&[f32]> = a.data().chunks(100).collect();
        for i in 0..8 {
            for j in i + 1..8 {
                assert_ne!(outs[i], outs[j], "images {i} and {j}");
            }
        }
    }

    #[test]
    fn flip_alone_mirrors_about_half_the_images() {
        let x = images(200, 1, 2, 3);
        let a = Augmentation::parse("flip")
            .unwrap()
            .apply_batch(&x, 5, 0, 0)
            .unwrap();
        let mut flipped = 0;
        for (src, out) in x.data().chunks(6).zip(a.data().chunks(6)) {
            let mirrored = [src[2], src[1], src[0], src[5], src[4], src[3]];
            if out == mirrored {
                flipped += 1;
            } else {
                assert_eq!(out, src, "an image is either kept or mirrored");
            }
        }
        assert!((70..=130).contains(&flipped), "{flipped} of 200 flipped");
    }

    #[test]
    fn crop_moves_each_image_by_at_most_the_padding() {
        // A single bright pixel in the centre of a 9x9 image ends up within 2 pixels of
        // the centre, and every offset in -2..=2 occurs.
        let mut data = vec![0f32; 50 * 81];
        for img in data.chunks_mut(81) {
            img[4 * 9 + 4] = 1.0;
        }
        let x = Tensor::from_vec(data, &[50, 1, 9, 9]);
        let a = Augmentation::parse("crop=2")
            .unwrap()
            .apply_batch(&x, 3, 0, 0)
            .unwrap();
        let mut offsets = std::collections::BTreeSet::new();
        for img in a.data().chunks(81) {
            let at = img.iter().position(|&v| v == 1.0).expect("pixel kept");
            assert_eq!(img.iter().filter(|&&v| v != 0.0).count(), 1);
            let (di, dj) = (at as isize / 9 - 4, at as isize % 9 - 4);
            assert!(di.abs() <= 2 && dj.abs() <= 2, "{di}, {dj}");
            offsets.insert(dj);
        }
        assert_eq!(offsets.len(), 5);
    }

    #[test]
    fn brightness_and_contrast_stay_in_their_ranges() {
        let x = images(20, 3, 4, 4);
        let bright = Augmentation::parse("brightness=0.2").unwrap();
        let a = bright.apply_batch(&x, 1, 0, 0).unwrap();
        for (src, out) in x.data().chunks(48).zip(a.data().chunks(48)) {
            let delta = out[0] - src[0];
            assert!(delta.abs() <= 0.2 && delta != 0.0);
            for (s, o) in src.iter().zip(out) {
                assert!((o - s - delta).abs() < 1e-6, "one delta per image");
            }
        }
        let contrast = Augmentation::parse("contrast=0.5").unwrap();
        let a = contrast.apply_batch(&x, 1, 0, 0).unwrap();
        for (src, out) in x.data().chunks(48).zip(a.data().chunks(48)) {
            let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
            assert!((mean(src) - mean(out)).abs() < 1e-5, "the mean is kept");
            let spread = |v: &[f32]| v.iter().map(|x| (x - mean(v)).abs()).sum::<f32>();
            let factor = spread(out) / spread(src);
            assert!((0.5 - 1e-4..=1.5 + 1e-4).contains(&factor), "{factor}");
        }
    }

    #[test]
    fn non_image_inputs_are_refused() {
        let aug = Augmentation::parse("flip").unwrap();
        let msg = aug
            .apply_batch(&Tensor::zeros(&[4, 784]), 0, 0, 0)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("[N, C, H, W]") && msg.contains("[4, 784]"),
            "{msg}"
        );
        let bad = Augmentation {
            rotation_degrees: f32::NAN,
            ..Default::default()
        };
        assert!(bad.apply_batch(&images(1, 1, 2, 2), 0, 0, 0).is_err());
    }

    /// The prefetching producer of `fit` (training/prefetch.rs) augments in its own
    /// thread: the batches must not depend on its timing.
    #[test]
    fn augmented_batches_do_not_depend_on_timing() {
        let x = Tensor::from_vec(
            (0..4 * 64).map(|v| (v % 13) as f32).collect(),
            &[4, 1, 8, 8],
        );
        let (xs, ys) = (vec![x], vec![Tensor::zeros(&[4])]);
        let order = vec![0, 1, 2, 3];
        let aug = Augmentation::parse("crop=2,flip,rotate=15").unwrap();
        let with = Some(crate::training::prefetch::AugmentWith {
            augmentation: &aug,
            seed: 11,
        });
        let run = |slow: bool| -> Vec<Vec<f32>> {
            std::thread::scope(|s| {
                let mut p =
                    crate::training::prefetch::Prefetcher::start(s, &xs, &ys, &order, 2, 3, with);
                (0..2)
                    .map(|_| {
                        if slow {
                            // A slow consumer: the producer fills the channel first.
                            std::thread::sleep(std::time::Duration::from_millis(20));
                        }
                        p.next_batch().unwrap().0.xs[0].to_f32_vec()
                    })
                    .collect()
            })
        };
        let fast = run(false);
        assert_eq!(fast, run(true));
        let expected = aug
            .apply_batch(&xs[0].gather_rows(&[2, 3]), 11, 3, 1)
            .unwrap();
        assert_eq!(fast[1], expected.to_f32_vec());
    }

    #[test]
    fn a_producer_error_reaches_the_main_thread() {
        // Augmentation of inputs that are not images fails in the producer.
        let x = Tensor::zeros(&[6, 5]);
        let (xs, ys) = (vec![x], vec![Tensor::zeros(&[6])]);
        let order: Vec<usize> = (0..6).collect();
        let aug = Augmentation::parse("flip").unwrap();
        let with = Some(crate::training::prefetch::AugmentWith {
            augmentation: &aug,
            seed: 0,
        });
        std::thread::scope(|s| {
            let mut p =
                crate::training::prefetch::Prefetcher::start(s, &xs, &ys, &order, 2, 0, with);
            let msg = p.next_batch().err().expect("an error").to_string();
            assert!(msg.contains("[N, C, H, W]"), "{msg}");
        });
    }
}
