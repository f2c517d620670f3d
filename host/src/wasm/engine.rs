//! Every wasmtime knob, in one place.
//!
//! One [`wasmtime::Engine`] serves the whole process: it compiles the
//! handler once and owns the pooling allocator from which every per-request
//! instance takes its memory, tables and fiber stack.

use std::path::Path;
use std::time::Duration;

use super::function_cache::FunctionCache;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// The sizes the engine is built for. They bound what one instance, and all
/// live instances together, may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EngineLimits {
    /// How many handler instances may be alive at once. The listeners admit
    /// no more connections than this, so a burst waits for a free slot
    /// instead of failing to instantiate.
    pub(crate) max_instances: u32,
    /// The most linear memory one instance may grow to, in bytes. A guest
    /// that asks for more sees `memory.grow` fail (Rust guests then abort).
    pub(crate) max_memory_bytes: usize,
    /// How much of each pool slot's linear memory (and table) stays resident
    /// when its instance is dropped: the pages the guest dirtied, up to this
    /// many bytes, are reset in place (copied back from the handler's memory
    /// image, or zeroed; found with Linux's `PAGEMAP_SCAN`) instead of being
    /// given back to the OS. The next request on the slot then takes no page
    /// faults and the process no address-space lock, which roughly doubles
    /// the rate of fresh instances (and triples it for an interpreter); the
    /// cost is that after a burst, up to this much per slot used stays
    /// resident (a high-water mark, not a leak): only what the requests
    /// dirtied. 0 gives every page back at every request's end.
    pub(crate) keep_resident_bytes: usize,
}

/// The default of [`EngineLimits::keep_resident_bytes`]: room for the pages
/// an interpreter's instance dirties (CPython's, about 900 KiB); a small
/// Rust handler dirties three (its shadow stack, data and heap), and only
/// dirtied pages are kept. Measured in bench/RESULTS.md: Python greet 513 →
/// 1,392 connections a second against 64 KiB.
pub(crate) const DEFAULT_KEEP_RESIDENT: usize = 1024 * 1024;

/// At most this much of a fiber stack's top is zeroed in place when its
/// request ends (the rest is given back). The part kept is zeroed whole,
/// touched or not, so it costs a memset per request and commits its pages
/// in every slot used: 64 KiB left 1.3 GB resident after 15,000
/// connections closed, 16 KiB (a Rust handler's depth) 570 MB, and a fresh
/// UDP instance per datagram ran 11 % faster (bench/RESULTS.md).
const STACK_KEEP_RESIDENT_MAX: usize = 16 * 1024;

impl Default for EngineLimits {
    fn default() -> Self {
        Self {
            max_instances: 1024,
            max_memory_bytes: 64 * 1024 * 1024,
            keep_resident_bytes: DEFAULT_KEEP_RESIDENT,
        }
    }
}

/// How often the epoch advances. A guest running wasm code is interrupted at
/// most this long after the tick: it then yields to the tokio scheduler (so a
/// busy guest cannot hold a worker thread) or is ended when over its CPU
/// budget. One tick is also the resolution of `--max-cpu`.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(2);

/// The most wasm stack a guest may use; deeper recursion traps with "call
/// stack exhausted" (wasmtime's default).
const MAX_WASM_STACK: usize = 512 * 1024;
/// Each instance's fiber stack: the wasm stack plus room for the host
/// functions the guest calls (they run on the same fiber).
const ASYNC_STACK: usize = MAX_WASM_STACK + 512 * 1024;

/// Core instances one component instance may hold: a rustc-built handler
/// has 8 (the program and small shim modules that wire WASI imports), a
/// componentize-py one about 14; jco's and componentize-js's fit too
/// (tested with 200 of each for jco; the JavaScript chatroom's tests for
/// componentize-js).
const CORE_INSTANCES_PER_COMPONENT: u32 = 16;
/// Linear memories one component instance may use: rustc and
/// componentize-py build components with one, jco (QuickJS) with three.
const MEMORIES_PER_COMPONENT: u32 = 4;
/// Each memory slot reserves 4 GiB of address space (so bounds checks can
/// be elided) plus a 32 MiB guard: about 4.03 GiB.
const MEMORY_SLOT_BYTES: u64 = (4 << 30) + (32 << 20);
/// The pool reserves at most this much address space for memories, half
/// of a 64-bit Linux process's 128 TiB. With many instances it has fewer
/// than [`MEMORIES_PER_COMPONENT`] slots each (but never fewer than one):
/// at 15,000 instances, Rust handlers (one memory) all fit, while a handler
/// with three memories fits about 5,300 at once; beyond that instantiation
/// fails and is logged (`cause="instantiate"`).
const MAX_MEMORY_RESERVATION: u64 = 64 << 40;
/// Function tables one component instance may use (the program's, and the
/// shims' indirect-call tables; enough for Rust, Python and JS handlers).
/// Each table slot costs pool bookkeeping even unused: 64 per instance made
/// an idle 15,000-slot server 50 MB larger.
const TABLES_PER_COMPONENT: u32 = 4;

/// How many memory slots the pool has for `instances` instances.
fn memory_slots(instances: u32) -> u32 {
    let wanted = u64::from(instances) * u64::from(MEMORIES_PER_COMPONENT);
    let affordable = MAX_MEMORY_RESERVATION / MEMORY_SLOT_BYTES;
    u32::try_from(wanted.min(affordable).max(u64::from(instances))).unwrap_or(u32::MAX)
}

/// wasmtime's version, and which of `vendor/`'s patches change the code
/// Cranelift emits (vendor/README.md): bumped with every such patch.
const COMPILED_CODE_VERSION: &str = "48.0.8+wasmserve.3";

/// Builds the engine: Cranelift, async support (host imports suspend the
/// guest's fiber), epoch interruption, and a pooling allocator sized from
/// `limits`; and starts the engine's one epoch ticker thread.
///
/// With `cache_dir`, compiled handlers are kept on disk, keyed by a hash of
/// the component and of this engine's configuration, so a restart with an
/// unchanged handler skips Cranelift. With `perf_map`, wasmtime writes
/// /tmp/perf-PID.map naming each compiled function, for `perf`.
pub(crate) fn build_engine(
    limits: EngineLimits,
    cache_dir: Option<&Path>,
    perf_map: bool,
) -> wasmtime::Result<Engine> {
    let instances = limits.max_instances.max(1);

    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
        .total_memories(memory_slots(instances))
        .total_tables(instances.saturating_mul(TABLES_PER_COMPONENT))
        // One fiber stack per instance: `handle` runs on it from start to end.
        .total_stacks(instances)
        .max_memory_size(limits.max_memory_bytes)
        // Reset used slots in place rather than with madvise (see
        // `keep_resident_bytes`); measured in bench/RESULTS.md.
        .linear_memory_keep_resident(limits.keep_resident_bytes)
        .table_keep_resident(limits.keep_resident_bytes)
        .async_stack_keep_resident(limits.keep_resident_bytes.min(STACK_KEEP_RESIDENT_MAX))
        .pagemap_scan(wasmtime::Enabled::Auto);

    let mut config = Config::new();
    config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        // Initialise memories by mapping the compiled image copy-on-write
        // rather than copying data segments: instantiation stays O(1).
        .memory_init_cow(true)
        // Guests check the epoch at loop heads and function entries; the
        // ticker below advances it.
        .epoch_interruption(true)
        .max_wasm_stack(MAX_WASM_STACK)
        .async_stack_size(ASYNC_STACK)
        // A released fiber stack keeps its top `keep_resident_bytes`, at
        // most `STACK_KEEP_RESIDENT_MAX` (where every call runs), and gives
        // the rest back to the OS (the pool's `async_stack_keep_resident`):
        // without it a guest that recursed deeply once left ~600 KiB
        // resident per slot for good. With `vendor/`'s patch the giving
        // back is deferred to the epoch ticker's trim (every
        // `STACK_TRIM_EVERY`) instead of an madvise and a memset per
        // request.
        .async_stack_zeroing(true)
        // Compiled code is tagged with wasmtime's version and the patch
        // level of the copy in `vendor/`, so that what another patch level
        // compiled (kept in the cache below) is compiled again, not loaded.
        .module_version(wasmtime::ModuleVersionStrategy::Custom(
            COMPILED_CODE_VERSION.to_owned(),
        ))?;
    if let Some(dir) = cache_dir {
        let mut cache = wasmtime::CacheConfig::new();
        // wasmtime cleans up its cache folder (removing files it did not
        // write): it gets a folder of its own, beside the registry cache.
        cache.with_directory(dir.join("compiled"));
        config.cache(Some(wasmtime::Cache::new(cache)?));
        // And each function Cranelift compiles, so the next handler that
        // shares it (every Python handler shares CPython) skips it.
        config.enable_incremental_compilation(std::sync::Arc::new(FunctionCache::new(dir)))?;
    }
    if perf_map {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    let engine = Engine::new(&config)?;
    start_epoch_ticker(&engine)?;
    super::meter_clock::calibrate();
    Ok(engine)
}

/// How often the epoch ticker gives back the fiber stack pages requests
/// released (`Engine::trim_unused_fiber_stacks`, a patch in `vendor/`): a
/// deep recursion's stack is resident at most this long after its request.
const STACK_TRIM_EVERY: Duration = Duration::from_millis(250);

/// One thread per engine advances the epoch every [`EPOCH_TICK`] (never one
/// per request: that costs a thread and a wake-up per request), publishes
/// the coarse clock connections stamp their activity with, and every
/// [`STACK_TRIM_EVERY`] trims released fiber stacks (an madvise per stack
/// used since, here instead of one per request). It ends when the engine is
/// dropped.
fn start_epoch_ticker(engine: &Engine) -> wasmtime::Result<()> {
    let weak = engine.weak();
    let ticks_per_trim = (STACK_TRIM_EVERY.as_millis() / EPOCH_TICK.as_millis()).max(1);
    std::thread::Builder::new()
        .name("wasmserve-epoch".to_owned())
        .spawn(move || {
            let mut ticks = 0u128;
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                ticks += 1;
                if ticks.is_multiple_of(ticks_per_trim) {
                    engine.trim_unused_fiber_stacks();
                }
                drop(engine);
                super::activity::publish_coarse_time();
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .map_err(|err| wasmtime::format_err!("cannot start the epoch ticker thread: {err}"))?;
    Ok(())
}

/// Memory mappings (`/proc/PID/maps` lines) one instance slot costs on
/// Linux, measured: its fiber stack and guard page (2, made for every slot at
/// start), and, once the slot has been used, its linear memory: the shadow
/// stack, the copy-on-write image, the heap and the inaccessible rest of the
/// reservation (4, kept while the slot stays warm for the next request).
/// A handler with more memories (jco's have three) costs 4 more for each.
const MAPPINGS_PER_INSTANCE: u64 = 6;
/// Mappings the process needs besides the pool: the binary, its libraries,
/// the heap arenas and thread stacks, the compiled handlers.
const MAPPINGS_BASE: u64 = 4096;
/// File descriptors the process needs besides one socket per request:
/// listeners, epoll, the compile cache, watched files, the metrics server.
const FILES_BASE: u64 = 64;

/// Makes sure the operating system lets the process hold `max_instances`
/// requests at once, plus `waiting` accepted connections that wait for a
/// slot and the `outbound` sockets handlers may create (`--max-outbound`
/// per slot of the services that may connect): raises the soft open-files
/// limit to the hard one, and checks that the hard limit and
/// `vm.max_map_count` fit that many sockets and pool slots. Returns a
/// one-line explanation with the fix otherwise.
pub(crate) fn fit_os_limits(max_instances: u32, waiting: u64, outbound: u64) -> Result<(), String> {
    let instances = u64::from(max_instances);
    let files_needed = instances + waiting + outbound + FILES_BASE;
    // Best effort: where the limit cannot be read or raised, the check below
    // uses what is in force.
    let files = rlimit::increase_nofile_limit(u64::MAX)
        .or_else(|_| rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft));
    if let Ok(files) = files
        && files < files_needed
    {
        // Each slot needs its connection and its share of outbound sockets.
        let per_slot = 1 + outbound / instances.max(1);
        let fits = files.saturating_sub(FILES_BASE + waiting) / per_slot;
        let outbound_fix = match outbound {
            0 => "",
            _ => ", lower --max-outbound (each request may open that many sockets)",
        };
        return Err(format!(
            "--max-connections {max_instances} needs {files_needed} open files, but the limit is {files}: \
             lower --max-connections to {fits}{outbound_fix} or raise the hard limit (`ulimit -Hn`, LimitNOFILE= in systemd)"
        ));
    }
    let mappings_needed = instances * MAPPINGS_PER_INSTANCE + MAPPINGS_BASE;
    if let Some(max_map_count) = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
        && max_map_count < mappings_needed
    {
        let fits = max_map_count.saturating_sub(MAPPINGS_BASE) / MAPPINGS_PER_INSTANCE;
        let suggested = mappings_needed.next_power_of_two();
        return Err(format!(
            "--max-connections {max_instances} needs about {mappings_needed} memory mappings, but vm.max_map_count is {max_map_count}: \
             lower --max-connections to {fits} or raise the limit (`sysctl -w vm.max_map_count={suggested}`)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{MAX_MEMORY_RESERVATION, MEMORY_SLOT_BYTES, memory_slots};

    #[test]
    fn memory_slots_stay_within_the_reservation_but_never_below_one_each() {
        assert_eq!(memory_slots(1024), 4096);
        let cap = u32::try_from(MAX_MEMORY_RESERVATION / MEMORY_SLOT_BYTES).unwrap_or(u32::MAX);
        assert_eq!(memory_slots(10_000), cap);
        assert_eq!(memory_slots(20_000), 20_000);
    }
}
