//! Which optional parts of the host a handler uses, read from what its
//! component imports — for `wasmserve check`, so an operator sees what a
//! handler will touch before serving it.
//!
//! A component imports an interface with only the functions it calls
//! (wit-component keeps no unused import), so `request.tls` shows in its
//! import of the contract's `types` only if the handler asks for TLS.

use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

/// The optional imports of `component`, in a fixed order: `keyvalue`,
/// `channels`, `sockets`, `tls`.
pub(super) fn optional_imports(engine: &Engine, component: &Component) -> Vec<&'static str> {
    const PREFIXES: [(&str, &str); 3] = [
        ("wasi:keyvalue/", "keyvalue"),
        ("wasmserve:handler/channels", "channels"),
        ("wasi:sockets/", "sockets"),
    ];
    let mut found = [false; 4];
    for (name, item) in component.component_type().imports(engine) {
        for (at, (prefix, _)) in PREFIXES.iter().enumerate() {
            found[at] |= name.starts_with(prefix);
        }
        if name.starts_with("wasmserve:handler/types")
            && let ComponentItem::ComponentInstance(instance) = item.ty
        {
            found[3] |= instance
                .exports(engine)
                .any(|(export, _)| export == "[method]request.tls");
        }
    }
    PREFIXES
        .iter()
        .map(|(_, word)| *word)
        .chain(["tls"])
        .zip(found)
        .filter_map(|(word, used)| used.then_some(word))
        .collect()
}
