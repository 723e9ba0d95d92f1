//! The scenario schema, as specifications: what parses into what, and where each error points.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::console::Pattern;

pub(super) fn parse_ok(text: &str) -> Scenario {
    parse(text, Path::new("t.toml")).unwrap_or_else(|e| panic!("expected a valid scenario, got: {e}"))
}

/// The error's first line exactly as users see it (the source line and caret follow it).
pub(super) fn error_of(text: &str) -> String {
    match parse(text, Path::new("t.toml")) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.headline(),
    }
}

fn actions(scenario: &Scenario) -> Vec<&Action> {
    scenario.steps.iter().map(|s| &s.action).collect()
}

const HEADER: &str = "name = \"t\"\n";

#[test]
fn full_schema_parses_into_the_model() {
    let scenario = parse_ok(
        r#"name = "everything"
description = "every action once"
timeout = "1m30s"
fatal = ["Oops"]
fatal_regex = ["panic.*sync"]

[[steps]]
expect = "U-Boot 20"
stage = "uboot"
timeout = "30s"

[[steps]]
expect_regex = "login: ?$"

[[steps]]
send = "\u0003"

[[steps]]
send_line = "root"

[[steps]]
interrupt_autoboot = true

[[steps]]
uboot = "version"
output = "U-Boot 20\\d\\d"

[[steps]]
menu = "nixos-2-default"

[[steps]]
menu = 2

[[steps]]
login = { user = "root", password_env = "R2S_PASSWORD" }

[[steps]]
run = "false"
status = 1
output = "^$"
"#,
    );
    assert_eq!(scenario.name, "everything");
    assert_eq!(scenario.description.as_deref(), Some("every action once"));
    assert_eq!(scenario.timeout, Duration::from_secs(90));
    assert_eq!(scenario.source, PathBuf::from("t.toml"));
    let fatal: Vec<String> = scenario.fatal.iter().map(Pattern::to_string).collect();
    assert_eq!(fatal, ["\"Oops\"", "/panic.*sync/"]);

    let first = &scenario.steps[0];
    assert_eq!(first.stage.as_deref(), Some("uboot"));
    assert_eq!(first.timeout, Some(Duration::from_secs(30)));
    assert_eq!(
        first.location,
        Location {
            file: "t.toml".into(),
            line: 7,
            column: 1
        }
    );
    assert_eq!(scenario.steps[1].stage, None);
    assert_eq!(scenario.steps[1].timeout, None);

    let described: Vec<String> = scenario.steps.iter().map(Step::describe).collect();
    assert_eq!(
        described,
        [
            r#"expect "U-Boot 20""#,
            r#"expect /login: ?$/"#,
            r#"send "\u{3}""#,
            r#"send_line "root""#,
            "interrupt_autoboot",
            r#"uboot "version""#,
            "menu nixos-2-default",
            "menu 2",
            "login root",
            r#"run "false""#,
        ]
    );
    assert!(matches!(actions(&scenario)[2], Action::Send(bytes) if bytes == &[3]));
    assert!(matches!(
        actions(&scenario)[7],
        Action::Menu(MenuChoice::Number(2))
    ));
    assert!(matches!(
        actions(&scenario)[8],
        Action::Login { user, password: Password::Env(var), prompt: None } if user == "root" && var == "R2S_PASSWORD"
    ));
    assert!(matches!(actions(&scenario)[9], Action::Run { status: 1, .. }));
}

#[test]
fn defaults_apply_when_keys_are_absent() {
    let scenario =
        parse_ok("name = \"t\"\n[[steps]]\nrun = \"true\"\n[[steps]]\nlogin = { user = \"root\" }\n");
    assert_eq!(scenario.timeout, DEFAULT_TIMEOUT);
    assert_eq!(scenario.timeout, Duration::from_secs(600));
    assert!(scenario.fatal.is_empty());
    assert!(matches!(
        &scenario.steps[0].action,
        Action::Run {
            status: 0,
            output: None,
            ..
        }
    ));
    assert!(matches!(
        &scenario.steps[1].action,
        Action::Login {
            password: Password::None,
            ..
        }
    ));
}

#[test]
fn run_output_regex_is_multi_line() {
    let scenario = parse_ok("name = \"t\"\n[[steps]]\nrun = \"cat /etc/hostname\"\noutput = \"^ivy$\"\n");
    let Action::Run {
        output: Some(regex), ..
    } = &scenario.steps[0].action
    else {
        panic!("not a run step")
    };
    assert!(regex.is_match("cat /etc/hostname\nivy\n"));
}

#[test]
fn inline_steps_are_located_at_their_table() {
    let scenario = parse_ok("name = \"t\"\nsteps = [\n  { expect = \"a\" },\n  { run = \"b\" },\n]\n");
    assert_eq!(scenario.steps[1].location.to_string(), "t.toml:4:3");
}

#[test]
fn literal_password_never_shows_in_debug_or_describe() {
    let scenario = parse_ok("name = \"t\"\n[[steps]]\nlogin = { user = \"root\", password = \"hunter2\" }\n");
    let Action::Login {
        password: Password::Literal(secret),
        ..
    } = &scenario.steps[0].action
    else {
        panic!("no literal password")
    };
    assert_eq!(secret.expose(), "hunter2");
    assert_eq!(secret.to_string(), "[redacted]");
    assert!(!format!("{scenario:?}").contains("hunter2"));
    assert!(!scenario.steps[0].describe().contains("hunter2"));
}

#[test]
fn toml_syntax_error_points_at_the_broken_value() {
    let text = format!("{HEADER}[[steps]]\nexpect = \"unterminated\n");
    assert_eq!(
        error_of(&text),
        "t.toml:3:23: invalid basic string, expected `\"`"
    );
}

#[test]
fn duplicate_key_is_a_syntax_error_at_the_second_key() {
    assert_eq!(
        error_of("name = \"a\"\nname = \"b\"\n"),
        "t.toml:2:1: duplicate key"
    );
}

/// The keys are listed as the step table has them, in the order of the "no action" error, then
/// the keys only some steps take, then those any step may have.
#[test]
fn unknown_step_key_points_at_the_key() {
    let text = format!("{HEADER}[[steps]]\nexpect = \"x\"\nexpct = \"y\"\n");
    let keys: Vec<String> = StepKind::ALL
        .iter()
        .map(|kind| kind.key())
        .chain(["status", "output", "until", "timeout", "stage"])
        .map(|key| format!("`{key}`"))
        .collect();
    assert_eq!(
        error_of(&text),
        format!(
            "t.toml:4:1: unknown field `expct`, expected one of {}",
            keys.join(", ")
        )
    );
}

#[test]
fn unknown_top_level_key_points_at_the_key() {
    let text = "name = \"t\"\ntimeuot = \"5m\"\n[[steps]]\nexpect = \"x\"\n";
    assert!(error_of(text).starts_with("t.toml:2:1: unknown field `timeuot`, expected one of `name`"));
}

#[test]
fn unknown_login_key_points_at_the_key() {
    let text = format!("{HEADER}[[steps]]\nlogin = {{ user = \"root\", passwd = \"x\" }}\n");
    assert_eq!(
        error_of(&text),
        "t.toml:3:26: unknown field `passwd`, expected one of `user`, `password_env`, `password`, `prompt`"
    );
}

#[test]
fn wrong_type_points_at_the_value() {
    let text = format!("{HEADER}[[steps]]\nexpect = 3\n");
    assert_eq!(
        error_of(&text),
        "t.toml:3:10: invalid type: integer `3`, expected a string"
    );
}

#[test]
fn status_out_of_range_points_at_the_value() {
    let text = format!("{HEADER}[[steps]]\nrun = \"x\"\nstatus = 99999999999\n");
    assert_eq!(
        error_of(&text),
        "t.toml:4:10: invalid value: integer `99999999999`, expected i32"
    );
}

#[test]
fn missing_name_points_at_the_start_of_the_file() {
    assert_eq!(
        error_of("[[steps]]\nexpect = \"x\"\n"),
        "t.toml:1:1: missing field `name`"
    );
}

#[test]
fn missing_login_user_points_at_the_login_table() {
    let text = format!("{HEADER}[[steps]]\nlogin = {{ password_env = \"P\" }}\n");
    assert_eq!(error_of(&text), "t.toml:3:9: missing field `user`");
}

#[test]
fn step_without_action_points_at_its_header() {
    let text = format!("{HEADER}\n[[steps]]\nexpect = \"x\"\n\n[[steps]]\ntimeout = \"5s\"\n");
    assert_eq!(
        error_of(&text),
        format!(
            "t.toml:6:1: step has no action: give one of {}",
            StepKind::key_list()
        )
    );
}

#[test]
fn step_with_two_actions_points_at_the_second_key() {
    let text = format!("{HEADER}[[steps]]\nsend_line = \"root\"\n  expect = \"Password:\"\n");
    assert_eq!(
        error_of(&text),
        "t.toml:4:3: step has two actions, `send_line` and `expect`: split them into two [[steps]]"
    );
}

#[test]
fn bad_expect_regex_points_at_the_value() {
    let text = format!("{HEADER}[[steps]]\nexpect_regex = \"login(\"\n");
    assert_eq!(error_of(&text), "t.toml:3:16: invalid regex: unclosed group");
}

#[test]
fn bad_output_regex_points_at_the_value() {
    let text = format!("{HEADER}[[steps]]\nrun = \"x\"\noutput = \"[a-\"\n");
    assert_eq!(
        error_of(&text),
        "t.toml:4:10: invalid regex: unclosed character class"
    );
}

#[test]
fn bad_fatal_regex_points_at_the_element() {
    let text = "name = \"t\"\nfatal_regex = [\"ok\", \"(\"]\n[[steps]]\nexpect = \"x\"\n";
    assert_eq!(error_of(text), "t.toml:2:22: invalid regex: unclosed group");
}

#[test]
fn bad_step_duration_points_at_the_value() {
    let text = format!("{HEADER}[[steps]]\nexpect = \"x\"\ntimeout = \"half a minute\"\n");
    assert_eq!(
        error_of(&text),
        "t.toml:4:11: invalid duration \"half a minute\" (expected number at 0): \
         write e.g. \"30s\", \"5m\" or \"1m30s\""
    );
}

#[test]
fn bad_scenario_duration_points_at_the_value() {
    let text = "name = \"t\"\ntimeout = \"5\"\n[[steps]]\nexpect = \"x\"\n";
    assert_eq!(
        error_of(text),
        "t.toml:2:11: invalid duration \"5\" (time unit needed, for example 5sec or 5ms): \
         write e.g. \"30s\", \"5m\" or \"1m30s\""
    );
}

#[test]
fn zero_timeout_is_rejected() {
    let text = format!("{HEADER}[[steps]]\nexpect = \"x\"\ntimeout = \"0s\"\n");
    assert_eq!(error_of(&text), "t.toml:4:11: a timeout of zero can never be met");
}

#[test]
fn duration_as_number_is_a_type_error() {
    let text = format!("{HEADER}[[steps]]\nexpect = \"x\"\ntimeout = 30\n");
    assert_eq!(
        error_of(&text),
        "t.toml:4:11: invalid type: integer `30`, expected a duration string such as \"30s\", \"5m\" or \"1m30s\""
    );
}

#[test]
fn status_on_a_non_run_step_points_at_the_key() {
    let text = format!("{HEADER}[[steps]]\nexpect = \"x\"\nstatus = 1\n");
    assert_eq!(
        error_of(&text),
        "t.toml:4:1: `status` applies only to `run`, `host` and `lan` steps, not to `expect`"
    );
}

#[test]
fn output_on_an_expect_step_points_at_the_key() {
    let text = format!("{HEADER}[[steps]]\nexpect = \"x\"\noutput = \"y\"\n");
    assert_eq!(
        error_of(&text),
        "t.toml:4:1: `output` applies only to `run`, `host`, `lan` and `uboot` steps, not to `expect`"
    );
}

#[test]
fn wait_for_unit_names_the_unit() {
    let scenario = parse_ok(&format!(
        "{HEADER}[[steps]]\nwait_for_unit = \"serial-getty@ttyS2.service\"\n"
    ));
    assert!(matches!(
        &scenario.steps[0].action,
        Action::WaitForUnit(unit) if unit == "serial-getty@ttyS2.service"
    ));
    assert_eq!(
        scenario.steps[0].describe(),
        "wait_for_unit serial-getty@ttyS2.service"
    );
}

#[test]
fn wait_for_unit_with_a_character_no_unit_name_has_points_at_the_value() {
    let text = format!("{HEADER}[[steps]]\nwait_for_unit = \"sshd; reboot\"\n");
    assert_eq!(
        error_of(&text),
        "t.toml:3:17: \"sshd; reboot\" is not a systemd unit name: ';' is not allowed in one (letters, digits \
         and `:-_.\\@` are)"
    );
}

#[test]
fn until_on_a_run_step_is_its_retry_window() {
    let scenario = parse_ok(&format!(
        "{HEADER}[[steps]]\nrun = \"systemctl is-active sshd\"\nuntil = \"60s\"\ntimeout = \"2m\"\n"
    ));
    assert!(matches!(
        &scenario.steps[0].action,
        Action::Run { until: Some(window), .. } if *window == Duration::from_secs(60)
    ));
}

#[test]
fn until_on_a_non_run_step_points_at_the_key() {
    let text = format!("{HEADER}[[steps]]\nexpect = \"x\"\nuntil = \"10s\"\n");
    assert_eq!(
        error_of(&text),
        "t.toml:4:1: `until` applies only to `run`, `host` and `lan` steps, not to `expect`"
    );
}

#[test]
fn until_longer_than_the_step_timeout_points_at_its_value() {
    let text = format!("{HEADER}[[steps]]\nrun = \"true\"\nuntil = \"2m\"\ntimeout = \"30s\"\n");
    assert_eq!(
        error_of(&text),
        "t.toml:4:9: `until` (2m) is longer than the step's `timeout` (30s), which bounds every try \
         together: shorten `until` or lengthen `timeout`"
    );
}

#[test]
fn until_that_is_not_a_duration_points_at_its_value() {
    let text = format!("{HEADER}[[steps]]\nrun = \"true\"\nuntil = \"soon\"\n");
    assert!(
        error_of(&text).starts_with("t.toml:4:9: invalid duration \"soon\""),
        "{}",
        error_of(&text)
    );
}

#[test]
fn empty_steps_array_points_at_it() {
    assert_eq!(
        error_of("name = \"t\"\nsteps = []\n"),
        "t.toml:2:9: scenario has no steps: add at least one [[steps]] table"
    );
}

#[test]
fn file_without_steps_points_at_its_start() {
    assert_eq!(
        error_of("name = \"t\"\n"),
        "t.toml:1:1: scenario has no steps: add at least one [[steps]] table"
    );
}

#[test]
fn both_password_sources_point_at_the_second() {
    let text =
        format!("{HEADER}[[steps]]\nlogin = {{ user = \"root\", password = \"a\", password_env = \"P\" }}\n");
    assert_eq!(
        error_of(&text),
        "t.toml:3:42: give either `password_env` or `password`, not both"
    );
}

#[test]
fn menu_number_zero_is_rejected() {
    let text = format!("{HEADER}[[steps]]\nmenu = 0\n");
    assert_eq!(
        error_of(&text),
        "t.toml:3:8: menu entry 0 does not exist: U-Boot numbers entries from 1"
    );
}

#[test]
fn menu_of_the_wrong_type_says_what_it_takes() {
    let text = format!("{HEADER}[[steps]]\nmenu = true\n");
    assert_eq!(
        error_of(&text),
        "t.toml:3:8: invalid type: boolean `true`, expected an extlinux LABEL name or a menu entry number (1 is the first)"
    );
}

#[test]
fn interrupt_autoboot_false_is_rejected() {
    let text = format!("{HEADER}[[steps]]\ninterrupt_autoboot = false\n");
    assert_eq!(
        error_of(&text),
        "t.toml:3:22: only `true` makes sense here; remove the step instead"
    );
}

#[test]
fn empty_expect_is_rejected() {
    let text = format!("{HEADER}[[steps]]\nexpect = \"\"\n");
    assert_eq!(error_of(&text), "t.toml:3:10: must not be empty");
}

#[test]
fn columns_count_characters_not_bytes() {
    let text = "name = \"t\"\n[[steps]]\nexpect = \"ü\"; \n";
    assert_eq!(
        error_of(text),
        "t.toml:3:13: unexpected key or value, expected newline, `#`"
    );
}

#[test]
fn error_location_carries_file_line_and_column() {
    let error = parse("name = 1\n", Path::new("dir/x.toml")).unwrap_err();
    assert_eq!(
        error.location(),
        Some(Location {
            file: "dir/x.toml".into(),
            line: 1,
            column: 8
        })
    );
    assert!(matches!(error.kind, ScenarioErrorKind::Schema { .. }));
}

#[test]
fn load_of_a_missing_file_names_the_path() {
    let error = load(Path::new("/nonexistent/boot.toml")).unwrap_err();
    assert_eq!(error.path, PathBuf::from("/nonexistent/boot.toml"));
    assert_eq!(error.position(), None);
    assert!(
        error
            .to_string()
            .starts_with("/nonexistent/boot.toml: cannot read scenario file: "),
        "{error}"
    );
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn minimal(name: &str) -> String {
    format!("name = \"{name}\"\n[[steps]]\nexpect = \"x\"\n")
}

#[test]
fn load_all_takes_toml_files_of_a_directory_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "b.toml", &minimal("second"));
    write(dir.path(), "a.toml", &minimal("first"));
    write(dir.path(), "notes.md", "not a scenario");
    let extra = tempfile::tempdir().unwrap();
    let single = write(extra.path(), "c.toml", &minimal("third"));

    let scenarios = load_all(&[dir.path().to_owned(), single]).unwrap();
    let names: Vec<&str> = scenarios.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["first", "second", "third"]);
    assert_eq!(scenarios[0].source, dir.path().join("a.toml"));
}

#[test]
fn load_all_of_an_empty_directory_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    assert!(load_all(&[dir.path().to_owned()]).unwrap().is_empty());
}

#[test]
fn load_all_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.toml", &minimal("fine"));
    let broken = write(dir.path(), "b.toml", "name = \"broken\"\n[[steps]]\n");
    let error = load_all(&[dir.path().to_owned()]).unwrap_err();
    assert_eq!(
        error.headline(),
        format!("{}:2:1: {}", broken.display(), ScenarioErrorKind::NoAction)
    );
}

#[test]
fn load_all_rejects_a_name_used_twice() {
    let dir = tempfile::tempdir().unwrap();
    let first = write(dir.path(), "a.toml", &minimal("same"));
    let second = write(dir.path(), "b.toml", &format!("# again\n{}", minimal("same")));
    let error = load_all(&[dir.path().to_owned()]).unwrap_err();
    assert_eq!(
        error.headline(),
        format!(
            "{}:2:8: scenario name \"same\" is already used by {}",
            second.display(),
            first.display()
        )
    );
}

#[test]
fn a_huge_send_is_described_by_its_head_and_size() {
    let text = format!(
        "name = \"n\"\ndescription = \"d\"\n[[steps]]\nsend = \"{}\"\n",
        "a".repeat(1 << 20)
    );
    let scenario = parse(&text, Path::new("n.toml")).unwrap();
    assert_eq!(
        scenario.steps[0].describe(),
        format!("send \"{}\"… (1048576 bytes)", "a".repeat(200))
    );
}

#[test]
fn error_shows_the_line_and_a_caret_under_the_place() {
    let error = parse("name = \"t\"\n[[steps]]\nexpect = 3\n", Path::new("t.toml")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "t.toml:3:10: invalid type: integer `3`, expected a string\n  |\n3 | expect = 3\n  |          ^"
    );
}

#[test]
fn timeout_above_seven_days_points_at_the_value() {
    let text = "name = \"t\"\ntimeout = \"300000000000y\"\n[[steps]]\nexpect = \"x\"\n";
    assert_eq!(
        error_of(text),
        "t.toml:2:11: duration \"300000000000y\" is longer than 7 days, the longest a file may give"
    );
}

#[test]
fn step_timeout_above_seven_days_points_at_the_value() {
    let text = format!("{HEADER}[[steps]]\nexpect = \"x\"\ntimeout = \"8 days\"\n");
    assert_eq!(
        error_of(&text),
        "t.toml:4:11: duration \"8 days\" is longer than 7 days, the longest a file may give"
    );
}

#[test]
fn step_given_as_an_array_is_refused_at_the_array() {
    assert_eq!(
        error_of("name = \"t\"\nsteps = [[\"x\"]]\n"),
        "t.toml:2:10: invalid type: sequence, expected a table"
    );
}

#[test]
fn login_given_as_a_string_is_refused_at_the_value() {
    let text = format!("{HEADER}[[steps]]\nlogin = \"root\"\n");
    assert_eq!(
        error_of(&text),
        "t.toml:3:9: invalid type: string \"root\", expected a table"
    );
}

#[test]
fn name_with_a_slash_points_at_the_name() {
    assert_eq!(
        error_of("name = \"a/b\"\n[[steps]]\nexpect = \"x\"\n"),
        "t.toml:1:8: scenario name \"a/b\" has a `/` or `\\`; names become transcript file names: use `-` instead"
    );
}

#[test]
fn name_with_a_newline_is_refused_and_shown_escaped() {
    let error = error_of("name = \"ok\\nFAIL  forged\"\n[[steps]]\nexpect = \"x\"\n");
    assert_eq!(
        error,
        "t.toml:1:8: scenario name \"ok\\nFAIL  forged\" has a control character; names are one line of plain text"
    );
    assert!(!error.contains('\n'));
}

#[test]
fn dot_dot_name_is_refused() {
    assert!(error_of("name = \"..\"\n[[steps]]\nexpect = \"x\"\n")
        .starts_with("t.toml:1:8: scenario name \"..\" starts with `.`"));
}

#[test]
fn overlong_name_is_refused() {
    let text = format!("name = \"{}\"\n[[steps]]\nexpect = \"x\"\n", "n".repeat(101));
    assert_eq!(
        error_of(&text),
        "t.toml:1:8: scenario name is 101 characters long; the longest is 100"
    );
}

#[test]
fn key_with_control_characters_is_shown_escaped() {
    let text = format!("{HEADER}[[steps]]\nexpect = \"x\"\n\"\\u001b[2J\" = 1\n");
    let error = parse(&text, Path::new("t.toml")).unwrap_err().to_string();
    assert!(!error.contains('\u{1b}'), "{error:?}");
    assert!(
        error.starts_with("t.toml:4:1: unknown field `\\u{1b}[2J`"),
        "{error:?}"
    );
}

#[test]
fn invalid_utf8_points_at_the_first_bad_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, b"name = \"t\"\n[[steps]]\nexpect = \"gr\xfcn\"\n").unwrap();
    let error = load(&path).unwrap_err();
    assert_eq!(
        error.headline(),
        format!(
            "{}:3:13: cannot read scenario file: not UTF-8 text: byte 0xfc cannot be read as a character here",
            path.display()
        )
    );
    assert_eq!(error.excerpt.unwrap().text, "expect = \"gr\u{fffd}n\"");
}

#[test]
fn file_larger_than_the_limit_is_refused_before_it_is_parsed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.toml");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(crate::config::MAX_FILE_SIZE + 1).unwrap();
    assert_eq!(
        load(&path).unwrap_err().to_string(),
        format!(
            "{}: cannot read scenario file: the file is larger than 16 MiB",
            path.display()
        )
    );
}

#[test]
fn load_all_rejects_names_equal_after_case_folding_naming_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let first = write(dir.path(), "a.toml", &minimal("boot"));
    let second = write(dir.path(), "b.toml", &minimal("Boot"));
    let error = load_all(&[dir.path().to_owned()]).unwrap_err();
    assert_eq!(
        error.headline(),
        format!(
            "{}:1:8: scenario name \"Boot\" gives the same transcript file names as \"boot\" in {}: \
             names that differ only in case or in characters other than letters, digits, `-`, `_` \
             and `.` share their files; rename one",
            second.display(),
            first.display()
        )
    );
}

#[test]
fn load_all_rejects_names_that_share_a_transcript_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.toml", &minimal("a_b"));
    write(dir.path(), "b.toml", &minimal("a b"));
    let error = load_all(&[dir.path().to_owned()]).unwrap_err();
    assert!(matches!(
        error.kind,
        ScenarioErrorKind::DuplicateName { ref name, ref first_name, .. } if name == "a b" && first_name == "a_b"
    ));
}

#[test]
fn load_each_keeps_the_good_files_and_one_error_per_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "a.toml", &minimal("first"));
    let unparsable = write(dir.path(), "b.toml", "name = \n");
    let taken = write(dir.path(), "c.toml", &minimal("first"));
    let orphan = write(
        dir.path(),
        "d.toml",
        "name = \"orphan\"\nstart = \"nowhere\"\n[[steps]]\nexpect = \"x\"\n",
    );
    let missing = dir.path().join("gone.toml");

    let loaded = load_each_for(&[dir.path().to_owned(), missing.clone()], None);
    let names: Vec<&str> = loaded.scenarios.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["first"]);
    assert_eq!(loaded.scenarios[0].source, good);
    let broken: Vec<&Path> = loaded.broken.iter().map(|e| e.path.as_path()).collect();
    assert_eq!(broken, [&unparsable, &taken, &missing, &orphan]);
}
