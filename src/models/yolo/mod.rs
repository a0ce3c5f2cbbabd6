//! `tiny-yolo`: a one-stage, anchor-free object detector small enough to train on a CPU
//! in minutes (on `mnist-detect`: 96x96 grayscale canvases of digits), with its targets,
//! its loss and the decoding of its output into detections.
//!
//! # The head and what it predicts (one scheme, used by every file here)
//! The backbone takes `[N, C, H, W]` (`H`, `W` multiples of the stride, 8) down to a grid
//! of `S_h x S_w = H/8 x W/8` cells; a 1x1 conv head gives, per cell, `5 + num_classes`
//! numbers, so the output is `[N, 5 + K, S_h, S_w]`:
//!
//! | channel | name | meaning |
//! |---|---|---|
//! | 0 | `o` | objectness logit: is a box's centre in this cell |
//! | 1, 2 | `tx`, `ty` | the centre's offset in the cell, through a sigmoid: `cx = (j + sigmoid(tx)) * 8` |
//! | 3, 4 | `tw`, `th` | log size relative to the stride: `w = 8 * exp(tw)` |
//! | 5.. | class logits | softmax over the `K` classes |
//!
//! One box per cell, anchor-free (YOLOv1's assignment with FCOS's / CenterNet's
//! centre-point idea): the cell holding a box's centre is responsible for it. When two
//! boxes of one image centre in the same cell, the smaller one is kept (FCOS's rule: the
//! large one is usually also seen by its neighbours' receptive fields, the small one is
//! not) and the other is dropped from that batch's targets (`GridTargets::dropped`
//! counts them). At stride 8 on `mnist-detect` (digits 12-40 px) that is rare.
//!
//! - `model`: [`tiny_yolo`] / [`tiny_yolo_with`] ([`TinyYoloConfig`]): the network, a
//!   `Model` built with the functional API from the zoo's blocks, so it saves, loads,
//!   summarises and trains as any other.
//! - `targets`: [`DetectionTargets`] (per image its boxes in pixels and class ids; wrap it
//!   in `losses::Target::new`) and its encoding onto the grid ([`GridTargets`]).
//! - `loss`: [`YoloLoss`] (a `losses::Loss`) and its weights ([`YoloLossOptions`]).
//! - `decode`: [`decode`] the output into `detection::Detection`s, per image, after
//!   class-aware NMS ([`DecodeOptions`]).

pub mod decode;
pub mod loss;
pub mod model;
pub mod targets;

pub use decode::{decode, DecodeOptions};
pub use loss::{YoloLoss, YoloLossOptions};
pub use model::{tiny_yolo, tiny_yolo_with, TinyYoloConfig};
pub use targets::{DetectionTargets, GridTargets, TargetBox};

/// The backbone's total stride: one grid cell is 8x8 input pixels.
pub const STRIDE: usize = 8;

/// Channels before the class logits: objectness, tx, ty, tw, th.
pub const BOX_CHANNELS: usize = 5;

/// Checks that `shape` is the head's output `[N, 5 + num_classes, S_h, S_w]`; returns
/// `(N, S_h, S_w)`.
pub fn check_output_shape(
    what: &str,
    shape: &[usize],
    num_classes: usize,
) -> crate::error::Result<(usize, usize, usize)> {
    match shape {
        [n, c, sh, sw] if *c == BOX_CHANNELS + num_classes && *sh > 0 && *sw > 0 => {
            Ok((*n, *sh, *sw))
        }
        _ => Err(crate::error::Error::shape(format!(
            "{what}: expected the detector's output [batch, 5 + {num_classes} classes = {}, \
             grid rows, grid columns], got {shape:?}",
            BOX_CHANNELS + num_classes
        ))),
    }
}
