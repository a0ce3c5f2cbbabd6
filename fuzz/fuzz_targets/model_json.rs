//! Model configs (`model.json` or a hand-written one): a built model or an error, never
//! a panic. Each tensor is held to 1 MB (`NABLA_MEMORY_LIMIT`) so that a config asking
//! for a huge layer is refused like one asking for more than the machine has.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    std::env::set_var("NABLA_MEMORY_LIMIT", "1000000");
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cfg) = nabla::formats::model_dir::parse_config(text) {
        let _ = nabla::Model::from_config(&cfg, 0);
    }
});
