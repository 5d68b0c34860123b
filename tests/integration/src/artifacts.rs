//! Where the QEMU tests find what they boot: paths handed over by `cargo xtask test`
//! through environment variables.
//!
//! The tests never build anything themselves: xtask builds the kernel once (by whichever
//! toolchain route works), fetches the Raspberry Pi 4 device tree and the model, and sets
//! these variables. Run by hand, a test with a variable unset fails at once and says what
//! to run.

use std::path::{Path, PathBuf};

/// Raw kernel image (arm64 Image header), as written by `cargo xtask build`.
pub const IMAGE_VAR: &str = "ANNEAL_IMAGE";
/// bcm2711-rpi-4-b.dtb for the raspi4b tests.
pub const RPI4_DTB_VAR: &str = "ANNEAL_RPI4_DTB";
/// The default model (GGUF), for tests that boot with an initrd.
pub const MODEL_VAR: &str = "ANNEAL_MODEL";
/// The synthetic TinyLlama-1.1B-shaped model (`cargo xtask model fetch tinyllama-synthetic`).
pub const TINYLLAMA_VAR: &str = "ANNEAL_TINYLLAMA";
/// QEMU binary (optional; default `qemu-system-aarch64` from PATH).
pub const QEMU_VAR: &str = "ANNEAL_QEMU";

/// What to run when a variable is missing.
const HOW_TO_SET: &str = "run the QEMU tests through `cargo xtask test` (it builds the kernel \
    and sets ANNEAL_IMAGE, ANNEAL_RPI4_DTB and ANNEAL_MODEL), or run `cargo xtask build --board rpi4` \
    and set them by hand: ANNEAL_IMAGE=target/anneal/Image \
    ANNEAL_RPI4_DTB=models/cache/bcm2711-rpi-4-b.dtb \
    ANNEAL_MODEL=models/cache/SmolLM2-135M-Instruct.Q4_1.gguf \
    cargo test -p integration --features qemu --test qemu";

/// A required path variable that is unset or names a missing file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingArtifact {
    /// The variable.
    pub variable: &'static str,
    /// Its value, when set.
    pub value: Option<String>,
}

impl std::fmt::Display for MissingArtifact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.value {
            None => write!(f, "{} is not set: {HOW_TO_SET}", self.variable),
            Some(v) => write!(f, "{}={v} does not exist: {HOW_TO_SET}", self.variable),
        }
    }
}

impl std::error::Error for MissingArtifact {}

/// Reads a path variable; a relative path is taken from the workspace root (tests run in
/// their crate's directory, people usually think from the root).
fn path_from(variable: &'static str, value: Option<String>) -> Result<PathBuf, MissingArtifact> {
    let resolve = |v: &str| {
        let path = PathBuf::from(v);
        if path.is_absolute() {
            path
        } else {
            workspace_root().join(path)
        }
    };
    match value {
        Some(v) if !v.is_empty() && resolve(&v).is_file() => Ok(resolve(&v)),
        Some(v) if !v.is_empty() => Err(MissingArtifact {
            variable,
            value: Some(v),
        }),
        _ => Err(MissingArtifact {
            variable,
            value: None,
        }),
    }
}

/// Reads a required path variable from the environment.
pub fn required_path(variable: &'static str) -> Result<PathBuf, MissingArtifact> {
    path_from(variable, std::env::var(variable).ok())
}

/// The kernel image to boot.
pub fn image() -> Result<PathBuf, MissingArtifact> {
    required_path(IMAGE_VAR)
}

/// The Raspberry Pi 4 device tree.
pub fn rpi4_dtb() -> Result<PathBuf, MissingArtifact> {
    required_path(RPI4_DTB_VAR)
}

/// The default model file.
pub fn model() -> Result<PathBuf, MissingArtifact> {
    required_path(MODEL_VAR)
}

/// The synthetic TinyLlama-1.1B-shaped model (random weights, 668 MB).
pub fn tinyllama() -> Result<PathBuf, MissingArtifact> {
    required_path(TINYLLAMA_VAR)
}

/// The QEMU binary.
pub fn qemu() -> PathBuf {
    std::env::var_os(QEMU_VAR)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(crate::qemu::DEFAULT_QEMU))
}

/// The workspace root (two levels above this crate), where `qemu.sh` lives.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_and_missing_paths_say_what_to_run() {
        let unset = path_from(IMAGE_VAR, None).unwrap_err();
        assert!(unset.to_string().starts_with("ANNEAL_IMAGE is not set"));
        assert!(unset.to_string().contains("cargo xtask test"));
        let missing = path_from(IMAGE_VAR, Some("/nonexistent/Image".into())).unwrap_err();
        assert!(missing
            .to_string()
            .contains("/nonexistent/Image does not exist"));
        let manifest = format!("{}/Cargo.toml", env!("CARGO_MANIFEST_DIR"));
        assert_eq!(
            path_from(IMAGE_VAR, Some(manifest.clone())),
            Ok(PathBuf::from(manifest))
        );
    }

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        assert!(workspace_root().join("Cargo.toml").is_file());
        assert!(workspace_root().join("tests/integration").is_dir());
    }
}
