//! NumPy `.npz` archives (zip, stored or deflated): arrays whose element counts match
//! their shapes, or an error; a deflate bomb must not exhaust memory.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(arrays) = nabla::data::npz::read_npz(data) {
        for (_, a) in arrays {
            assert_eq!(a.data.len(), a.shape.iter().product::<usize>());
        }
    }
});
