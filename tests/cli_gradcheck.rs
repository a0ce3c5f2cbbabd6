//! `nabla gradcheck NAME` through the binary: the table it prints (one row per parameter
//! tensor, each compared on most of its sampled entries and within tolerance), its exit
//! status, and a clear error for an unknown model. The checker's own negative control
//! (wrong backwards it must reject) is in `src/training/gradcheck.rs`.

use std::process::{Command, Output};

fn gradcheck(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nabla"))
        .args(["--threads", "2", "gradcheck"])
        .args(args)
        .output()
        .expect("run nabla")
}

/// The rows of the table: (parameter, checked, skipped, verdict).
fn rows(stdout: &str) -> Vec<(String, usize, usize, String)> {
    stdout
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // parameter, shape (one or more words, e.g. "[32, 1, 3, 3]"), checked, skipped,
            // max |grad|, rel. error, verdict.
            let n = f.len();
            (
                f[0].to_string(),
                f[n - 5].parse().unwrap_or_else(|e| panic!("{e}: {l}")),
                f[n - 4].parse().unwrap_or_else(|e| panic!("{e}: {l}")),
                f[n - 1].to_string(),
            )
        })
        .collect()
}

#[test]
fn gradcheck_passes_on_built_in_models_with_every_tensor_checked() {
    // (model, parameter tensors): every weight and bias, batch norm's gamma and beta.
    for (model, tensors) in [("mlp", 6), ("keras-cnn", 10), ("mlp-bn", 14)] {
        let out = gradcheck(&[model]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{model}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.starts_with("parameter"), "{model}: {stdout}");
        let rows = rows(&stdout);
        assert_eq!(rows.len(), tensors, "{model}: {stdout}");
        for (param, checked, skipped, verdict) in &rows {
            assert_eq!(verdict, "ok", "{model} {param}: {stdout}");
            // 25 entries sampled (all of a smaller tensor), at least half of them
            // compared rather than skipped (`ParamCheck::passed`'s rule, seen from outside).
            assert!(
                *checked > 0 && 2 * checked >= checked + skipped,
                "{model} {param}: {checked} checked, {skipped} skipped\n{stdout}"
            );
        }
        assert!(
            stdout.contains("All gradients agree with central differences."),
            "{stdout}"
        );
    }
}

#[test]
fn gradcheck_of_an_unknown_model_is_a_clear_error() {
    let out = gradcheck(&["no-such-model"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("error:") && stderr.contains("no-such-model"),
        "{stderr}"
    );
}
