//! `harness inspect`: static checks of an image before flashing.

use r2s_harness::board;
use r2s_harness::inspect::{self, render, Board, Profile, Status};

use super::{InspectArgs, OutputFormat, EXIT_ERROR, EXIT_FAIL, EXIT_PASS};

/// Inspects the image and prints the report; exit 0 when nothing fails, 1 when a check fails,
/// 2 when the image cannot be read.
pub fn inspect(args: InspectArgs) -> u8 {
    let profile = if args.board == Board::NanopiR2s.to_string() {
        *Board::NanopiR2s.profile()
    } else {
        match board::Board::load(&args.board) {
            Ok(board) => Profile::r2s_with_console_of(&board),
            Err(e) => {
                super::say(&e);
                return EXIT_ERROR;
            }
        }
    };
    // An image that cannot be read is exit 2, said on stderr and, for JSON, as a JSON error.
    let unreadable = |error: &dyn std::error::Error| {
        super::say(error);
        if args.format == OutputFormat::Json {
            print!(
                "{}",
                render::json_error(&args.image, profile.name, &error.to_string())
            );
        }
        EXIT_ERROR
    };
    // A compressed image is unpacked into the default cache, or a per-run one where that
    // cannot be written; held until the report is printed.
    let cache = super::cache_dir::for_image(&args.image);
    let opened = match super::run::open_image(&args.image, cache.as_ref().map(|c| c.dir.as_path())) {
        Ok(opened) => opened,
        Err(error) => return unreadable(&error),
    };
    let report = match inspect::inspect_for(opened.disk(), &profile) {
        Ok(mut report) => {
            // The report names the file the user gave, not the cache's unpacked copy.
            report.image = args.image.clone();
            report
        }
        Err(error) => return unreadable(&error),
    };
    match args.format {
        OutputFormat::Text => print!("{}", render::text(&report)),
        OutputFormat::Json => print!("{}", render::json(&report)),
    }
    if report.status() == Status::Fail {
        EXIT_FAIL
    } else {
        EXIT_PASS
    }
}
