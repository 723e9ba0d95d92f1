//! `harness run --baseline`, `--max-regression` and `--write-baseline`: this run's stage timings
//! set against an earlier run's.

use std::path::Path;

use r2s_harness::report::baseline::{Baseline, BaselineError, Policy};
use r2s_harness::report::timings::Timings;
use r2s_harness::runner::ScenarioResult;

use super::RunArgs;

/// The baseline and policy a run is held to, read before anything boots so that a bad baseline
/// costs no boot.
pub struct BaselineCheck {
    baseline: Baseline,
    policy: Policy,
}

impl BaselineCheck {
    /// The check `args` ask for, if any.
    pub fn from_args(args: &RunArgs) -> Result<Option<BaselineCheck>, BaselineError> {
        let Some(path) = &args.baseline else {
            return Ok(None);
        };
        let baseline = Baseline::load(path)?;
        Ok(Some(BaselineCheck {
            baseline,
            policy: Policy {
                max_regression: args.max_regression,
                ..Policy::default()
            },
        }))
    }

    /// Prints the comparison; true when no stage regressed.
    pub fn report(&self, image: &Path, results: &[ScenarioResult]) -> bool {
        let runs: Vec<Timings> = results.iter().map(|r| Timings::of(r, image)).collect();
        let comparison = self.baseline.compare(&runs, &self.policy);
        println!(
            "stage timings against baseline {}:",
            self.baseline.source.display()
        );
        print!("{}", comparison.render(&self.policy));
        let clean = comparison.regressions().next().is_none();
        clean
    }
}

/// `--max-regression`: a percentage, zero or more.
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("{text:?} is not a number of percent"))?;
    if !(value.is_finite() && value >= 0.0) {
        return Err(format!("{text:?}: a regression limit must be 0 or more"));
    }
    Ok(value)
}
