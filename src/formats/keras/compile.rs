//! The compile state of a model read from a `.keras` file, so that `nabla train`,
//! `evaluate` and `predict` take it as they take a saved run: Keras' `compile_config`
//! (loss by name, its `from_logits`; SGD with or without momentum, Adam, RMSprop,
//! Adagrad, AdamW with their learning rate; accuracy) where nabla has it, else a
//! classifier's defaults: sparse categorical cross-entropy (on logits unless the model
//! ends in softmax), Adam, accuracy. What was chosen is returned, to be said.

use crate::losses::KerasLoss;
use crate::optimizers::Optimizer;
use crate::training::Sequential;
use serde_json::Value;

/// Compiles `model` from Keras' `compile_config` (the top-level key of `config.json`);
/// returns a line saying what was used when Keras' could not be.
pub fn compile(model: &mut Sequential, keras: &Value, ends_in_softmax: bool) -> Option<String> {
    let from_keras = keras
        .get("compile_config")
        .filter(|c| !c.is_null())
        .and_then(|c| {
            let loss = loss(c.get("loss")?)?;
            let opt = optimizer(c.get("optimizer")?)?;
            Some((loss, opt))
        });
    let (note, (loss, opt)) = match from_keras {
        Some(x) => (None, x),
        None => (
            Some(
                "no compile config nabla can use in the .keras file: compiled as a \
                 classifier (sparse categorical cross-entropy, Adam, accuracy)"
                    .to_string(),
            ),
            (
                KerasLoss::SparseCategoricalCrossentropy {
                    from_logits: !ends_in_softmax,
                    label_smoothing: 0.0,
                },
                Optimizer::adam(0.001),
            ),
        ),
    };
    let metrics: &[&str] = match loss {
        KerasLoss::SparseCategoricalCrossentropy { .. }
        | KerasLoss::CategoricalCrossentropy { .. }
        | KerasLoss::BinaryCrossentropy { .. } => &["accuracy"],
        _ => &[],
    };
    model.compile(loss, opt, metrics).ok()?;
    note
}

/// A Keras loss: `"mse"` or `{"class_name": ..., "config": {"name": ..., "from_logits": ...}}`.
fn loss(v: &Value) -> Option<KerasLoss> {
    let (name, from_logits) = match v {
        Value::String(s) => (s.as_str(), false),
        Value::Object(_) => (
            v["config"]["name"].as_str()?,
            v["config"]["from_logits"].as_bool().unwrap_or(false),
        ),
        _ => return None,
    };
    Some(match KerasLoss::from_name(name).ok()? {
        KerasLoss::SparseCategoricalCrossentropy {
            label_smoothing, ..
        } => KerasLoss::SparseCategoricalCrossentropy {
            from_logits,
            label_smoothing,
        },
        KerasLoss::CategoricalCrossentropy {
            label_smoothing, ..
        } => KerasLoss::CategoricalCrossentropy {
            from_logits,
            label_smoothing,
        },
        KerasLoss::BinaryCrossentropy { .. } => KerasLoss::BinaryCrossentropy { from_logits },
        other => other,
    })
}

/// A Keras optimizer: `"adam"` or `{"class_name": "SGD", "config": {...}}`.
fn optimizer(v: &Value) -> Option<Optimizer> {
    let (class, cfg) = match v {
        Value::String(s) => (s.as_str(), &Value::Null),
        Value::Object(_) => (v["class_name"].as_str()?, &v["config"]),
        _ => return None,
    };
    let lr = cfg
        .get("learning_rate")
        .and_then(Value::as_f64)
        .map(|x| x as f32);
    let class = class.to_ascii_lowercase();
    if class == "sgd" {
        let m = cfg.get("momentum").and_then(Value::as_f64).unwrap_or(0.0) as f32;
        let lr = lr.unwrap_or(0.01);
        return Some(if m == 0.0 {
            Optimizer::sgd(lr)
        } else if cfg.get("nesterov").and_then(Value::as_bool) == Some(true) {
            Optimizer::nesterov(lr, m)
        } else {
            Optimizer::momentum(lr, m)
        });
    }
    Optimizer::from_name(&class, lr).ok()
}
