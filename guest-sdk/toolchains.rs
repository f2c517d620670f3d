// The versions of the tools that build Python and JavaScript handlers,
// `include!`d by `tests/build.rs` (which installs them for the tests) and by
// `host/src/scaffold.rs` (which writes them into `wasmserve new` projects),
// so the two never drift apart.

/// componentize-py, from PyPI, as pip names it.
const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";
/// `@bytecodealliance/componentize-js` (StarlingMonkey), from npm.
const COMPONENTIZE_JS_VERSION: &str = "0.23.0";
