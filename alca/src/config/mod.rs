//! Loading `.alca.toml` (with `extends`/`includes`) into one validated [`Config`].

pub mod model;

pub use model::*;
