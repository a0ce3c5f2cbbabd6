//! `nabla bench`: throughput, latency and memory of the engine (not a timed test).
//!
//! - `nabla bench gemm`: GEMM GFLOP/s per backend; the square 1024 multi-thread figure is
//!   the machine's achieved peak that the model tables quote.
//! - `nabla bench model NAME`: one MNIST model as `/work/shared/peers/bench_torch.py`
//!   measures its PyTorch twin, plus a per-layer profile (see `bench_model.rs`); a text
//!   model the same way on debian-sections.
//! - `nabla bench all`: the same for keras-cnn, simple-convnet, deep-convnet and mlp.

use super::bench_model::{self, ModelBenchOpts};
use clap::{Args, Subcommand};
use nabla::error::Result;

#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: BenchWhat,
    /// Print JSON instead of tables (for models: one object per line).
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum BenchWhat {
    /// GEMM GFLOP/s per backend on the models' shapes and a large square (the peak).
    Gemm,
    /// Train one built-in model for an epoch and measure training, inference, latency,
    /// memory and a per-layer profile.
    Model {
        /// keras-cnn, simple-convnet, deep-convnet, mlp (or another built-in image model),
        /// or a text model: text-bow, text-cnn, text-lstm, text-bilstm, text-gru.
        name: String,
        #[command(flatten)]
        opts: ModelBenchOpts,
    },
    /// Data-parallel training under `mpirun -np N` (a build with `--features mpi`):
    /// images/s and the gradient exchange's share of a step; `--gradient-bytes`: the
    /// bytes each built-in net exchanges per step.
    Distributed(super::distributed::BenchDistributedArgs),
    /// `bench model` for keras-cnn, simple-convnet, deep-convnet and mlp, then a summary.
    All {
        #[command(flatten)]
        opts: ModelBenchOpts,
    },
}

pub fn run(a: BenchArgs) -> Result<i32> {
    match a.what {
        BenchWhat::Gemm => {
            let v = super::bench_gemm::run(a.json);
            if a.json {
                println!("{}", serde_json::to_string_pretty(&v).expect("json"));
            }
        }
        BenchWhat::Model { name, opts } => bench_model::run(&[name.as_str()], &opts, a.json)?,
        BenchWhat::Distributed(d) => super::distributed::bench(&d, a.json)?,
        BenchWhat::All { opts } => bench_model::run(&bench_model::ALL, &opts, a.json)?,
    }
    Ok(0)
}
