//! `--distributed` (train, bench): the MPI world `mpirun -np N` started, as the
//! `DataParallel` settings `fit` takes; and `nabla bench distributed`: images/s and the
//! gradient exchange's share of a step on this world, plus the gradient bytes each
//! built-in net sends per step (the input of the scaling model in BENCHMARKS.md).

use clap::Args;
use nabla::distributed::Collective;
use nabla::error::{Error, Result};
use nabla::training::{BnStats, DataParallel, FitArgs};
use std::rc::Rc;

#[derive(Args, Clone, Debug, Default)]
pub struct DistributedArgs {
    /// Train data-parallel over the ranks that `mpirun -np N` started (a build with
    /// `--features mpi`). --batch-size is the global batch, cut into one share per rank.
    #[arg(long)]
    pub distributed: bool,
    /// With --distributed: --batch-size is each rank's share (global batch N times it).
    #[arg(long, requires = "distributed")]
    pub batch_size_per_rank: bool,
    /// With --distributed: batch norm's batch statistics per rank's share (`local`, the
    /// default, as PyTorch DDP; rank 0's moving statistics saved) or over the global
    /// batch (`sync`, as PyTorch's SyncBatchNorm: 3 small all-reduces per layer and step).
    #[arg(long, value_name = "local|sync", requires = "distributed")]
    pub bn_stats: Option<String>,
}

impl DistributedArgs {
    /// The data-parallel settings, or `None` without --distributed. MPI is initialized
    /// here (once per process).
    pub fn data_parallel(&self) -> Result<Option<DataParallel>> {
        if !self.distributed {
            return Ok(None);
        }
        let bn_stats = match &self.bn_stats {
            Some(s) => BnStats::from_name(s)?,
            None => BnStats::Local,
        };
        let mut dp = DataParallel::new(mpi_world()?);
        dp.batch_size_per_rank = self.batch_size_per_rank;
        dp.bn_stats = bn_stats;
        Ok(Some(dp))
    }
}

#[cfg(feature = "mpi")]
pub fn mpi_world() -> Result<Rc<dyn Collective>> {
    Ok(Rc::new(nabla::distributed::MpiWorld::init()?))
}

#[cfg(not(feature = "mpi"))]
pub fn mpi_world() -> Result<Rc<dyn Collective>> {
    Err(Error::invalid(
        "--distributed: this nabla was built without MPI; build it with \
         `cargo build --release --features mpi` (Debian: apt-get install libopenmpi-dev \
         openmpi-bin libclang-dev) and start it with `mpirun -np N nabla ...`",
    ))
}

/// Ends the whole job after an error on this rank: the others may be waiting for it in
/// a collective. Prints the error with the rank first.
pub fn fail(dp: &DataParallel, e: Error) -> ! {
    eprintln!("error on rank {} of {}: {e}", dp.rank(), dp.size());
    dp.world.abort(1)
}

#[derive(Args)]
pub struct BenchDistributedArgs {
    /// A built-in image model.
    #[arg(long, default_value = "keras-cnn")]
    model: String,
    /// Default: the model's recipe's. The deep nets (resnet20, vgg-small, ...) are built
    /// for the data set's shape, so `--dataset mnist` times them without CIFAR-10.
    #[arg(long)]
    dataset: Option<String>,
    /// The global batch.
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Training steps timed (after 2 untimed ones).
    #[arg(long, default_value_t = 40)]
    steps: usize,
    /// Only print the gradient bytes per step of every built-in net (no MPI needed).
    #[arg(long)]
    gradient_bytes: bool,
}

/// The bytes of gradient each step all-reduces: 4 per trainable weight.
pub fn gradient_bytes(model: &nabla::nn::Graph) -> usize {
    model
        .params()
        .iter()
        .filter(|p| p.trainable)
        .map(|p| p.var.value_ref().numel() * 4)
        .sum()
}

/// Every built-in net with its input shape and gradient bytes per step.
pub fn gradient_bytes_table() -> Result<Vec<(String, String, usize)>> {
    let mut rows = Vec::new();
    for name in nabla::models::NAMES {
        let m = nabla::models::build(name, 0)?;
        let shape = nabla::nn::layers::dims::known(m.input_shape()).unwrap_or_default();
        rows.push((name.to_string(), format!("{shape:?}"), gradient_bytes(&m)));
    }
    for name in nabla::models::ZOO {
        let (shape, classes) = nabla::models::default_shape(name);
        let m = nabla::models::build_for(name, &shape, classes, 0)?;
        rows.push((name.to_string(), format!("{shape:?}"), gradient_bytes(&m)));
    }
    Ok(rows)
}

pub fn bench(a: &BenchDistributedArgs, json: bool) -> Result<()> {
    if a.gradient_bytes {
        let rows = gradient_bytes_table()?;
        if json {
            for (name, shape, bytes) in rows {
                let v = serde_json::json!({"model": name, "input": shape, "gradient_bytes": bytes});
                println!("{v}");
            }
        } else {
            println!(
                "{:<16} {:<16} {:>14} {:>10}",
                "model", "input", "grad bytes", "MB"
            );
            for (name, shape, bytes) in rows {
                println!(
                    "{name:<16} {shape:<16} {bytes:>14} {:>10.2}",
                    bytes as f64 / 1e6
                );
            }
        }
        return Ok(());
    }
    let dp = DistributedArgs {
        distributed: true,
        ..Default::default()
    }
    .data_parallel()?
    .expect("asked for");
    let recipe = nabla::models::recipe(&a.model)?;
    let ds = nabla::data::load_data(a.dataset.as_deref().unwrap_or(recipe.dataset))?;
    let n = (a.steps + 2) * a.batch_size;
    let x = ds.x_train.slice_rows(0, n.min(ds.x_train.shape()[0]));
    let y = ds.y_train.slice_rows(0, n.min(ds.y_train.shape()[0]));
    let mut model = super::common::build_model_for(&a.model, &ds, 0)?;
    model.compile(recipe.loss, nabla::Optimizer::adam(1e-3), &["accuracy"])?;
    // Two warm-up steps (first-touch allocation, thread start), then the timed epoch.
    let warm = FitArgs::new()
        .batch_size(a.batch_size)
        .verbose(0)
        .distributed(dp.clone());
    model.fit(
        &x.slice_rows(0, 2 * a.batch_size),
        &y.slice_rows(0, 2 * a.batch_size),
        warm,
    )?;
    let timed = FitArgs::new()
        .batch_size(a.batch_size)
        .verbose(0)
        .distributed(dp.clone());
    let h = model.fit(
        &x.slice_rows(2 * a.batch_size, n),
        &y.slice_rows(2 * a.batch_size, n),
        timed,
    )?;
    // The all-reduce alone, each after a barrier so no rank waits for a slower one: the
    // gradient's size, and 4 MB (a full bucket) for the bandwidth.
    let allreduce_ms = |len: usize| -> Result<f64> {
        let mut buf = vec![1.0f32; len];
        let mut times = Vec::new();
        for _ in 0..21 {
            dp.world.barrier()?;
            let t = std::time::Instant::now();
            dp.world.all_reduce_sum(&mut buf)?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        Ok(times[times.len() / 2])
    };
    let grad_len = gradient_bytes(&model) / 4;
    let (grad_ms, bucket_ms) = (allreduce_ms(grad_len)?, allreduce_ms(1 << 20)?);
    let get = |k: &str| {
        h.history
            .get(k)
            .and_then(|v| v.last().copied())
            .unwrap_or(0.0)
    };
    // Step time includes waiting in the all-reduce for the slowest rank (on a shared
    // machine, most of the "exchange"); the all-reduce alone is timed below.
    let (ips, step, comm) = (
        get("images_per_second"),
        get("step_ms"),
        get("communication_ms"),
    );
    if dp.rank() == 0 {
        let bytes = gradient_bytes(&model);
        let v = serde_json::json!({
            "model": a.model,
            "ranks": dp.size(),
            "global_batch": a.batch_size,
            "threads_per_rank": nabla::ops::parallel::num_threads(),
            "images_per_second": ips,
            "step_ms": step,
            "communication_ms": comm,
            "communication_share": comm / step.max(1e-9),
            "gradient_bytes": bytes,
            "allreduce_gradient_ms": grad_ms,
            "allreduce_4mb_ms": bucket_ms,
        });
        if json {
            println!("{v}");
        } else {
            println!(
                "{} on {} rank(s), global batch {}, {} thread(s) per rank: {:.0} img/s, step \
                 {:.2} ms, gradient exchange {:.3} ms ({:.1}% of a step, {:.2} MB per step)",
                a.model,
                dp.size(),
                a.batch_size,
                nabla::ops::parallel::num_threads(),
                ips,
                step,
                comm,
                100.0 * comm / step.max(1e-9),
                bytes as f64 / 1e6
            );
            println!(
                "  all-reduce alone (median of 21, after a barrier): gradient {grad_ms:.3} ms, \
                 4 MB {bucket_ms:.3} ms"
            );
        }
    }
    Ok(())
}
