//! conv2d tests: hand-computed values, fast kernels against the naive reference on many
//! shapes (under several tunings and pool sizes, so every path runs on small inputs),
//! gradcheck of the op, shape errors, determinism.

use super::cpu::{self, ConvPath, Kernel, Tuning, TUNING};
use super::direct::Avx512;
use super::naive::*;
use super::*;
use crate::engine::{gradcheck, Rng};
use std::collections::{BTreeMap, BTreeSet};

fn randn(len: usize, rng: &mut Rng) -> Vec<f32> {
    (0..len).map(|_| rng.normal()).collect()
}

/// Normwise relative comparison: `max|got - want| <= 1e-4 * max|want|`, and no NaN (the
/// kernels' outputs start as NaN, so a NaN is a value they forgot to write).
fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    if let Some(i) = got.iter().position(|v| v.is_nan()) {
        panic!("{what}: NaN at {i} (want {})", want[i]);
    }
    let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
    let (mut worst, mut at) = (0.0f32, 0);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if (g - w).abs() > worst {
            worst = (g - w).abs();
            at = i;
        }
    }
    assert!(
        worst <= 1e-4 * scale,
        "{what}: max error {worst} at {at} (got {}, want {}), scale {scale}",
        got[at],
        want[at]
    );
}

#[derive(Debug, Clone, Copy)]
struct Case {
    n: usize,
    c: usize,
    hw: (usize, usize),
    oc: usize,
    k: (usize, usize),
    stride: (usize, usize),
    padding: Padding2d,
    dilation: (usize, usize),
    groups: usize,
}

impl Case {
    fn new(n: usize, c: usize, hw: (usize, usize), oc: usize, k: (usize, usize)) -> Case {
        Case {
            n,
            c,
            hw,
            oc,
            k,
            stride: (1, 1),
            padding: Padding2d::default(),
            dilation: (1, 1),
            groups: 1,
        }
    }
    fn stride(mut self, s: (usize, usize)) -> Case {
        self.stride = s;
        self
    }
    fn pad(mut self, p: Padding2d) -> Case {
        self.padding = p;
        self
    }
    /// TensorFlow "same" padding for this case's input, kernel, stride and dilation.
    fn same(mut self) -> Case {
        self.padding = Padding2d::same(self.hw, self.k, self.stride, self.dilation);
        self
    }
    fn dil(mut self, d: (usize, usize)) -> Case {
        self.dilation = d;
        self
    }
    fn groups(mut self, g: usize) -> Case {
        self.groups = g;
        self
    }
    fn spec(&self) -> Conv2dSpec {
        Conv2dSpec {
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
            groups: self.groups,
        }
    }
    fn x_shape(&self) -> [usize; 4] {
        [self.n, self.c, self.hw.0, self.hw.1]
    }
    fn w_shape(&self) -> [usize; 4] {
        [self.oc, self.c / self.groups, self.k.0, self.k.1]
    }
    fn dims(&self) -> Conv2dDims {
        Conv2dDims::new(
            &self.x_shape(),
            &self.w_shape(),
            Some(&[self.oc]),
            &self.spec(),
        )
        .unwrap_or_else(|e| panic!("{self:?}: {e}"))
    }
}

fn asym(top: usize, bottom: usize, left: usize, right: usize) -> Padding2d {
    Padding2d {
        top,
        bottom,
        left,
        right,
    }
}

fn cases() -> Vec<Case> {
    let p1 = Padding2d::uniform(1);
    vec![
        Case::new(1, 1, (5, 5), 1, (3, 3)),
        Case::new(7, 3, (11, 13), 5, (3, 3)),
        Case::new(7, 3, (11, 13), 4, (3, 3)).stride((2, 2)).pad(p1),
        Case::new(2, 4, (9, 10), 6, (3, 3))
            .stride((3, 3))
            .pad(asym(0, 2, 1, 0)),
        // TF "same" with even kernels and stride 2: asymmetric padding.
        Case::new(3, 2, (8, 8), 4, (4, 4)).stride((2, 2)).same(),
        Case::new(2, 3, (7, 9), 2, (2, 4)).stride((2, 2)).same(),
        Case::new(7, 2, (9, 9), 3, (3, 3)).stride((2, 2)).same(),
        Case::new(3, 4, (12, 12), 4, (3, 3))
            .dil((2, 2))
            .pad(Padding2d::uniform(2)),
        Case::new(2, 3, (10, 9), 2, (3, 2))
            .dil((2, 3))
            .stride((1, 2))
            .same(),
        Case::new(2, 4, (10, 11), 6, (3, 3)).groups(2).pad(p1),
        Case::new(7, 6, (8, 7), 9, (3, 3))
            .groups(3)
            .stride((2, 1))
            .pad(asym(1, 0, 0, 1)),
        // Depthwise, then depthwise with channel multiplier 2.
        Case::new(3, 6, (9, 9), 6, (3, 3))
            .groups(6)
            .stride((2, 2))
            .pad(p1),
        Case::new(2, 4, (7, 8), 8, (3, 3)).groups(4).pad(p1),
        // 1x1: pointwise (fast path), strided, padded, grouped.
        Case::new(7, 5, (6, 7), 3, (1, 1)),
        Case::new(2, 4, (6, 6), 4, (1, 1)).stride((2, 2)),
        Case::new(2, 3, (5, 4), 2, (1, 1)).pad(p1),
        Case::new(3, 4, (5, 5), 6, (1, 1)).groups(2),
        // 1x1 with 4+ output channels per group: the direct weight gradient.
        Case::new(3, 9, (7, 9), 12, (1, 1)),
        Case::new(5, 8, (5, 7), 8, (1, 1)).groups(2),
        // MNIST-like layers, scaled down in batch.
        Case::new(2, 16, (16, 16), 16, (3, 3)).pad(p1),
        Case::new(3, 1, (28, 28), 16, (3, 3)).pad(p1),
        Case::new(2, 5, (14, 14), 9, (3, 3)).pad(Padding2d::uniform(2)),
        Case::new(3, 9, (8, 8), 17, (3, 3)).pad(p1),
        Case::new(2, 7, (5, 6), 8, (3, 3)).pad(asym(1, 0, 2, 1)),
        // Direct kernels (8+ channels each way) with groups, dilation, asymmetric padding,
        // and padding wider than the kernel (the input gradient's flipped conv then crops).
        Case::new(2, 16, (9, 10), 16, (3, 3))
            .groups(2)
            .dil((2, 1))
            .pad(asym(2, 1, 1, 0)),
        Case::new(2, 8, (4, 5), 9, (2, 2)).pad(asym(3, 1, 0, 3)),
        Case::new(7, 1, (28, 28), 4, (5, 5)),
        Case::new(3, 8, (13, 13), 6, (3, 3)),
        // Winograd F(2x2, 3x3) (3x3, stride 1, 8+ channels each way): odd sizes (a last
        // half tile), no padding, padding 2, asymmetric padding, more padding after.
        Case::new(3, 8, (13, 13), 8, (3, 3)),
        Case::new(2, 10, (7, 9), 12, (3, 3)).pad(asym(2, 0, 1, 2)),
        Case::new(2, 8, (14, 14), 9, (3, 3)).pad(Padding2d::uniform(2)),
        Case::new(5, 8, (5, 6), 8, (3, 3)).pad(asym(0, 2, 2, 0)),
        Case::new(2, 8, (3, 3), 8, (3, 3)),
        // Winograd's weight gradient vectorizes over input channels: 3, 4 and 5 vectors
        // (its register tiles of 2 and 4 vectors and their remainders), channel counts
        // off whole vectors, output channels off whole register tiles.
        Case::new(2, 33, (6, 7), 20, (3, 3)).pad(p1),
        Case::new(2, 64, (4, 4), 13, (3, 3)).pad(p1),
        Case::new(3, 70, (5, 3), 8, (3, 3)).pad(asym(2, 1, 0, 2)),
        // Strided convs on the direct kernels (`Phases`, `direct_strided.rs`): 8+
        // channels, odd sizes, asymmetric padding (wider than the kernel too), batches off
        // the chunk sizes, 1x1 (phases no tap reads), stride 3, a stride along one axis
        // with groups, kernels that are multiples of the stride.
        Case::new(3, 8, (11, 13), 9, (3, 3))
            .stride((2, 2))
            .pad(asym(1, 0, 0, 1)),
        Case::new(5, 16, (14, 14), 16, (3, 3))
            .stride((2, 2))
            .pad(p1),
        Case::new(3, 8, (9, 9), 12, (1, 1)).stride((2, 2)),
        Case::new(3, 9, (7, 8), 8, (1, 1))
            .stride((2, 3))
            .pad(asym(1, 0, 2, 1)),
        Case::new(2, 16, (10, 7), 16, (3, 3))
            .groups(2)
            .stride((2, 1))
            .pad(asym(2, 0, 1, 2)),
        Case::new(2, 8, (13, 11), 8, (4, 4)).stride((3, 3)).same(),
        Case::new(2, 8, (8, 9), 10, (2, 2)).stride((2, 2)),
        Case::new(2, 8, (5, 6), 8, (3, 3))
            .stride((2, 2))
            .pad(asym(3, 1, 0, 3)),
        // Kernel as large as the input: a 1x1 output.
        Case::new(2, 2, (5, 5), 3, (5, 5)),
        // Padding wider than the kernel: whole output rows see only zeros.
        Case::new(2, 2, (4, 5), 3, (2, 2)).pad(asym(3, 1, 0, 3)),
        Case::new(7, 2, (1, 9), 3, (1, 3))
            .dil((1, 3))
            .stride((1, 2)),
        Case::new(1, 3, (6, 5), 2, (3, 3))
            .stride((3, 2))
            .dil((2, 1))
            .pad(asym(2, 1, 1, 2)),
    ]
}

/// Tunings that force each path: one image per GEMM (by column target or by buffer
/// cap), two (with a remainder), a whole chunk per GEMM; chunks of one image (max
/// parallel) or a single chunk (GEMMs parallel instead); the direct (stride-1) kernels.
fn tunings(d: &Conv2dDims) -> Vec<Tuning> {
    let big = usize::MAX / 2;
    vec![
        TUNING,
        Tuning {
            target_cols: 1,
            col_budget: big,
            min_chunk_flops: 1,
            direct_waste: 0.0,
            direct_strided_taps: 0,
            direct_pointwise_weight: false,
            winograd: false,
            winograd4: false,
            winograd_min_tiles: 0,
            winograd_weight: true,
        },
        Tuning {
            target_cols: 2 * d.p(),
            col_budget: big,
            min_chunk_flops: 1,
            direct_waste: 0.0,
            direct_strided_taps: 0,
            direct_pointwise_weight: false,
            winograd: false,
            winograd4: false,
            winograd_min_tiles: 0,
            winograd_weight: true,
        },
        Tuning {
            target_cols: big,
            col_budget: 1,
            min_chunk_flops: 1,
            direct_waste: 0.0,
            direct_strided_taps: 0,
            direct_pointwise_weight: false,
            winograd: false,
            winograd4: false,
            winograd_min_tiles: 0,
            winograd_weight: true,
        },
        Tuning {
            target_cols: big,
            col_budget: big,
            min_chunk_flops: big,
            direct_waste: 0.0,
            direct_strided_taps: 0,
            direct_pointwise_weight: false,
            winograd: false,
            winograd4: false,
            winograd_min_tiles: 0,
            winograd_weight: true,
        },
        // The direct kernels wherever they apply, with one-image chunks and one chunk.
        Tuning {
            min_chunk_flops: 1,
            direct_waste: f64::INFINITY,
            direct_strided_taps: 0,
            direct_pointwise_weight: true,
            winograd: false,
            ..TUNING
        },
        Tuning {
            min_chunk_flops: big,
            direct_waste: f64::INFINITY,
            direct_strided_taps: 0,
            direct_pointwise_weight: true,
            winograd: false,
            ..TUNING
        },
        // Winograd wherever it applies, F(4x4) and F(2x2), with one-image chunks and one
        // chunk.
        Tuning {
            min_chunk_flops: 1,
            winograd: true,
            winograd4: true,
            winograd_min_tiles: 0,
            winograd_weight: true,
            ..TUNING
        },
        Tuning {
            min_chunk_flops: big,
            winograd: true,
            winograd4: true,
            winograd_min_tiles: 0,
            winograd_weight: true,
            ..TUNING
        },
        Tuning {
            min_chunk_flops: 1,
            winograd: true,
            winograd4: false,
            winograd_min_tiles: 0,
            winograd_weight: true,
            ..TUNING
        },
        Tuning {
            min_chunk_flops: big,
            winograd: true,
            winograd4: false,
            winograd_min_tiles: 0,
            winograd_weight: true,
            ..TUNING
        },
    ]
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

#[test]
fn naive_matches_hand_computed_values() {
    // x = 1..9 on a 3x3 grid, w = [[1, 2], [3, 4]], b = 0.5.
    let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
    let w = [1.0, 2.0, 3.0, 4.0];
    let expect = |spec: Conv2dSpec, want: &[f32]| {
        let d = Conv2dDims::new(&[1, 1, 3, 3], &[1, 1, 2, 2], Some(&[1]), &spec).unwrap();
        let mut out = vec![f32::NAN; d.p()];
        conv2d_forward_naive(&mut out, &x, &w, Some(&[0.5]), &d);
        assert_eq!(out, want, "naive {spec:?}");
        let y = conv2d(
            &Var::constant(Tensor::from_vec(x.clone(), &[1, 1, 3, 3])),
            &Var::constant(Tensor::from_vec(w.to_vec(), &[1, 1, 2, 2])),
            Some(&Var::constant(Tensor::from_vec(vec![0.5], &[1]))),
            &spec,
        )
        .unwrap();
        assert_eq!(y.value().data(), want, "conv2d {spec:?}");
    };
    expect(Conv2dSpec::default(), &[37.5, 47.5, 67.5, 77.5]);
    expect(
        Conv2dSpec {
            stride: (2, 2),
            padding: Padding2d::uniform(1),
            ..Default::default()
        },
        &[4.5, 18.5, 36.5, 77.5],
    );
    expect(
        Conv2dSpec {
            dilation: (2, 2),
            ..Default::default()
        },
        &[64.5],
    );
}

#[test]
fn fast_matches_naive_on_random_shapes() {
    let mut rng = Rng::new(11);
    // Which path each (case, kernel) ran under any tuning: the coverage this test claims.
    let mut ran: BTreeMap<(String, Kernel), BTreeSet<ConvPath>> = BTreeMap::new();
    for case in cases() {
        let d = case.dims();
        let x = randn(d.n * d.in_image(), &mut rng);
        let w = randn(d.oc * d.k(), &mut rng);
        let b = randn(d.oc, &mut rng);
        let dy = randn(d.n * d.out_image(), &mut rng);

        let mut want_y = vec![0.0; dy.len()];
        conv2d_forward_naive(&mut want_y, &x, &w, Some(&b), &d);
        let want_y_relu: Vec<f32> = want_y.iter().map(|v| v.max(0.0)).collect();
        let mut want_y_nobias = vec![0.0; dy.len()];
        conv2d_forward_naive(&mut want_y_nobias, &x, &w, None, &d);
        let mut want_dx = vec![0.0; x.len()];
        conv2d_backward_input_naive(&mut want_dx, &dy, &w, &d);
        let (mut want_dw, mut want_db) = (vec![0.0; w.len()], vec![0.0; d.oc]);
        conv2d_backward_weight_naive(&mut want_dw, Some(&mut want_db), &dy, &x, &d);
        // The fused ReLU's backward: `dy` masked by `y > 0` for a random `y`.
        let relu_y = randn(dy.len(), &mut rng);
        let dy_masked: Vec<f32> = dy
            .iter()
            .zip(&relu_y)
            .map(|(&g, &y)| if y > 0.0 { g } else { 0.0 })
            .collect();
        let mut want_dx_m = vec![0.0; x.len()];
        conv2d_backward_input_naive(&mut want_dx_m, &dy_masked, &w, &d);
        let (mut want_dw_m, mut want_db_m) = (vec![0.0; w.len()], vec![0.0; d.oc]);
        conv2d_backward_weight_naive(&mut want_dw_m, Some(&mut want_db_m), &dy_masked, &x, &d);

        for threads in [1, 3] {
            for t in tunings(&d) {
                let what = format!("{case:?} threads={threads} {t:?}");
                let paths = pool(threads).install(|| {
                    cpu::paths_taken(); // start from nothing on this pool thread
                                        // Outputs start as NaN: the kernels must write every value.
                    let mut y = vec![f32::NAN; dy.len()];
                    cpu::conv2d_forward_tuned(&mut y, &x, &w, Some(&b), &d, false, &t);
                    assert_close(&y, &want_y, &format!("forward {what}"));
                    let mut y = vec![f32::NAN; dy.len()];
                    cpu::conv2d_forward_tuned(&mut y, &x, &w, None, &d, false, &t);
                    assert_close(&y, &want_y_nobias, &format!("forward no bias {what}"));
                    // ReLU fused into the forward's epilogue.
                    let mut y = vec![f32::NAN; dy.len()];
                    cpu::conv2d_forward_tuned(&mut y, &x, &w, Some(&b), &d, true, &t);
                    assert_close(&y, &want_y_relu, &format!("forward relu {what}"));
                    let mut y = vec![f32::NAN; dy.len()];
                    cpu::conv2d_forward_tuned(&mut y, &x, &w, None, &d, true, &t);
                    let want = want_y_nobias.iter().map(|v| v.max(0.0)).collect::<Vec<_>>();
                    assert_close(&y, &want, &format!("forward relu no bias {what}"));

                    let mut dx = vec![f32::NAN; x.len()];
                    cpu::conv2d_backward_input_tuned(&mut dx, &dy, None, &w, &d, &t);
                    assert_close(&dx, &want_dx, &format!("backward input {what}"));

                    let (mut dw, mut db) = (vec![f32::NAN; w.len()], vec![f32::NAN; d.oc]);
                    cpu::conv2d_backward_weight_tuned(
                        &mut dw,
                        Some(&mut db),
                        &dy,
                        None,
                        &x,
                        &d,
                        &t,
                    );
                    assert_close(&dw, &want_dw, &format!("backward weight {what}"));
                    assert_close(&db, &want_db, &format!("backward bias {what}"));
                    let mut dw = vec![f32::NAN; w.len()];
                    cpu::conv2d_backward_weight_tuned(&mut dw, None, &dy, None, &x, &d, &t);
                    assert_close(&dw, &want_dw, &format!("backward weight no bias {what}"));

                    let y = Some(relu_y.as_slice());
                    let mut dx = vec![f32::NAN; x.len()];
                    cpu::conv2d_backward_input_tuned(&mut dx, &dy, y, &w, &d, &t);
                    assert_close(&dx, &want_dx_m, &format!("backward input masked {what}"));
                    // Into new buffers (unzeroed on the Winograd F(4x4) path), as the op runs.
                    let y_new = cpu::conv2d_forward_new(&x, &w, Some(&b), &d, true, &t);
                    assert_close(&y_new, &want_y_relu, &format!("forward new {what}"));
                    let dx_new = cpu::conv2d_backward_input_new(&dy, y, &w, &d, &t);
                    assert_close(&dx_new, &want_dx_m, &format!("backward input new {what}"));
                    let (mut dw, mut db) = (vec![f32::NAN; w.len()], vec![f32::NAN; d.oc]);
                    cpu::conv2d_backward_weight_tuned(&mut dw, Some(&mut db), &dy, y, &x, &d, &t);
                    assert_close(&dw, &want_dw_m, &format!("backward weight masked {what}"));
                    assert_close(&db, &want_db_m, &format!("backward bias masked {what}"));
                    cpu::paths_taken()
                });
                for (kernel, path) in paths {
                    ran.entry((format!("{case:?}"), kernel))
                        .or_default()
                        .insert(path);
                }
            }
        }
        let mut db = vec![f32::NAN; d.oc];
        cpu::conv2d_backward_bias(&mut db, &dy, &d);
        assert_close(&db, &want_db, &format!("backward bias only {case:?}"));
    }
    check_paths_covered(&ran);
}

/// The coverage `fast_matches_naive_on_random_shapes` claims, from the paths its calls
/// recorded (printed with `--nocapture`):
/// - the portable im2col + GEMM path ran for every case and kernel (the forced tunings
///   with `direct_waste: 0.0, winograd: false`), so it stays tested on machines where
///   the default tuning takes the AVX-512 kernels;
/// - on a CPU with AVX-512, every fast path ran for each kernel it exists for, so the
///   comparison cannot silently shrink to the portable path alone;
/// - without AVX-512 only the portable path can run: the test says so rather than pass
///   as if it had covered the others.
fn check_paths_covered(ran: &BTreeMap<(String, Kernel), BTreeSet<ConvPath>>) {
    let table: String = ran
        .iter()
        .map(|((case, kernel), paths)| format!("{case} {kernel:?}: {paths:?}\n"))
        .collect();
    eprintln!("paths taken per case and kernel:\n{table}");
    for ((case, kernel), paths) in ran {
        assert!(
            paths.contains(&ConvPath::Im2colGemm),
            "{case} {kernel:?} never ran the portable path: {paths:?}"
        );
    }
    let covered: BTreeSet<(Kernel, ConvPath)> = ran
        .iter()
        .flat_map(|((_, kernel), paths)| paths.iter().map(move |p| (*kernel, *p)))
        .collect();
    let fast = [
        (Kernel::Forward, ConvPath::Winograd4x4),
        (Kernel::Forward, ConvPath::Winograd2x2),
        (Kernel::Forward, ConvPath::Direct),
        (Kernel::BackwardInput, ConvPath::Winograd4x4),
        (Kernel::BackwardInput, ConvPath::Winograd2x2),
        (Kernel::BackwardInput, ConvPath::Direct),
        (Kernel::BackwardWeight, ConvPath::Winograd2x2),
        (Kernel::BackwardWeight, ConvPath::Direct),
    ];
    if Avx512::detect().is_some() {
        let missing: Vec<_> = fast.iter().filter(|k| !covered.contains(k)).collect();
        assert!(
            missing.is_empty(),
            "AVX-512 is available but these fast paths never ran: {missing:?}\n{table}"
        );
    } else {
        assert!(
            fast.iter().all(|k| !covered.contains(k)),
            "a fast path ran without AVX-512"
        );
        eprintln!(
            "note: this CPU has no AVX-512: only im2col + GEMM was compared with the naive \
             kernels; the direct and Winograd kernels were not tested here"
        );
    }
}

/// With the default tuning, the layers the fast kernels were written for take them on
/// an AVX-512 machine (deep-convnet's 16->16 3x3 convs at a training batch: Winograd
/// F(4x4) for the forward and input gradient, F(2x2) for the weight gradient; its first
/// 1->16 layer: direct forward; resnet20's 3x3 stride-2 conv: direct), and im2col + GEMM
/// everywhere without AVX-512. A tuning or a detection change that sent them to the
/// portable path would fail here, not only show up as slower training.
#[test]
fn default_tuning_sends_training_layers_to_the_fast_paths() {
    let run = |case: Case| {
        let d = case.dims();
        let mut rng = Rng::new(2);
        let x = randn(d.n * d.in_image(), &mut rng);
        let w = randn(d.oc * d.k(), &mut rng);
        let dy = randn(d.n * d.out_image(), &mut rng);
        cpu::paths_taken();
        let mut y = vec![0.0; dy.len()];
        cpu::conv2d_forward_tuned(&mut y, &x, &w, None, &d, false, &TUNING);
        let mut dx = vec![0.0; x.len()];
        cpu::conv2d_backward_input_tuned(&mut dx, &dy, None, &w, &d, &TUNING);
        let mut dw = vec![0.0; w.len()];
        cpu::conv2d_backward_weight_tuned(&mut dw, None, &dy, None, &x, &d, &TUNING);
        cpu::paths_taken()
    };
    let p1 = Padding2d::uniform(1);
    let deep = run(Case::new(16, 16, (28, 28), 16, (3, 3)).pad(p1));
    let first = run(Case::new(16, 1, (28, 28), 16, (3, 3)).pad(p1));
    // resnet20's 3x3 stride-2 conv on 28x28 (direct, through phases) and its 1x1
    // stride-2 projection (im2col + GEMM, `Tuning::direct_strided_taps`).
    let strided = run(Case::new(8, 16, (28, 28), 32, (3, 3))
        .stride((2, 2))
        .pad(p1));
    let proj = run(Case::new(8, 16, (28, 28), 32, (1, 1)).stride((2, 2)));
    // inception-mini's 1x1 convs: GEMMs, but the direct weight gradient.
    let pointwise = run(Case::new(8, 64, (28, 28), 32, (1, 1)));
    use ConvPath::*;
    use Kernel::*;
    if Avx512::detect().is_some() {
        assert_eq!(
            deep,
            [
                (Forward, Winograd4x4),
                (BackwardInput, Winograd4x4),
                (BackwardWeight, Winograd2x2)
            ]
        );
        assert_eq!(first[0], (Forward, Direct), "{first:?}");
        assert_eq!(
            strided,
            [
                (Forward, Direct),
                (BackwardInput, Direct),
                (BackwardWeight, Direct)
            ]
        );
        assert!(proj.iter().all(|(_, p)| *p == Im2colGemm), "{proj:?}");
        assert_eq!(
            pointwise,
            [
                (Forward, Im2colGemm),
                (BackwardInput, Im2colGemm),
                (BackwardWeight, Direct)
            ]
        );
    } else {
        let all = deep.iter().chain(&first).chain(&strided).chain(&proj);
        for (_, path) in all.chain(&pointwise) {
            assert_eq!(*path, Im2colGemm);
        }
    }
}

#[test]
fn gradcheck_input_weight_bias() {
    let mut rng = Rng::new(5);
    let specs = [
        Case::new(2, 2, (5, 6), 3, (3, 3)),
        Case::new(2, 2, (6, 7), 3, (3, 2))
            .stride((2, 2))
            .pad(asym(0, 1, 1, 2)),
        Case::new(2, 2, (7, 7), 2, (2, 2)).stride((2, 2)).same(),
        Case::new(1, 2, (7, 6), 2, (3, 3))
            .dil((2, 2))
            .pad(Padding2d::uniform(1)),
        Case::new(2, 4, (5, 5), 4, (3, 3))
            .groups(2)
            .pad(Padding2d::uniform(1)),
        Case::new(2, 3, (4, 5), 3, (3, 3)).groups(3),
        Case::new(2, 3, (4, 4), 2, (1, 1)),
    ];
    for case in specs {
        let x = gradcheck::random_away_from_zero(&case.x_shape(), &mut rng, 0.1);
        let w = gradcheck::random_away_from_zero(&case.w_shape(), &mut rng, 0.1);
        let b = gradcheck::random_away_from_zero(&[case.oc], &mut rng, 0.1);
        let spec = case.spec();
        let r = gradcheck::check(
            |v| conv2d(&v[0], &v[1], Some(&v[2]), &spec).unwrap(),
            &[x, w, b],
            gradcheck::DEFAULT_STEP,
            9,
        );
        assert!(r.worst() < gradcheck::DEFAULT_TOLERANCE, "{case:?}: {r:?}");
        assert!(r.grad_scale.iter().all(|&s| s > 0.0), "{case:?}: {r:?}");
    }
}

#[test]
fn gradients_only_where_needed() {
    // Frozen kernel, trainable input and bias: dx and db (through the bias-only kernel).
    let case = Case::new(3, 4, (6, 6), 2, (3, 3)).pad(Padding2d::uniform(1));
    let d = case.dims();
    let mut rng = Rng::new(3);
    let (xv, wv, bv) = (
        randn(d.n * d.in_image(), &mut rng),
        randn(d.oc * d.k(), &mut rng),
        randn(d.oc, &mut rng),
    );
    let x = Var::parameter(Tensor::from_vec(xv.clone(), &case.x_shape()));
    let w = Var::constant(Tensor::from_vec(wv.clone(), &case.w_shape()));
    let b = Var::parameter(Tensor::from_vec(bv, &[d.oc]));
    let y = conv2d(&x, &w, Some(&b), &case.spec()).unwrap();
    let dy = randn(d.n * d.out_image(), &mut rng);
    y.backward_with(Tensor::from_vec(dy.clone(), &d.out_shape()));

    let mut want_dx = vec![0.0; xv.len()];
    conv2d_backward_input_naive(&mut want_dx, &dy, &wv, &d);
    let (mut want_dw, mut want_db) = (vec![0.0; wv.len()], vec![0.0; d.oc]);
    conv2d_backward_weight_naive(&mut want_dw, Some(&mut want_db), &dy, &xv, &d);
    assert_close(x.grad().unwrap().data(), &want_dx, "dx");
    assert_close(b.grad().unwrap().data(), &want_db, "db");
    assert!(w.grad().is_none());

    // Data input (first layer), trainable kernel, no bias.
    let x = Var::constant(Tensor::from_vec(xv, &case.x_shape()));
    let w = Var::parameter(Tensor::from_vec(wv, &case.w_shape()));
    let y = conv2d(&x, &w, None, &case.spec()).unwrap();
    y.backward_with(Tensor::from_vec(dy, &d.out_shape()));
    assert_close(w.grad().unwrap().data(), &want_dw, "dw");
    assert!(x.grad().is_none());
}

#[test]
fn shape_errors_are_errors() {
    let spec = Conv2dSpec::default();
    let err = |x: &[usize], w: &[usize], b: Option<&[usize]>, spec: Conv2dSpec| {
        let xv = Var::constant(Tensor::zeros(x));
        let wv = Var::parameter(Tensor::zeros(w));
        let bv = b.map(|b| Var::parameter(Tensor::zeros(b)));
        conv2d(&xv, &wv, bv.as_ref(), &spec)
            .map(|y| y.shape())
            .expect_err("should be an error")
            .to_string()
    };
    let e = err(&[8, 3, 28, 28], &[32, 1, 3, 3], None, spec);
    assert!(
        e.contains("input [8, 3, 28, 28] has 3 channels but kernel [32, 1, 3, 3] expects 1"),
        "{e}"
    );
    let e = err(&[8, 28, 28], &[32, 1, 3, 3], None, spec);
    assert!(e.contains("[8, 28, 28]") && e.contains("4-D"), "{e}");
    let e = err(&[8, 1, 28, 28], &[32, 9], None, spec);
    assert!(e.contains("[32, 9]") && e.contains("4-D"), "{e}");
    let g = |groups| Conv2dSpec { groups, ..spec };
    let e = err(&[1, 6, 8, 8], &[4, 2, 3, 3], None, g(4));
    assert!(e.contains("groups 4 does not divide the 6 channels"), "{e}");
    let e = err(&[1, 6, 8, 8], &[4, 2, 3, 3], None, g(3));
    assert!(
        e.contains("groups 3 does not divide the 4 output channels"),
        "{e}"
    );
    let e = err(&[1, 6, 8, 8], &[6, 3, 3, 3], None, g(3));
    assert!(
        e.contains("kernel [6, 3, 3, 3] with groups 3 expects 9"),
        "{e}"
    );
    let e = err(&[1, 1, 4, 4], &[2, 1, 5, 5], None, spec);
    assert!(
        e.contains("[2, 1, 5, 5] spans 5x5") && e.contains("only 4x4"),
        "{e}"
    );
    let dilated = Conv2dSpec {
        dilation: (3, 3),
        padding: Padding2d::uniform(1),
        ..spec
    };
    let e = err(&[1, 1, 4, 4], &[2, 1, 3, 3], None, dilated);
    assert!(e.contains("spans 7x7") && e.contains("only 6x6"), "{e}");
    let e = err(&[1, 2, 4, 4], &[3, 2, 3, 3], Some(&[2]), spec);
    assert!(e.contains("bias [2]") && e.contains("[3, 2, 3, 3]"), "{e}");
    err(&[1, 2, 4, 4], &[3, 2, 0, 3], None, spec);
    // An empty batch is not an error.
    let x = Var::constant(Tensor::zeros(&[0, 2, 5, 5]));
    let w = Var::parameter(Tensor::zeros(&[3, 2, 3, 3]));
    let y = conv2d(&x, &w, None, &spec).unwrap();
    assert_eq!(y.shape(), vec![0, 3, 3, 3]);
    y.backward();
    assert_eq!(w.grad().unwrap().data(), &[0.0; 54]);
    err(&[1, 2, 4, 4], &[3, 2, 3, 3], None, g(0));
    err(
        &[1, 2, 4, 4],
        &[3, 2, 3, 3],
        None,
        Conv2dSpec {
            stride: (1, 0),
            ..spec
        },
    );
    err(
        &[1, 2, 4, 4],
        &[3, 2, 3, 3],
        None,
        Conv2dSpec {
            dilation: (0, 1),
            ..spec
        },
    );
}

#[test]
fn runs_are_bit_identical() {
    let run = |case: Case| {
        let d = case.dims();
        let mut rng = Rng::new(21);
        let x = Tensor::from_vec(randn(d.n * d.in_image(), &mut rng), &case.x_shape());
        let w = Tensor::from_vec(randn(d.oc * d.k(), &mut rng), &case.w_shape());
        let b = Tensor::from_vec(randn(d.oc, &mut rng), &[d.oc]);
        let dy = Tensor::from_vec(randn(d.n * d.out_image(), &mut rng), &d.out_shape());
        let (xv, wv, bv) = (Var::parameter(x), Var::parameter(w), Var::parameter(b));
        let y = conv2d(&xv, &wv, Some(&bv), &case.spec()).unwrap();
        y.backward_with(dy);
        [
            y.value(),
            xv.grad().unwrap(),
            wv.grad().unwrap(),
            bv.grad().unwrap(),
        ]
        .map(|t| t.data().iter().map(|v| v.to_bits()).collect::<Vec<u32>>())
    };
    let case = Case::new(9, 8, (12, 12), 16, (3, 3)).pad(Padding2d::uniform(1));
    // A strided conv on the direct kernels (phases), batch off the chunk sizes.
    let strided = Case::new(7, 16, (15, 14), 16, (3, 3))
        .stride((2, 2))
        .pad(Padding2d::uniform(1));
    for threads in [1, 2, 3] {
        let (a, b) = pool(threads).install(|| (run(case), run(case)));
        assert!(a == b, "threads={threads}: two runs differ");
        let (a, b) = pool(threads).install(|| (run(strided), run(strided)));
        assert!(a == b, "strided, threads={threads}: two runs differ");
    }
    // Batch 1: a single chunk, so the GEMMs themselves run on the pool.
    let single = Case::new(1, 8, (24, 24), 16, (3, 3)).pad(Padding2d::uniform(1));
    let (a, b) = pool(2).install(|| (run(single), run(single)));
    assert!(a == b, "batch 1: two runs differ");
}

#[test]
fn fused_relu_is_bit_identical_to_conv_then_relu() {
    // The unfused pair is gradchecked above and in `ops::activation`; the fused op must
    // give exactly the same value and gradients, on every path (pointwise, one image per
    // GEMM, several images per GEMM, padded).
    let run = |case: Case, fused: bool| {
        let d = case.dims();
        let mut rng = Rng::new(33);
        let x = Tensor::from_vec(randn(d.n * d.in_image(), &mut rng), &case.x_shape());
        let w = Tensor::from_vec(randn(d.oc * d.k(), &mut rng), &case.w_shape());
        let b = Tensor::from_vec(randn(d.oc, &mut rng), &[d.oc]);
        let dy = Tensor::from_vec(randn(d.n * d.out_image(), &mut rng), &d.out_shape());
        let (xv, wv, bv) = (Var::parameter(x), Var::parameter(w), Var::parameter(b));
        let y = if fused {
            conv2d_relu(&xv, &wv, Some(&bv), &case.spec()).unwrap()
        } else {
            crate::ops::activation::relu(&conv2d(&xv, &wv, Some(&bv), &case.spec()).unwrap())
        };
        y.backward_with(dy);
        [
            y.value(),
            xv.grad().unwrap(),
            wv.grad().unwrap(),
            bv.grad().unwrap(),
        ]
        .map(|t| t.data().iter().map(|v| v.to_bits()).collect::<Vec<u32>>())
    };
    for case in cases() {
        for threads in [1, 2] {
            let (a, b) = pool(threads).install(|| (run(case, true), run(case, false)));
            assert!(
                a == b,
                "{case:?} threads={threads}: fused and unfused differ"
            );
        }
    }
}

/// Times the forward and backward kernels of deep-convnet's 3x3 layers (batch 100) and
/// keras-cnn's second conv (batch 64) on each path, on one thread (or `CONV_THREADS`):
/// `cargo test --release --lib conv2d::tests::timing -- --ignored --nocapture`.
#[test]
#[ignore]
fn timing() {
    let p1 = Padding2d::uniform(1);
    let layers = [
        Case::new(100, 16, (28, 28), 16, (3, 3)).pad(p1),
        Case::new(100, 16, (14, 14), 32, (3, 3)).pad(p1),
        Case::new(100, 32, (14, 14), 32, (3, 3)).pad(Padding2d::uniform(2)),
        Case::new(100, 32, (8, 8), 64, (3, 3)).pad(p1),
        Case::new(100, 64, (8, 8), 64, (3, 3)).pad(p1),
        // keras-cnn's conv2d_1 (batch 64).
        Case::new(64, 32, (13, 13), 64, (3, 3)),
    ];
    let mut rng = Rng::new(1);
    let time = |f: &mut dyn FnMut()| {
        f();
        let mut best = f64::INFINITY;
        for _ in 0..7 {
            let s = std::time::Instant::now();
            f();
            best = best.min(s.elapsed().as_secs_f64() * 1e3);
        }
        best
    };
    let threads = std::env::var("CONV_THREADS").map_or(1, |t| t.parse().unwrap());
    pool(threads).install(|| {
        for case in layers {
            let d = case.dims();
            let x = randn(d.n * d.in_image(), &mut rng);
            let w = randn(d.oc * d.k(), &mut rng);
            let dy = randn(d.n * d.out_image(), &mut rng);
            let mut line = format!("{:?} {}->{} {}x{}:", case.padding, d.c, d.oc, d.h, d.w);
            for (name, wino, wino4) in [
                ("direct", false, false),
                ("F2", true, false),
                ("F4", true, true),
            ] {
                let t = Tuning {
                    winograd: wino,
                    winograd4: wino4,
                    winograd_weight: wino,
                    ..TUNING
                };
                let mut y = vec![0.0; dy.len()];
                let f = time(&mut || cpu::conv2d_forward_tuned(&mut y, &x, &w, None, &d, true, &t));
                let mut dx = vec![0.0; x.len()];
                let bi = time(&mut || {
                    cpu::conv2d_backward_input_tuned(&mut dx, &dy, Some(&y), &w, &d, &t)
                });
                let mut dw = vec![0.0; w.len()];
                let bw = time(&mut || {
                    cpu::conv2d_backward_weight_tuned(&mut dw, None, &dy, Some(&y), &x, &d, &t)
                });
                line += &format!(" [{name}] fwd {f:.3} dx {bi:.3} dw {bw:.3} ms");
            }
            println!("{line}");
        }
    });
}

/// Times inception-mini's 1x1 convs and resnet20's strided convs (batch 128) on one
/// thread, im2col + GEMM (default and wide GEMMs, `CONV_WIDE` columns) against the direct
/// kernels (`Phases`, `direct_strided.rs`), in this thread's CPU time (best of 7
/// runs of at least 50 ms), which other processes on a shared machine disturb less than
/// wall time. `cargo test --release --lib ops::conv2d::tests::timing_strided -- --ignored
/// --nocapture`
#[test]
#[ignore]
fn timing_strided() {
    fn cpu_ms() -> f64 {
        let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
        s.split_whitespace().next().unwrap().parse::<f64>().unwrap() / 1e6
    }
    let time = |f: &mut dyn FnMut()| {
        f();
        let mut best = f64::INFINITY;
        for _ in 0..7 {
            let (s, mut calls) = (cpu_ms(), 0);
            while cpu_ms() - s < 50.0 {
                f();
                calls += 1;
            }
            best = best.min((cpu_ms() - s) / calls as f64);
        }
        best
    };
    let p1 = Padding2d::uniform(1);
    let layers = [
        // inception-mini's 1x1 convs (`direct_pointwise_weight`).
        Case::new(128, 32, (28, 28), 16, (1, 1)),
        Case::new(128, 64, (28, 28), 32, (1, 1)),
        Case::new(128, 120, (14, 14), 48, (1, 1)),
        Case::new(128, 128, (7, 7), 64, (1, 1)),
        Case::new(128, 16, (28, 28), 32, (1, 1)).stride((2, 2)),
        Case::new(128, 16, (28, 28), 32, (3, 3))
            .stride((2, 2))
            .pad(p1),
        Case::new(128, 32, (14, 14), 64, (1, 1)).stride((2, 2)),
        Case::new(128, 32, (14, 14), 64, (3, 3))
            .stride((2, 2))
            .pad(p1),
    ];
    let mut rng = Rng::new(1);
    pool(1).install(|| {
        for case in layers {
            let d = case.dims();
            let x = randn(d.n * d.in_image(), &mut rng);
            let w = randn(d.oc * d.k(), &mut rng);
            let dy = randn(d.n * d.out_image(), &mut rng);
            let mut line = format!("{}->{} {}x{} s{:?}:", d.c, d.oc, d.kh, d.kw, d.stride);
            let wide =
                std::env::var("CONV_WIDE").map_or(TUNING.target_cols, |v| v.parse().unwrap());
            for (name, waste, cols) in [
                ("gemm", 0.0, TUNING.target_cols),
                ("gemm-wide", 0.0, wide),
                ("direct", f64::INFINITY, TUNING.target_cols),
            ] {
                let t = Tuning {
                    direct_waste: waste,
                    direct_strided_taps: 0,
                    direct_pointwise_weight: true,
                    target_cols: cols,
                    ..TUNING
                };
                let mut y = vec![0.0; dy.len()];
                let f = time(&mut || cpu::conv2d_forward_tuned(&mut y, &x, &w, None, &d, true, &t));
                let mut dx = vec![0.0; x.len()];
                let bi = time(&mut || {
                    cpu::conv2d_backward_input_tuned(&mut dx, &dy, Some(&y), &w, &d, &t)
                });
                let mut dw = vec![0.0; w.len()];
                let bw = time(&mut || {
                    cpu::conv2d_backward_weight_tuned(&mut dw, None, &dy, Some(&y), &x, &d, &t)
                });
                line += &format!(" [{name}] fwd {f:.2} dx {bi:.2} dw {bw:.2} ms");
            }
            println!("{line}");
        }
    });
}
