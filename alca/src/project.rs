//! Project discovery (nearest `.alca.toml` upwards) and the per-project `.alca/state.json`.
