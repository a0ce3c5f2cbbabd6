//! The layer registry: what a layer file declares about its kind, and the one list
//! (`super::LAYER_TYPES`) that makes a class name known to JSON configs.
//!
//! A layer's config type implements `LayerKind` (class name, default instance name,
//! output shape, build, FLOPs) in the layer's own file and declares a `LayerType`
//! (its class name and how to read its JSON config). `LayerConfig` is any config behind
//! a box, with Keras' JSON form `{"class_name": "Dense", "config": {...}}`. Adding a
//! layer is: one file, one `pub mod` line and one registry line in `layers/mod.rs`.

use super::dims::Dim;
use super::Layer;
use crate::engine::Rng;
use crate::error::{Error, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::any::Any;
use std::fmt;

/// What a layer's config knows about its layer. Implemented by each config type in its
/// layer's file.
///
/// Shapes exclude the batch axis and may have unknown (`None`) axes. `inputs` holds
/// exactly one shape unless `takes_many_inputs` (the registry checks this first).
pub trait LayerKind: fmt::Debug + 'static {
    /// Keras' class name, e.g. `Conv2D`.
    fn class_name(&self) -> &'static str;
    /// Default instance name prefix (Keras': `conv2d`, `max_pooling2d`, ...).
    fn base_name(&self) -> &'static str;
    /// The name the user gave, if any.
    fn name(&self) -> Option<&str>;
    /// Whether the layer merges several inputs (the rest take exactly one).
    fn takes_many_inputs(&self) -> bool {
        false
    }
    /// Output shape for these input shapes, or a clear error naming the layer (`name`)
    /// and the shapes. An axis the layer needs to know (a Dense layer's features) must
    /// not be `None`.
    fn output_shape(&self, name: &str, inputs: &[&[Dim]]) -> Result<Vec<Dim>>;
    /// Every output's shape, for a layer that returns several tensors (a recurrent
    /// layer with `return_state`: the output, then its final states). Default: the one
    /// `output_shape`.
    fn output_shapes(&self, name: &str, inputs: &[&[Dim]]) -> Result<Vec<Vec<Dim>>> {
        Ok(vec![self.output_shape(name, inputs)?])
    }
    /// A layer with fresh weights for inputs of these shapes (already checked by
    /// `output_shape`).
    fn build(&self, name: String, inputs: &[&[Dim]], rng: &mut Rng) -> Result<Box<dyn Layer>>;
    /// Multiply-adds times 2 of one sample's forward pass, for the profiler; 0 for
    /// layers whose cost is memory traffic.
    fn flops(&self, _inputs: &[&[usize]], _output: &[usize]) -> f64 {
        0.0
    }
}

/// The plumbing a boxed config needs (clone, compare, write, downcast), for every
/// `LayerKind` that is also `Clone + PartialEq + Serialize`: layer files never write it.
pub trait ConfigObject: LayerKind {
    fn clone_box(&self) -> Box<dyn ConfigObject>;
    fn eq_dyn(&self, other: &dyn ConfigObject) -> bool;
    /// The config object as JSON text, fields in declaration order.
    fn config_json(&self) -> serde_json::Result<String>;
    fn as_any(&self) -> &dyn Any;
}

impl<T: LayerKind + Clone + PartialEq + Serialize> ConfigObject for T {
    fn clone_box(&self) -> Box<dyn ConfigObject> {
        Box::new(self.clone())
    }
    fn eq_dyn(&self, other: &dyn ConfigObject) -> bool {
        other.as_any().downcast_ref::<T>() == Some(self)
    }
    fn config_json(&self) -> serde_json::Result<String> {
        serde_json::to_string(self)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// One registry line: a Keras class name and how to read its `config` object.
#[derive(Clone, Copy)]
pub struct LayerType {
    pub class_name: &'static str,
    pub parse: fn(serde_json::Value) -> serde_json::Result<LayerConfig>,
}

impl LayerType {
    /// The line of a config type that is one class (`Dense` is `DenseConfig`).
    pub const fn of<T: ConfigObject + Clone + PartialEq + Serialize + DeserializeOwned>(
        class_name: &'static str,
    ) -> LayerType {
        LayerType {
            class_name,
            parse: parse_as::<T>,
        }
    }
}

fn parse_as<T: ConfigObject + Clone + PartialEq + Serialize + DeserializeOwned>(
    v: serde_json::Value,
) -> serde_json::Result<LayerConfig> {
    Ok(LayerConfig::new(serde_json::from_value::<T>(v)?))
}

/// The architecture of one layer as plain data: any registered config. JSON form:
/// `{"class_name": "Dense", "config": {"units": 10, "activation": "softmax"}}` (Keras'
/// layout).
pub struct LayerConfig(Box<dyn ConfigObject>);

impl<T: ConfigObject> From<T> for LayerConfig {
    fn from(c: T) -> LayerConfig {
        LayerConfig(Box::new(c))
    }
}

impl LayerConfig {
    pub fn new(c: impl ConfigObject) -> LayerConfig {
        LayerConfig(Box::new(c))
    }

    /// Every `class_name` a JSON config may use, in registry order.
    pub fn class_names() -> Vec<&'static str> {
        super::LAYER_TYPES.iter().map(|t| t.class_name).collect()
    }

    /// The registry line of `class_name`.
    pub fn layer_type(class_name: &str) -> Option<&'static LayerType> {
        super::LAYER_TYPES
            .iter()
            .find(|t| t.class_name == class_name)
    }

    /// The config itself, if it is a `T` (`cfg.downcast_ref::<Conv2DConfig>()`).
    pub fn downcast_ref<T: 'static>(&self) -> Option<&T> {
        self.0.as_any().downcast_ref::<T>()
    }

    /// Whether the config is a `T`.
    pub fn is<T: 'static>(&self) -> bool {
        self.downcast_ref::<T>().is_some()
    }

    /// Keras' class name, e.g. `Conv2D`.
    pub fn class_name(&self) -> &'static str {
        self.0.class_name()
    }

    /// Default instance name prefix (Keras': `conv2d`, `max_pooling2d`, ...).
    pub fn base_name(&self) -> &'static str {
        self.0.base_name()
    }

    /// The name the user gave, if any.
    pub fn name(&self) -> Option<&str> {
        self.0.name()
    }

    /// The same layer under the instance name `name` (Keras' `name=` argument), for any
    /// layer: `Conv2D(64, 3).named("conv1")`.
    pub fn named(self, name: &str) -> LayerConfig {
        let mut v = serde_json::to_value(&self).expect("configs serialize");
        v["config"]["name"] = serde_json::Value::String(name.to_string());
        serde_json::from_value(v).expect("a config with a new name reads back")
    }

    /// Whether the layer merges several inputs (the rest take exactly one).
    pub fn takes_many_inputs(&self) -> bool {
        self.0.takes_many_inputs()
    }

    fn check_arity(&self, name: &str, n: usize) -> Result<()> {
        if n != 1 && !self.takes_many_inputs() {
            return Err(Error::invalid(format!(
                "layer '{name}' ({}) takes one input, got {n}",
                self.class_name()
            )));
        }
        Ok(())
    }

    /// Output shape (without batch) for the shapes of all inputs, for any layer; the
    /// first output's for a layer with several (see `output_shapes_of`).
    pub fn output_shape_of(&self, name: &str, inputs: &[&[Dim]]) -> Result<Vec<Dim>> {
        Ok(self.output_shapes_of(name, inputs)?.remove(0))
    }

    /// The shape (without batch) of each output, for the shapes of all inputs.
    pub fn output_shapes_of(&self, name: &str, inputs: &[&[Dim]]) -> Result<Vec<Vec<Dim>>> {
        self.check_arity(name, inputs.len())?;
        // Before the layer's own arithmetic, which these bounds keep from overflowing.
        super::limits::check_config(name, self)?;
        let outs = self.0.output_shapes(name, inputs)?;
        if outs.is_empty() {
            return Err(Error::invalid(format!(
                "layer '{name}' ({}) has no output",
                self.class_name()
            )));
        }
        for out in &outs {
            super::limits::check_output(name, self.class_name(), out)?;
        }
        Ok(outs)
    }

    /// A layer with fresh weights for inputs of these shapes, for any layer.
    pub fn build_from(
        &self,
        name: String,
        inputs: &[&[Dim]],
        rng: &mut Rng,
    ) -> Result<Box<dyn Layer>> {
        self.output_shapes_of(&name, inputs)?;
        self.0.build(name, inputs, rng)
    }

    /// Output shape (without batch) for one input shape.
    pub fn output_shape(&self, name: &str, input: &[Dim]) -> Result<Vec<Dim>> {
        self.output_shape_of(name, &[input])
    }

    /// A layer with fresh weights for inputs of shape `input` (without batch).
    pub fn build(&self, name: String, input: &[Dim], rng: &mut Rng) -> Result<Box<dyn Layer>> {
        self.build_from(name, &[input], rng)
    }

    /// Forward FLOPs of one sample (see `LayerKind::flops`).
    pub fn flops(&self, inputs: &[&[usize]], output: &[usize]) -> f64 {
        self.0.flops(inputs, output)
    }
}

impl Clone for LayerConfig {
    fn clone(&self) -> Self {
        LayerConfig(self.0.clone_box())
    }
}

impl PartialEq for LayerConfig {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_dyn(other.0.as_ref())
    }
}

impl fmt::Debug for LayerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for LayerConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeMap};
        let text = self.0.config_json().map_err(S::Error::custom)?;
        // Through an ordered tree: serde_json's `Value` would sort the fields, and saved
        // configs keep each struct's field order.
        let config: OrderedJson = serde_json::from_str(&text).map_err(S::Error::custom)?;
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("class_name", self.class_name())?;
        m.serialize_entry("config", &config)?;
        m.end()
    }
}

impl<'de> Deserialize<'de> for LayerConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let v = serde_json::Value::deserialize(d)?;
        let serde_json::Value::Object(mut obj) = v else {
            return Err(D::Error::custom(
                "a layer is {\"class_name\": ..., \"config\": {...}}",
            ));
        };
        if let Some(k) = obj.keys().find(|k| *k != "class_name" && *k != "config") {
            return Err(D::Error::custom(format!(
                "unknown field `{k}`, expected `class_name` or `config`"
            )));
        }
        let class = match obj.remove("class_name") {
            Some(serde_json::Value::String(c)) => c,
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "class_name must be a string, got {other}"
                )))
            }
            None => return Err(D::Error::missing_field("class_name")),
        };
        let Some(ty) = LayerConfig::layer_type(&class) else {
            return Err(D::Error::custom(format!(
                "unknown layer class \"{class}\"; known: {}",
                LayerConfig::class_names().join(", ")
            )));
        };
        let config = obj
            .remove("config")
            .ok_or_else(|| D::Error::missing_field("config"))?;
        (ty.parse)(config).map_err(D::Error::custom)
    }
}

/// JSON that keeps the order of object fields (read from a config's own text, written
/// back unchanged).
enum OrderedJson {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<OrderedJson>),
    Object(Vec<(String, OrderedJson)>),
}

impl Serialize for OrderedJson {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            OrderedJson::Null => s.serialize_unit(),
            OrderedJson::Bool(b) => s.serialize_bool(*b),
            OrderedJson::Number(n) => n.serialize(s),
            OrderedJson::String(t) => s.serialize_str(t),
            OrderedJson::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(i)?;
                }
                seq.end()
            }
            OrderedJson::Object(fields) => {
                let mut m = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for OrderedJson {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = OrderedJson;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> std::result::Result<OrderedJson, E> {
                Ok(OrderedJson::Null)
            }
            fn visit_none<E>(self) -> std::result::Result<OrderedJson, E> {
                Ok(OrderedJson::Null)
            }
            fn visit_some<D: serde::Deserializer<'de>>(
                self,
                d: D,
            ) -> std::result::Result<OrderedJson, D::Error> {
                OrderedJson::deserialize(d)
            }
            fn visit_bool<E>(self, b: bool) -> std::result::Result<OrderedJson, E> {
                Ok(OrderedJson::Bool(b))
            }
            fn visit_u64<E>(self, n: u64) -> std::result::Result<OrderedJson, E> {
                Ok(OrderedJson::Number(n.into()))
            }
            fn visit_i64<E>(self, n: i64) -> std::result::Result<OrderedJson, E> {
                Ok(OrderedJson::Number(n.into()))
            }
            fn visit_f64<E>(self, x: f64) -> std::result::Result<OrderedJson, E> {
                Ok(serde_json::Number::from_f64(x).map_or(OrderedJson::Null, OrderedJson::Number))
            }
            fn visit_str<E>(self, t: &str) -> std::result::Result<OrderedJson, E> {
                Ok(OrderedJson::String(t.to_string()))
            }
            fn visit_string<E>(self, t: String) -> std::result::Result<OrderedJson, E> {
                Ok(OrderedJson::String(t))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> std::result::Result<OrderedJson, A::Error> {
                let mut items = Vec::new();
                while let Some(i) = a.next_element()? {
                    items.push(i);
                }
                Ok(OrderedJson::Array(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> std::result::Result<OrderedJson, A::Error> {
                let mut fields = Vec::new();
                while let Some((k, v)) = a.next_entry()? {
                    fields.push((k, v));
                }
                Ok(OrderedJson::Object(fields))
            }
        }
        d.deserialize_any(V)
    }
}

/// The one-input check layers share: `inputs[0]` with exactly `rank` axes, or an error
/// naming the layer, what it expects and what it got.
pub(crate) fn rank_is<'a>(
    name: &str,
    class: &str,
    inputs: &[&'a [Dim]],
    rank: usize,
    expects: &str,
) -> Result<&'a [Dim]> {
    let input = inputs[0];
    if input.len() != rank {
        return Err(Error::shape(format!(
            "layer '{name}' ({class}) expects {expects}, got {}",
            super::dims::batch_shape_str(input)
        )));
    }
    Ok(input)
}

/// The size of an axis the layer must know at build time, or an error saying so.
pub(crate) fn needs_known(
    name: &str,
    class: &str,
    what: &str,
    d: Dim,
    input: &[Dim],
) -> Result<usize> {
    d.get().ok_or_else(|| {
        Error::shape(format!(
            "layer '{name}' ({class}) needs a known {what}, but its input is {} (None is \
             known only per batch)",
            super::dims::batch_shape_str(input)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_classes_list_the_known_ones_and_extra_keys_are_refused() {
        let e = serde_json::from_str::<LayerConfig>(r#"{"class_name": "Dense2", "config": {}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown layer class \"Dense2\"; known: Dense, Conv2D"),
            "{e}"
        );
        let e = serde_json::from_str::<LayerConfig>(
            r#"{"class_name": "Flatten", "config": {}, "confg": 1}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown field `confg`"), "{e}");
        let e = serde_json::from_str::<LayerConfig>(r#"{"class_name": "Flatten"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field `config`"), "{e}");
    }

    #[test]
    fn every_registered_class_reads_back_what_it_writes_in_field_order() {
        let text = r#"{"class_name":"Dense","config":{"name":"d","units":3,"activation":"relu","use_bias":true,"kernel_initializer":"glorot_uniform","bias_initializer":"zeros","kernel_regularizer":null}}"#;
        let c: LayerConfig = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_string(&c).unwrap(), text);
        // Class names are unique.
        let names = LayerConfig::class_names();
        for (i, n) in names.iter().enumerate() {
            assert!(!names[i + 1..].contains(n), "{n} registered twice");
        }
    }
}
