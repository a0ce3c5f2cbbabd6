//! Data-parallel training over MPI (issue 18), run by `.ci/run` as
//! `cargo test --release --features mpi --test distributed`: each test starts
//! `mpirun -np 2 --oversubscribe` itself. Without the `mpi` feature this file is empty
//! (`distributed_off.rs` checks that `--distributed` then fails clearly).
//!
//! - Must-show 1: keras-cnn on 1,024 MNIST images, 2 ranks with a global batch of 128
//!   against one process with batch 128: the weights agree up to float reduction order
//!   (the maximum difference is printed) and so does the test accuracy.
//! - Must-show 3: rank 1 killed with SIGKILL in the middle of a run: mpirun ends the job
//!   non-zero within 30 s naming rank 1, the last backup loads, and `--resume` under
//!   mpirun finishes the run.
#![cfg(feature = "mpi")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_nabla");

fn data_dir() -> PathBuf {
    let dir = PathBuf::from(
        std::env::var("NABLA_DATA").unwrap_or_else(|_| "/work/shared/data".to_string()),
    );
    assert!(
        dir.join("mnist").is_dir(),
        "these tests train on MNIST: set NABLA_DATA to a folder holding mnist/ (now {})",
        dir.display()
    );
    dir
}

/// `mpirun -np 2 --oversubscribe nabla --threads 1 ARGS` (as root too), one thread per
/// rank on this two-core machine.
fn mpirun(args: &[&str]) -> Command {
    let mut c = Command::new("mpirun");
    c.args([
        "-np",
        "2",
        "--oversubscribe",
        "--mca",
        "mpi_yield_when_idle",
        "1",
    ])
    .arg(BIN)
    .args(["--threads", "1"])
    .args(args)
    .env("NABLA_DATA", data_dir())
    .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
    .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    c
}

fn check(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn accuracy(dir: &Path) -> f64 {
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap();
    run["accuracy"].as_f64().unwrap()
}

fn max_weight_difference(a: &Path, b: &Path) -> f32 {
    let a = nabla::formats::model_dir::load(a).unwrap();
    let b = nabla::formats::model_dir::load(b).unwrap();
    let (pa, pb) = (a.params(), b.params());
    assert_eq!(pa.len(), pb.len());
    let mut most = 0.0f32;
    for (x, y) in pa.iter().zip(&pb) {
        assert_eq!(x.name, y.name);
        for (u, v) in x
            .var
            .value()
            .to_f32_vec()
            .iter()
            .zip(y.var.value().to_f32_vec())
        {
            most = most.max((u - v).abs());
        }
    }
    most
}

#[test]
fn two_ranks_with_a_global_batch_of_128_match_one_process() {
    let tmp = tempfile::tempdir().unwrap();
    let (two, one) = (tmp.path().join("two"), tmp.path().join("one"));
    let args = |out: &Path| -> Vec<String> {
        [
            "train",
            "--model",
            "keras-cnn",
            "--dataset",
            "mnist",
            "--limit",
            "1024",
            "--epochs",
            "1",
            "--batch-size",
            "128",
            "--seed",
            "3",
            "--json",
            "--out",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([out.display().to_string()])
        .collect()
    };
    let mut dist: Vec<String> = args(&two);
    dist.push("--distributed".into());
    let dist: Vec<&str> = dist.iter().map(String::as_str).collect();
    check(&mpirun(&dist).output().unwrap(), "mpirun -np 2");
    let single: Vec<String> = args(&one);
    let out = Command::new(BIN)
        .args(["--threads", "1"])
        .args(&single)
        .env("NABLA_DATA", data_dir())
        .output()
        .unwrap();
    check(&out, "one process");
    let diff = max_weight_difference(&two, &one);
    let (acc2, acc1) = (accuracy(&two), accuracy(&one));
    println!("max |w_2ranks - w_1process| = {diff:e}; test accuracy {acc2} vs {acc1}");
    // 8 Adam steps from the same start: only the order of the float sums differs.
    assert!(diff < 1e-4, "weights differ by up to {diff}");
    assert!((acc2 - acc1).abs() <= 0.001, "accuracy {acc2} vs {acc1}");
    // Training moved the weights well beyond that difference (the test can fail).
    let untrained = nabla::models::build("keras-cnn", 3).unwrap();
    let trained = nabla::formats::model_dir::load(&one).unwrap();
    let moved = untrained
        .params()
        .iter()
        .zip(trained.params())
        .flat_map(|(u, t)| {
            let (u, t) = (u.var.value().to_f32_vec(), t.var.value().to_f32_vec());
            u.into_iter()
                .zip(t)
                .map(|(a, b)| (a - b).abs())
                .collect::<Vec<_>>()
        })
        .fold(0.0f32, f32::max);
    assert!(
        moved > 100.0 * diff.max(1e-6),
        "training moved the weights by {moved}"
    );

    // `nabla evaluate RUN --distributed`: the 10,000 test images split over the two ranks
    // give one process's loss and accuracy.
    let eval_json = |out: &Output| -> serde_json::Value {
        check(out, "evaluate");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().last().expect("a JSON line");
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {text}"))
    };
    let ones = one.display().to_string();
    let split = eval_json(
        &mpirun(&["evaluate", &ones, "--distributed", "--json"])
            .output()
            .unwrap(),
    );
    let whole = eval_json(
        &Command::new(BIN)
            .args(["--threads", "1", "evaluate", &ones, "--json"])
            .env("NABLA_DATA", data_dir())
            .output()
            .unwrap(),
    );
    println!("evaluate: 2 ranks {split}, one process {whole}");
    assert_eq!(split["ranks"], 2);
    for key in ["loss", "accuracy"] {
        let (a, b) = (split[key].as_f64().unwrap(), whole[key].as_f64().unwrap());
        assert!((a - b).abs() < 1e-5, "{key}: 2 ranks {a}, one process {b}");
    }
}

/// The process id of `rank` among `mpirun`'s children (Open MPI sets
/// OMPI_COMM_WORLD_RANK in each rank's environment).
fn rank_pid(mpirun_pid: u32, rank: usize) -> Option<u32> {
    let kids =
        std::fs::read_to_string(format!("/proc/{mpirun_pid}/task/{mpirun_pid}/children")).ok()?;
    kids.split_whitespace().find_map(|pid| {
        let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
        let want = format!("OMPI_COMM_WORLD_RANK={rank}");
        env.split(|&b| b == 0)
            .any(|kv| kv == want.as_bytes())
            .then(|| pid.parse().ok())
            .flatten()
    })
}

#[test]
fn a_rank_killed_mid_run_stops_the_job_and_the_run_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let outs = out.display().to_string();
    let mut child = mpirun(&[
        "train",
        "--model",
        "keras-cnn",
        "--dataset",
        "mnist",
        "--limit",
        "2048",
        "--epochs",
        "3",
        "--batch-size",
        "128",
        "--seed",
        "5",
        "--distributed",
        "--out",
        &outs,
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // Wait for the first epoch's backup, then kill rank 1 in the second epoch.
    let state = out.join("backup/fit_state.json");
    let deadline = Instant::now() + Duration::from_secs(240);
    while !state.exists() {
        assert!(Instant::now() < deadline, "no backup after 240 s");
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let pid = rank_pid(child.id(), 1).expect("rank 1 among mpirun's children");
    let killed = Instant::now();
    assert!(Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "the job still runs after 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let waited = killed.elapsed();
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    println!("job ended {waited:?} after the kill, {status}; stderr:\n{stderr}");
    assert!(!status.success());
    assert!(
        stderr.contains("rank 1"),
        "the message names the lost rank: {stderr}"
    );
    // The last backup loads, and the run resumes from it under mpirun.
    nabla::formats::model_dir::load(&out.join("backup")).unwrap();
    let resumed = mpirun(&["train", "--resume", &outs]).output().unwrap();
    check(&resumed, "--resume under mpirun");
    let history: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("history.json")).unwrap()).unwrap();
    assert_eq!(history["epoch"].as_array().unwrap().len(), 3);
}
