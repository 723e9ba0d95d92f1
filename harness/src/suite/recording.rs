//! A scenario's transcript files, from before its target starts to its result.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::SuiteError;
use crate::console::Transcript;
use crate::runner::{Origin, RunOutput, ScenarioResult};
use crate::scenario::transcript_stem;
use crate::scenario::Scenario;
use crate::targets::StartLog;

/// An open transcript of one scenario.
pub struct Recording {
    dir: PathBuf,
    pub(super) transcript: Transcript,
}

impl Recording {
    /// Creates `<dir>/<scenario>.{log,raw,cast}`.
    pub fn start(dir: &Path, scenario: &Scenario) -> Result<Recording, SuiteError> {
        let error = |source| SuiteError::Transcript {
            dir: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(error)?;
        let stem = transcript_stem(&scenario.name);
        let transcript = Transcript::create(dir, &stem, &scenario.name).map_err(error)?;
        Ok(Recording {
            dir: dir.to_owned(),
            transcript,
        })
    }

    /// A harness remark at `at` from the target's start.
    pub fn note_at(&mut self, at: Duration, text: &str) {
        let _ = self.transcript.note(at, text);
    }

    /// A harness remark before the target started.
    pub fn note(&mut self, text: &str) {
        self.note_at(Duration::ZERO, text);
    }

    /// Notes `error`, which ends the run before a verdict, closes the transcript and hands the
    /// error back: a run refused at the start (a port in use, a device that never appeared)
    /// still leaves a transcript saying why.
    pub fn abandon(mut self, error: SuiteError) -> SuiteError {
        self.note(&format!("ERROR: {error}"));
        let _ = self.transcript.finish();
        error
    }

    /// Closes the transcript of an attempt whose result is not the scenario's (a restore that
    /// is retried); the next attempt's recording replaces the files.
    pub fn discard(self) {
        let _ = self.transcript.finish();
    }

    /// Closes the transcript and makes the scenario's result; `extra` are further transcript
    /// files of the run (the priming boot's).
    pub fn finish(
        self,
        scenario: &Scenario,
        out: RunOutput,
        origin: Origin,
        extra: Vec<PathBuf>,
    ) -> Result<ScenarioResult, SuiteError> {
        let paths = self
            .transcript
            .finish()
            .map_err(|source| SuiteError::Transcript {
                dir: self.dir.clone(),
                source,
            })?;
        let mut transcript = vec![paths.log, paths.raw, paths.cast];
        transcript.extend(extra);
        transcript.extend(out.artifacts);
        Ok(ScenarioResult {
            name: scenario.name.clone(),
            source: scenario.source.clone(),
            verdict: out.verdict,
            duration: out.duration,
            stages: out.stages,
            last_lines: out.last_lines,
            failed_units: out.failed_units,
            transcript,
            origin,
            earlier_tries: Vec::new(),
        })
    }
}

/// What a target does while starting or stopping, written into the recording at `at`, with
/// requests to the operator passed on to the observer.
pub struct TargetLog<'a> {
    pub recording: &'a mut Recording,
    pub observer: &'a mut dyn crate::runner::Observer,
    pub at: Duration,
}

impl StartLog for TargetLog<'_> {
    fn note(&mut self, text: &str) {
        self.recording.note_at(self.at, text);
    }

    fn ask_operator(&mut self, request: &str) {
        self.observer.ask_operator(request);
    }
}
