//! The folders of `src/` are the layers of the system and import one way only, downwards
//! (ARCHITECTURE.md). This test reads every `crate::` path in every source file and fails
//! on an import that runs back up or sideways between folders of the same rank, so the
//! rule stays true as the code grows.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The rank of each top-level module: a folder may use only folders of a lower rank (and
/// itself). Folders of one rank may not use each other, so there is no cycle.
const RANKS: &[(&str, usize)] = &[
    ("error", 0),
    ("engine", 1),
    ("ops", 2),
    ("detection", 2),
    ("distributed", 2),
    ("nn", 3),
    ("losses", 4),
    ("optimizers", 4),
    ("training", 5),
    ("formats", 6),
    ("data", 7),
    ("models", 7),
    ("report", 8),
    ("cli", 9),
];

/// Items re-exported at the crate root that code below the CLI may name: only the error
/// types. Anything else must be named by its folder, so its layer is visible.
const ROOT_ITEMS: &[&str] = &["Error", "Result"];

fn rank(module: &str) -> Option<usize> {
    RANKS.iter().find(|(m, _)| *m == module).map(|&(_, r)| r)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a line names through `crate::`: `crate::ops::x` gives `ops`,
/// `use crate::{engine::Tensor, error::Result}` gives `engine` and `error`.
fn crate_modules(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(pos) = rest.find("crate::") {
        let after = &rest[pos + "crate::".len()..];
        // `$crate::` in macros and `nabla_crate::` are not this crate's paths.
        let before = rest[..pos].chars().last();
        let is_path = !matches!(before, Some(c) if c.is_alphanumeric() || c == '_' || c == '$');
        if is_path {
            if let Some(group) = after.strip_prefix('{') {
                // A grouped import: the first segment of every top-level item.
                let end = matching_brace(group);
                let mut depth = 0;
                let mut item = String::new();
                for c in group[..end].chars().chain(std::iter::once(',')) {
                    match c {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            let head = item.trim().split("::").next().unwrap_or("").trim();
                            if !head.is_empty() {
                                found.push(head.to_string());
                            }
                            item.clear();
                            continue;
                        }
                        _ => {}
                    }
                    item.push(c);
                }
            } else {
                let head: String = after
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !head.is_empty() {
                    found.push(head);
                }
            }
        }
        rest = after;
    }
    found
}

fn matching_brace(s: &str) -> usize {
    let mut depth = 1;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    s.len()
}

#[test]
fn folders_import_one_way_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut problems = BTreeSet::new();
    let mut checked = 0;
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        let mut parts = rel.iter().map(|p| p.to_string_lossy().to_string());
        let first = parts.next().unwrap();
        if parts.next().is_none() {
            // lib.rs, main.rs, error.rs: the crate's root wires the folders together.
            continue;
        }
        let Some(own) = rank(&first) else {
            problems.insert(format!(
                "{}: folder '{first}' has no rank in RANKS",
                rel.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        // A multi-line grouped `use crate::{...};` is joined so its items are seen.
        let mut statement = String::new();
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            let code = code.split(" //").next().unwrap_or(code);
            if !statement.is_empty() || (code.contains("crate::{") && !code.contains('}')) {
                statement.push_str(code);
                if !code.contains(';') {
                    continue;
                }
            }
            let joined = if statement.is_empty() {
                code.to_string()
            } else {
                std::mem::take(&mut statement)
            };
            for module in crate_modules(&joined) {
                checked += 1;
                if module == first {
                    continue;
                }
                let ok = match rank(&module) {
                    Some(r) => r < own,
                    None => ROOT_ITEMS.contains(&module.as_str()),
                };
                if !ok {
                    problems.insert(format!(
                        "{}:{}: '{first}' (rank {own}) uses crate::{module} (rank {})",
                        rel.display(),
                        n + 1,
                        rank(&module).map_or("root re-export".to_string(), |r| r.to_string())
                    ));
                }
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} crate:: paths found: is the scan broken?"
    );
    assert!(
        problems.is_empty(),
        "imports that run up or sideways ({}):\n{}",
        problems.len(),
        problems.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn the_scanner_sees_every_form_of_crate_path() {
    assert_eq!(crate_modules("use crate::ops::conv2d;"), ["ops"]);
    assert_eq!(
        crate_modules("use crate::{engine::{Tensor, Var}, error::Result};"),
        ["engine", "error"]
    );
    assert_eq!(
        crate_modules("let x = crate::training::fit(a, crate::nn::X);"),
        ["training", "nn"]
    );
    assert!(crate_modules("$crate::ops::x; my_crate::ops").is_empty());
}
