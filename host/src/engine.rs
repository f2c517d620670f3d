//! Every wasmtime knob, in one place.
//!
//! One [`wasmtime::Engine`] serves the whole process: it compiles the
//! handler once and owns the pooling allocator from which every per-request
//! instance takes its memory, tables and fiber stack.

use std::path::Path;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// The sizes the engine is built for. They bound what one instance, and all
/// live instances together, may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineLimits {
    /// How many handler instances may be alive at once. The listeners admit
    /// no more connections than this, so a burst waits for a free slot
    /// instead of failing to instantiate.
    pub max_instances: u32,
    /// The most linear memory one instance may grow to, in bytes. A guest
    /// that asks for more sees `memory.grow` fail (Rust guests then abort).
    pub max_memory_bytes: usize,
}

impl Default for EngineLimits {
    fn default() -> Self {
        Self {
            max_instances: 1024,
            max_memory_bytes: 64 * 1024 * 1024,
        }
    }
}

/// How often the epoch advances. A guest running wasm code is interrupted at
/// most this long after the tick: it then yields to the tokio scheduler (so a
/// busy guest cannot hold a worker thread) or is ended when over its CPU
/// budget. One tick is also the resolution of `--max-cpu`.
pub const EPOCH_TICK: Duration = Duration::from_millis(2);

/// The most wasm stack a guest may use; deeper recursion traps with "call
/// stack exhausted" (wasmtime's default).
const MAX_WASM_STACK: usize = 512 * 1024;
/// Each instance's fiber stack: the wasm stack plus room for the host
/// functions the guest calls (they run on the same fiber).
const ASYNC_STACK: usize = MAX_WASM_STACK + 512 * 1024;

/// A component compiled for wasm32-wasip2 by rustc is a handful of core
/// instances (the program, plus small shim modules that wire WASI imports).
const CORE_INSTANCES_PER_COMPONENT: u32 = 8;
/// The program's memory; shims have none, but other toolchains may add one.
const MEMORIES_PER_COMPONENT: u32 = 2;
/// The program's function table plus the shims' indirect-call tables.
const TABLES_PER_COMPONENT: u32 = 4;

/// Builds the engine: Cranelift, async support (host imports suspend the
/// guest's fiber), epoch interruption, and a pooling allocator sized from
/// `limits`; and starts the engine's one epoch ticker thread.
///
/// With `cache_dir`, compiled handlers are kept on disk, keyed by a hash of
/// the component and of this engine's configuration, so a restart with an
/// unchanged handler skips Cranelift.
pub fn build_engine(limits: EngineLimits, cache_dir: Option<&Path>) -> wasmtime::Result<Engine> {
    let instances = limits.max_instances.max(1);

    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
        .total_memories(instances.saturating_mul(MEMORIES_PER_COMPONENT))
        .total_tables(instances.saturating_mul(TABLES_PER_COMPONENT))
        // One fiber stack per instance: `handle` runs on it from start to end.
        .total_stacks(instances)
        .max_memory_size(limits.max_memory_bytes);

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
        .async_stack_size(ASYNC_STACK);
    if let Some(dir) = cache_dir {
        let mut cache = wasmtime::CacheConfig::new();
        cache.with_directory(dir);
        config.cache(Some(wasmtime::Cache::new(cache)?));
    }
    let engine = Engine::new(&config)?;
    start_epoch_ticker(&engine)?;
    Ok(engine)
}

/// One thread per engine advances the epoch every [`EPOCH_TICK`] (never one
/// per request: that costs a thread and a wake-up per request). It ends when
/// the engine is dropped.
fn start_epoch_ticker(engine: &Engine) -> wasmtime::Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("wasmserve-epoch".to_owned())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .map_err(|err| wasmtime::format_err!("cannot start the epoch ticker thread: {err}"))?;
    Ok(())
}
