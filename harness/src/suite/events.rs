//! What happens in a suite run, as one stream of timestamped events. The text report, the
//! progress line, JUnit and the timings files are [`Reporter`]s of this stream; a new report
//! is a new reporter, attached by the CLI.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use crate::runner::{Observer, ScenarioResult, Stage};

/// One thing that happened, and when.
#[derive(Debug, Clone)]
pub struct SuiteEvent {
    /// Wall-clock time of the event.
    pub timestamp: SystemTime,
    /// Time since the suite started.
    pub elapsed: Duration,
    pub kind: SuiteEventKind,
}

/// What happened.
#[derive(Debug, Clone)]
pub enum SuiteEventKind {
    /// The suite begins: `scenarios` scenarios against `against` (an image, a console port).
    SuiteStarted { against: PathBuf, scenarios: usize },
    /// A remark about the run as a whole (how `start = "login"` scenarios are started).
    Note { text: String },
    /// A scenario's run begins.
    ScenarioStarted { scenario: String },
    /// A scenario's console entered a boot stage, `at` after its target started.
    StageEntered {
        scenario: String,
        stage: Stage,
        at: Duration,
    },
    /// A step (1-based) begins.
    StepStarted {
        scenario: String,
        step: usize,
        description: String,
    },
    /// A step ended.
    StepFinished {
        scenario: String,
        step: usize,
        passed: bool,
    },
    /// A scenario is still running, `elapsed` after its target started; at least every
    /// quarter second while it waits.
    Tick { scenario: String, elapsed: Duration },
    /// The operator must act (power-cycle a board by hand).
    OperatorAsked { scenario: String, request: String },
    /// A try of a scenario failed and the scenario runs again (`--retries`); `result` is that
    /// try's, its transcripts set aside, and `try_number` counts from 1.
    ScenarioRetried {
        result: Box<ScenarioResult>,
        try_number: usize,
    },
    /// A scenario ended; its result is complete (with its failed tries, if it was retried).
    ScenarioFinished { result: Box<ScenarioResult> },
    /// The suite ended: every result in the scenarios' order (one the harness could not run
    /// among them, as an error).
    SuiteFinished {
        against: PathBuf,
        results: Vec<ScenarioResult>,
    },
}

/// A report that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file of a report without a name of its own (the timings files).
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write HTML report {path}: {source}")]
    Html {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write JUnit report {path}: {source}")]
    Junit {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Something that turns events into a report.
pub trait Reporter {
    /// Takes one event. An error (a report file that cannot be written) does not stop the
    /// run; the suite hands it back at the end.
    fn report(&mut self, event: &SuiteEvent) -> Result<(), ReportError>;
}

/// The reporters of a run, fed in the order they were attached.
pub struct Reporters {
    started: Instant,
    reporters: Vec<Box<dyn Reporter>>,
    errors: Vec<ReportError>,
}

impl Default for Reporters {
    fn default() -> Self {
        Reporters {
            started: Instant::now(),
            reporters: Vec::new(),
            errors: Vec::new(),
        }
    }
}

impl Reporters {
    /// No reporters yet; the suite's clock starts now.
    pub fn new() -> Reporters {
        Reporters::default()
    }

    /// Adds `reporter` after those attached before.
    pub fn attach(&mut self, reporter: impl Reporter + 'static) {
        self.reporters.push(Box::new(reporter));
    }

    /// Hands `kind`, stamped now, to every reporter.
    pub fn emit(&mut self, kind: SuiteEventKind) {
        let event = SuiteEvent {
            timestamp: SystemTime::now(),
            elapsed: self.started.elapsed(),
            kind,
        };
        for reporter in &mut self.reporters {
            if let Err(e) = reporter.report(&event) {
                self.errors.push(e);
            }
        }
    }

    /// The reporters' errors so far, emptied.
    pub fn take_errors(&mut self) -> Vec<ReportError> {
        std::mem::take(&mut self.errors)
    }
}

/// One scenario's observer: what the runner hears becomes events of that scenario. Clones
/// share the reporters, so that scenarios running side by side report into one stream.
#[derive(Clone)]
pub struct ScenarioEvents {
    scenario: String,
    reporters: Rc<RefCell<Reporters>>,
}

impl ScenarioEvents {
    /// The observer of `scenario`.
    pub fn new(scenario: &str, reporters: Rc<RefCell<Reporters>>) -> ScenarioEvents {
        ScenarioEvents {
            scenario: scenario.to_owned(),
            reporters,
        }
    }

    fn emit(&self, kind: SuiteEventKind) {
        self.reporters.borrow_mut().emit(kind);
    }
}

impl Observer for ScenarioEvents {
    fn stage(&mut self, stage: &Stage, at: Duration) {
        self.emit(SuiteEventKind::StageEntered {
            scenario: self.scenario.clone(),
            stage: stage.clone(),
            at,
        });
    }

    fn step_started(&mut self, step: usize, description: &str) {
        self.emit(SuiteEventKind::StepStarted {
            scenario: self.scenario.clone(),
            step,
            description: description.to_owned(),
        });
    }

    fn step_finished(&mut self, step: usize, passed: bool) {
        self.emit(SuiteEventKind::StepFinished {
            scenario: self.scenario.clone(),
            step,
            passed,
        });
    }

    fn tick(&mut self, elapsed: Duration) {
        self.emit(SuiteEventKind::Tick {
            scenario: self.scenario.clone(),
            elapsed,
        });
    }

    fn ask_operator(&mut self, request: &str) {
        self.emit(SuiteEventKind::OperatorAsked {
            scenario: self.scenario.clone(),
            request: request.to_owned(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records the events it hears, and fails on notes.
    struct Heard(Rc<RefCell<Vec<String>>>);

    impl Reporter for Heard {
        fn report(&mut self, event: &SuiteEvent) -> Result<(), ReportError> {
            let text = match &event.kind {
                SuiteEventKind::StageEntered { scenario, stage, .. } => format!("{scenario}: stage {stage}"),
                SuiteEventKind::StepStarted { scenario, step, .. } => format!("{scenario}: step {step}"),
                SuiteEventKind::Note { text } => {
                    return Err(ReportError::Junit {
                        path: text.into(),
                        source: std::io::Error::other("refused"),
                    })
                }
                other => format!("{other:?}"),
            };
            self.0.borrow_mut().push(text);
            Ok(())
        }
    }

    #[test]
    fn scenario_observers_report_into_one_stream_and_reporter_errors_are_kept_for_the_end() {
        let heard = Rc::new(RefCell::new(Vec::new()));
        let mut reporters = Reporters::new();
        reporters.attach(Heard(heard.clone()));
        let reporters = Rc::new(RefCell::new(reporters));
        let mut a = ScenarioEvents::new("a", reporters.clone());
        let mut b = ScenarioEvents::new("b", reporters.clone());
        a.stage(&Stage::Restore, Duration::ZERO);
        b.stage(&Stage::Named("network".into()), Duration::from_secs(1));
        a.step_started(1, "send_line \"ping\"");
        reporters
            .borrow_mut()
            .emit(SuiteEventKind::Note { text: "n".into() });
        assert_eq!(
            *heard.borrow(),
            ["a: stage restore", "b: stage network", "a: step 1"]
        );
        let errors = reporters.borrow_mut().take_errors();
        assert_eq!(errors.len(), 1);
        assert!(reporters.borrow_mut().take_errors().is_empty());
    }
}
