//! `build-images [--out DIR] [NAME...]`: builds fixture images (all by default) and prints their
//! paths, one per line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Builds NanoPi R2S fixture disk images from Debian arm64 parts.
#[derive(Debug, Parser)]
#[command(name = "build-images", after_help = fixture_list())]
struct Args {
    /// Cache and output directory [default: $R2S_FIXTURE_DIR or <workspace>/target/fixtures]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Fixtures to build [default: all]
    #[arg(value_name = "NAME")]
    names: Vec<String>,
}

fn fixture_list() -> String {
    let mut text = String::from("Fixtures:\n");
    for fixture in r2s_images::fixtures() {
        text.push_str(&format!("  {}\n      {}\n", fixture.name, fixture.description));
    }
    text
}

fn main() -> ExitCode {
    let args = Args::parse();
    let dir = args.out.unwrap_or_else(r2s_images::default_cache_dir);
    let names: Vec<String> = if args.names.is_empty() {
        r2s_images::fixtures().iter().map(|f| f.name.to_owned()).collect()
    } else {
        args.names
    };
    for name in &names {
        match r2s_images::build(name, &dir) {
            Ok(path) => println!("{}", path.display()),
            Err(err) => {
                eprintln!("build-images: {name}: {err}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
