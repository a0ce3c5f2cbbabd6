//! `nabla bench model NAME` and `nabla bench all`: one MNIST model measured the way the
//! PyTorch peer (`/work/shared/peers/bench_torch.py`) measures its twin, so the two can be
//! compared as a ratio on one machine (`scripts/bench_peers.sh`), plus a per-layer
//! profile that states every kernel's speed as a fraction of the machine's GEMM peak.
//!
//! Methodology (the peer's, step for step):
//! - training: the recipe's batch size and Adam 1e-3 over the shuffled MNIST training
//!   set, through `Sequential::fit` itself; the rate counts the images of every step
//!   after the first 20 (warm-up) over the time from the end of step 20 to the end of the
//!   last (`--steps N` trains only 20 + N steps);
//! - `acc_1ep`: test accuracy after that epoch (batches of 1000);
//! - inference: one warm-up pass and 3 timed passes over the 10,000 test images in
//!   batches of 1000, median images/s;
//! - batch-1 latency: 20 warm-up images, then the median (and p90) of 200 single-image
//!   forwards, each image sliced before the clock starts;
//! - peak RSS: the process's high-water mark (`VmHWM`) right after training, before any
//!   evaluation, like the peer's `ru_maxrss`. `bench all` resets it between models
//!   (`/proc/self/clear_refs`), so a later model's figure is what was resident (the data
//!   set, and memory the allocator kept from the models before) plus its own peak; run
//!   `bench model` per model for figures to compare.
//!
//! The text models (`text-bow`, `text-cnn`, `text-lstm`, `text-bilstm`, `text-gru`) are
//! measured the same way on `debian-sections` (or `--dataset` another text set or a
//! `label<TAB>text` file, split 80/20 by `--seed`): the vocabulary is adapted on the
//! training texts first (not timed), with the recipe's `--max-tokens` and
//! `--sequence-length` unless given, and rates count texts (samples/s) instead of
//! images.

use super::bench_gemm;
use super::common;
use super::text::{self, TextArgs};
use clap::Args;
use nabla::engine::no_grad;
use nabla::error::{Error, Result};
use nabla::ops::matmul::gemm::Backend;
use nabla::training::{profile_training, Callback, FitArgs, StepProfile};
use nabla::{models, Optimizer, Sequential, Var};
use serde_json::json;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

/// The models of `nabla bench all`: the MNIST built-ins.
pub const ALL: [&str; 4] = ["keras-cnn", "simple-convnet", "deep-convnet", "mlp"];
/// Steps excluded from the training rate (the peer's `WARMUP_STEPS`).
const WARMUP_STEPS: usize = 20;
const INFER_BATCH: usize = 1000;
const INFER_PASSES: usize = 3;
const LATENCY_WARMUP: usize = 20;
const LATENCY_RUNS: usize = 200;
/// Unmeasured steps before the per-layer profile (the epoch already warmed the caches;
/// these settle the allocator after the inference runs).
const PROFILE_WARMUP: usize = 10;

#[derive(Args, Clone)]
pub struct ModelBenchOpts {
    /// Measure N training steps after the 20 warm-up steps instead of a full epoch.
    #[arg(long, conflicts_with = "epoch")]
    steps: Option<usize>,
    /// Train one full epoch (the default).
    #[arg(long)]
    epoch: bool,
    /// Training steps averaged in the per-layer profile (after 10 warm-up steps); 0
    /// skips the profile.
    #[arg(long, default_value_t = 50)]
    profile_steps: usize,
    /// Seeds the weights, the shuffling and dropout.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Default: the model's recipe (keras-cnn 64, the others 100).
    #[arg(long)]
    batch_size: Option<usize>,
    /// mnist or fashion-mnist. Default: the model's recipe; the deep nets (resnet20,
    /// vgg-small, ...) are built for the data set's shape. Text models: debian-sections
    /// (the default) or a label<TAB>text .tsv file.
    #[arg(long)]
    dataset: Option<String>,
    /// Run every layer's own ops: no batch norm + ReLU or Add + ReLU fusion (the
    /// baseline the fused kernels are measured against).
    #[arg(long)]
    no_fusion: bool,
    /// Text models: the vocabulary size, reserved tokens included. Default: 10000.
    #[arg(long, value_name = "N")]
    max_tokens: Option<usize>,
    /// text-cnn, text-lstm, text-bilstm, text-gru: tokens per text. Default: 16.
    #[arg(long, value_name = "L")]
    sequence_length: Option<usize>,
}

impl ModelBenchOpts {
    fn text_args(&self) -> TextArgs {
        TextArgs {
            max_tokens: self.max_tokens,
            sequence_length: self.sequence_length,
            bag: None,
        }
    }
}

/// A text model's data set (vectorized for it) and the model, built for its
/// vocabulary and classes; checks the pairing and the text options first.
fn text_setup(
    name: &str,
    dataset: &str,
    opts: &ModelBenchOpts,
) -> Result<(nabla::data::datasets::Dataset, Sequential)> {
    let args = opts.text_args();
    text::check_pairing(Some(name), Some(dataset), &args)?;
    let (texts, _) = text::load_texts(dataset, 0.2, opts.seed)?;
    let mut tv = text::vectorizer(name, &args)?;
    let ds = text::vectorize(name, texts, &mut tv, None)?;
    let model = text::build_model(name, &tv, common::num_classes(&ds), opts.seed)?;
    Ok((ds, model))
}

/// Records when the epoch starts and when each step ends (the peer's `step_ends`).
#[derive(Clone, Default)]
struct StepClock(Rc<RefCell<(Option<Instant>, Vec<Instant>)>>);

impl Callback for StepClock {
    fn on_epoch_begin(&mut self, _epoch: usize, _model: &mut Sequential) -> Result<()> {
        self.0.borrow_mut().0 = Some(Instant::now());
        Ok(())
    }
    fn on_train_batch_end(&mut self, _step: usize, _model: &mut Sequential) -> Result<()> {
        self.0.borrow_mut().1.push(Instant::now());
        Ok(())
    }
}

/// Peak resident set size of this process in MiB (`VmHWM`, Linux).
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Resets the peak RSS to the current RSS (Linux `clear_refs` 5); false if unsupported.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The machine's achieved GEMM peak: square 1024, all threads, the faster backend.
struct GemmPeak {
    gflops: f64,
    backend: &'static str,
    /// The same backend on one thread: all threads well under threads x this means the
    /// machine was busy while the peak was measured.
    gflops_1t: f64,
}

/// Tries per backend: a peak is the best achieved, and on a shared machine a single
/// median can land in a busy moment (the peak then halves and every % doubles).
const PEAK_TRIES: usize = 5;

fn gemm_peak() -> GemmPeak {
    let n = 1024;
    let best = |b: Backend, parallel: bool| {
        (0..PEAK_TRIES)
            .map(|_| bench_gemm::gflops(b, n, n, n, parallel))
            .fold(0.0, f64::max)
    };
    let mm = best(Backend::MatrixMultiply, true);
    let gm = best(Backend::Gemm, true);
    let (gflops, backend, b) = if mm >= gm {
        (mm, "matrixmultiply", Backend::MatrixMultiply)
    } else {
        (gm, "gemm", Backend::Gemm)
    };
    GemmPeak {
        gflops,
        backend,
        gflops_1t: best(b, false),
    }
}

pub fn run(names: &[&str], opts: &ModelBenchOpts, json: bool) -> Result<()> {
    nabla::nn::set_layer_fusion(!opts.no_fusion);
    let dataset_of = |name: &str| -> Result<String> {
        let d = match &opts.dataset {
            Some(d) => d.clone(),
            None => models::recipe(name)?.dataset.to_string(),
        };
        if models::text::is_text_model(name) {
            text::check_pairing(Some(name), Some(&d), &opts.text_args())?;
            return Ok(d);
        }
        if opts.max_tokens.is_some() || opts.sequence_length.is_some() {
            return Err(Error::invalid(format!(
                "bench model: --max-tokens and --sequence-length are for the text models \
                 ({}), not '{name}'",
                models::text::TEXT_MODELS.join(", ")
            )));
        }
        if !matches!(d.as_str(), "mnist" | "fashion-mnist") {
            return Err(Error::invalid(format!(
                "bench model: '{name}' trains on '{d}', not MNIST-shaped; try one of {} \
                 or --dataset mnist|fashion-mnist",
                ALL.join(", ")
            )));
        }
        Ok(d)
    };
    for name in names {
        dataset_of(name)?;
    }
    let mut datasets = std::collections::BTreeMap::new();
    let mut peak: Option<GemmPeak> = None;
    let mut summary = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let dataset = dataset_of(name)?;
        // A text model reads its own vectorization of the texts: built per model.
        let text = if models::text::is_text_model(name) {
            Some(text_setup(name, &dataset, opts)?)
        } else {
            if !datasets.contains_key(&dataset) {
                let ds = common::load_dataset(&dataset)?;
                datasets.insert(dataset.clone(), ds);
            }
            None
        };
        if i > 0 {
            reset_peak_rss();
        }
        let res = match text {
            Some((ds, model)) => bench_one(name, &ds, Some(model), opts, &mut peak)?,
            None => bench_one(name, &datasets[&dataset], None, opts, &mut peak)?,
        };
        if json {
            println!("{}", serde_json::to_string(&res).expect("json"));
        } else {
            print_model(&res);
        }
        summary.push(res);
    }
    if !json && names.len() > 1 {
        print_summary(&summary);
    }
    Ok(())
}

/// Benchmarks `name` on `ds`; `built`: the model when the caller built it (the text
/// models, for their vocabulary), else it is built here.
fn bench_one(
    name: &str,
    ds: &nabla::data::datasets::Dataset,
    built: Option<Sequential>,
    opts: &ModelBenchOpts,
    peak: &mut Option<GemmPeak>,
) -> Result<serde_json::Value> {
    let recipe = models::recipe(name)?;
    let bs = opts.batch_size.unwrap_or(recipe.batch_size).max(1);
    let is_text = models::text::is_text_model(name);
    let mut model = match built {
        Some(m) => m,
        None if models::is_zoo(name) => {
            models::build_for(name, &ds.x_train.shape()[1..], 10, opts.seed)?
        }
        None => models::build(name, opts.seed)?,
    };
    model.compile(
        recipe.loss,
        Optimizer::from_name(recipe.optimizer, Some(recipe.learning_rate))?,
        &["accuracy"],
    )?;
    let (params, _) = model.count_params();

    // Training: the whole shuffled set, or the first (20 + N) batches' worth of samples.
    let n_all = ds.x_train.shape()[0];
    let n = match opts.steps {
        Some(s) => ((WARMUP_STEPS + s.max(1)) * bs).min(n_all),
        None => n_all,
    };
    let (x, y) = if n < n_all {
        (ds.x_train.slice_rows(0, n), ds.y_train.slice_rows(0, n))
    } else {
        (ds.x_train.clone(), ds.y_train.clone())
    };
    let steps = n.div_ceil(bs);
    if steps <= WARMUP_STEPS {
        return Err(Error::invalid(format!(
            "bench model: {steps} steps of {bs} leave none after the {WARMUP_STEPS} warm-up steps"
        )));
    }
    let clock = StepClock::default();
    model.fit(
        &x,
        &y,
        FitArgs::new()
            .epochs(1)
            .batch_size(bs)
            .verbose(0)
            .callback(clock.clone()),
    )?;
    let peak_rss_train = peak_rss_mb();
    let (t0, ends) = clock.0.borrow().clone();
    let t0 = t0.expect("the epoch began");
    let sizes: Vec<usize> = (0..steps).map(|s| bs.min(n - s * bs)).collect();
    let w = WARMUP_STEPS;
    let imgs: usize = sizes[w..].iter().sum();
    let train_rate = imgs as f64 / (ends[steps - 1] - ends[w - 1]).as_secs_f64();
    let epoch_s = (ends[steps - 1] - t0).as_secs_f64();
    // The peer's robust figure: the median full-batch step after warm-up.
    let mut durations: Vec<f64> = ends[w - 1..steps - 1]
        .windows(2)
        .map(|p| (p[1] - p[0]).as_secs_f64())
        .collect();
    let median_step_rate = if durations.is_empty() {
        train_rate
    } else {
        bs as f64 / median(&mut durations)
    };

    let acc = model
        .evaluate(&ds.x_test, &ds.y_test, INFER_BATCH)?
        .accuracy()
        .unwrap_or(f32::NAN);

    // Inference at batch 1000, batches sliced before the clock (the peer's are views).
    let n_test = ds.x_test.shape()[0];
    let batches: Vec<Var> = (0..n_test)
        .step_by(INFER_BATCH)
        .map(|s| Var::constant(ds.x_test.slice_rows(s, (s + INFER_BATCH).min(n_test))))
        .collect();
    let mut passes = Vec::with_capacity(INFER_PASSES);
    {
        let _g = no_grad();
        for b in &batches {
            model.forward(b, false)?;
        }
        for _ in 0..INFER_PASSES {
            let t = Instant::now();
            for b in &batches {
                model.forward(b, false)?;
            }
            passes.push(n_test as f64 / t.elapsed().as_secs_f64());
        }
    }
    drop(batches);
    let infer_rate = median(&mut passes.clone());

    // Batch-1 latency.
    let mut lat = Vec::with_capacity(LATENCY_RUNS);
    {
        let _g = no_grad();
        // A user's small test split is cycled through.
        let row = |i: usize| {
            let i = i % n_test.max(1);
            Var::constant(ds.x_test.slice_rows(i, i + 1))
        };
        for i in 0..LATENCY_WARMUP {
            model.forward(&row(i), false)?;
        }
        for i in 0..LATENCY_RUNS {
            let x1 = row(i);
            let t = Instant::now();
            model.forward(&x1, false)?;
            lat.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    lat.sort_by(f64::total_cmp);
    let lat_median = lat[lat.len() / 2];
    let lat_p90 = lat[lat.len() * 9 / 10];

    // The GEMM peak, once per process, measured after the RSS was read.
    let peak = peak.get_or_insert_with(gemm_peak);

    let profile = if opts.profile_steps > 0 {
        Some(profile_training(
            &mut model,
            &x,
            &y,
            bs,
            PROFILE_WARMUP,
            opts.profile_steps,
        )?)
    } else {
        None
    };

    let full = n == n_all;
    Ok(json!({
        "framework": "nabla",
        "variant": "nabla",
        "model": name,
        "dataset": ds.name,
        "samples": if is_text { "texts" } else { "images" },
        "batch": bs,
        "threads": nabla::ops::parallel::num_threads(),
        "params": params,
        "seed": opts.seed,
        "full_epoch": full,
        "steps": steps,
        "warmup_steps": WARMUP_STEPS,
        "train_img_per_s": train_rate,
        "train_img_per_s_median_step": median_step_rate,
        "epoch_s": epoch_s,
        "acc_1ep": if full { json!(acc) } else { json!(null) },
        "test_acc": acc,
        "infer_b1000_img_per_s": infer_rate,
        "infer_b1000_passes": passes,
        "b1_latency_ms_median": lat_median,
        "b1_latency_ms_p90": lat_p90,
        "peak_rss_mb_train": peak_rss_train,
        "peak_rss_mb_total": peak_rss_mb(),
        "gemm_peak_gflops": peak.gflops,
        "gemm_peak_backend": peak.backend,
        "gemm_peak_1t_gflops": peak.gflops_1t,
        "profile": profile.as_ref().map(|p| profile_json(p, peak.gflops)),
    }))
}

fn profile_json(p: &StepProfile, peak: f64) -> serde_json::Value {
    let frac = |g: Option<f64>| g.map(|g| g / peak);
    let layers: Vec<_> = p
        .layers
        .iter()
        .map(|l| {
            json!({
                "share_of_step": (l.forward_ms + l.backward_ms) / p.step_ms,
                "name": l.name,
                "class_name": l.class_name,
                "output_shape": l.output_shape,
                "forward_ms": l.forward_ms,
                "backward_ms": l.backward_ms,
                "forward_flops": l.forward_flops,
                "backward_flops": l.backward_flops,
                "forward_gflops": l.forward_gflops(),
                "backward_gflops": l.backward_gflops(),
                "forward_frac_of_peak": frac(l.forward_gflops()),
                "backward_frac_of_peak": frac(l.backward_gflops()),
            })
        })
        .collect();
    let step_gflops = p.total_flops() / (p.step_ms * 1e-3) / 1e9;
    json!({
        "batch": p.batch_size,
        "steps": p.steps,
        "warmup_steps": PROFILE_WARMUP,
        "layers": layers,
        "data_ms": p.data_ms,
        "loss_forward_ms": p.loss_forward_ms,
        "loss_backward_ms": p.loss_backward_ms,
        "autograd_other_ms": p.autograd_other_ms,
        "optimizer_ms": p.optimizer_ms,
        "step_ms": p.step_ms,
        "step_gflops": step_gflops,
        "step_frac_of_peak": step_gflops / peak,
    })
}

fn f(v: &serde_json::Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(f64::NAN)
}

fn print_model(r: &serde_json::Value) {
    let peak = f(r, "gemm_peak_gflops");
    // Rates count what the model reads: images, or texts for the text models.
    let unit = if r["samples"] == "texts" {
        "samples/s"
    } else {
        "img/s"
    };
    println!(
        "{} ({}, batch {}, adam 1e-3, {} threads, seed {})",
        r["model"].as_str().unwrap_or("?"),
        r["dataset"].as_str().unwrap_or("?"),
        r["batch"],
        r["threads"],
        r["seed"]
    );
    let steps = r["steps"].as_u64().unwrap_or(0);
    println!(
        "  training         {:>9.0} {unit}  ({} steps, first {} excluded; {:.1} s; median step {:.0} {unit})",
        f(r, "train_img_per_s"),
        steps,
        WARMUP_STEPS,
        f(r, "epoch_s"),
        f(r, "train_img_per_s_median_step")
    );
    println!(
        "  test accuracy    {:>9.4}        ({})",
        f(r, "test_acc"),
        if r["full_epoch"].as_bool() == Some(true) {
            "after one epoch".to_string()
        } else {
            format!("after {steps} steps only")
        }
    );
    println!(
        "  inference b1000  {:>9.0} {unit}  (median of {INFER_PASSES} passes over the test set)",
        f(r, "infer_b1000_img_per_s")
    );
    println!(
        "  batch-1 latency  {:>9.3} ms     (median of {LATENCY_RUNS}; p90 {:.3} ms)",
        f(r, "b1_latency_ms_median"),
        f(r, "b1_latency_ms_p90")
    );
    println!(
        "  peak RSS         {:>9.0} MiB    (after training)",
        f(r, "peak_rss_mb_train")
    );
    println!(
        "  GEMM peak        {:>9.1} GFLOP/s (square 1024, all threads, {}; 1 thread {:.1})",
        peak,
        r["gemm_peak_backend"].as_str().unwrap_or("?"),
        f(r, "gemm_peak_1t_gflops")
    );
    let p = &r["profile"];
    if p.is_null() {
        println!();
        return;
    }
    println!(
        "\n  Per layer, one training step of {} (mean of {} steps after {} warm-up):",
        p["batch"], p["steps"], PROFILE_WARMUP
    );
    println!(
        "  {:<34}{:>10}{:>9}{:>9}{:>10}{:>8}{:>10}{:>8}{:>8}",
        "layer", "output", "fwd ms", "bwd ms", "fwd GF/s", "% peak", "bwd GF/s", "% peak", "share"
    );
    // Each row's share of the step's wall time.
    let step_ms = f(p, "step_ms");
    let share = |ms: f64| format!("{:.1}%", 100.0 * ms / step_ms);
    let gf = |v: &serde_json::Value| match v.as_f64() {
        Some(g) => format!("{g:.1}"),
        None => "-".into(),
    };
    let pct = |v: &serde_json::Value| match v.as_f64() {
        Some(x) => format!("{:.0}%", 100.0 * x),
        None => "-".into(),
    };
    let mut sum = 0.0;
    for l in p["layers"].as_array().into_iter().flatten() {
        let shape: Vec<String> = l["output_shape"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| d.to_string())
            .collect();
        sum += f(l, "forward_ms") + f(l, "backward_ms");
        println!(
            "  {:<34}{:>10}{:>9.3}{:>9.3}{:>10}{:>8}{:>10}{:>8}{:>8}",
            format!(
                "{} ({})",
                l["name"].as_str().unwrap_or("?"),
                l["class_name"].as_str().unwrap_or("?")
            ),
            shape.join("x"),
            f(l, "forward_ms"),
            f(l, "backward_ms"),
            gf(&l["forward_gflops"]),
            pct(&l["forward_frac_of_peak"]),
            gf(&l["backward_gflops"]),
            pct(&l["backward_frac_of_peak"]),
            share(f(l, "forward_ms") + f(l, "backward_ms")),
        );
    }
    let row = |label: &str, fwd: f64, bwd: Option<f64>| {
        println!(
            "  {:<44}{:>9.3}{:>9}{:>44}",
            label,
            fwd,
            bwd.map(|b| format!("{b:.3}")).unwrap_or_default(),
            share(fwd + bwd.unwrap_or(0.0))
        )
    };
    row(
        "loss",
        f(p, "loss_forward_ms"),
        Some(f(p, "loss_backward_ms")),
    );
    row(
        "autograd (graph sort, leaf grads)",
        0.0,
        Some(f(p, "autograd_other_ms")),
    );
    row("optimizer step", f(p, "optimizer_ms"), None);
    row("batch gather", f(p, "data_ms"), None);
    sum += f(p, "loss_forward_ms")
        + f(p, "loss_backward_ms")
        + f(p, "autograd_other_ms")
        + f(p, "optimizer_ms")
        + f(p, "data_ms");
    println!(
        "  step: {:.3} ms wall ({:.3} ms in the rows above), {:.1} GFLOP/s = {:.0}% of the GEMM peak\n",
        f(p, "step_ms"),
        sum,
        f(p, "step_gflops"),
        100.0 * f(p, "step_frac_of_peak")
    );
}

fn print_summary(rs: &[serde_json::Value]) {
    println!(
        "{:<16}{:>12}{:>9}{:>14}{:>11}{:>10}{:>15}",
        "model", "train img/s", "acc", "b1000 img/s", "b1 ms", "RSS MiB", "step % peak"
    );
    for r in rs {
        let step_pct = r["profile"]["step_frac_of_peak"]
            .as_f64()
            .map(|x| format!("{:.0}%", 100.0 * x))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<16}{:>12.0}{:>9.4}{:>14.0}{:>11.3}{:>10.0}{:>15}",
            r["model"].as_str().unwrap_or("?"),
            f(r, "train_img_per_s"),
            f(r, "test_acc"),
            f(r, "infer_b1000_img_per_s"),
            f(r, "b1_latency_ms_median"),
            f(r, "peak_rss_mb_train"),
            step_pct
        );
    }
}
