use std::path::Path;
use std::time::Duration;

use super::*;

fn parse(text: &str) -> Result<Board, String> {
    Board::parse(text, Path::new("bench.toml")).map_err(|e| e.headline())
}

const MINIMAL: &str = "name = \"b\"\nbaud = 1500000\nconsole = \"ttyS2\"\n";

#[test]
fn builtin_profiles_are_valid_and_named_as_listed() {
    for (name, _) in BUILTIN {
        assert_eq!(Board::builtin(name).expect("built in").name, name);
    }
}

#[test]
fn nanopi_r2s_runs_at_1500000_on_ttys2_without_power_control() {
    let board = Board::load("nanopi-r2s").unwrap();
    assert_eq!(board.baud, 1_500_000);
    assert_eq!(board.console, "ttyS2");
    assert_eq!(board.pacing, CharPacing::Delay(Duration::ZERO));
    assert_eq!(board.reconnect_timeout, Duration::from_secs(30));
    assert_eq!(board.power, Power::None);
    assert_eq!(board.source, Path::new("<built-in nanopi-r2s>"));
}

#[test]
fn unknown_name_lists_the_builtin_profiles() {
    let error = Board::load("nanopi-r5s").unwrap_err().to_string();
    assert_eq!(
        error,
        "nanopi-r5s: no such board profile file, and no built-in board of that name (built-in: nanopi-r2s, qemu-virt)"
    );
}

#[test]
fn missing_profile_file_is_a_read_error_naming_the_file() {
    let error = Board::load("/nonexistent/bench.toml").unwrap_err().to_string();
    assert!(
        error.starts_with("/nonexistent/bench.toml: cannot read board profile: "),
        "{error}"
    );
}

#[test]
fn minimal_profile_takes_defaults() {
    let board = parse(MINIMAL).unwrap();
    assert_eq!(board.pacing, CharPacing::Delay(Duration::ZERO));
    assert_eq!(board.reconnect_timeout, DEFAULT_RECONNECT_TIMEOUT);
    assert_eq!(board.power, Power::None);
}

#[test]
fn char_delay_echo_waits_for_echo() {
    let board = parse(&format!("{MINIMAL}char_delay = \"echo\"\n")).unwrap();
    assert_eq!(board.pacing, CharPacing::Echo);
    let board = parse(&format!("{MINIMAL}char_delay = \"2ms\"\n")).unwrap();
    assert_eq!(board.pacing, CharPacing::Delay(Duration::from_millis(2)));
}

#[test]
fn bad_char_delay_points_at_the_value() {
    let error = parse(&format!("{MINIMAL}char_delay = \"slow\"\n")).unwrap_err();
    assert!(
        error.starts_with("bench.toml:4:14: invalid char_delay \"slow\""),
        "{error}"
    );
}

#[test]
fn unknown_key_points_at_the_key() {
    let error = parse(&format!("{MINIMAL}bauds = 9600\n")).unwrap_err();
    assert!(
        error.starts_with("bench.toml:4:1: unknown field `bauds`"),
        "{error}"
    );
}

#[test]
fn missing_baud_is_reported() {
    let error = parse("name = \"b\"\nconsole = \"ttyS2\"\n").unwrap_err();
    assert!(error.contains("missing field `baud`"), "{error}");
    assert!(error.starts_with("bench.toml:1:1: "), "{error}");
}

#[test]
fn zero_baud_points_at_the_value() {
    let error = parse("name = \"b\"\nbaud = 0\nconsole = \"ttyS2\"\n").unwrap_err();
    assert!(
        error.starts_with("bench.toml:2:8: baud rate 0 is out of range"),
        "{error}"
    );
}

#[test]
fn toml_syntax_error_has_a_place() {
    let error = parse("name = \"b\nbaud = 1\n").unwrap_err();
    assert!(error.starts_with("bench.toml:1:"), "{error}");
}

#[test]
fn power_commands_are_argv_and_cycle_defaults_to_off_then_on() {
    let board = parse(&format!(
        "{MINIMAL}[power]\non = [\"uhubctl\", \"-a\", \"on\"]\noff = [\"uhubctl\", \"-a\", \"off\"]\ntimeout = \"5s\"\n"
    ))
    .unwrap();
    let Power::Commands(commands) = &board.power else {
        panic!("{:?}", board.power)
    };
    assert_eq!(commands.timeout, Duration::from_secs(5));
    let sequence: Vec<(&str, Vec<&str>)> = commands
        .start_sequence()
        .into_iter()
        .map(|(what, argv)| (what, argv.iter().map(String::as_str).collect()))
        .collect();
    assert_eq!(
        sequence,
        [
            ("off", vec!["uhubctl", "-a", "off"]),
            ("on", vec!["uhubctl", "-a", "on"])
        ]
    );
}

#[test]
fn cycle_command_is_used_alone_when_given() {
    let board = parse(&format!(
        "{MINIMAL}[power]\non = [\"a\"]\noff = [\"b\"]\ncycle = [\"c\", \"now\"]\n"
    ))
    .unwrap();
    let Power::Commands(commands) = &board.power else {
        panic!()
    };
    assert_eq!(
        commands.start_sequence(),
        [("cycle", &["c".to_owned(), "now".to_owned()][..])]
    );
}

#[test]
fn power_command_given_as_a_string_is_refused_with_an_example() {
    let error = parse(&format!("{MINIMAL}[power]\non = \"uhubctl -a on\"\n")).unwrap_err();
    assert!(
        error.starts_with("bench.toml:5:6: invalid type: string"),
        "{error}"
    );
    assert!(error.contains("array of arguments"), "{error}");
}

#[test]
fn empty_power_command_is_refused() {
    let error = parse(&format!("{MINIMAL}[power]\noff = []\n")).unwrap_err();
    assert_eq!(error, "bench.toml:5:7: a power command needs at least a program");
}

#[test]
fn manual_power_with_commands_is_a_contradiction() {
    let error = parse(&format!("{MINIMAL}[power]\non = [\"a\"]\nmanual = true\n")).unwrap_err();
    assert!(
        error.starts_with("bench.toml:6:10: manual = true asks the operator"),
        "{error}"
    );
}

#[test]
fn manual_power_alone() {
    let board = parse(&format!("{MINIMAL}[power]\nmanual = true\n")).unwrap();
    assert_eq!(board.power, Power::Manual);
}

#[test]
fn reconnect_timeout_above_seven_days_points_at_the_value() {
    let error = parse(&format!("{MINIMAL}reconnect_timeout = \"300000000000y\"\n")).unwrap_err();
    assert_eq!(
        error,
        "bench.toml:4:21: duration \"300000000000y\" is longer than 7 days, the longest a file may give"
    );
}

#[test]
fn power_timeout_above_seven_days_points_at_the_value() {
    let error = parse(&format!("{MINIMAL}[power]\non = [\"a\"]\ntimeout = \"8days\"\n")).unwrap_err();
    assert_eq!(
        error,
        "bench.toml:6:11: duration \"8days\" is longer than 7 days, the longest a file may give"
    );
}

#[test]
fn char_delay_above_seven_days_points_at_the_value() {
    let error = parse(&format!("{MINIMAL}char_delay = \"300000000000y\"\n")).unwrap_err();
    assert_eq!(
        error,
        "bench.toml:4:14: duration \"300000000000y\" is longer than 7 days, the longest a file may give"
    );
}

#[test]
fn power_given_as_an_array_is_refused_at_the_value() {
    let error = parse(&format!("{MINIMAL}power = [[\"a\"]]\n")).unwrap_err();
    assert_eq!(error, "bench.toml:4:9: invalid type: sequence, expected a table");
}

#[test]
fn error_shows_the_line_and_a_caret_under_the_place() {
    let error = Board::parse(
        "name = \"b\"\nbaud = 0\nconsole = \"ttyS2\"\n",
        Path::new("bench.toml"),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "bench.toml:2:8: baud rate 0 is out of range (300..=12000000); the R2S console runs at 1500000\n  |\n2 | baud = 0\n  |        ^"
    );
}

#[test]
fn invalid_utf8_profile_points_at_the_first_bad_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.toml");
    std::fs::write(&path, b"name = \"b\"\n# caf\xe9\n").unwrap();
    let error = Board::load(path.to_str().unwrap()).unwrap_err();
    assert_eq!(
        error.headline(),
        format!(
            "{}:2:6: cannot read board profile: not UTF-8 text: byte 0xe9 cannot be read as a character here",
            path.display()
        )
    );
}

#[test]
fn wrong_type_in_a_power_command_is_one_line() {
    let error = parse(&format!("{MINIMAL}[power]\non = [1]\n")).unwrap_err();
    assert_eq!(
        error,
        "bench.toml:5:6: invalid type: integer `1`, expected a string; a power command is an array of \
         arguments, e.g. [\"uhubctl\", \"-l\", \"1-1\", \"-p\", \"2\", \"-a\", \"on\"]"
    );
}

#[test]
fn a_profile_gives_the_boards_address_and_its_diagnostics() {
    let text = format!(
        "{MINIMAL}on_failure = [\"systemctl --failed --no-pager\"]\n[network]\naddress = \"192.168.2.1\"\n"
    );
    let board = parse(&text).unwrap();
    assert_eq!(board.address.as_deref(), Some("192.168.2.1"));
    assert_eq!(board.on_failure, ["systemctl --failed --no-pager"]);
}

#[test]
fn a_profile_without_network_has_no_address() {
    let board = parse(MINIMAL).unwrap();
    assert_eq!(board.address, None);
    assert!(board.on_failure.is_empty());
}

#[test]
fn load_addresses_are_optional_and_default_to_none() {
    assert_eq!(parse(MINIMAL).unwrap().load_addresses, LoadAddressKeys::default());
}

#[test]
fn load_addresses_take_toml_integers_and_u_boot_text() {
    let board = parse(&format!(
        "{MINIMAL}[load_addresses]\nkernel_addr_r = 0x02080000\nramdisk_addr_r = \"0x08000000\"\n"
    ))
    .unwrap();
    assert_eq!(
        board.load_addresses,
        LoadAddressKeys {
            kernel_addr_r: Some(0x0208_0000),
            ramdisk_addr_r: Some(0x0800_0000),
            fdt_addr_r: None,
        }
    );
}

#[test]
fn a_load_address_that_is_not_hexadecimal_points_at_the_value() {
    let error = parse(&format!("{MINIMAL}[load_addresses]\nramdisk_addr_r = \"128M\"\n")).unwrap_err();
    assert!(
        error.starts_with(
            "bench.toml:5:18: \"128M\" is not a hexadecimal address; write it as U-Boot does, e.g. 0x08000000"
        ),
        "{error}"
    );
}

#[test]
fn a_negative_or_too_large_load_address_is_refused() {
    let error = parse(&format!("{MINIMAL}[load_addresses]\nfdt_addr_r = -1\n")).unwrap_err();
    assert!(
        error.starts_with("bench.toml:5:14: address -1 is negative"),
        "{error}"
    );
    let error = parse(&format!(
        "{MINIMAL}[load_addresses]\nfdt_addr_r = 0x1000000000000\n"
    ))
    .unwrap_err();
    assert!(
        error.contains("address 0x1000000000000 is beyond arm64's 48-bit physical address space"),
        "{error}"
    );
}

#[test]
fn an_unknown_load_address_key_is_refused() {
    let error = parse(&format!("{MINIMAL}[load_addresses]\nkernel_comp_addr_r = 1\n")).unwrap_err();
    assert!(error.contains("unknown field `kernel_comp_addr_r`"), "{error}");
}
