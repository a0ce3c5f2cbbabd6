//! PyTorch weights in: torchvision's resnet18 (and vgg11, `--ignored`: its file is
//! 400 MB) state dicts, as `.safetensors` and as `.pth`, load into the zoo's models and
//! give PyTorch's logits; bad files are clear errors, and a `.pth` whose pickle would
//! run a command is refused without running it.
//!
//! The weights come from the formula of scripts/golden/torch_resnet18.py, computed here
//! too, so only the key list and PyTorch's logits are kept (tests/golden/
//! torch_weights.json); this file writes the weights files itself (`write_pth` is a
//! small torch.save: a zip of `data.pkl` and `data/N`). The small files in
//! tests/fixtures/torch/ were written by torch itself.

use nabla::engine::Var;
use nabla::formats::{safetensors_io, torch_pth};
use nabla::{DType, Tensor};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};

fn golden() -> Value {
    let text = std::fs::read_to_string("tests/golden/torch_weights.json").unwrap();
    serde_json::from_str(&text).unwrap()
}

fn fixture(name: &str) -> PathBuf {
    Path::new("tests/fixtures/torch").join(name)
}

/// The script's `hash`: uniform in [-1, 1) from a 32-bit mix of (k, j).
fn hash(k: u64, n: usize) -> impl Iterator<Item = f64> {
    const M: u64 = 1 << 32;
    (0..n as u64).map(move |j| {
        let mut x = (j * 2654435761 + k * 40503 + 1) % M;
        x ^= x >> 15;
        x = (x * 1540483477) % M;
        x ^= x >> 13;
        x as f64 / M as f64 * 2.0 - 1.0
    })
}

/// The script's `formula` for tensor number `k` of the state dict.
fn formula(key: &str, k: usize, shape: &[usize]) -> Tensor {
    if key.ends_with("num_batches_tracked") {
        return Tensor::from_vec(vec![7.0], &[]).to_dtype(DType::I64);
    }
    let n: usize = shape.iter().product();
    let fan_in = (n / shape[0].max(1)) as f64;
    let f = |b: f64| -> f64 {
        if key.ends_with("running_var") {
            1.0 + 0.5 * b * b
        } else if key.ends_with("running_mean") {
            0.1 * b
        } else if key.ends_with("weight") && shape.len() == 1 {
            1.0 + 0.2 * b
        } else if key.ends_with("bias") {
            0.1 * b
        } else {
            b * (3.0 / fan_in).sqrt()
        }
    };
    let data = hash(k as u64, n).map(|b| f(b) as f32).collect();
    Tensor::from_vec(data, shape)
}

/// The state dict of golden case `case` (`resnet18`, `vgg11`), in the file's order.
fn state_dict(case: &Value) -> Vec<(String, Tensor)> {
    case["keys"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(k, e)| {
            let key = e[0].as_str().unwrap();
            let shape: Vec<usize> = e[1]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            (key.to_string(), formula(key, k, &shape))
        })
        .collect()
}

fn input(case: &Value) -> Tensor {
    let shape: Vec<usize> = case["input_shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let n = shape.iter().product();
    Tensor::from_vec(hash(1000, n).map(|b| b as f32).collect(), &shape)
}

// ---- a small torch.save: pickle protocol 2, as torch writes a state dict ----

fn op_str(b: &mut Vec<u8>, s: &str) {
    b.push(b'X');
    b.extend((s.len() as u32).to_le_bytes());
    b.extend(s.as_bytes());
}

fn op_int(b: &mut Vec<u8>, v: usize) {
    b.push(b'J');
    b.extend(i32::try_from(v).unwrap().to_le_bytes());
}

fn op_global(b: &mut Vec<u8>, module: &str, name: &str) {
    b.push(b'c');
    b.extend(format!("{module}\n{name}\n").as_bytes());
}

fn op_tuple(b: &mut Vec<u8>, items: &[usize]) {
    b.push(b'(');
    for &v in items {
        op_int(b, v);
    }
    b.push(b't');
}

/// `OrderedDict(name -> _rebuild_tensor_v2(storage i, 0, shape, row-major strides, False,
/// OrderedDict()))` and the storages, zipped under `prefix/` (stored, as torch does).
fn write_pth(path: &Path, prefix: &str, tensors: &[(String, Tensor)]) {
    let mut p = vec![0x80, 2];
    op_global(&mut p, "collections", "OrderedDict");
    p.extend(b")R(");
    let mut storages = Vec::new();
    for (i, (name, t)) in tensors.iter().enumerate() {
        op_str(&mut p, name);
        op_global(&mut p, "torch._utils", "_rebuild_tensor_v2");
        p.extend(b"((");
        op_str(&mut p, "storage");
        let (ty, bytes): (&str, Vec<u8>) = match t.dtype() {
            DType::I64 => (
                "LongStorage",
                t.to_f32_vec()
                    .iter()
                    .flat_map(|&v| (v as i64).to_le_bytes())
                    .collect(),
            ),
            _ => (
                "FloatStorage",
                t.to_f32_vec()
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            ),
        };
        op_global(&mut p, "torch", ty);
        op_str(&mut p, &i.to_string());
        op_str(&mut p, "cpu");
        op_int(&mut p, t.shape().iter().product());
        p.extend(b"tQ");
        op_int(&mut p, 0);
        op_tuple(&mut p, t.shape());
        let mut strides = vec![1; t.shape().len()];
        for d in (0..t.shape().len().saturating_sub(1)).rev() {
            strides[d] = strides[d + 1] * t.shape()[d + 1];
        }
        op_tuple(&mut p, &strides);
        p.push(0x89);
        op_global(&mut p, "collections", "OrderedDict");
        p.extend(b")RtR");
        storages.push(bytes);
    }
    p.extend(b"u.");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    let mut entry = |name: String, bytes: &[u8]| {
        zip.start_file(name, opts).unwrap();
        zip.write_all(bytes).unwrap();
    };
    entry(format!("{prefix}/data.pkl"), &p);
    entry(format!("{prefix}/byteorder"), b"little");
    for (i, bytes) in storages.iter().enumerate() {
        entry(format!("{prefix}/data/{i}"), bytes);
    }
    entry(format!("{prefix}/version"), b"3\n");
    zip.finish().unwrap();
}

/// The model's logits (the output layer's softmax skipped) for the golden input.
fn logits(m: &mut nabla::Sequential, case: &Value) -> Vec<f32> {
    let out = m
        .forward_with(&Var::constant(input(case)), false, true)
        .unwrap();
    out.value().to_f32_vec()
}

fn max_diff(got: &[f32], want: &Value) -> f32 {
    let want: Vec<f32> = want
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

/// Loads `case`'s formula weights, as .safetensors and as .pth, into the zoo model
/// `name` and checks PyTorch's logits within 1e-4.
fn loads_and_matches(name: &str, input_hw: usize) {
    let g = golden();
    let case = &g[name];
    let state = state_dict(case);
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join(format!("{name}.safetensors"));
    safetensors_io::save(&st, &state).unwrap();
    let pth = dir.path().join(format!("{name}.pth"));
    write_pth(&pth, name, &state);
    drop(state);
    for path in [&st, &pth] {
        let mut m = nabla::models::build_for(name, &[3, input_hw, input_hw], 10, 1).unwrap();
        let before = logits(&mut m, case);
        let report = m.load_torch_state_dict(path, false, false).unwrap();
        assert_eq!(
            report.loaded.len(),
            m.params().len(),
            "{}",
            report.describe()
        );
        assert!(report.skipped.is_empty() && report.missing.is_empty());
        assert!(report.unused.is_empty(), "{:?}", report.unused);
        let got = logits(&mut m, case);
        let diff = max_diff(&got, &case["logits"]);
        println!(
            "{name} from {}: max |nabla - torch| = {diff:.2e}",
            path.display()
        );
        assert!(diff < 1e-4, "{name} from {}: {diff}", path.display());
        // Not a test that passes whatever the weights: fresh weights are far off.
        assert!(max_diff(&before, &case["logits"]) > 1e-2);
    }
}

#[test]
fn resnet18_state_dict_gives_torchs_logits_from_safetensors_and_pth() {
    loads_and_matches("resnet18", 64);
}

/// torchvision's VGG head reads a 7x7-pooled map; at 32x32 the map is 1x1 and the pool
/// is folded into fc1. Ignored by default: the state dict is 129M floats (a 500 MB
/// file, twice). `cargo test --release --test torch_weights -- --ignored`.
#[test]
#[ignore]
fn vgg11_state_dict_gives_torchs_logits() {
    loads_and_matches("vgg11", 32);
}

/// A resnet18 state dict written by torch.save itself (45 MB, so not kept): `python
/// scripts/golden/torch_resnet18.py --full-pth /tmp/r18.pth`, then
/// `NABLA_TORCH_RESNET18_PTH=/tmp/r18.pth cargo test --release --test torch_weights --
/// --ignored real_torch_save`.
#[test]
#[ignore]
fn real_torch_save_resnet18_gives_torchs_logits() {
    let path = std::env::var("NABLA_TORCH_RESNET18_PTH").expect("NABLA_TORCH_RESNET18_PTH");
    let g = golden();
    let mut m = nabla::models::build_for("resnet18", &[3, 64, 64], 10, 1).unwrap();
    let report = m.load_torch_state_dict(&path, false, false).unwrap();
    assert_eq!(report.loaded.len(), m.params().len());
    let diff = max_diff(&logits(&mut m, &g["resnet18"]), &g["resnet18"]["logits"]);
    println!("resnet18 from torch.save's {path}: max |nabla - torch| = {diff:.2e}");
    assert!(diff < 1e-4, "{diff}");
}

#[test]
fn a_real_torch_save_checkpoint_reads_with_its_views() {
    let g = golden();
    let state = torch_pth::load(&fixture("checkpoint.pth")).unwrap();
    let want = g["checkpoint"].as_object().unwrap();
    let names: Vec<&str> = state.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["a", "a_t", "row", "col", "half", "bf16", "double", "steps", "param"]
    );
    for (name, t) in &state {
        let w = &want[name];
        let shape: Vec<usize> = w["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(t.shape(), shape.as_slice(), "{name}");
        let values: Vec<f32> = w["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(t.to_f32_vec(), values, "{name}");
    }
    let dtype = |n: &str| state.iter().find(|(k, _)| k == n).unwrap().1.dtype();
    assert_eq!(dtype("half"), DType::F16);
    assert_eq!(dtype("bf16"), DType::BF16);
    assert_eq!(dtype("double"), DType::F32);
    assert_eq!(dtype("steps"), DType::I64);
    // The transposed view really is the transpose.
    let a = &state[0].1.to_f32_vec();
    let a_t = &state[1].1.to_f32_vec();
    assert_eq!(a_t[1], a[4]);
}

#[test]
fn a_pth_that_would_run_a_command_is_refused_and_nothing_runs() {
    let marker = Path::new("/tmp/nabla_torch_evil_ran");
    let _ = std::fs::remove_file(marker);
    let path = fixture("evil.pth");
    let err = torch_pth::load(&path).unwrap_err().to_string();
    assert!(err.contains("posix.system"), "{err}");
    assert!(err.contains("evil.pth"), "{err}");
    let mut m = nabla::models::build_for("resnet18", &[3, 32, 32], 10, 0).unwrap();
    let err = m.load_torch_state_dict(&path, true, true).unwrap_err();
    assert!(err.to_string().contains("posix.system"), "{err}");
    assert!(!marker.exists(), "the pickle's command ran");
}

#[test]
fn legacy_torchscript_and_truncated_files_are_clear_errors() {
    let err = torch_pth::load(&fixture("legacy.pth"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("legacy") && err.contains("legacy.pth"),
        "{err}"
    );
    let err = torch_pth::load(&fixture("scripted.pt"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("TorchScript") && err.contains("scripted.pt"),
        "{err}"
    );
    let bytes = std::fs::read(fixture("checkpoint.pth")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("cut.pth");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = torch_pth::load(&cut).unwrap_err().to_string();
    assert!(err.contains("cut.pth"), "{err}");
    assert!(
        err.contains("truncated") || err.contains("corrupt"),
        "{err}"
    );
    // Every cut and every flipped byte is an error or a state dict, never a panic.
    for n in 0..bytes.len() {
        assert!(torch_pth::from_bytes(&bytes[..n]).is_err());
        let mut b = bytes.clone();
        b[n] ^= 0x5a;
        let _ = torch_pth::from_bytes(&b);
    }
}

#[test]
fn wrong_shapes_and_unknown_keys_name_the_tensor() {
    let g = golden();
    let mut state = state_dict(&g["resnet18"]);
    let i = state
        .iter()
        .position(|(k, _)| k == "layer1.0.conv1.weight")
        .unwrap();
    state[i].1 = Tensor::zeros(&[64, 64, 3, 1]);
    state.push(("extra.weight".into(), Tensor::zeros(&[3])));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.pth");
    write_pth(&path, "bad", &state);
    let mut m = nabla::models::build_for("resnet18", &[3, 32, 32], 10, 0).unwrap();
    let before = m.get_weights();
    let err = m
        .load_torch_state_dict(&path, false, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad.pth"), "{err}");
    assert!(
        err.contains("'layer1.0.conv1.weight' (nabla's 'conv2_block1_1_conv/kernel')")
            && err.contains("[64, 64, 3, 1]"),
        "{err}"
    );
    assert!(err.contains("'extra.weight'"), "{err}");
    // Nothing changed.
    let after = m.get_weights();
    assert!(before
        .iter()
        .zip(&after)
        .all(|(a, b)| a.to_f32_vec() == b.to_f32_vec()));
    // By name, skipping mismatches: the rest loads, and the report says what did not.
    let r = m.load_torch_state_dict(&path, true, true).unwrap();
    assert_eq!(r.unused, ["extra.weight"]);
    assert_eq!(r.skipped.len(), 1, "{}", r.describe());
    assert_eq!(r.skipped[0].0, "conv2_block1_1_conv/kernel");
    assert_eq!(r.loaded.len(), m.params().len() - 1);
    // A model with no torchvision counterpart is refused by name.
    let mut other = nabla::models::build_for("resnet20", &[3, 32, 32], 10, 0).unwrap();
    let err = other.load_torch_state_dict(&path, true, true).unwrap_err();
    assert!(err.to_string().contains("resnet20"), "{err}");
}

/// `nabla train --init-from FILE.pth`: the state dict mapped by the model's zoo name,
/// by name with mismatches skipped (2 classes here, torch's fc has 10), then trained on
/// a small folder of RGB pictures; a torch file for a model with no mapping is a clear
/// error.
#[test]
fn cli_train_init_from_a_pth() {
    let g = golden();
    let dir = tempfile::tempdir().unwrap();
    let pth = dir.path().join("resnet18.pth");
    write_pth(&pth, "resnet18", &state_dict(&g["resnet18"]));
    let pictures = dir.path().join("pictures");
    for (k, class) in ["dark", "bright"].iter().enumerate() {
        std::fs::create_dir_all(pictures.join(class)).unwrap();
        for i in 0..5u8 {
            let v = 40 + 150 * k as u8 + 5 * i;
            let img = image::RgbImage::from_fn(32, 32, |x, _| image::Rgb([v, x as u8, 255 - v]));
            img.save(pictures.join(class).join(format!("{i}.png")))
                .unwrap();
        }
    }
    let nabla = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_nabla"))
            .args(["--threads", "2", "train", "--epochs", "1", "--json"])
            .args(["--dataset", pictures.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap()
    };
    let out_dir = dir.path().join("run");
    let out = nabla(&[
        "--model",
        "resnet18",
        "--init-from",
        pth.to_str().unwrap(),
        "--freeze-until",
        "conv5_block2_out",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = &v["transfer"];
    let loaded = t["loaded"].as_array().map_or(0, |l| l.len());
    // resnet18 has 102 weights (num_batches_tracked has no counterpart); the
    // classifier's two are skipped (10 classes in the file, 2 here).
    assert_eq!(loaded, 100, "{v}");
    let skipped: Vec<&str> = t["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["weight"].as_str().unwrap())
        .collect();
    assert_eq!(skipped, ["predictions/kernel", "predictions/bias"], "{v}");
    assert!(t["init_from"].as_str().unwrap().ends_with("resnet18.pth"));
    // The run started from those weights: a frozen layer's are still the file's.
    let saved = safetensors_io::load(&out_dir.join("weights.safetensors")).unwrap();
    let k = &saved
        .iter()
        .find(|(n, _)| n == "conv1_conv/kernel")
        .unwrap()
        .1;
    assert_eq!(
        k.to_f32_vec(),
        formula("conv1.weight", 0, k.shape()).to_f32_vec()
    );
    let out = nabla(&["--model", "vgg-small", "--init-from", pth.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("no PyTorch name mapping for model 'vgg-small'")
            && !stderr.contains("panicked"),
        "{stderr}"
    );
}
