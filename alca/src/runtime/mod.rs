//! Container runtimes (Docker, Podman) behind one trait, driven through their CLIs.
