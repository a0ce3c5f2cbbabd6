//! The `nabla` command line: train, evaluate, predict, summary, gradcheck.

mod cli;

// mimalloc keeps freed pages for reuse: a training step frees and reallocates the same
// large activation buffers every batch, which with the system allocator means mmap,
// munmap and a page fault per page each time (see BENCHMARKS.md, "Design measurements").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let code = match cli::run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    };
    std::process::exit(code);
}
