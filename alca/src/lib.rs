//! `alca`: the unprivileged CLI. Config loading, project discovery, container runtimes and
//! the commands users run; privileged network work is delegated to `alca-netd`.
//!
//! Where things are: [`commands`] holds one thin module per command, and no command calls
//! another; the steps they share are in [`lifecycle`] (bringing a project up as a pure
//! decision and step plan run by an executor, the trust gate, the isolation check).
//! [`network`] is the CLI's side of network isolation (building the spec, the guards that hand
//! it to the daemon or the helper container, the verify matrix); [`exclude`] the filtered
//! views; [`runtime`] Docker and Podman behind one trait; [`config`], [`project`], [`trust`]
//! and [`drift`] what a project is and what was approved and applied.

pub mod cli;
pub mod commands;
pub mod config;
pub mod detached;
pub mod drift;
pub mod exclude;
pub mod hooks;
pub mod lifecycle;
pub mod network;
pub mod privilege;
pub mod project;
pub mod prompt;
pub mod runtime;
pub mod trust;
