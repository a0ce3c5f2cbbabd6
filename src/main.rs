//! The `nabla` command line: train, evaluate, predict, summary, gradcheck.

mod cli;

// mimalloc keeps freed pages for reuse: a training step frees and reallocates the same
// large activation buffers every batch, which with the system allocator means mmap,
// munmap and a page fault per page each time (see BENCHMARKS.md, "Design measurements").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's option index of `purge_delay` (`mi_option_e` in its v3 `mimalloc.h`; the
/// crate exports no constant for it). The test below checks the index by its default.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Never hand freed pages back to the OS (unless `MIMALLOC_PURGE_DELAY` says otherwise).
/// mimalloc's default returns them after 1 s idle, and the next step then page-faults
/// them in again: resnet20, 50 steps and the inference passes of `nabla bench model`, 2
/// threads, 57,353 page faults and 2.25 s of system time with the default, 641 and
/// 0.85-1.60 s with this; training 1.10x images/s (median of 7 alternating pairs, a noisy
/// machine). Peak RSS +50-70 MiB (the pages stay mapped after use). BENCHMARKS.md, "Speed
/// 2, third sitting".
fn keep_freed_pages() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mi_option_set writes one option word; "not thread safe" means it must
        // not race other option calls, and this runs first in `main`, before any thread of
        // ours exists.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
    }
}

fn main() {
    keep_freed_pages();
    let code = match cli::run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    };
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_delay_option_is_the_one_set() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return; // the environment decides; nothing of ours to check
        }
        // SAFETY: reads one option word; no other test in this binary touches options.
        let default = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(
            default, 1000,
            "index {MI_OPTION_PURGE_DELAY} is not purge_delay (v3 default 1000 ms)"
        );
        keep_freed_pages();
        // SAFETY: as above.
        assert_eq!(
            unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) },
            -1
        );
    }
}
