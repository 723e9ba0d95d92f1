//! A labgrid environment file (`--lg-env FILE`), read for the facts about logging in that the
//! harness also needs, so that operators keep them in one place: the ShellDriver's `prompt`,
//! `username` and `password`, and the UBootDriver's `prompt` (literal text), of the target
//! `main` (or the file's only target). The file is untrusted: its size and its values' lengths are bounded,
//! nesting is bounded by the parser's recursion limit, aliases expanded past [`MAX_NODES`] values
//! are refused before a document is built (an alias bomb), and every
//! refusal names the file and the key (and the line where the parser gives one). The password
//! is held as a [`Secret`]: nothing prints it.
//!
//! ```yaml
//! targets:
//!   main:
//!     drivers:
//!       ShellDriver:
//!         prompt: 'root@\w+:[^ ]+ '
//!         login_prompt: ' login: '
//!         username: 'root'
//!         password: 'secret'
//!       UBootDriver:
//!         prompt: '=> '
//! ```
//!
//! `drivers` (and `resources`) may also be a list of one-key maps, as labgrid allows.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_norway::Value;

use super::model::{LoginRecipe, Password, PromptRegex, Scenario, Secret, Start};
use super::step_kind::Action;
use crate::console::Pattern;

/// The largest environment file read: labgrid's are a few KiB.
pub const MAX_ENV_FILE: u64 = 1024 * 1024;

/// The variable the harness's default login takes its password from.
const DEFAULT_PASSWORD_VARIABLE: &str = "R2S_PASSWORD";

/// The longest value taken from the file.
const MAX_VALUE: usize = 1024;

/// The facts read from a labgrid environment file; each absent when the file gives none.
#[derive(Debug, Clone)]
pub struct LgEnv {
    /// The file.
    pub path: PathBuf,
    /// The ShellDriver's `prompt`: what the shell's prompt looks like.
    pub shell_prompt: Option<PromptRegex>,
    /// The ShellDriver's `username`.
    pub username: Option<String>,
    /// The ShellDriver's `password`.
    pub password: Option<Secret>,
    /// The UBootDriver's `prompt`, as its text.
    pub uboot_prompt: Option<String>,
}

/// Why an environment file was refused.
#[derive(Debug, thiserror::Error)]
pub enum LgEnvError {
    /// It could not be read, or is too large.
    #[error("labgrid environment {}: {detail}", path.display())]
    Read { path: PathBuf, detail: String },
    /// It is not YAML.
    #[error("labgrid environment {}{}: not YAML: {detail}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Yaml {
        path: PathBuf,
        /// The line the parser names, 1-based.
        line: Option<usize>,
        detail: String,
    },
    /// A key's value is not what labgrid (or the harness) takes.
    #[error("labgrid environment {}: {key}: {detail}", path.display())]
    Key {
        path: PathBuf,
        /// The key's path, `targets.main.drivers.ShellDriver.prompt`.
        key: String,
        detail: String,
    },
}

impl LgEnv {
    /// Reads `path`, at most [`MAX_ENV_FILE`] bytes.
    pub fn load(path: &Path) -> Result<LgEnv, LgEnvError> {
        let read_error = |detail: String| LgEnvError::Read {
            path: path.to_owned(),
            detail,
        };
        let file = std::fs::File::open(path).map_err(|e| read_error(e.to_string()))?;
        let mut bytes = Vec::new();
        file.take(MAX_ENV_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| read_error(e.to_string()))?;
        if bytes.len() as u64 > MAX_ENV_FILE {
            return Err(read_error(format!(
                "larger than {} KiB; a labgrid environment is a few KiB",
                MAX_ENV_FILE / 1024
            )));
        }
        let text = String::from_utf8(bytes)
            .map_err(|e| read_error(format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to())))?;
        LgEnv::parse(path, &text)
    }

    /// Reads the text of the file `path`.
    pub fn parse(path: &Path, text: &str) -> Result<LgEnv, LgEnvError> {
        let yaml_error = |e: serde_norway::Error| LgEnvError::Yaml {
            path: path.to_owned(),
            line: e.location().map(|l| l.line()),
            detail: e.to_string(),
        };
        // Counted first, building nothing: aliases expanded past MAX_NODES stop here, at
        // once, before they are built into a document.
        let nodes = std::cell::Cell::new(0);
        serde::de::DeserializeSeed::deserialize(
            NodeCount(&nodes),
            serde_norway::Deserializer::from_str(text),
        )
        .map_err(yaml_error)?;
        let document: Value = serde_norway::from_str(text).map_err(yaml_error)?;
        let reader = Reader { path };
        let (target_key, target) = reader.main_target(&document)?;
        let drivers_key = format!("{target_key}.drivers");
        let drivers = match target.get("drivers") {
            None | Some(Value::Null) => Vec::new(),
            Some(drivers) => reader.entries(&drivers_key, drivers)?,
        };
        let driver = |name: &str| -> Result<Option<(String, &Value)>, LgEnvError> {
            let mut found = drivers.iter().filter(|(n, _)| n == name);
            let first = found.next();
            if found.next().is_some() {
                return Err(reader.key(
                    &format!("{drivers_key}.{name}"),
                    "given twice; the harness reads one of each driver",
                ));
            }
            Ok(first.map(|(n, v)| (format!("{drivers_key}.{n}"), *v)))
        };
        let mut env = LgEnv {
            path: path.to_owned(),
            shell_prompt: None,
            username: None,
            password: None,
            uboot_prompt: None,
        };
        if let Some((key, shell)) = driver("ShellDriver")? {
            if let Some(prompt) = reader.text(&key, shell, "prompt", Allow::Prompt)? {
                let pattern = Pattern::regex(&prompt).map_err(|e| {
                    reader.key(
                        &format!("{key}.prompt"),
                        &format!("not a regex the harness reads: {e}"),
                    )
                })?;
                env.shell_prompt = Some(PromptRegex::new(pattern));
            }
            env.username = reader.text(&key, shell, "username", Allow::Word)?;
            env.password = reader
                .text(&key, shell, "password", Allow::Secret)?
                .map(Secret::new);
        }
        if let Some((key, uboot)) = driver("UBootDriver")? {
            env.uboot_prompt = reader.text(&key, uboot, "prompt", Allow::Prompt)?;
            // labgrid reads it as a regex; the harness, as text: only a prompt that is its own
            // text as a regex means the same to both.
            if env
                .uboot_prompt
                .as_ref()
                .is_some_and(|prompt| regex::escape(prompt) != *prompt)
            {
                return Err(reader.key(
                    &format!("{key}.prompt"),
                    "holds regex syntax; the harness matches U-Boot's prompt as literal text (write it as the text U-Boot prints, e.g. '=> ')",
                ));
            }
        }
        Ok(env)
    }

    /// Gives `scenario`'s logins what the file says where the scenario leaves it to the
    /// harness: a login with no `prompt` gets the ShellDriver's; the harness's default login
    /// (root, the password in `R2S_PASSWORD`, whether implied or written) gets its `username`,
    /// and its `password` unless `R2S_PASSWORD` is set (the environment, or the project file's
    /// `[passwords]`, wins). Saved starts' recipes are left as they are.
    pub fn apply(&self, scenario: &mut Scenario) {
        let password_set = std::env::var_os(DEFAULT_PASSWORD_VARIABLE).is_some();
        let login = |user: &mut String, password: &mut Password, prompt: &mut Option<PromptRegex>| {
            if prompt.is_none() {
                prompt.clone_from(&self.shell_prompt);
            }
            let default = LoginRecipe::default_root();
            if *user != default.user || *password != default.password {
                return;
            }
            if let Some(name) = &self.username {
                user.clone_from(name);
            }
            if let (Some(secret), false) = (&self.password, password_set) {
                *password = Password::Literal(secret.clone());
            }
        };
        if let Start::Login(recipe) = &mut scenario.start {
            login(&mut recipe.user, &mut recipe.password, &mut recipe.prompt);
        }
        for step in &mut scenario.steps {
            if let Action::Login {
                user,
                password,
                prompt,
            } = &mut step.action
            {
                login(user, password, prompt);
            }
        }
    }

    /// What the file gave, for the run's remarks: the password only as "given".
    pub fn describe(&self) -> String {
        let mut facts = Vec::new();
        if let Some(prompt) = &self.shell_prompt {
            facts.push(format!("shell prompt {}", prompt.pattern()));
        }
        if let Some(user) = &self.username {
            facts.push(format!("user {user}"));
        }
        if self.password.is_some() {
            facts.push("a password".to_owned());
        }
        if let Some(prompt) = &self.uboot_prompt {
            facts.push(format!("U-Boot prompt {prompt:?}"));
        }
        if facts.is_empty() {
            facts.push("nothing the harness uses (no ShellDriver or UBootDriver settings)".to_owned());
        }
        format!(
            "labgrid environment {}: {}",
            self.path.display(),
            facts.join(", ")
        )
    }
}

/// The most nodes (scalars, lists, maps, with aliases expanded) a file may hold: labgrid's
/// environments hold a few hundred.
const MAX_NODES: usize = 100_000;

/// Counts a document's nodes, aliases expanded, and refuses one of more than [`MAX_NODES`].
#[derive(Clone, Copy)]
struct NodeCount<'a>(&'a std::cell::Cell<usize>);

impl NodeCount<'_> {
    fn one<E: serde::de::Error>(self) -> Result<(), E> {
        self.0.set(self.0.get() + 1);
        if self.0.get() > MAX_NODES {
            return Err(E::custom(format!(
                "more than {MAX_NODES} values once its aliases are expanded (an alias bomb?)"
            )));
        }
        Ok(())
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for NodeCount<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for NodeCount<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        self.one()
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        self.one()
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        self.one()
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        self.one()
    }
    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
        self.one()
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.one()
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        self.one()
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
    fn visit_newtype_struct<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.one()?;
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.one()?;
        while map.next_key_seed(self)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }
    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        use serde::de::VariantAccess;
        self.one()?;
        let ((), variant) = data.variant_seed(self)?;
        variant.newtype_variant_seed(self)
    }
}

/// What a value may hold.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Allow {
    /// A prompt: matched within one line, so no line break.
    Prompt,
    /// A user name: no whitespace or control character (it is typed at `login:`).
    Word,
    /// A password: no control character (a line break would end it early); never quoted.
    Secret,
}

struct Reader<'a> {
    path: &'a Path,
}

impl Reader<'_> {
    fn key(&self, key: &str, detail: &str) -> LgEnvError {
        LgEnvError::Key {
            path: self.path.to_owned(),
            key: key.to_owned(),
            detail: detail.to_owned(),
        }
    }

    /// `targets.main`, or the only target when there is no `main`.
    fn main_target<'v>(&self, document: &'v Value) -> Result<(String, &'v Value), LgEnvError> {
        let targets = match document.get("targets") {
            Some(Value::Mapping(targets)) => targets,
            Some(_) => return Err(self.key("targets", "not a map of targets")),
            None if document.is_mapping() => {
                return Err(self.key(
                    "targets",
                    "missing; a labgrid environment names its targets under `targets:`",
                ))
            }
            None => {
                return Err(self.key(
                    "(top level)",
                    "not a map; a labgrid environment is a map with `targets:`",
                ))
            }
        };
        let by_name = |name: &str| targets.get(name).map(|t| (format!("targets.{name}"), t));
        let (key, target) = match (by_name("main"), targets.len()) {
            (Some(main), _) => main,
            (None, 1) => {
                let (name, target) = targets.iter().next().expect("one target");
                let name = name
                    .as_str()
                    .ok_or_else(|| self.key("targets", "a target's name is not text"))?;
                (format!("targets.{name}"), target)
            }
            (None, 0) => return Err(self.key("targets", "empty")),
            (None, _) => {
                return Err(self.key(
                    "targets",
                    "several targets and none is `main`; the harness reads `main`",
                ))
            }
        };
        match target {
            Value::Mapping(_) => Ok((key, target)),
            _ => Err(self.key(&key, "not a map (of resources, drivers, options)")),
        }
    }

    /// A map's entries, or a list of one-key maps' (`- ShellDriver: {…}`).
    fn entries<'v>(&self, key: &str, value: &'v Value) -> Result<Vec<(String, &'v Value)>, LgEnvError> {
        let mut found = Vec::new();
        let mut add = |map: &'v serde_norway::Mapping| -> Result<(), LgEnvError> {
            for (name, value) in map {
                let name = name
                    .as_str()
                    .ok_or_else(|| self.key(key, "a driver's name is not text"))?;
                found.push((name.to_owned(), value));
            }
            Ok(())
        };
        match value {
            Value::Mapping(map) => add(map)?,
            Value::Sequence(list) => {
                for (index, item) in list.iter().enumerate() {
                    match item {
                        Value::Mapping(map) => add(map)?,
                        _ => {
                            return Err(self.key(
                                &format!("{key}[{index}]"),
                                "not a map of a driver's name to its settings",
                            ))
                        }
                    }
                }
            }
            _ => return Err(self.key(key, "neither a map nor a list of drivers")),
        }
        Ok(found)
    }

    /// The text of `driver`'s `name`, if given.
    fn text(
        &self,
        key: &str,
        driver: &Value,
        name: &str,
        allow: Allow,
    ) -> Result<Option<String>, LgEnvError> {
        let key = format!("{key}.{name}");
        let value = match driver {
            Value::Null => return Ok(None),
            Value::Mapping(map) => match map.get(name) {
                None | Some(Value::Null) => return Ok(None),
                Some(value) => value,
            },
            _ => {
                return Err(self.key(
                    &key[..key.len() - name.len() - 1],
                    "not a map of the driver's settings",
                ))
            }
        };
        let text = match value {
            Value::String(text) => text.clone(),
            // YAML reads `password: 1234` as a number; labgrid takes it as its text.
            Value::Number(number) if allow != Allow::Prompt => number.to_string(),
            _ => return Err(self.key(&key, "not text")),
        };
        if text.is_empty() {
            return Err(self.key(&key, "empty"));
        }
        if text.chars().count() > MAX_VALUE {
            return Err(self.key(&key, &format!("longer than {MAX_VALUE} characters")));
        }
        let refused = match allow {
            Allow::Prompt => text
                .contains(['\n', '\r', '\0'])
                .then_some("holds a line break; a prompt is matched within one line"),
            Allow::Word => text
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
                .then_some("holds whitespace or a control character; a user name is one word"),
            Allow::Secret => text
                .chars()
                .any(char::is_control)
                .then_some("holds a control character (a line break would end it early)"),
        };
        match refused {
            Some(detail) => Err(self.key(&key, detail)),
            None => Ok(Some(text)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<LgEnv, LgEnvError> {
        LgEnv::parse(Path::new("env.yaml"), text)
    }

    fn refusal(text: &str) -> String {
        parse(text).expect_err("refused").to_string()
    }

    #[test]
    fn the_shell_and_uboot_drivers_facts_are_read() {
        let env = parse(
            "targets:\n  main:\n    resources:\n      RawSerialPort:\n        port: /dev/ttyUSB0\n    drivers:\n      \
             SerialDriver: {}\n      ShellDriver:\n        prompt: 'root@\\w+:[^ ]+ '\n        login_prompt: ' login: '\n        \
             username: admin\n        password: 'hunter2'\n      UBootDriver:\n        prompt: 'r2s=> '\n",
        )
        .unwrap();
        assert_eq!(
            env.shell_prompt.unwrap().pattern().to_string(),
            r"/root@\w+:[^ ]+ /"
        );
        assert_eq!(env.username.as_deref(), Some("admin"));
        assert_eq!(env.password.unwrap().expose(), "hunter2");
        assert_eq!(env.uboot_prompt.as_deref(), Some("r2s=> "));
    }

    #[test]
    fn drivers_may_be_a_list_and_the_only_target_need_not_be_main() {
        let env = parse("targets:\n  r2s:\n    drivers:\n    - SerialDriver: {}\n    - ShellDriver:\n        username: root\n        password: 1234\n").unwrap();
        assert_eq!(env.username.as_deref(), Some("root"));
        assert_eq!(env.password.unwrap().expose(), "1234");
        assert!(env.shell_prompt.is_none() && env.uboot_prompt.is_none());
    }

    #[test]
    fn the_password_is_never_printed() {
        let env = parse("targets:\n  main:\n    drivers:\n      ShellDriver:\n        password: hunter2\n")
            .unwrap();
        assert!(!format!("{env:?}").contains("hunter2"));
        assert_eq!(env.describe(), "labgrid environment env.yaml: a password");
        let refused = refusal(
            "targets:\n  main:\n    drivers:\n      ShellDriver:\n        password: \"hunter2\\n\"\n",
        );
        assert!(!refused.contains("hunter2"), "{refused}");
    }

    #[test]
    fn broken_yaml_is_refused_naming_the_file_and_line() {
        assert_eq!(
            refusal("targets:\n  main:\n    drivers: [\n"),
            "labgrid environment env.yaml:4: not YAML: did not find expected node content at line 4 column 1, while parsing a flow node"
        );
    }

    #[test]
    fn values_of_the_wrong_kind_are_refused_naming_the_key() {
        for (text, expected) in [
            ("- a\n", "(top level): not a map; a labgrid environment is a map with `targets:`"),
            ("options: {}\n", "targets: missing; a labgrid environment names its targets under `targets:`"),
            ("targets: 3\n", "targets: not a map of targets"),
            ("targets:\n  a: {}\n  b: {}\n", "targets: several targets and none is `main`; the harness reads `main`"),
            ("targets:\n  main: [1]\n", "targets.main: not a map (of resources, drivers, options)"),
            ("targets:\n  main:\n    drivers: 3\n", "targets.main.drivers: neither a map nor a list of drivers"),
            ("targets:\n  main:\n    drivers: [3]\n", "targets.main.drivers[0]: not a map of a driver's name to its settings"),
            ("targets:\n  main:\n    drivers:\n      ShellDriver: [1]\n", "targets.main.drivers.ShellDriver: not a map of the driver's settings"),
            ("targets:\n  main:\n    drivers:\n      ShellDriver:\n        prompt: [1]\n", "targets.main.drivers.ShellDriver.prompt: not text"),
            ("targets:\n  main:\n    drivers:\n      ShellDriver:\n        prompt: '(?<=x)#'\n", "targets.main.drivers.ShellDriver.prompt: not a regex the harness reads: regex parse error:\n    (?<=x)#\n    ^^^^\nerror: look-around, including look-ahead and look-behind, is not supported"),
            ("targets:\n  main:\n    drivers:\n      ShellDriver:\n        username: 'a b'\n", "targets.main.drivers.ShellDriver.username: holds whitespace or a control character; a user name is one word"),
            ("targets:\n  main:\n    drivers:\n      ShellDriver:\n        username: ''\n", "targets.main.drivers.ShellDriver.username: empty"),
            ("targets:\n  main:\n    drivers:\n      UBootDriver:\n        prompt: \"=>\\n\"\n", "targets.main.drivers.UBootDriver.prompt: holds a line break; a prompt is matched within one line"),
            ("targets:\n  main:\n    drivers:\n      UBootDriver:\n        prompt: '=> $'\n", "targets.main.drivers.UBootDriver.prompt: holds regex syntax; the harness matches U-Boot's prompt as literal text (write it as the text U-Boot prints, e.g. '=> ')"),
            ("targets:\n  main:\n    drivers:\n    - ShellDriver: {}\n    - ShellDriver: {}\n", "targets.main.drivers.ShellDriver: given twice; the harness reads one of each driver"),
        ] {
            assert_eq!(refusal(text), format!("labgrid environment env.yaml: {expected}"), "{text}");
        }
    }

    #[test]
    fn an_overlong_value_is_refused() {
        let text = format!(
            "targets:\n  main:\n    drivers:\n      ShellDriver:\n        username: {}\n",
            "a".repeat(MAX_VALUE + 1)
        );
        assert_eq!(
            refusal(&text),
            "labgrid environment env.yaml: targets.main.drivers.ShellDriver.username: longer than 1024 characters"
        );
    }

    /// The first login of `scenario` after `env` applied: user, password, prompt.
    fn login_after(env: &str, scenario: &str) -> (String, Password, Option<String>) {
        let env = parse(env).unwrap();
        let mut scenario = crate::scenario::parse(scenario, Path::new("s.toml")).unwrap();
        env.apply(&mut scenario);
        let from_start = match &scenario.start {
            Start::Login(recipe) => Some((
                recipe.user.clone(),
                recipe.password.clone(),
                recipe.prompt.clone(),
            )),
            _ => None,
        };
        let (user, password, prompt) = from_start
            .or_else(|| {
                scenario.steps.iter().find_map(|step| match &step.action {
                    Action::Login {
                        user,
                        password,
                        prompt,
                    } => Some((user.clone(), password.clone(), prompt.clone())),
                    _ => None,
                })
            })
            .expect("a login");
        (user, password, prompt.map(|p| p.pattern().to_string()))
    }

    const ADMIN_ENV: &str = "targets:\n  main:\n    drivers:\n      ShellDriver:\n        prompt: 'admin@r2s:~\\$ '\n        username: admin\n        password: hunter2\n";

    #[test]
    fn the_harness_default_login_takes_the_files_user_password_and_prompt() {
        // R2S_PASSWORD is unset in the unit tests' environment.
        assert!(std::env::var_os(DEFAULT_PASSWORD_VARIABLE).is_none());
        let (user, password, prompt) = login_after(
            ADMIN_ENV,
            "name = \"s\"\nstart = \"login\"\n[[steps]]\nrun = \"true\"\n",
        );
        assert_eq!(user, "admin");
        assert_eq!(password, Password::Literal(Secret::new("hunter2")));
        assert_eq!(prompt.as_deref(), Some(r"/admin@r2s:~\$ /"));
    }

    #[test]
    fn a_scenarios_own_login_and_prompt_win_over_the_file() {
        let (user, password, prompt) = login_after(
            ADMIN_ENV,
            "name = \"s\"\n[[steps]]\nlogin = { user = \"ops\", password_env = \"OPS_PASSWORD\", prompt = \"ops# $\" }\n",
        );
        assert_eq!(user, "ops");
        assert_eq!(password, Password::Env("OPS_PASSWORD".to_owned()));
        assert_eq!(prompt.as_deref(), Some("/ops# $/"));
    }

    #[test]
    fn an_alias_bomb_is_refused_before_it_is_expanded() {
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..12 {
            let previous = format!("*a{}", level - 1);
            bomb.push_str(&format!(
                "a{level}: &a{level} [{}]\n",
                vec![previous; 10].join(", ")
            ));
        }
        let started = std::time::Instant::now();
        let refused = refusal(&bomb);
        assert!(
            refused.starts_with("labgrid environment env.yaml:1: not YAML: ")
                && refused
                    .contains(": more than 100000 values once its aliases are expanded (an alias bomb?)"),
            "{refused}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn deep_nesting_is_refused_by_the_parsers_recursion_limit() {
        let deep = format!("targets: {}{}", "[".repeat(1000), "]".repeat(1000));
        let refused = refusal(&deep);
        assert!(
            refused.contains("not YAML: recursion limit exceeded"),
            "{refused}"
        );
    }

    #[test]
    fn a_file_larger_than_the_limit_is_not_read() {
        let dir = std::env::temp_dir().join(format!("lg-env-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("huge.yaml");
        std::fs::write(&path, vec![b'#'; MAX_ENV_FILE as usize + 1]).unwrap();
        let refused = LgEnv::load(&path).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            refused,
            format!(
                "labgrid environment {}: larger than 1024 KiB; a labgrid environment is a few KiB",
                path.display()
            )
        );
    }
}
