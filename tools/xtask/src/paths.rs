//! Where things are: the workspace root, the cargo target directory, the image folder,
//! the model cache.

use std::path::{Path, PathBuf};

/// The workspace root (tools/xtask is two levels below it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Cargo's target directory: `CARGO_TARGET_DIR` when set (relative to the root), else
/// `<root>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                root().join(dir)
            }
        }
        _ => root().join("target"),
    }
}

/// Where xtask writes what it makes (the raw image): `<target>/anneal`.
pub fn anneal_dir() -> PathBuf {
    target_dir().join("anneal")
}

/// The raw kernel image QEMU boots (and the Pi's kernel8.img).
pub fn image() -> PathBuf {
    anneal_dir().join("Image")
}

/// Target directory of the Debian fallback route: its own, since host crates are built
/// by the rustup compiler and sharing one directory would rebuild everything.
pub fn fallback_target_dir() -> PathBuf {
    target_dir().join("debian-fallback")
}

/// Cache of downloaded files kept out of git (models, the Pi 4 device tree).
pub fn cache_dir() -> PathBuf {
    root().join("models").join("cache")
}

/// The model manifest.
pub fn manifest() -> PathBuf {
    root().join("models").join("manifest.toml")
}

/// The cached Raspberry Pi 4 device tree.
pub fn rpi4_dtb() -> PathBuf {
    cache_dir().join("bcm2711-rpi-4-b.dtb")
}
