//! The extlinux.conf as a whole: where U-Boot finds it, whether U-Boot understands every line,
//! and whether `DEFAULT` names one of its labels.

use super::include::IncludeProblem;
use super::report::{Check, CheckName};
use crate::image::boot_config::{Found, SEARCH_PATHS};
use crate::image::extlinux::MenuWait;
use crate::image::{Config, ImageError};

/// Where distro boot looks, for reports.
fn searched_location() -> String {
    format!(
        "{} on the bootable partitions, or partition 1 when none is bootable",
        SEARCH_PATHS.join(" and ")
    )
}

/// The extlinux.conf U-Boot would boot from was found and parsed (`found`), or why not; its
/// includes could be followed (`includes` says what U-Boot would stumble on if not); it has a
/// `LABEL` to boot.
pub fn check_conf(found: Result<&Found, &ImageError>, includes: Option<&IncludeProblem>) -> Check {
    match found {
        Ok(found) if includes.is_some() => Check::fail(
            CheckName::ExtlinuxConf,
            format!("partition {}: {}", found.partition, found.path),
            format!("U-Boot rejects it: {}", includes.expect("checked")),
            "fix or remove the INCLUDE named; U-Boot boots nothing from the file",
        ),
        Ok(found) if found.config.labels.is_empty() => Check::fail(
            CheckName::ExtlinuxConf,
            format!("partition {}: {}", found.partition, found.path),
            "found, but it has no LABEL: U-Boot has nothing to boot",
            "add an entry: `LABEL nixos`, then `LINUX`, `INITRD` and `APPEND` lines",
        ),
        Ok(found) => Check::pass(
            CheckName::ExtlinuxConf,
            format!("partition {}: {}", found.partition, found.path),
            format!(
                "found, {} label{}",
                found.config.labels.len(),
                if found.config.labels.len() == 1 { "" } else { "s" }
            ),
        ),
        Err(ImageError::NoBootConfig { searched, .. }) => Check::fail(
            CheckName::ExtlinuxConf,
            searched_location(),
            format!("no extlinux.conf; searched {}", searched.join("; ")),
            "put extlinux.conf at /extlinux/extlinux.conf of the first partition (or /boot/extlinux/ of \
             the bootable one); NixOS writes it with boot.loader.generic-extlinux-compatible.enable",
        ),
        Err(ImageError::Extlinux {
            partition,
            path,
            error,
            ..
        }) => Check::fail(
            CheckName::ExtlinuxConf,
            format!("partition {partition}: {path}"),
            format!("U-Boot rejects it: {error}"),
            "fix the line named; U-Boot prints \"Error parsing config file\" and boots nothing from it",
        ),
        Err(other) => Check::fail(
            CheckName::ExtlinuxConf,
            searched_location(),
            format!("cannot read it: {}", other.detail()),
            "check the boot filesystem with fsck; U-Boot cannot read it either",
        ),
    }
}

/// Lines U-Boot ignores ("Ignoring unknown command", "Ignoring malformed menu command") and
/// `INCLUDE`s, which `inspect` does not follow, are warnings.
pub fn check_keywords(found: &Found) -> Check {
    let config = &found.config;
    let location = format!("partition {}: {}", found.partition, found.path);
    let mut ignored: Vec<String> = config
        .unknown
        .iter()
        .map(|(line, word)| format!("line {line}: unknown keyword {word:?}"))
        .collect();
    ignored.extend(
        config
            .malformed_menu
            .iter()
            .map(|(line, text)| format!("line {line}: malformed {text:?}")),
    );
    let includes: Vec<String> = config
        .includes
        .iter()
        .map(|(line, path)| format!("line {line}: INCLUDE {path} (its entries are not checked)"))
        .collect();
    if !ignored.is_empty() {
        ignored.extend(includes);
        return Check::warn(
            CheckName::ExtlinuxKeywords,
            location,
            format!("U-Boot ignores {}", ignored.join("; ")),
            "remove the lines, or use U-Boot's keywords (syslinux's UI, MENU HIDDEN and the like do \
             nothing in U-Boot)",
        );
    }
    if !includes.is_empty() {
        return Check::warn(
            CheckName::ExtlinuxKeywords,
            location,
            includes.join("; "),
            "inline the included file to have its entries checked",
        );
    }
    Check::pass(
        CheckName::ExtlinuxKeywords,
        location,
        "every keyword is one U-Boot knows",
    )
}

/// The menu chooses by itself ([`Config::menu_waits_forever`]): a board that waits at
/// `Enter choice:` for a key nobody types never boots.
pub fn check_menu_wait(found: &Found) -> Check {
    let config: &Config = &found.config;
    let location = format!("partition {}: {} TIMEOUT", found.partition, found.path);
    if let Some(wait) = config.menu_waits_forever() {
        return Check::fail(
            CheckName::ExtlinuxMenuWait,
            location,
            wait.to_string(),
            MenuWait::FIX,
        );
    }
    let detail = if !config.prompt {
        "no menu: U-Boot boots the DEFAULT at once".to_owned()
    } else if config.labels.len() <= 1 {
        "one entry: U-Boot boots it without showing the menu".to_owned()
    } else {
        format!(
            "the menu boots its DEFAULT after {} s without a key",
            config.menu_timeout_secs()
        )
    };
    Check::pass(CheckName::ExtlinuxMenuWait, location, detail)
}

/// `DEFAULT` (or `ONTIMEOUT`, or `MENU DEFAULT`) names a label of the file. Without any, U-Boot
/// tries the labels in order, which is fine.
pub fn check_default(found: &Found) -> Check {
    let config: &Config = &found.config;
    let location = format!("partition {}: {} DEFAULT", found.partition, found.path);
    let labels: Vec<&str> = config.labels.iter().map(|l| l.name.as_str()).collect();
    match &config.default {
        None => Check::pass(
            CheckName::ExtlinuxDefault,
            location,
            "no DEFAULT: U-Boot tries the labels in menu order",
        ),
        Some(default) if config.label(default).is_some() => Check::pass(
            CheckName::ExtlinuxDefault,
            location,
            format!("DEFAULT {default} is a label of the file"),
        ),
        Some(default) => Check::fail(
            CheckName::ExtlinuxDefault,
            location,
            format!(
                "DEFAULT {default:?} is not a label of the file (labels: {})",
                if labels.is_empty() {
                    "none".to_owned()
                } else {
                    labels.join(", ")
                }
            ),
            format!(
                "set DEFAULT to one of the labels (names are case-sensitive){}",
                labels
                    .first()
                    .map(|l| format!(", e.g. DEFAULT {l}"))
                    .unwrap_or_default()
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::report::Status;
    use crate::inspect::test_parts::found;

    const GOOD: &str = "DEFAULT nixos-default\nTIMEOUT 30\nLABEL nixos-default\n  LINUX /Image\n";

    #[test]
    fn a_good_file_passes_keywords_and_default() {
        assert_eq!(check_keywords(&found(GOOD)).status, Status::Pass);
        assert_eq!(check_default(&found(GOOD)).status, Status::Pass);
    }

    #[test]
    fn a_syslinux_ui_line_is_a_warning_naming_its_line() {
        let check = check_keywords(&found("UI menu.c32\nDEFAULT a\nLABEL a\n  LINUX /Image\n"));
        assert_eq!(check.status, Status::Warn);
        assert_eq!(check.message, "U-Boot ignores line 1: unknown keyword \"UI\"");
    }

    #[test]
    fn a_default_naming_no_label_fails_and_lists_the_labels() {
        let check = check_default(&found(&GOOD.replace("DEFAULT nixos-default", "DEFAULT nixos-42")));
        assert_eq!(check.status, Status::Fail);
        assert_eq!(
            check.message,
            "DEFAULT \"nixos-42\" is not a label of the file (labels: nixos-default)"
        );
    }

    #[test]
    fn default_matching_is_case_sensitive_as_in_u_boot() {
        let check = check_default(&found(
            &GOOD.replace("DEFAULT nixos-default", "DEFAULT NixOS-default"),
        ));
        assert_eq!(check.status, Status::Fail);
    }

    #[test]
    fn a_file_without_a_label_fails_extlinux_conf() {
        let check = check_conf(Ok(&found("DEFAULT a\nTIMEOUT 30\n")), None);
        assert_eq!(check.status, Status::Fail);
        assert_eq!(
            check.message,
            "found, but it has no LABEL: U-Boot has nothing to boot"
        );
        assert_eq!(check_conf(Ok(&found(GOOD)), None).status, Status::Pass);
    }

    #[test]
    fn an_include_problem_fails_extlinux_conf() {
        let check = check_conf(Ok(&found(GOOD)), Some(&IncludeProblem::TooMany));
        assert_eq!(check.status, Status::Fail);
        assert_eq!(check.message, "U-Boot rejects it: more than 256 included files");
    }

    /// Two labels under a menu title, with this TIMEOUT line (or none).
    fn menu_with(timeout: &str) -> String {
        format!("DEFAULT a\nMENU TITLE ----\n{timeout}\nLABEL a\n  LINUX /Image\nLABEL b\n  LINUX /Image\n")
    }

    #[test]
    fn a_menu_with_a_zero_negative_or_missing_timeout_fails_menu_wait_with_the_fix() {
        for (timeout, said) in [
            ("TIMEOUT -10", "TIMEOUT -10"),
            ("TIMEOUT 0", "TIMEOUT 0"),
            ("", "no TIMEOUT"),
        ] {
            let check = check_menu_wait(&found(&menu_with(timeout)));
            assert_eq!(check.status, Status::Fail, "{timeout}");
            assert_eq!(
                check.message,
                format!(
                    "the extlinux menu (2 entries, {said}) waits at `Enter choice:` for a key without limit: \
                     on the board nobody types and it never boots"
                )
            );
            assert!(
                check
                    .hint
                    .as_deref()
                    .unwrap_or("")
                    .contains("boot.loader.timeout = 1"),
                "{check:?}"
            );
        }
    }

    #[test]
    fn a_menu_that_times_out_one_entry_or_no_menu_passes_menu_wait() {
        for (conf, said) in [
            (
                menu_with("TIMEOUT 30"),
                "the menu boots its DEFAULT after 3 s without a key",
            ),
            (
                GOOD.replace("TIMEOUT 30", "TIMEOUT -10"),
                "no menu: U-Boot boots the DEFAULT at once",
            ),
            (
                format!("MENU TITLE x\nTIMEOUT -10\n{GOOD}"),
                "one entry: U-Boot boots it without showing the menu",
            ),
        ] {
            let check = check_menu_wait(&found(&conf));
            assert_eq!(
                (check.status, check.message.as_str()),
                (Status::Pass, said),
                "{conf}"
            );
        }
    }

    #[test]
    fn no_default_passes() {
        assert_eq!(
            check_default(&found("LABEL a\n  LINUX /Image\n")).status,
            Status::Pass
        );
    }
}
