//! Losses that are not Keras': a closure with a name (`from_fn`), the saved form of any
//! loss (`LossConfig`: a Keras config, or `{"custom": NAME}`), and the registry that
//! turns such a name back into a loss when a saved model is loaded (`register`), as
//! Keras' `custom_objects` does.

use super::{KerasLoss, Loss, Target};
use crate::engine::Var;
use crate::error::{Error, Result};
use crate::nn::layers::Activation;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A loss made of a closure `(output, target) -> mean loss` and a name. See `from_fn`.
pub struct FnLoss<F> {
    name: String,
    f: F,
    fusable: Option<Activation>,
}

/// A loss from a closure: `from_fn("half_mse", |pred, target| ...)`. The closure gets the
/// model's output as is (no activation is fused unless `fusing` says so) and returns the
/// batch's mean loss as a scalar `Var` built from ops.
pub fn from_fn<F>(name: impl Into<String>, f: F) -> FnLoss<F>
where
    F: Fn(&Var, &Target) -> Result<Var>,
{
    FnLoss {
        name: name.into(),
        f,
        fusable: None,
    }
}

impl<F> FnLoss<F> {
    /// Declares that the closure takes the pre-activation of `activation` when the
    /// model's output layer ends in it (e.g. sigmoid logits for a focal loss).
    pub fn fusing(mut self, activation: Activation) -> Self {
        self.fusable = Some(activation);
        self
    }
}

impl<F> Loss for FnLoss<F>
where
    F: Fn(&Var, &Target) -> Result<Var>,
{
    fn name(&self) -> &str {
        &self.name
    }
    fn compute(&self, output: &Var, target: &Target, _output_is_logits: bool) -> Result<Var> {
        (self.f)(output, target)
    }
    fn fusable_activation(&self) -> Option<Activation> {
        self.fusable
    }
}

type Factory = Arc<dyn Fn() -> Arc<dyn Loss> + Send + Sync>;

/// Custom losses by name, for loading saved models (see `register`).
static REGISTRY: Mutex<BTreeMap<String, Factory>> = Mutex::new(BTreeMap::new());

/// Registers a custom loss under `name`, so that a model saved while compiled with a
/// loss of that name (`Loss::name`) can be loaded: `model.json` stores such a loss as
/// `{"custom": NAME}` and loading calls `make` to build it. Registering a name again
/// replaces it. Keras' names are taken (their losses are saved by config).
pub fn register(
    name: &str,
    make: impl Fn() -> Arc<dyn Loss> + Send + Sync + 'static,
) -> Result<()> {
    if KerasLoss::from_name(name).is_ok() {
        return Err(Error::invalid(format!(
            "register: '{name}' is one of Keras' losses; give the custom loss another name"
        )));
    }
    REGISTRY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(name.to_string(), Arc::new(make));
    Ok(())
}

/// A new instance of the custom loss registered under `name`, if any.
pub fn lookup_registered(name: &str) -> Option<Arc<dyn Loss>> {
    let make = REGISTRY
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(name)
        .cloned();
    make.map(|m| m())
}

/// How a loss is saved in `model.json`: a Keras loss by its config
/// (`{"sparse_categorical_crossentropy": {"from_logits": false, ...}}`, `"mean_squared_error"`),
/// any other by its name (`{"custom": "focal"}`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum LossConfig {
    Keras(KerasLoss),
    Custom { custom: String },
}

impl LossConfig {
    /// The saved form of `loss`.
    pub fn of(loss: &dyn Loss) -> LossConfig {
        match loss.keras() {
            Some(k) => LossConfig::Keras(k),
            None => LossConfig::Custom {
                custom: loss.name().to_string(),
            },
        }
    }

    /// The loss again: a Keras loss from its config, a custom one from the registry
    /// (an error naming it and `register` when the program has not registered it).
    pub fn build(&self) -> Result<Arc<dyn Loss>> {
        match self {
            LossConfig::Keras(k) => Ok(Arc::new(*k)),
            LossConfig::Custom { custom } => lookup_registered(custom).ok_or_else(|| {
                Error::invalid(format!(
                    "the model was compiled with the custom loss '{custom}', which this \
                     program has not registered: call nabla::losses::register(\"{custom}\", \
                     || Arc::new(...)) before loading it"
                ))
            }),
        }
    }
}

impl<'de> Deserialize<'de> for LossConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        if let Some(obj) = v.as_object().filter(|o| o.len() == 1) {
            if let Some(name) = obj.get("custom") {
                let custom = name
                    .as_str()
                    .ok_or_else(|| serde::de::Error::custom("\"custom\" names a loss: a string"))?
                    .to_string();
                return Ok(LossConfig::Custom { custom });
            }
        }
        KerasLoss::deserialize(v)
            .map(LossConfig::Keras)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Tensor;

    #[test]
    fn a_closure_is_a_loss_and_saves_by_name() {
        let double_mse = from_fn("double_mse_test", |p: &Var, t: &Target| {
            let mse = crate::ops::loss::mean_squared_error(p, t.tensor_for("double_mse_test")?)?;
            Ok(crate::ops::elementwise::scale(&mse, 2.0))
        });
        let pred = Var::constant(Tensor::from_vec(vec![1.0, 2.0], &[2, 1]));
        let y = Target::from(Tensor::zeros(&[2, 1]));
        assert_eq!(
            double_mse.compute(&pred, &y, false).unwrap().value().item(),
            5.0
        );
        assert_eq!(double_mse.fusable_activation(), None);

        let cfg = LossConfig::of(&double_mse);
        let json = serde_json::to_string(&cfg).unwrap();
        assert_eq!(json, r#"{"custom":"double_mse_test"}"#);
        let back: LossConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cfg);
        let e = back.build().unwrap_err().to_string();
        assert!(
            e.contains("custom loss 'double_mse_test'") && e.contains("register"),
            "{e}"
        );
        register("double_mse_test", || {
            Arc::new(from_fn("double_mse_test", |p: &Var, t: &Target| {
                let mse = crate::ops::loss::mean_squared_error(p, t.tensor_for("x")?)?;
                Ok(crate::ops::elementwise::scale(&mse, 2.0))
            }))
        })
        .unwrap();
        let rebuilt = back.build().unwrap();
        assert_eq!(rebuilt.name(), "double_mse_test");
        assert_eq!(
            rebuilt.compute(&pred, &y, false).unwrap().value().item(),
            5.0
        );
        assert!(register("mse", || Arc::new(KerasLoss::MeanSquaredError)).is_err());
    }

    #[test]
    fn keras_configs_keep_their_json_and_their_errors() {
        let k = KerasLoss::BinaryCrossentropy { from_logits: true };
        let json = serde_json::to_string(&LossConfig::of(&k)).unwrap();
        assert_eq!(json, serde_json::to_string(&k).unwrap());
        assert_eq!(
            serde_json::from_str::<LossConfig>(&json).unwrap(),
            LossConfig::Keras(k)
        );
        let mse: LossConfig = serde_json::from_str(r#""mean_squared_error""#).unwrap();
        assert_eq!(mse, LossConfig::Keras(KerasLoss::MeanSquaredError));
        let e = serde_json::from_str::<LossConfig>(r#""focal""#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown variant `focal`"), "{e}");
    }
}
