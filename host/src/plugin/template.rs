//! `tradebox plugin new NAME --lang rust|python|js`: a strategy project to start from, in the
//! author's language, that builds with `tradebox plugin build`, carries a `tradebox.toml`
//! (what it asks of the host), and has a starter test that backtests it on a small bundled
//! candle file (`data/sample.csv`: 720 one-minute BTC-USDT bars from a seeded random walk).
//!
//! The files are compiled into the binary (`host/templates/`), so `plugin new` works wherever
//! `tradebox` is installed; `{{name}}` in them becomes the project's name. A Rust project
//! depends on this source tree's `sdk/` and `manifest/` by path (the SDK is not published to a
//! registry); Python and JavaScript projects get their SDK from `tradebox plugin build`, which
//! carries it too.

use std::path::{Path, PathBuf};
use tradebox_manifest::Language;

/// Why a project could not be written.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// Not a usable project name.
    #[error("{0:?} is not a usable name: lowercase letters, digits and '-', starting with a letter, at most 64")]
    Name(String),
    /// The directory is there already, with files in it.
    #[error("{} already exists and is not empty: choose another name or directory", .0.display())]
    Exists(PathBuf),
    /// A file could not be written.
    #[error("could not write {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The system's reason.
        source: std::io::Error,
    },
}

/// The bundled market data every template's starter test backtests on.
const SAMPLE: &str = include_str!("../../templates/data/sample.csv");

/// The files of a language's template: path in the project, contents.
fn files(language: Language) -> &'static [(&'static str, &'static str)] {
    match language {
        Language::Rust => &[
            ("Cargo.toml", include_str!("../../templates/rust/Cargo.toml")),
            ("build.rs", include_str!("../../templates/rust/build.rs")),
            ("tradebox.toml", include_str!("../../templates/rust/tradebox.toml")),
            ("src/lib.rs", include_str!("../../templates/rust/src/lib.rs")),
            ("tests/backtest.rs", include_str!("../../templates/rust/tests/backtest.rs")),
            ("README.md", include_str!("../../templates/rust/README.md")),
            (".gitignore", include_str!("../../templates/rust/.gitignore")),
        ],
        Language::Python => &[
            ("pyproject.toml", include_str!("../../templates/python/pyproject.toml")),
            ("tradebox.toml", include_str!("../../templates/python/tradebox.toml")),
            ("app.py", include_str!("../../templates/python/app.py")),
            ("test_backtest.py", include_str!("../../templates/python/test_backtest.py")),
            ("README.md", include_str!("../../templates/python/README.md")),
            (".gitignore", include_str!("../../templates/python/.gitignore")),
        ],
        Language::JavaScript => &[
            ("package.json", include_str!("../../templates/js/package.json")),
            ("tradebox.toml", include_str!("../../templates/js/tradebox.toml")),
            ("strategy.js", include_str!("../../templates/js/strategy.js")),
            ("test/backtest.test.js", include_str!("../../templates/js/test/backtest.test.js")),
            ("README.md", include_str!("../../templates/js/README.md")),
            (".gitignore", include_str!("../../templates/js/.gitignore")),
        ],
    }
}

/// Whether `name` can name a project in every language (a cargo package, a Python
/// distribution, an npm package, a file name, a plugin name in a host).
pub fn valid_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
}

/// Writes a new `language` project named `name` into `dir` (created; refused when it holds
/// anything). Returns the files written, relative to `dir`.
pub fn write(dir: &Path, name: &str, language: Language) -> Result<Vec<PathBuf>, TemplateError> {
    if !valid_name(name) {
        return Err(TemplateError::Name(name.to_string()));
    }
    if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(TemplateError::Exists(dir.to_path_buf()));
    }
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new("."));
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{sdk}}", &source.join("sdk").display().to_string())
            .replace("{{manifest}}", &source.join("manifest").display().to_string())
    };
    let mut written = Vec::new();
    let all = files(language).iter().map(|(p, t)| (*p, fill(t))).chain([("data/sample.csv", SAMPLE.to_string())]);
    for (relative, text) in all {
        let path = dir.join(relative);
        let io = |source| TemplateError::Io { path: path.clone(), source };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        std::fs::write(&path, text).map_err(io)?;
        written.push(PathBuf::from(relative));
    }
    Ok(written)
}

/// What to run next, for the person who asked for the project.
pub fn next_steps(dir: &Path, name: &str, language: Language) -> String {
    let test = match language {
        Language::Rust => "cargo test",
        Language::Python => "python3 -m unittest",
        Language::JavaScript => "npm test",
    };
    format!(
        "next:\n  cd {dir}\n  tradebox plugin build .          # writes {name}.wasm\n  {test:<32} # builds it and backtests it on data/sample.csv\n  \
         tradebox backtest {name}.wasm --instrument BTC-USDT --data data/sample.csv\n  \
         tradebox plugin load {name}.wasm --instrument BTC-USDT   # into a running host\n  \
         tradebox plugin reload {name}     # after a change and a build\n",
        dir = dir.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_fit_every_language_are_taken_and_others_refused() {
        for good in ["my-strat", "a", "sma2-cross"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "My", "2x", "a_b", "a-", "a b", "../x", &"a".repeat(65)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_project_is_written_once_with_its_name_and_the_sample() {
        let dir = tempfile::tempdir().expect("temp dir");
        let project = dir.path().join("my-strat");
        let written = write(&project, "my-strat", Language::Rust).expect("written");
        assert!(written.contains(&PathBuf::from("data/sample.csv")));
        let cargo = std::fs::read_to_string(project.join("Cargo.toml")).expect("Cargo.toml");
        assert!(cargo.contains("name = \"my-strat\"") && !cargo.contains("{{"), "{cargo}");
        assert!(project.join("sdk").exists() || cargo.contains("/sdk\" }"), "{cargo}");
        for language in [Language::Python, Language::JavaScript] {
            let other = dir.path().join(language.name());
            write(&other, "my-strat", language).expect("written");
            for (file, _) in files(language) {
                let text = std::fs::read_to_string(other.join(file)).expect("a template file");
                assert!(!text.contains("{{"), "{file}: a placeholder left: {text}");
            }
        }
        let err = write(&project, "my-strat", Language::Rust).expect_err("not over a project");
        assert!(err.to_string().contains("already exists"), "{err}");
        assert!(write(&dir.path().join("x"), "X", Language::Rust).is_err());
    }
}
