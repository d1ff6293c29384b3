//! Shared helpers for the end-to-end suites: locating the built binaries, running them as a
//! given user, and creating/cleaning test fixtures.
pub mod dns_zone;
pub mod docker;
pub mod dockerd;
pub mod lifecycle;
pub mod netd;
pub mod netns;
pub mod privilege;
pub mod proxy;
pub mod test_zone;
pub mod view;
