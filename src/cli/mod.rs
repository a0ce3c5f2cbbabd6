//! Argument parsing (clap) and dispatch. Each subcommand lives in its own file.

mod bench;
mod bench_gemm;
mod bench_model;
mod common;
mod detect;
mod detection_eval;
mod detection_report;
mod detection_run;
mod distributed;
mod evaluate;
mod export;
mod generate;
mod gradcheck;
mod predict;
mod report;
mod summary;
mod text;
mod train;
mod user_data;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "nabla",
    version,
    about = "Train, evaluate and inspect neural networks on the CPU."
)]
struct Cli {
    /// Worker threads for the kernels (default: all cores).
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Train a built-in model or a JSON model config on a data set.
    Train(train::TrainArgs),
    /// Evaluate a saved model on a data set's test split.
    Evaluate(evaluate::EvaluateArgs),
    /// Class probabilities for an image (PNG or JPEG of any size), a table or a text.
    Predict(predict::PredictArgs),
    /// Find objects in images with a detection run: PNGs with the boxes drawn, or JSON.
    Detect(detect::DetectArgs),
    /// Write a model as an ONNX file (IR 8, opset 17).
    Export(export::ExportArgs),
    /// Print a model's layer table and parameter counts.
    Summary(summary::SummaryArgs),
    /// Check every parameter's gradient against central differences.
    Gradcheck(gradcheck::GradcheckArgs),
    /// Measure throughput, latency and memory (GEMM, models).
    Bench(bench::BenchArgs),
    /// Pictures and an HTML page of what a trained model learned.
    Report(report::ReportArgs),
    /// New images from an autoencoder run: random codes through its decoder.
    Generate(generate::GenerateArgs),
}

/// Runs the command line; returns the process exit code.
pub fn run() -> nabla::Result<i32> {
    let cli = Cli::parse();
    if let Some(n) = cli.threads {
        // Thousands of threads would take minutes to start and do nothing useful.
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        let most = cores.max(256);
        if !(1..=most).contains(&n) {
            return Err(nabla::Error::invalid(format!(
                "--threads must be between 1 and {most} (this machine has {cores} cores), got {n}"
            )));
        }
        nabla::ops::parallel::set_num_threads(n);
    }
    match cli.command {
        Command::Train(a) => train::run(a),
        Command::Evaluate(a) => evaluate::run(a),
        Command::Predict(a) => predict::run(a),
        Command::Detect(a) => detect::run(a),
        Command::Export(a) => export::run(a),
        Command::Summary(a) => summary::run(a),
        Command::Gradcheck(a) => gradcheck::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Report(a) => report::run(a),
        Command::Generate(a) => generate::run(a),
    }
}
