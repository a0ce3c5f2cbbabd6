//! `nabla bench`: throughput, latency and memory of the engine (not a timed test).

use clap::{Args, Subcommand};
use nabla::error::Result;

#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: BenchWhat,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum BenchWhat {
    /// GEMM GFLOP/s per backend on the models' shapes and a large square (the peak).
    Gemm,
}

pub fn run(a: BenchArgs) -> Result<i32> {
    let v = match a.what {
        BenchWhat::Gemm => super::bench_gemm::run(a.json),
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
    }
    Ok(0)
}
