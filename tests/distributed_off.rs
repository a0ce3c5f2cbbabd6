//! Without the `mpi` feature (the default build), `--distributed` is an error that says
//! how to get MPI, given before any data is read; every other path is untouched.
#![cfg(not(feature = "mpi"))]

use std::process::Command;

#[test]
fn distributed_without_the_feature_says_how_to_build_it() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nabla"))
        .args(["train", "--model", "mlp", "--distributed", "--out"])
        .arg(tmp.path().join("run"))
        .env("NABLA_DATA", tmp.path().join("no-data"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--features mpi"), "{err}");
    assert!(err.contains("mpirun"), "{err}");
}

#[test]
fn evaluate_distributed_is_refused_where_it_cannot_apply() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_nabla"))
            .arg("evaluate")
            .args(args)
            .arg("--distributed")
            .env("NABLA_DATA", tmp.path().join("no-data"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    // An ensemble: refused before anything is loaded.
    let err = run(&["a", "b"]);
    assert!(
        err.contains("ensemble") && err.contains("without --distributed"),
        "{err}"
    );
    let err = run(&["a", "--confusion"]);
    assert!(err.contains("--confusion"), "{err}");
    // One model: in this build, how to get MPI, before the model or data are read.
    let err = run(&["a"]);
    assert!(err.contains("--features mpi"), "{err}");
}
