// wsi/runtime.hpp — process-wide runtime settings for programs that run inference.
//
// Process-wide: these change state shared by every thread and library in the process (here, the
// C library's allocator). Only a program's entry point calls them (the CLI's main(), a benchmark's
// main()), once, before it starts threads; library code never does, because a library cannot
// know what else shares its process.
#pragma once

namespace wsi {

// Keeps freed memory inside the process instead of handing it back to the kernel after every
// batch. Why: LibTorch allocates each activation tensor anew on every forward pass (tens of MB
// per layer at batch 64-128). glibc's malloc serves blocks above its mmap threshold (adaptive, at
// most 32 MiB) with mmap() and unmaps them on free, and returns free memory at the top of the
// heap beyond M_TRIM_THRESHOLD, so every pass pays for fresh pages again (page faults and
// zeroing): measured up to 2x slower inference at batch 64-128 on the development machines
// (MACHINE-NOTES; benchmarks/bench_inference shows it). The fix is mallopt(M_MMAP_MAX, 0)
// (large blocks come from the heap, which is reused) plus a 1 GiB M_TRIM_THRESHOLD (freed memory
// stays until more than that is free at the top of the heap); the same as
// GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=1073741824.
// Plus mallopt(M_ARENA_MAX, 1): one arena for all threads. Why: the heatmap pipeline runs the
// model on a thread of its own, and a thread other than main gets its own arena, made of 64 MiB
// heaps; a block larger than that is mmapped whatever M_MMAP_MAX says, and such heaps shrink
// when blocks are freed. Measured on the heatmap with ResNet50 (batch 64, 3238 patches):
// 3.6 million page faults with per-thread arenas against 0.12 million with one, and the model's
// two threads left a third of a core idle waiting for them. The readers share the arena's lock;
// they allocate a few buffers per region, which does not show in the profile.
//
// Cost: the resident size stays near its peak after a large batch instead of shrinking.
// Returns true when the settings were applied; false (and changes nothing) when the C library is
// not glibc or refused them. Safe to call more than once.
bool tune_allocator_for_inference();

// Makes the BLAS library LibTorch resolves to (OpenBLAS on Debian, when libopenblas0-pthread is
// installed) run single-threaded. Why: LibTorch parallelises its own loops, and its convolutions
// go through oneDNN; OpenBLAS serves only the dense layers, yet it keeps a pool of nproc-1
// threads that spin on sched_yield() for a while after every call. A batch every few tens of
// milliseconds keeps them spinning for good: measured 15-18 % of all CPU samples in
// sched_yield during a heatmap run on 2 cores (perf), taken from the inference threads and the
// slide readers. Same effect as OPENBLAS_NUM_THREADS=1 (MACHINE-NOTES), but that variable must be
// set before the library loads, which a program linked to LibTorch cannot do for itself.
// Returns true when OpenBLAS was found and set; false (nothing changed) for another BLAS.
bool limit_blas_threads();

// ---- Thread counts (thread-safe, no side effects) ----

// The cores this process may run on: its CPU affinity mask, which Slurm, cgroups and taskset
// narrow (std::thread::hardware_concurrency counts the whole machine). At least 1.
int available_cores();

// A --threads value as every stage uses it: 0 = available_cores(); above available_cores() it is
// lowered to it. Why: more threads than cores only contend (`heatmap --threads 256` on 2 cores took
// 16 s instead of 1.3 s, and --threads 10000 started 20000 threads that ignored SIGTERM for
// minutes). Throws UsageError for a negative value.
int resolve_threads(int requested);

}  // namespace wsi
