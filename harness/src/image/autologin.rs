//! Whether the serial console's getty logs a user in by itself, read from the image's unit
//! files. NixOS's `services.getty.autologinUser` overrides `serial-getty@.service` in the
//! system's `etc/systemd/system/serial-getty@.service.d/overrides.conf` with an `ExecStart=`
//! running `agetty '--login-program' '…/login' '--autologin' 'USER' …` (the arguments quoted
//! by `escapeShellArgs`); on other systems the same comes from a drop-in under
//! `/etc/systemd/system`. agetty then prints `<host> login: USER (automatic login)` and starts
//! USER's shell without asking for a password.
//!
//! The parsing here is pure; [`read`] does the reading.

use super::volume::Volume;

/// The getty systemd's generator starts on a serial kernel console.
const SERIAL_GETTY: &str = "serial-getty@.service";

/// The most a unit file or drop-in may hold.
const UNIT_FILE_LIMIT: u64 = 64 * 1024;

/// The most drop-ins read from one directory.
const MAX_DROP_INS: usize = 32;

/// The user the serial console's getty logs in automatically, if it does: the unit file and
/// its drop-ins from the system's `etc/systemd/system` (NixOS), else from the root's
/// `/etc/systemd/system` over its `/lib/systemd/system` and `/usr/lib/systemd/system`.
pub fn read(root: &Volume, system: Option<&str>) -> Option<String> {
    let nixos = system.map(|dir| vec![format!("{dir}/etc/systemd/system")]);
    let others = vec![
        "/etc/systemd/system".to_owned(),
        "/lib/systemd/system".to_owned(),
        "/usr/lib/systemd/system".to_owned(),
    ];
    for dirs in nixos.into_iter().chain(std::iter::once(others)) {
        let texts = unit_texts(root, &dirs);
        if !texts.is_empty() {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            return exec_start(&refs).and_then(|line| autologin_user(&line));
        }
    }
    None
}

/// The unit file (the first of `dirs` holding it) and then every `.conf` drop-in of the
/// `dirs`, lowest priority first (the drop-ins by name, as systemd orders them).
fn unit_texts(root: &Volume, dirs: &[String]) -> Vec<String> {
    let read = |path: &str| -> Option<String> {
        let bytes = root.read_limited(path, UNIT_FILE_LIMIT, "unit file").ok()?;
        String::from_utf8(bytes).ok()
    };
    let mut texts: Vec<String> = dirs
        .iter()
        .find_map(|dir| read(&format!("{dir}/{SERIAL_GETTY}")))
        .into_iter()
        .collect();
    let mut drop_ins: Vec<(String, String)> = Vec::new();
    for dir in dirs.iter().rev() {
        let drop_in_dir = format!("{dir}/{SERIAL_GETTY}.d");
        let Ok(mut names) = root.list_dir(&drop_in_dir) else {
            continue;
        };
        names.retain(|name| name.ends_with(".conf"));
        names.sort();
        for name in names.into_iter().take(MAX_DROP_INS) {
            if let Some(text) = read(&format!("{drop_in_dir}/{name}")) {
                // A drop-in of a higher-priority directory replaces one of the same name.
                drop_ins.retain(|(kept, _)| *kept != name);
                drop_ins.push((name, text));
            }
        }
    }
    drop_ins.sort_by(|a, b| a.0.cmp(&b.0));
    texts.extend(drop_ins.into_iter().map(|(_, text)| text));
    texts
}

/// The command line the unit runs, from its texts in the order systemd reads them: each
/// `ExecStart=` adds to the list, an empty one clears it (how drop-ins replace a unit's
/// command); the last one left, with systemd's `@`, `-`, `:`, `+` and `!` prefixes removed.
pub fn exec_start(texts: &[&str]) -> Option<String> {
    let mut commands: Vec<String> = Vec::new();
    for text in texts {
        let mut section = "";
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('[') && line.ends_with(']') {
                section = line;
                continue;
            }
            if section != "[Service]" {
                continue;
            }
            let Some(value) = line.strip_prefix("ExecStart=") else {
                continue;
            };
            let value = value.trim();
            if value.is_empty() {
                commands.clear();
            } else {
                commands.push(value.to_owned());
            }
        }
    }
    let command = commands.pop()?;
    let trimmed = command.trim_start_matches(['@', '-', ':', '+', '!']);
    Some(trimmed.to_owned())
}

/// The user agetty's `--autologin` (`--autologin=USER`, `-a USER`) names in `command`, when it
/// is a user name a scenario can quote.
pub fn autologin_user(command: &str) -> Option<String> {
    let words = split_words(command)?;
    let mut words = words.iter();
    while let Some(word) = words.next() {
        let user = match word.as_str() {
            "--autologin" | "-a" => words.next().cloned(),
            _ => word.strip_prefix("--autologin=").map(str::to_owned),
        };
        if let Some(user) = user {
            return is_user_name(&user).then_some(user);
        }
    }
    None
}

/// A command line split into words as systemd and a shell split them: whitespace apart,
/// `'…'` and `"…"` quoted, `\` escaping the next character; `None` for an unclosed quote.
fn split_words(command: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if let Some(done) = word.take() {
                    words.push(done);
                }
            }
            '\'' => {
                let current = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => current.push(c),
                    }
                }
            }
            '"' => {
                let current = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => current.push(chars.next()?),
                        c => current.push(c),
                    }
                }
            }
            '\\' => {
                let escaped = chars.next()?;
                word.get_or_insert_with(String::new).push(escaped);
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Some(words)
}

/// A user name as `useradd` takes it: letters, digits, `_`, `-` and `.`, not starting with
/// `-`, at most 32 characters.
fn is_user_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Debian's `serial-getty@.service`, the relevant part.
    const DEBIAN_UNIT: &str = "[Unit]\nDescription=Serial Getty on %I\n\n[Service]\n\
        ExecStart=-/sbin/agetty -o '-p -- \\\\u' --keep-baud 115200,57600,38400,9600 - $TERM\n\
        Type=idle\nRestart=always\n";

    #[test]
    fn nixos_autologin_override_names_the_user_in_escape_shell_args_quoting() {
        let overrides = "[Service]\nExecStart=\nExecStart=@/nix/store/h-util-linux-2.39.4-bin/sbin/agetty agetty \
            '--login-program' '/nix/store/s-shadow-4.14.6/bin/login' '--autologin' 'nixos' '%I' --keep-baud $TERM\n\
            Restart=always\n";
        let command = exec_start(&[DEBIAN_UNIT, overrides]).unwrap();
        assert!(command.starts_with("/nix/store/h-util-linux-2.39.4-bin/sbin/agetty agetty "));
        assert_eq!(autologin_user(&command), Some("nixos".to_owned()));
    }

    #[test]
    fn a_unit_without_autologin_names_no_user() {
        let command = exec_start(&[DEBIAN_UNIT]).unwrap();
        assert_eq!(autologin_user(&command), None);
    }

    #[test]
    fn the_short_and_the_equals_forms_name_the_user_too() {
        assert_eq!(
            autologin_user("/sbin/agetty -a root --keep-baud 115200 - $TERM"),
            Some("root".to_owned())
        );
        assert_eq!(
            autologin_user("/sbin/agetty --autologin=alice - $TERM"),
            Some("alice".to_owned())
        );
    }

    #[test]
    fn an_empty_exec_start_clears_the_ones_before_it() {
        let drop_in = "[Service]\nExecStart=\n";
        assert_eq!(exec_start(&[DEBIAN_UNIT, drop_in]), None);
    }

    #[test]
    fn exec_start_outside_the_service_section_is_not_the_command() {
        let text =
            "[Unit]\nExecStart=/sbin/agetty --autologin root\n[Service]\nExecStart=/sbin/agetty - $TERM\n";
        let command = exec_start(&[text]).unwrap();
        assert_eq!(autologin_user(&command), None);
    }

    #[test]
    fn a_user_name_a_scenario_cannot_quote_or_an_unclosed_quote_is_no_user() {
        assert_eq!(autologin_user("agetty --autologin 'ro\"ot' - $TERM"), None);
        assert_eq!(autologin_user("agetty --autologin -x - $TERM"), None);
        assert_eq!(autologin_user("agetty --autologin 'root - $TERM"), None);
        assert_eq!(autologin_user("agetty --autologin"), None);
    }
}
