//! Which contract version a handler was built against and which optional
//! parts of the host it uses, read from what its component imports — for
//! the start-up line and `wasmserve check`, so an operator sees what a
//! handler will touch before serving it.
//!
//! A component imports an interface with only the functions it calls
//! (wit-component keeps no unused import), so `request.tls` shows in its
//! import of the contract's `types` only if the handler asks for TLS (or
//! hands connections off).

use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

/// The contract version `component` imports the request type from, as
/// its import names it (`0.2.1`, `0.2.0`, `0.1.1`); `None` if it does not.
pub(super) fn contract_version(engine: &Engine, component: &Component) -> Option<String> {
    component
        .component_type()
        .imports(engine)
        .find_map(|(name, _)| name.strip_prefix("wasmserve:handler/types@"))
        .map(str::to_owned)
}

/// The first import of `component` from a contract version newer than
/// `serves` (`major.minor.patch`), and that version.
pub(super) fn newer_contract(
    engine: &Engine,
    component: &Component,
    serves: &str,
) -> Option<(String, String)> {
    let newest = version_numbers(serves)?;
    component
        .component_type()
        .imports(engine)
        .filter(|(name, _)| name.starts_with("wasmserve:handler/"))
        .find_map(|(name, _)| {
            let (_, version) = name.rsplit_once('@')?;
            (version_numbers(version)? > newest).then(|| (name.to_owned(), version.to_owned()))
        })
}

/// `major.minor.patch` as numbers (a pre-release suffix is ignored).
fn version_numbers(version: &str) -> Option<(u64, u64, u64)> {
    let core = version.split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|part| part.parse::<u64>().ok());
    Some((parts.next()??, parts.next()??, parts.next()??))
}

/// The optional imports of `component`, in a fixed order: `keyvalue`,
/// `channels`, `sockets`, `tls`, `hand-off`.
pub(super) fn optional_imports(engine: &Engine, component: &Component) -> Vec<&'static str> {
    const PREFIXES: [(&str, &str); 3] = [
        ("wasi:keyvalue/", "keyvalue"),
        ("wasmserve:handler/channels", "channels"),
        ("wasi:sockets/", "sockets"),
    ];
    let mut found = [false; 5];
    for (name, item) in component.component_type().imports(engine) {
        for (at, (prefix, _)) in PREFIXES.iter().enumerate() {
            found[at] |= name.starts_with(prefix);
        }
        if name.starts_with("wasmserve:handler/types")
            && let ComponentItem::ComponentInstance(instance) = item.ty
        {
            for (export, _) in instance.exports(engine) {
                found[3] |= export == "[method]request.tls";
                found[4] |= export == "[method]request.hand-off";
            }
        }
    }
    PREFIXES
        .iter()
        .map(|(_, word)| *word)
        .chain(["tls", "hand-off"])
        .zip(found)
        .filter_map(|(word, used)| used.then_some(word))
        .collect()
}
