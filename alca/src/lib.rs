//! `alca`: the unprivileged CLI. Config loading, project discovery, container runtimes and
//! the commands users run; privileged network work is delegated to `alca-netd`.

pub mod cli;
pub mod commands;
pub mod config;
pub mod detached;
pub mod drift;
pub mod exclude;
pub mod go_state;
pub mod hooks;
pub mod network;
pub mod project;
pub mod runtime;
pub mod trust;
