//! Outside the CPU kernels (`src/ops/`), the engine, `src/formats/` and `src/data/`, no
//! code reads or writes a tensor's f32 slice (`.data()`, `.data_mut()`, `.into_vec()`):
//! it uses ops, the constructors, `item()` or `to_f32_vec()`. So layers, training,
//! reports and the CLI work for any element type and layout, and a new device or dtype
//! changes only the folders allowed here.

use std::path::{Path, PathBuf};

/// Folders where f32 slices are the point: kernels, the tensor itself, file formats and
/// data loading.
const ALLOWED_DIRS: &[&str] = &["src/ops/", "src/engine/", "src/formats/", "src/data/"];

/// Files still converting (Engine 2: parameter updates move into ops kernels). The lead
/// empties this list once those branches are merged; a file leaves it as soon as it is
/// clean (the test fails on a listed file that no longer needs to be here).
const PENDING: &[&str] = &[];

const PATTERNS: &[&str] = &[".data()", ".data_mut()", ".into_vec()"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `(line number, line)` of each use of an f32 slice in `text`, comments skipped.
fn offending_lines(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let code = line.split("//").next().unwrap_or("");
            PATTERNS.iter().any(|p| code.contains(p))
        })
        .map(|(i, line)| (i + 1, line.trim().to_string()))
        .collect()
}

#[test]
fn no_f32_slices_outside_kernels_formats_and_data() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    let mut problems = Vec::new();
    let mut pending_used = vec![false; PENDING.len()];
    for path in &files {
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if ALLOWED_DIRS.iter().any(|d| rel.starts_with(d)) {
            continue;
        }
        let found = offending_lines(&std::fs::read_to_string(path).unwrap());
        if let Some(k) = PENDING.iter().position(|p| *p == rel) {
            pending_used[k] = !found.is_empty();
            continue;
        }
        for (n, line) in found {
            problems.push(format!("{rel}:{n}: {line}"));
        }
    }
    assert!(
        problems.is_empty(),
        "f32 slices outside src/ops, src/engine, src/formats and src/data (use ops, \
         the constructors, item() or to_f32_vec()):\n{}",
        problems.join("\n")
    );
    let clean: Vec<&str> = PENDING
        .iter()
        .zip(&pending_used)
        .filter(|(_, &used)| !used)
        .map(|(p, _)| *p)
        .collect();
    assert!(
        clean.is_empty(),
        "no longer reading f32 slices (or gone): remove from PENDING: {clean:?}"
    );
}

#[test]
fn the_scan_finds_what_it_looks_for() {
    let text = "let a = t.data();\n// t.data() in a comment\nlet b = t.to_f32_vec();\nx.data_mut()[0] = 1.0;\nlet v = t.into_vec();";
    let found: Vec<usize> = offending_lines(text).iter().map(|(n, _)| *n).collect();
    assert_eq!(found, vec![1, 4, 5]);
}
