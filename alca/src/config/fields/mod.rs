//! Per-field validation: each submodule turns one raw field into checked model values and
//! words its errors with the file, the dotted field path and the fix.

pub mod caps;
pub mod envs;
pub mod internet;
pub mod mounts;
pub mod network;
pub mod ports;
pub mod resources;
