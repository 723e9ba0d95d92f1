//! Reading scenario files: TOML text to a validated [`Scenario`], every error placed in the file.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::default_login;
use super::error::{ScenarioError, ScenarioErrorKind};
use super::image_variables;
use super::model::{LoginRecipe, Password, PromptRegex, SavedStart, Scenario, Secret, Start, Step};
use super::name::{check_name, file_key};
use super::network::{CommandCheck, Forward, NetworkSpec, RawNetwork};
use super::raw::{console_regex, RawLogin, RawScenario, StartValue};
use super::requires::Requirement;
use super::step_kind::{Action, RawAction, RawStep, StepKind};
use super::step_table::RestrictedKey;
use crate::config::{read_text, SourceText, Table, Timeout};
use crate::console::Pattern;
use crate::image::facts::ImageFacts;

/// The whole-scenario budget when the file gives none: room for a full NixOS, which under
/// QEMU's TCG takes one to several minutes to reach its getty, on a loaded machine.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// Parses and validates scenario text; `source` names the file in errors and locations. No
/// image is known: `${IMAGE_…}` values are not told (see [`parse_for`]).
pub fn parse(text: &str, source: &Path) -> Result<Scenario, ScenarioError> {
    parse_for(text, source, None)
}

/// [`parse`] for the image `facts` describe: `${IMAGE_…}` replaced by its values, and
/// [`Scenario::skip`] saying why the scenario does not apply to it, if it does not.
pub fn parse_for(text: &str, source: &Path, facts: Option<&ImageFacts>) -> Result<Scenario, ScenarioError> {
    parse_with_image(&SourceText::new(text, source), facts).map(|(scenario, _)| scenario)
}

/// The scenario of `file` for the image `facts` describe, and the span of its `name` value.
fn parse_with_image(
    file: &SourceText<'_>,
    facts: Option<&ImageFacts>,
) -> Result<(Scenario, Range<usize>), ScenarioError> {
    let substituted = image_variables::substitute(file.text, facts)
        .map_err(|unknown| file.error(Some(unknown.span), ScenarioErrorKind::Invalid(unknown.message)))?;
    // Values are single words: the substituted text has the same lines as the file.
    let (mut scenario, name_span) = parse_file(&SourceText::new(&substituted.text, file.path))?;
    if let Some(user) = facts.and_then(|f| f.autologin.as_deref()) {
        default_login::follow_autologin(&mut scenario, user);
    }
    let unmet = scenario
        .requires
        .iter()
        .find_map(|requirement| requirement.unmet(facts));
    scenario.skip = unmet.or_else(|| {
        (!substituted.not_told.is_empty()).then(|| {
            format!(
                "needs what the image does not tell: {}",
                substituted.not_told.join("; ")
            )
        })
    });
    Ok((scenario, name_span))
}

/// The scenario and the span of its `name` value.
fn parse_file(file: &SourceText<'_>) -> Result<(Scenario, Range<usize>), ScenarioError> {
    let text = file.text;
    // Parsed once for its key spans: serde only hands out the spans of values, and errors
    // about a key (a second action, a misplaced `status`) should point at the key.
    let document = DeTable::parse(text).map_err(|e| {
        file.error(
            e.span(),
            ScenarioErrorKind::Syntax {
                message: e.message().to_owned(),
            },
        )
    })?;
    // Deserialized from a copy of that parse: parsing the text twice costs more than the copy.
    let raw = RawScenario::deserialize(toml::de::Deserializer::from(document.clone())).map_err(|e| {
        file.error(
            e.span(),
            ScenarioErrorKind::Schema {
                message: e.message().trim_end().to_owned(),
            },
        )
    })?;
    Validator {
        file,
        document: document.get_ref(),
    }
    .scenario(raw)
}

/// Reads and parses one scenario file.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let text = read_text(path, ScenarioErrorKind::Read)?;
    parse(&text, path)
}

/// [`load_all_for`] with no image known.
pub fn load_all(paths: &[PathBuf]) -> Result<Vec<Scenario>, ScenarioError> {
    load_all_for(paths, None)
}

/// Loads scenario files and directories: a directory stands for every `*.toml` file directly
/// inside it, in name order; files are taken as given, in the order given. Stops at the first
/// error, which names its file. Scenario names must be unique across the result, also when
/// compared as transcript file names (case folded, see [`ScenarioErrorKind::DuplicateName`]).
/// An empty directory contributes nothing (the result may be empty).
/// Each is read for the image `facts` describe (see [`parse_for`]).
pub fn load_all_for(paths: &[PathBuf], facts: Option<&ImageFacts>) -> Result<Vec<Scenario>, ScenarioError> {
    let mut scenarios: Vec<Scenario> = Vec::new();
    // Per file key: the index of the scenario that has it.
    let mut first_use: HashMap<String, usize> = HashMap::new();
    for path in scenario_files(paths)? {
        let text = read_text(&path, ScenarioErrorKind::Read)?;
        let file = SourceText::new(&text, &path);
        let (scenario, name_span) = parse_with_image(&file, facts)?;
        match first_use.entry(file_key(&scenario.name)) {
            Entry::Occupied(entry) => {
                let first = &scenarios[*entry.get()];
                let kind = ScenarioErrorKind::DuplicateName {
                    name: scenario.name.clone(),
                    first: first.source.clone(),
                    first_name: first.name.clone(),
                };
                return Err(file.error(Some(name_span), kind));
            }
            Entry::Vacant(entry) => {
                entry.insert(scenarios.len());
            }
        }
        scenarios.push(scenario);
    }
    resolve_saved_starts(&mut scenarios)?;
    Ok(scenarios)
}

/// What [`load_each_for`] read: the scenarios of the valid files, and one error per file that
/// is not (or per directory that cannot be listed), in the order given.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The valid scenarios, their saved starts resolved.
    pub scenarios: Vec<Scenario>,
    /// The files that are not valid scenarios, each error naming its file.
    pub broken: Vec<ScenarioError>,
}

/// [`load_all_for`] that does not stop at a bad file: every file is read, a bad one (unreadable,
/// invalid, a name taken already, a start state no valid file saves) is kept as an error of
/// its own, so that the good ones can still run and the bad one can be reported.
pub fn load_each_for(paths: &[PathBuf], facts: Option<&ImageFacts>) -> Loaded {
    let mut loaded = Loaded::default();
    let mut first_use: HashMap<String, usize> = HashMap::new();
    let mut files = Vec::new();
    for path in paths {
        match scenario_files(std::slice::from_ref(path)) {
            Ok(found) => files.extend(found),
            Err(e) => loaded.broken.push(e),
        }
    }
    for path in files {
        let parsed = read_text(&path, ScenarioErrorKind::Read).and_then(|text| {
            let file = SourceText::new(&text, &path);
            let (scenario, name_span) = parse_with_image(&file, facts)?;
            match first_use.entry(file_key(&scenario.name)) {
                Entry::Occupied(entry) => {
                    let first = &loaded.scenarios[*entry.get()];
                    let kind = ScenarioErrorKind::DuplicateName {
                        name: scenario.name.clone(),
                        first: first.source.clone(),
                        first_name: first.name.clone(),
                    };
                    Err(file.error(Some(name_span), kind))
                }
                Entry::Vacant(entry) => {
                    entry.insert(loaded.scenarios.len());
                    Ok(scenario)
                }
            }
        });
        match parsed {
            Ok(scenario) => loaded.scenarios.push(scenario),
            Err(e) => loaded.broken.push(e),
        }
    }
    // Each error names one file; without it, the others may resolve (or fail in turn: a start
    // from a state only the removed file saves). At most one pass per scenario.
    for _ in 0..=loaded.scenarios.len() {
        let Err(e) = resolve_saved_starts(&mut loaded.scenarios) else {
            break;
        };
        loaded.scenarios.retain(|s| s.source != e.path);
        loaded.broken.push(e);
    }
    loaded
}

/// Fills in how each `start = "<name>"` is reached, from the scenario among `scenarios` whose
/// `save_state` step names it. A state saved by two scenarios, one no scenario saves, and
/// states that start from each other are errors of the file that names them.
pub fn resolve_saved_starts(scenarios: &mut [Scenario]) -> Result<(), ScenarioError> {
    let mut savers: HashMap<String, usize> = HashMap::new();
    for (index, scenario) in scenarios.iter().enumerate() {
        let Some((_, name)) = scenario.save_state_step() else {
            continue;
        };
        if let Some(&first) = savers.get(name) {
            return Err(ScenarioError::new(
                &scenario.source,
                ScenarioErrorKind::Invalid(format!(
                    "state {name:?} is saved already by scenario {:?} ({}): name this one differently",
                    scenarios[first].name,
                    scenarios[first].source.display()
                )),
            ));
        }
        savers.insert(name.to_owned(), index);
    }
    let unresolved = |s: &Scenario| matches!(&s.start, Start::Saved(SavedStart { recipe: None, .. }));
    // Each pass resolves at least one start whose saver's own start is resolved; a chain of
    // states is as long as the number of scenarios at most.
    for _ in 0..=scenarios.len() {
        let mut progress = false;
        for index in 0..scenarios.len() {
            let Start::Saved(SavedStart { name, recipe: None }) = &scenarios[index].start else {
                continue;
            };
            let Some(&saver) = savers.get(name) else {
                let kind = ScenarioErrorKind::Invalid(format!(
                    "start = {name:?}: no scenario loaded with this one saves a state of that name \
                     (a step `save_state = {name:?}`); give its file too, or start at \"power-on\", \
                     \"login\" or \"uboot\""
                ));
                return Err(ScenarioError::new(&scenarios[index].source, kind));
            };
            if unresolved(&scenarios[saver]) {
                continue;
            }
            let recipe = scenarios[saver].saved_recipe().map(Arc::new);
            if let Start::Saved(saved) = &mut scenarios[index].start {
                saved.recipe = recipe;
                progress = true;
            }
        }
        if !progress {
            break;
        }
    }
    if let Some(stuck) = scenarios.iter().find(|s| unresolved(s)) {
        let kind = ScenarioErrorKind::Invalid(format!(
            "start = {:?}: the states this scenario starts from lead back to it (each starts from \
             the state the next saves); one of them must start at \"power-on\", \"login\" or \"uboot\"",
            stuck.start.word()
        ));
        return Err(ScenarioError::new(&stuck.source, kind));
    }
    Ok(())
}

fn scenario_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, ScenarioError> {
    let mut files = Vec::new();
    for path in paths {
        if !path.is_dir() {
            files.push(path.clone());
            continue;
        }
        let list_error = |e| ScenarioError::new(path, ScenarioErrorKind::ReadDir(e));
        let mut inside = Vec::new();
        for entry in std::fs::read_dir(path).map_err(list_error)? {
            let entry_path = entry.map_err(list_error)?.path();
            if entry_path.extension().is_some_and(|ext| ext == "toml") && !entry_path.is_dir() {
                inside.push(entry_path);
            }
        }
        inside.sort();
        files.extend(inside);
    }
    Ok(files)
}

/// One step of a path into the TOML document.
#[derive(Clone, Copy)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

/// The spans of a key and of its value, found by following `path` from the document root.
fn key_span(document: &DeTable<'_>, path: &[Seg<'_>]) -> Option<(Range<usize>, Range<usize>)> {
    let (last, parents) = path.split_last()?;
    let mut table = document;
    let mut value: Option<&DeValue<'_>> = None;
    for seg in parents {
        let next = match (seg, value) {
            (Seg::Key(key), _) => table
                .iter()
                .find(|(k, _)| k.get_ref() == key)
                .map(|(_, v)| v.get_ref())?,
            (Seg::Index(i), Some(DeValue::Array(items))) => items.get(*i).map(|v| v.get_ref())?,
            (Seg::Index(_), _) => return None,
        };
        if let DeValue::Table(inner) = next {
            table = inner;
        }
        value = Some(next);
    }
    let Seg::Key(last) = last else { return None };
    table
        .iter()
        .find(|(k, _)| k.get_ref() == last)
        .map(|(k, v)| (k.span(), v.span()))
}

struct Validator<'a> {
    file: &'a SourceText<'a>,
    document: &'a DeTable<'a>,
}

impl Validator<'_> {
    fn scenario(&self, raw: RawScenario) -> Result<(Scenario, Range<usize>), ScenarioError> {
        let name_span = raw.name.span();
        check_name(&raw.name.get_ref().0).map_err(|e| {
            self.file
                .error(Some(name_span.clone()), ScenarioErrorKind::Name(e))
        })?;
        let steps_value = match raw.steps {
            Some(steps) if !steps.get_ref().is_empty() => steps.into_inner(),
            Some(steps) => return Err(self.file.error(Some(steps.span()), ScenarioErrorKind::NoSteps)),
            None => return Err(self.file.error(Some(0..0), ScenarioErrorKind::NoSteps)),
        };
        let mut steps = Vec::with_capacity(steps_value.len());
        for (index, step) in steps_value.into_iter().enumerate() {
            steps.push(self.step(index, step)?);
        }
        let mut fatal = Vec::with_capacity(raw.fatal.len() + raw.fatal_regex.len());
        for text in raw.fatal {
            if text.get_ref().is_empty() {
                return Err(self.invalid(text.span(), "must not be empty"));
            }
            fatal.push(Pattern::Literal(text.into_inner()));
        }
        for source in raw.fatal_regex {
            fatal.push(
                console_regex(source.get_ref()).map_err(|message| self.invalid(source.span(), message))?,
            );
        }
        let start = self.start(raw.start.clone(), raw.login, &steps)?;
        let network = match raw.network {
            Some(table) => Some(self.network(table.into_inner().0)?),
            None => None,
        };
        let on_failure = raw.on_failure.into_iter().map(|c| c.into_inner().0).collect();
        let mut requires = Vec::with_capacity(raw.requires.len());
        for text in raw.requires {
            requires.push(
                Requirement::parse(text.get_ref()).map_err(|message| self.invalid(text.span(), message))?,
            );
        }
        let scenario = Scenario {
            name: raw.name.into_inner().0,
            description: raw.description,
            timeout: raw.timeout.map_or(DEFAULT_TIMEOUT, |t| t.get()),
            start,
            real_time_boot: raw.real_time_boot.unwrap_or(false),
            fatal,
            steps,
            network,
            on_failure,
            requires,
            skip: None,
            source: self.file.path.to_owned(),
        };
        Ok((scenario, name_span))
    }

    /// `start`, its login recipe, and the steps a shell start rules out.
    fn start(
        &self,
        start: Option<StartValue>,
        login: Option<Spanned<Table<RawLogin>>>,
        steps: &[Step],
    ) -> Result<Start, ScenarioError> {
        self.one_save_state(steps)?;
        if start != Some(StartValue::Login) {
            if let Some(login) = login {
                let span = key_span(self.document, &[Seg::Key("login")]).map_or(login.span(), |(key, _)| key);
                return Err(self
                    .file
                    .error(Some(span), ScenarioErrorKind::RecipeWithoutLoginStart));
            }
            return match start {
                Some(StartValue::Uboot) => Ok(Start::Uboot),
                Some(StartValue::Saved(name)) => {
                    if let Some(Action::SaveState(own)) = steps
                        .iter()
                        .map(|s| &s.action)
                        .find(|a| matches!(a, Action::SaveState(_)))
                    {
                        if *own == name {
                            let span = key_span(self.document, &[Seg::Key("start")]).map(|(_, value)| value);
                            return Err(self.file.error(
                                span,
                                ScenarioErrorKind::Invalid(format!(
                                    "the scenario starts from {name:?}, the state it saves itself"
                                )),
                            ));
                        }
                    }
                    Ok(Start::Saved(SavedStart { name, recipe: None }))
                }
                _ => Ok(Start::PowerOn),
            };
        }
        for (index, step) in steps.iter().enumerate() {
            let kind = step.action.kind();
            if !kind.needs_boot() {
                continue;
            }
            let action = kind.key();
            let span = key_span(
                self.document,
                &[Seg::Key("steps"), Seg::Index(index), Seg::Key(action)],
            )
            .map(|(key, _)| key);
            return Err(self.file.error(span, ScenarioErrorKind::StepNeedsBoot { action }));
        }
        let recipe = match login {
            Some(login) => {
                let (user, password, prompt) = self.login(&[Seg::Key("login")], login.into_inner().0)?;
                LoginRecipe {
                    user,
                    password,
                    prompt,
                }
            }
            None => LoginRecipe::default_root(),
        };
        Ok(Start::Login(recipe))
    }

    /// A scenario saves at most one state: a second `save_state` step is a slip.
    fn one_save_state(&self, steps: &[Step]) -> Result<(), ScenarioError> {
        let mut saves = steps
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s.action, Action::SaveState(_)));
        if let (Some(_), Some((second, _))) = (saves.next(), saves.next()) {
            let span = key_span(
                self.document,
                &[
                    Seg::Key("steps"),
                    Seg::Index(second),
                    Seg::Key(StepKind::SaveState.key()),
                ],
            )
            .map(|(key, _)| key);
            return Err(self.file.error(
                span,
                ScenarioErrorKind::Invalid(
                    "a scenario saves one state: this is its second `save_state` step".to_owned(),
                ),
            ));
        }
        Ok(())
    }

    fn invalid(&self, span: Range<usize>, message: impl Into<String>) -> ScenarioError {
        self.file
            .error(Some(span), ScenarioErrorKind::Invalid(message.into()))
    }

    fn step(&self, index: usize, step: Spanned<Table<RawStep>>) -> Result<Step, ScenarioError> {
        let location = self.file.location(step.span().start);
        let step_span = step.span();
        let mut raw = step.into_inner().0;
        let key_error = |key: &str, fallback: Range<usize>, kind| {
            let span = key_span(
                self.document,
                &[Seg::Key("steps"), Seg::Index(index), Seg::Key(key)],
            )
            .map_or(fallback, |(key, _)| key);
            self.file.error(Some(span), kind)
        };

        let mut present = RawAction::take_all(&mut raw).into_iter();
        let action = match (present.next(), present.next()) {
            (None, _) => return Err(self.file.error(Some(step_span), ScenarioErrorKind::NoAction)),
            (Some(only), None) => only,
            (Some(first), Some(second)) => {
                let kind = ScenarioErrorKind::TwoActions {
                    first: first.kind().key(),
                    second: second.kind().key(),
                };
                return Err(key_error(second.kind().key(), second.span(), kind));
            }
        };
        let step_kind = action.kind();
        let restricted = [
            (RestrictedKey::Status, raw.status.as_ref().map(Spanned::span)),
            (RestrictedKey::Output, raw.output.as_ref().map(Spanned::span)),
            (RestrictedKey::Until, raw.until.as_ref().map(Spanned::span)),
        ];
        for (key, span) in restricted {
            if let Some(span) = span.filter(|_| !step_kind.takes(key)) {
                let kind = ScenarioErrorKind::MisplacedKey {
                    key: key.key(),
                    action: step_kind.key(),
                    applies_to: StepKind::taking(key),
                };
                return Err(key_error(key.key(), span, kind));
            }
        }
        let until = match raw.until {
            Some(until) => Some(self.until(until, raw.timeout.as_ref())?),
            None => None,
        };
        let input = StepInput {
            validator: self,
            index,
            key: step_kind.key(),
            value_span: action.span(),
            status: raw.status.map_or(0, Spanned::into_inner),
            output: raw.output.map(|o| o.into_inner().0),
            until,
        };
        Ok(Step {
            action: action.into_action(input)?,
            timeout: raw.timeout.map(|t| t.into_inner().get()),
            stage: raw.stage.map(|s| s.0),
            location,
        })
    }

    /// A step's `until`, which must be no longer than the step's own `timeout`: that bounds
    /// every try together.
    fn until(
        &self,
        until: Spanned<Timeout>,
        timeout: Option<&Spanned<Timeout>>,
    ) -> Result<Duration, ScenarioError> {
        let window = until.get_ref().get();
        if let Some(timeout) = timeout {
            let limit = timeout.get_ref().get();
            if window > limit {
                return Err(self.invalid(
                    until.span(),
                    format!(
                        "`until` ({}) is longer than the step's `timeout` ({}), which bounds every try together: \
                         shorten `until` or lengthen `timeout`",
                        humantime::format_duration(window),
                        humantime::format_duration(limit)
                    ),
                ));
            }
        }
        Ok(window)
    }

    /// `[network]`: its forwards checked one by one, each at its place, and listed once.
    fn network(&self, raw: RawNetwork) -> Result<NetworkSpec, ScenarioError> {
        let mut spec = NetworkSpec::default();
        for text in raw.forward {
            let forward = Forward::parse(text.get_ref()).map_err(|m| self.invalid(text.span(), m))?;
            if spec.forwards.contains(&forward) {
                return Err(self.invalid(text.span(), format!("{forward} is forwarded already")));
            }
            spec.forwards.push(forward);
        }
        Ok(spec)
    }

    /// A login table's user, password and prompt; `at` is the path of the table in the
    /// document.
    fn login(
        &self,
        at: &[Seg<'_>],
        login: RawLogin,
    ) -> Result<(String, Password, Option<PromptRegex>), ScenarioError> {
        let password = match (login.password_env, login.password) {
            (None, None) => Password::None,
            (Some(env), None) => Password::Env(env.into_inner().0),
            (None, Some(literal)) => Password::Literal(Secret::new(literal.into_inner())),
            (Some(env), Some(literal)) => {
                let (second, span) = if env.span().start > literal.span().start {
                    ("password_env", env.span())
                } else {
                    ("password", literal.span())
                };
                let path: Vec<Seg<'_>> = at.iter().copied().chain([Seg::Key(second)]).collect();
                let span = key_span(self.document, &path).map_or(span, |(key, _)| key);
                return Err(self.invalid(span, "give either `password_env` or `password`, not both"));
            }
        };
        let prompt = login.prompt.map(|regex| PromptRegex::new(regex.0));
        Ok((login.user.0, password, prompt))
    }
}

/// What a row of the step table makes its action with, besides its key's value: the rest of
/// the step, and the scenario file for errors and paths.
pub(super) struct StepInput<'a> {
    validator: &'a Validator<'a>,
    /// The step's index among the file's `[[steps]]`.
    index: usize,
    /// The step's action key.
    key: &'static str,
    /// Where the action key's value is.
    value_span: Range<usize>,
    /// `status`, 0 when the step gives none (only steps whose row takes it can give it).
    pub(super) status: i32,
    /// `output`, when given.
    pub(super) output: Option<regex::Regex>,
    /// `until`, when given; no longer than the step's `timeout`.
    pub(super) until: Option<Duration>,
}

impl StepInput<'_> {
    /// A command's checks: `status`, `output` and `until`.
    pub(super) fn check(self) -> CommandCheck {
        CommandCheck {
            status: self.status,
            output: self.output,
            until: self.until,
        }
    }

    /// An error about the action key's value, pointing at it.
    pub(super) fn invalid(&self, message: impl Into<String>) -> ScenarioError {
        self.validator.invalid(self.value_span.clone(), message)
    }

    /// The user, password and prompt of a login table that is the action key's value.
    pub(super) fn login(
        &self,
        login: RawLogin,
    ) -> Result<(String, Password, Option<PromptRegex>), ScenarioError> {
        let at = [Seg::Key("steps"), Seg::Index(self.index), Seg::Key(self.key)];
        self.validator.login(&at, login)
    }

    /// A local path as the file gives it, relative to the scenario file's directory unless
    /// absolute.
    pub(super) fn beside_file(&self, path: String) -> PathBuf {
        let path = PathBuf::from(path);
        match self.validator.file.path.parent() {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path,
        }
    }
}
