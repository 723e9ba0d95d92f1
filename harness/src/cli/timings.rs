//! `harness run --baseline` and `--max-regression`: this run's stage timings set against an
//! earlier run's, as a reporter of the suite's events. (`--write-baseline` is the timings
//! reporter's combined file.)

use std::cell::Cell;
use std::rc::Rc;

use r2s_harness::report::baseline::{Baseline, BaselineError, Policy};
use r2s_harness::report::timings::Timings;
use r2s_harness::suite::ReportError;
use r2s_harness::suite::{Reporter, SuiteEvent, SuiteEventKind};

use super::RunArgs;

/// The baseline and policy a run is held to, read before anything boots so that a bad baseline
/// costs no boot. When the suite finishes, prints the comparison.
pub struct BaselineCheck {
    baseline: Baseline,
    policy: Policy,
    clean: Rc<Cell<Option<bool>>>,
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
            clean: Rc::default(),
        }))
    }

    /// The baseline and the rule a stage is judged by.
    pub fn baseline(&self) -> (&Baseline, Policy) {
        (&self.baseline, self.policy)
    }

    /// Whether no stage regressed, once the suite has finished (`None` before, and for a run
    /// that stopped early, which is not compared).
    pub fn outcome(&self) -> Rc<Cell<Option<bool>>> {
        self.clean.clone()
    }
}

impl Reporter for BaselineCheck {
    fn report(&mut self, event: &SuiteEvent) -> Result<(), ReportError> {
        let SuiteEventKind::SuiteFinished { against, results } = &event.kind else {
            return Ok(());
        };
        let runs: Vec<Timings> = results.iter().map(|r| Timings::of(r, against)).collect();
        let comparison = self.baseline.compare(&runs, &self.policy);
        super::human::show(format!(
            "stage timings against baseline {}:",
            self.baseline.source.display()
        ));
        let rendered = comparison.render(&self.policy);
        if !rendered.is_empty() {
            super::human::show(rendered.strip_suffix('\n').unwrap_or(&rendered));
        }
        self.clean.set(Some(comparison.regressions().next().is_none()));
        Ok(())
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
