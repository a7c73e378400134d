//! `cachehost new --lang python|js|rust|c NAME`: writes a component that builds, and says how.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::NewArgs;
use crate::scaffold::{self, Lang};

/// Runs the command.
pub fn run(args: NewArgs) -> anyhow::Result<ExitCode> {
    let lang = Lang::parse(&args.lang).expect("clap allows only the four languages");
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
    let written = scaffold::write(lang, &args.name, &dir)?;
    println!("Created {} ({lang}, {} files):", dir.display(), written.len());
    for path in &written {
        println!("  {}", path.display());
    }
    println!("{}", scaffold::next_steps(lang, &args.name, &dir));
    Ok(ExitCode::SUCCESS)
}
