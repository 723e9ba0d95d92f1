//! `harness inspect`: static checks of an image before flashing.

use r2s_harness::inspect::{self, render, Status};

use super::{InspectArgs, OutputFormat, EXIT_ERROR, EXIT_FAIL, EXIT_PASS};

/// Inspects the image and prints the report; exit 0 when nothing fails, 1 when a check fails,
/// 2 when the image cannot be read.
pub fn inspect(args: InspectArgs) -> u8 {
    let report = match inspect::inspect(&args.image, args.board) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("harness: {error}");
            if args.format == OutputFormat::Json {
                print!(
                    "{}",
                    render::json_error(&args.image, args.board.profile().name, &error.to_string())
                );
            }
            return EXIT_ERROR;
        }
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
