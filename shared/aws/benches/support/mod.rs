//! What the capacity benchmarks (`cost`, `list_cost`) share: the sizes they replay and how
//! they print bytes and capacity units, and the allocator.

use std::alloc::{GlobalAlloc, Layout, System};

/// The functions' global allocator (mimalloc, `functions/*/src/main.rs`), so the CPU figures are
/// the deployed code's; glibc's malloc when built with `RAS_BENCH_SYSTEM_ALLOCATOR` set
/// (`RAS_BENCH_SYSTEM_ALLOCATOR=1 cargo bench …`; docs/benchmarks.md, "Issue 15 — CPU per
/// record").
struct BenchAllocator;

const SYSTEM_ALLOCATOR: bool = option_env!("RAS_BENCH_SYSTEM_ALLOCATOR").is_some();

// SAFETY: every call goes to the same one of two allocators (a constant decides), which
// upholds `GlobalAlloc`'s contract itself.
unsafe impl GlobalAlloc for BenchAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if SYSTEM_ALLOCATOR {
            System.alloc(layout)
        } else {
            mimalloc::MiMalloc.alloc(layout)
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if SYSTEM_ALLOCATOR {
            System.dealloc(ptr, layout)
        } else {
            mimalloc::MiMalloc.dealloc(ptr, layout)
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if SYSTEM_ALLOCATOR {
            System.alloc_zeroed(layout)
        } else {
            mimalloc::MiMalloc.alloc_zeroed(layout)
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if SYSTEM_ALLOCATOR {
            System.realloc(ptr, layout, new_size)
        } else {
            mimalloc::MiMalloc.realloc(ptr, layout, new_size)
        }
    }
}

#[global_allocator]
static GLOBAL: BenchAllocator = BenchAllocator;

/// `cargo bench` passes `--bench`; `cargo test --all-targets` runs a bench binary without it
/// (criterion's test mode), where the benchmarks take their small sizes.
pub fn benchmarking() -> bool {
    std::env::args().any(|arg| arg == "--bench")
}

/// The sizes to replay: `variable` (comma-separated numbers) if set, else `benched` under
/// `cargo bench` and `tested` under `cargo test`.
pub fn sizes(variable: &str, benched: &[usize], tested: &[usize]) -> Vec<usize> {
    match std::env::var(variable) {
        Ok(list) => list
            .split(',')
            .map(|n| {
                n.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{variable}: comma-separated numbers"))
            })
            .collect(),
        Err(_) if benchmarking() => benched.to_vec(),
        Err(_) => tested.to_vec(),
    }
}

/// Bytes as the tables print them: B below 10,000, then KB (1,000 bytes), then MB.
pub fn kb(bytes: u64) -> String {
    if bytes < 10_000 {
        format!("{bytes} B")
    } else if bytes < 10_000_000 {
        format!("{:.1} KB", bytes as f64 / 1000.0)
    } else {
        format!("{:.2} MB", bytes as f64 / 1_000_000.0)
    }
}

/// Capacity units: whole numbers without decimals, halves (eventually consistent reads) with one.
pub fn units(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}
