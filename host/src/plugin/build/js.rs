//! Builds a js strategy project into a plugin (being written).

use super::{BuildError, Built};
use std::path::Path;

/// Builds the project in `dir`.
pub fn build(dir: &Path, _out: Option<&Path>) -> Result<Built, BuildError> {
    Err(BuildError::NotAStrategy { path: dir.to_path_buf(), reason: "js strategies cannot be built yet".into() })
}
