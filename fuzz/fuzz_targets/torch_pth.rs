//! PyTorch `.pth` files (zip + restricted pickle): any bytes give tensors whose element
//! counts match their shapes, or an error; never a panic, never more memory than the
//! reader's bounds allow.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(tensors) = nabla::formats::torch_pth::from_bytes(data) {
        for (_, t) in tensors {
            assert_eq!(t.to_f32_vec().len(), t.shape().iter().product::<usize>());
        }
    }
});
