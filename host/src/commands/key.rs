//! `cachehost key generate|show`: the ed25519 key this host signs its records with.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::settings_and_config;
use crate::cli::{KeyArgs, KeyCommand};
use crate::settings::Settings;
use crate::trust;

/// The private key file when none is named: `$CACHEHOST_HOME/signing.key`.
fn default_key_file(settings: &Settings) -> PathBuf {
    settings.home.join("signing.key")
}

/// Runs the command.
pub fn run(args: KeyArgs) -> anyhow::Result<ExitCode> {
    let (settings, _) = settings_and_config(Path::new("./cachehost.toml"), None)?;
    match args.command {
        KeyCommand::Generate { out } => {
            let path = out.unwrap_or_else(|| default_key_file(&settings));
            let key = trust::generate()?;
            trust::write_key_file(&path, &key)?;
            println!("{}", trust::public_key(&key));
            eprintln!(
                "Wrote the private key to {} (mode 600). Sign with it: signing_key = \"{}\" in cachehost.toml (or \
                 CACHEHOST_SIGNING_KEY); readers trust it with the public key above in trusted_keys.",
                path.display(),
                path.display()
            );
        }
        KeyCommand::Show { key } => {
            let path = key.or(settings.signing_key.clone()).unwrap_or_else(|| default_key_file(&settings));
            println!("{}", trust::public_key(&trust::read_key_file(&path)?));
        }
    }
    Ok(ExitCode::SUCCESS)
}
