//! Bounds on the sizes a layer config may ask for, checked before anything is allocated,
//! so that a 200-byte `model.json` with a Dense of 10^12 units is refused with a message
//! naming the layer instead of eating the machine's memory.
//!
//! Three checks, all at build time (`LayerConfig::output_shape_of` and the layers'
//! `build`):
//! - every integer in a layer's config (units, filters, kernel, strides, dilation,
//!   padding, sizes) is at most [`MAX_CONFIG_INT`] (2^24). Real models stay far below
//!   it, and with every factor that small the layers' shape arithmetic (a dilated kernel,
//!   a padded axis, an upsampled axis: products of one config integer and one axis that
//!   is itself bounded below) cannot overflow a `usize`;
//! - a layer's output for one sample, and
//! - a layer's weights
//!
//! must fit in [`memory_budget`] bytes (the machine's memory, or `NABLA_MEMORY_LIMIT`).

use super::dims::Dim;
use super::LayerConfig;
use crate::error::{Error, Result};

/// The largest integer a layer config may hold.
pub const MAX_CONFIG_INT: u64 = 1 << 24;

/// Environment variable: the memory budget in bytes (default: the machine's memory).
pub const MEMORY_LIMIT_ENV: &str = "NABLA_MEMORY_LIMIT";

/// Bytes one tensor may take: `NABLA_MEMORY_LIMIT`, else the machine's memory
/// (`MemTotal` of `/proc/meminfo`), else 64 GiB.
pub fn memory_budget() -> u64 {
    if let Some(n) = std::env::var(MEMORY_LIMIT_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        return n;
    }
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            kib.checked_mul(1024)
        })
        .unwrap_or(64 << 30)
}

/// `1.5 GB` style.
pub fn human_bytes(b: f64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = b;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < units.len() {
        v /= 1000.0;
        i += 1;
    }
    format!("{v:.1} {}", units[i])
}

/// Refuses a config holding an integer above `MAX_CONFIG_INT`, naming the field.
pub fn check_config(name: &str, cfg: &LayerConfig) -> Result<()> {
    let v = serde_json::to_value(cfg).expect("configs serialize");
    let mut found = None;
    find_large(&v["config"], "", &mut found);
    match found {
        None => Ok(()),
        Some((field, n)) => Err(Error::invalid(format!(
            "layer '{name}' ({}): {field} = {n} is too large (at most {MAX_CONFIG_INT})",
            cfg.class_name()
        ))),
    }
}

fn find_large(v: &serde_json::Value, path: &str, found: &mut Option<(String, String)>) {
    if found.is_some() {
        return;
    }
    match v {
        serde_json::Value::Number(n) => {
            // Integers only: rates and epsilons are floats, bounded by their own checks.
            let too_big = match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => u > MAX_CONFIG_INT,
                (None, Some(i)) => i.unsigned_abs() > MAX_CONFIG_INT,
                _ => false,
            };
            if too_big {
                *found = Some((path.to_string(), n.to_string()));
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                find_large(item, path, found);
            }
        }
        serde_json::Value::Object(map) => {
            for (k, item) in map {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                find_large(item, &p, found);
            }
        }
        _ => {}
    }
}

/// The number of f32 elements of `shape`, or an error when it overflows or exceeds the
/// memory budget. `what` says whose elements they are ("its output for one sample").
pub fn check_elements(name: &str, class: &str, what: &str, shape: &[usize]) -> Result<usize> {
    let budget = memory_budget();
    let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let bytes = n.and_then(|n| (n as u64).checked_mul(4));
    match (n, bytes) {
        (Some(n), Some(b)) if b <= budget => Ok(n),
        _ => {
            let need: f64 = shape.iter().map(|&d| d as f64).product::<f64>() * 4.0;
            Err(Error::invalid(format!(
                "layer '{name}' ({class}): {what} {shape:?} needs {}, more than the memory \
                 budget of {} (the machine's memory, or {MEMORY_LIMIT_ENV})",
                human_bytes(need),
                human_bytes(budget as f64)
            )))
        }
    }
}

/// Checks a layer's output shape for one sample (unknown axes count as 1).
pub fn check_output(name: &str, class: &str, shape: &[Dim]) -> Result<()> {
    let known: Vec<usize> = shape.iter().map(|d| d.get().unwrap_or(1)).collect();
    check_elements(name, class, "its output for one sample", &known).map(|_| ())
}

/// Checks a weight tensor's shape before it is allocated.
pub fn check_weights(name: &str, class: &str, shape: &[usize]) -> Result<()> {
    check_elements(name, class, "its weights", shape).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::layers::DenseConfig;

    #[test]
    fn large_config_integers_are_named() {
        let e = check_config("d", &DenseConfig::new(1_000_000_000_000).into())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("layer 'd' (Dense): units = 1000000000000 is too large"),
            "{e}"
        );
        assert!(check_config("d", &DenseConfig::new(1 << 24).into()).is_ok());
    }

    #[test]
    fn overflowing_or_huge_shapes_are_refused() {
        let e = check_weights("c", "Conv2D", &[usize::MAX, 2])
            .unwrap_err()
            .to_string();
        assert!(e.contains("layer 'c' (Conv2D): its weights"), "{e}");
        let e = check_output("c", "Conv2D", &[Dim::known(1 << 40), Dim::known(1 << 20)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs 4.6 EB"), "{e}");
        assert!(check_output("c", "Conv2D", &[Dim::known(64), Dim::NONE]).is_ok());
    }

    #[test]
    fn sizes_print_in_decimal_units() {
        assert_eq!(human_bytes(512.0), "512.0 B");
        assert_eq!(human_bytes(4e12), "4.0 TB");
    }
}
