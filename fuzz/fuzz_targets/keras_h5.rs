//! Keras 3 weights files (`.weights.h5`, HDF5 through rustyhdf5): any bytes give layers
//! (and their subgroups: a recurrent layer's cell, a nested model's layers) whose
//! weights hold as many values as their shapes say, or an error.
#![no_main]
use libfuzzer_sys::fuzz_target;
use nabla::formats::keras::hdf5::StoredLayer;

fn check(l: &StoredLayer) {
    for v in &l.vars {
        assert_eq!(v.values.len(), v.shape.iter().product::<usize>());
    }
    l.parts.iter().for_each(check);
}

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.weights.h5");
    if let Ok(layers) = nabla::formats::keras::hdf5::parse_weights(data.to_vec(), path) {
        layers.iter().for_each(check);
    }
});
