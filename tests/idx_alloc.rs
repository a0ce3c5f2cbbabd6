//! An IDX header claiming billions of images must not make the reader allocate what it
//! claims. A counting global allocator records the largest single allocation while the
//! file is read. (Its own test binary, so that no other test allocates meanwhile.)

use nabla::data::idx::{read_idx, write_idx, IdxArray};
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The largest single allocation made while `f` runs.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.store(0, Ordering::SeqCst);
    let out = f();
    (out, LARGEST.load(Ordering::SeqCst))
}

#[test]
fn lying_header_does_not_allocate_the_claimed_size() {
    let dir = tempfile::tempdir().unwrap();

    // Positive control: a real 3 MB file does make a 3 MB allocation, so the counter works.
    let real = dir.path().join("real");
    write_idx(
        &real,
        &IdxArray::new(vec![3000, 1000], vec![1; 3_000_000]).unwrap(),
        false,
    )
    .unwrap();
    let (res, largest) = largest_allocation(|| read_idx(&real));
    assert_eq!(res.unwrap().data.len(), 3_000_000);
    assert!(largest >= 3_000_000, "counter saw only {largest} bytes");

    // 4e9 images of 28x28 claimed (3.1 TB), 1000 bytes present; raw and gzip.
    let mut bytes = vec![0, 0, 8, 3];
    for d in [4_000_000_000u32, 28, 28] {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(&[7; 1000]);
    let raw = dir.path().join("huge-images-idx3-ubyte");
    std::fs::write(&raw, &bytes).unwrap();
    let gz = dir.path().join("huge-images-idx3-ubyte.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&bytes).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();

    for path in [&raw, &gz] {
        let start = std::time::Instant::now();
        let (res, largest) = largest_allocation(|| read_idx(path));
        let msg = res.unwrap_err().to_string();
        assert!(
            msg.contains("huge-images-idx3-ubyte") && msg.contains("truncated"),
            "{msg}"
        );
        assert!(
            largest < 1 << 20,
            "reading {path:?} allocated {largest} bytes at once"
        );
        assert!(start.elapsed().as_millis() < 1000);
    }
}
