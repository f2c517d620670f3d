//! The `wasmserve` binary. All logic lives in the library (`wasmserve::main`:
//! flags → logging → runtime → app).

use std::process::ExitCode;

fn main() -> ExitCode {
    wasmserve::main()
}
