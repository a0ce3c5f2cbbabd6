//! PyTorch state dicts into the zoo's models: `Model::load_torch_state_dict`, from
//! `.pt` / `.pth` (`torch_pth`) or `.safetensors`, with torchvision's names and layouts
//! mapped onto nabla's by the model's zoo name.
//!
//! - `resnet18/34/50/101/152`: `conv1` -> `conv1_conv`, `bn1` -> `conv1_bn`,
//!   `layerL.B.convK` / `bnK` -> `conv{L+1}_block{B+1}_K_conv` / `_bn`,
//!   `layerL.B.downsample.0` / `.1` -> `..._proj_conv` / `_proj_bn`, `fc` ->
//!   `predictions`.
//! - `vgg11/13/16/19`: `features.N` -> the `blockX_convY` conv that torchvision's
//!   `features[N]` is (counted from the model's own layers: conv and ReLU take two
//!   indices, a max-pool one), `classifier.0/3/6` -> `fc1`, `fc2`, `predictions`.
//!   torchvision averages the last feature map to 7x7 (`AdaptiveAvgPool2d`) before the
//!   classifier; nabla flattens the map as it is. At 224x224 the map is 7x7 and the
//!   pool the identity (the flatten order, channels then rows then columns, is the same
//!   in both, nabla being channels-first); at other sizes the pool is a fixed linear map,
//!   folded into `fc1`'s kernel ([`fold_adaptive_pool`]), so the outputs are
//!   torchvision's at any input size.
//!
//! Layouts: conv kernels are `[out, in, kh, kw]` in both; `Linear.weight` is `[out,
//! in]` and nabla's Dense kernel `[in, out]`, so it is transposed. Batch norm:
//! `weight`, `bias`, `running_mean`, `running_var` -> `gamma`, `beta`,
//! `moving_mean`, `moving_variance`; `num_batches_tracked` has no counterpart and is
//! ignored. The zoo's batch norms use torchvision's epsilon 1e-5, and momentum 0.9 in
//! Keras' convention (new = 0.9 * old + 0.1 * batch), which is PyTorch's momentum 0.1.

use super::LoadReport;
use crate::engine::Tensor;
use crate::error::{Error, Result};
use crate::training::Model;
use std::collections::BTreeMap;
use std::path::Path;

/// How a tensor's layout changes on the way in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Same,
    /// `Linear.weight [out, in]` -> Dense kernel `[in, out]`.
    Transpose,
}

/// The zoo names whose torchvision names are mapped.
pub const MAPPED_MODELS: &[&str] = &[
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "vgg11",
    "vgg13",
    "vgg16",
    "vgg19",
];

fn bn_weight(w: &str) -> Option<&'static str> {
    Some(match w {
        "weight" => "gamma",
        "bias" => "beta",
        "running_mean" => "moving_mean",
        "running_var" => "moving_variance",
        _ => return None,
    })
}

fn dense_weight(w: &str) -> Option<(&'static str, Layout)> {
    Some(match w {
        "weight" => ("kernel", Layout::Transpose),
        "bias" => ("bias", Layout::Same),
        _ => return None,
    })
}

fn conv_weight(w: &str) -> Option<(&'static str, Layout)> {
    Some(match w {
        "weight" => ("kernel", Layout::Same),
        "bias" => ("bias", Layout::Same),
        _ => return None,
    })
}

/// A torchvision ResNet key -> nabla's weight name and layout.
fn resnet_name(key: &str) -> Option<(String, Layout)> {
    let parts: Vec<&str> = key.split('.').collect();
    let bn = |layer: String, w: &str| Some((format!("{layer}/{}", bn_weight(w)?), Layout::Same));
    let conv =
        |layer: String, w: &str| (w == "weight").then(|| (format!("{layer}/kernel"), Layout::Same));
    match parts.as_slice() {
        ["conv1", w] => conv("conv1_conv".into(), w),
        ["bn1", w] => bn("conv1_bn".into(), w),
        ["fc", w] => dense_weight(w).map(|(n, l)| (format!("predictions/{n}"), l)),
        [layer, block, rest @ ..] => {
            let l: usize = layer.strip_prefix("layer")?.parse().ok()?;
            let b: usize = block.parse().ok()?;
            let unit = format!("conv{}_block{}", l + 1, b + 1);
            match rest {
                [c, w] if c.starts_with("conv") => {
                    let k: usize = c.strip_prefix("conv")?.parse().ok()?;
                    conv(format!("{unit}_{k}_conv"), w)
                }
                [c, w] if c.starts_with("bn") => {
                    let k: usize = c.strip_prefix("bn")?.parse().ok()?;
                    bn(format!("{unit}_{k}_bn"), w)
                }
                ["downsample", "0", w] => conv(format!("{unit}_proj_conv"), w),
                ["downsample", "1", w] => bn(format!("{unit}_proj_bn"), w),
                _ => None,
            }
        }
        _ => None,
    }
}

/// torchvision's `features` index of each of the model's `blockX_convY` convs (see the
/// module docs).
fn vgg_feature_indices(model: &Model) -> BTreeMap<usize, String> {
    let mut at = 0;
    let mut out = BTreeMap::new();
    for l in model.layers() {
        match l.config().class_name() {
            "Conv2D" => {
                out.insert(at, l.name().to_string());
                at += 2;
            }
            "MaxPooling2D" => at += 1,
            _ => {}
        }
    }
    out
}

fn vgg_name(key: &str, features: &BTreeMap<usize, String>) -> Option<(String, Layout)> {
    let parts: Vec<&str> = key.split('.').collect();
    match parts.as_slice() {
        ["features", i, w] => {
            let layer = features.get(&i.parse().ok()?)?;
            conv_weight(w).map(|(n, l)| (format!("{layer}/{n}"), l))
        }
        ["classifier", i, w] => {
            let layer = match *i {
                "0" => "fc1",
                "3" => "fc2",
                "6" => "predictions",
                _ => return None,
            };
            dense_weight(w).map(|(n, l)| (format!("{layer}/{n}"), l))
        }
        _ => None,
    }
}

/// torchvision's adaptive average pool from an `h x w` map to 7x7, as the sparse matrix
/// `P[p][q]` (7x7 cell `p`, input cell `q`): cell (i, j) averages rows
/// `floor(i h / 7) .. ceil((i + 1) h / 7)` and likewise columns.
fn adaptive_pool_7x7(h: usize, w: usize) -> Vec<Vec<(usize, f32)>> {
    let span = |i: usize, n: usize| (i * n / 7, ((i + 1) * n).div_ceil(7));
    let mut p = Vec::with_capacity(49);
    for i in 0..7 {
        let (r0, r1) = span(i, h);
        for j in 0..7 {
            let (c0, c1) = span(j, w);
            let share = 1.0 / ((r1 - r0) * (c1 - c0)) as f32;
            p.push(
                (r0..r1)
                    .flat_map(|r| (c0..c1).map(move |c| (r * w + c, share)))
                    .collect(),
            );
        }
    }
    p
}

/// `classifier.0.weight` `[out, c * 49]`, which reads the 7x7-pooled map, as the
/// `[out, c * h * w]` weight that reads the `h x w` map directly: `W'[o, c, q] =
/// sum_p W[o, c, p] P[p][q]`.
fn fold_adaptive_pool(t: &Tensor, c: usize, h: usize, w: usize) -> Result<Tensor> {
    let shape = t.shape();
    if shape.len() != 2 || shape[1] != c * 49 {
        return Err(Error::invalid(format!(
            "tensor 'classifier.0.weight' has shape {shape:?}; after {c} channels pooled \
             to 7x7 it needs [out, {}]",
            c * 49
        )));
    }
    let pool = adaptive_pool_7x7(h, w);
    let src = t.to_f32_vec();
    let hw = h * w;
    let mut out = vec![0f32; shape[0] * c * hw];
    for (o_c, dst) in out.chunks_exact_mut(hw).enumerate() {
        let row = &src[o_c * 49..(o_c + 1) * 49];
        for (p, cells) in pool.iter().enumerate() {
            for &(q, share) in cells {
                dst[q] += row[p] * share;
            }
        }
    }
    Ok(Tensor::from_vec(out, &[shape[0], c * hw]))
}

/// The `[channels, h, w]` map a VGG's `fc1` reads (after `flatten`), when it is not
/// torchvision's 7x7.
fn vgg_map_to_fold(model: &Model) -> Option<(usize, usize, usize)> {
    let i = model.layers().iter().position(|l| l.name() == "flatten")?;
    let shape = model.layer_input_shapes(i).first()?.to_vec();
    match shape.as_slice() {
        [c, h, w] => {
            let (c, h, w) = (c.get()?, h.get()?, w.get()?);
            ((h, w) != (7, 7) && h > 0 && w > 0).then_some((c, h, w))
        }
        _ => None,
    }
}

/// A state dict renamed to the model's weights: the tensors by nabla name, the file's
/// name of each, and the file's tensors that have no nabla name (`num_batches_tracked`
/// is dropped, having no counterpart).
pub struct Mapped {
    pub tensors: BTreeMap<String, Tensor>,
    pub origin: BTreeMap<String, String>,
    pub unmapped: Vec<String>,
}

/// Renames and re-lays a torchvision state dict for `model` (by its zoo name).
pub fn map_state_dict(model: &Model, state: Vec<(String, Tensor)>) -> Result<Mapped> {
    let name = model.name.as_str();
    if !MAPPED_MODELS.contains(&name) {
        return Err(Error::invalid(format!(
            "no PyTorch name mapping for model '{name}': torchvision state dicts load into \
             the zoo's {}",
            MAPPED_MODELS.join(", ")
        )));
    }
    let features = vgg_feature_indices(model);
    let fold = name
        .starts_with("vgg")
        .then(|| vgg_map_to_fold(model))
        .flatten();
    let mut out = Mapped {
        tensors: BTreeMap::new(),
        origin: BTreeMap::new(),
        unmapped: Vec::new(),
    };
    for (key, t) in state {
        if key.ends_with("num_batches_tracked") {
            continue;
        }
        let mapped = if name.starts_with("vgg") {
            vgg_name(&key, &features)
        } else {
            resnet_name(&key)
        };
        let Some((nabla, layout)) = mapped else {
            out.unmapped.push(key);
            continue;
        };
        let t = match fold {
            Some((c, h, w)) if key == "classifier.0.weight" => fold_adaptive_pool(&t, c, h, w)?,
            _ => t,
        };
        let t = match layout {
            Layout::Same => t,
            Layout::Transpose if t.shape().len() == 2 => t.transpose(0, 1)?.contiguous(),
            // Left as it is: the shape check names it.
            Layout::Transpose => t,
        };
        out.origin.insert(nabla.clone(), key);
        out.tensors.insert(nabla, t);
    }
    Ok(out)
}

/// Whether `path` is a PyTorch weights file, by its extension.
pub fn is_torch_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("pt" | "pth" | "safetensors")
    )
}

impl Model {
    /// Loads a torchvision state dict (`.pt` / `.pth` as `torch.save` writes them, or
    /// `.safetensors`) into this zoo model, renamed and re-laid as the module docs say.
    /// `by_name` and `skip_mismatch` are `load_weights`'; errors name the file's tensor
    /// and nabla's weight. Nothing is changed when it returns an error.
    pub fn load_torch_state_dict(
        &mut self,
        path: impl AsRef<Path>,
        by_name: bool,
        skip_mismatch: bool,
    ) -> Result<LoadReport> {
        let path = path.as_ref();
        let state = match path.extension().and_then(|e| e.to_str()) {
            Some("safetensors") => super::safetensors_io::load(path)?,
            _ => super::torch_pth::load(path)?,
        };
        let m = map_state_dict(self, state).map_err(|e| match e {
            Error::Invalid(msg) => Error::format(path, msg),
            other => other,
        })?;
        self.load_named_tensors(
            path,
            m.tensors,
            m.unmapped,
            &m.origin,
            by_name,
            skip_mismatch,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_adaptive_pool_folds_into_the_first_dense_layer() {
        // 2 outputs reading 1 channel pooled to 7x7: weights 0..49 and 1.
        let mut w: Vec<f32> = (0..49).map(|v| v as f32).collect();
        w.extend([1.0; 49]);
        let t = Tensor::from_vec(w, &[2, 49]);
        // A 1x1 map is copied to all 49 cells: the weights add up.
        let f = fold_adaptive_pool(&t, 1, 1, 1).unwrap();
        assert_eq!(f.shape(), &[2, 1]);
        assert_eq!(f.to_f32_vec(), [(0..49).sum::<i32>() as f32, 49.0]);
        // A 7x7 map: the identity.
        assert_eq!(
            fold_adaptive_pool(&t, 1, 7, 7).unwrap().to_f32_vec(),
            t.to_f32_vec()
        );
        // A 14x14 map: each cell averages a 2x2 block, so each input cell takes a
        // quarter of its cell's weight.
        let f = fold_adaptive_pool(&t, 1, 14, 14).unwrap().to_f32_vec();
        assert_eq!(f[0], 0.0);
        assert_eq!(f[14 + 3], 0.25); // row 1, column 3 -> cell (0, 1), weight 1
        assert_eq!(f[196 + 100], 0.25);
        // A 2x2 map: cell (i, j) averages rows floor(2i/7)..ceil(2(i+1)/7), so cell 3
        // (rows 0..2 as i = 3 straddles the middle) reads both rows.
        let p = adaptive_pool_7x7(2, 2);
        assert_eq!(p[3 * 7 + 3].len(), 4);
        assert!(fold_adaptive_pool(&t, 2, 1, 1).is_err());
    }

    #[test]
    fn torchvision_resnet_names_map_to_the_zoos() {
        let n = |k: &str| resnet_name(k).map(|(n, l)| (n, l == Layout::Transpose));
        assert_eq!(n("conv1.weight"), Some(("conv1_conv/kernel".into(), false)));
        assert_eq!(
            n("bn1.running_var"),
            Some(("conv1_bn/moving_variance".into(), false))
        );
        assert_eq!(
            n("layer3.1.bn2.weight"),
            Some(("conv4_block2_2_bn/gamma".into(), false))
        );
        assert_eq!(
            n("layer2.0.downsample.0.weight"),
            Some(("conv3_block1_proj_conv/kernel".into(), false))
        );
        assert_eq!(n("fc.weight"), Some(("predictions/kernel".into(), true)));
        assert_eq!(n("layer1.0.conv1.bias"), None);
        assert_eq!(n("layerx.0.conv1.weight"), None);
        assert_eq!(n("fc.weight.extra"), None);
    }
}
