//! Skipping the boot's countdowns: U-Boot's autoboot delay and the extlinux menu's timeout.
//!
//! Both are waits for a person at the console. On QEMU nobody is there, and a scenario that
//! does not look at them loses seconds of every boot to them (2 s of `bootdelay` and 3 s of
//! `TIMEOUT` on the fixtures, 2 s and NixOS's 5 s on a real image). The skipper does what the
//! countdowns would end in, at once: it stops autoboot and runs U-Boot's own `bootcmd` (exactly
//! what autoboot runs), and at the menu it types the number of the entry the timeout would
//! choose (`DEFAULT`). U-Boot's menu takes no empty choice: Enter alone prints "not found" and
//! waits for input without a limit, so the default's number is typed, and without a known
//! default the menu is left to its timeout.
//!
//! The skipper watches alongside whatever a step waits for, and only until the kernel starts.
//! A scenario whose steps type into the boot or stop it themselves keeps the countdown they
//! need: see [`Countdowns::for_steps`].

use crate::console::Pattern;
use crate::scenario::{Action, Step};

use super::outcome::FailReason;
use super::session::Session;

/// U-Boot's autoboot countdown line.
pub(super) const AUTOBOOT: &str = "Hit any key to stop autoboot";
/// U-Boot's command prompt.
pub(super) const UBOOT_PROMPT: &str = "=> ";
/// What autoboot runs when its countdown ends: the board's own boot command.
pub(super) const BOOT_COMMAND: &str = "run bootcmd";
/// The extlinux menu's prompt.
pub(super) const MENU_PROMPT: &str = "Enter choice: ";

/// Whether the countdowns are skipped for a run, and what the menu's timeout would choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CountdownPolicy {
    /// Skip them (QEMU, unless `--real-time-boot`; a board whose profile opts in).
    pub skip: bool,
    /// The menu number of the extlinux.conf's `DEFAULT` entry, when known from the image.
    pub menu_default: Option<usize>,
}

/// A wait the skipper cut short, as transcripts, timings and baselines name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkippedWait {
    /// U-Boot's `bootdelay` countdown.
    Autoboot,
    /// The extlinux menu's `TIMEOUT`.
    Menu,
}

impl SkippedWait {
    /// Its name in timings files: `autoboot` or `menu`.
    pub fn as_str(self) -> &'static str {
        match self {
            SkippedWait::Autoboot => "autoboot",
            SkippedWait::Menu => "menu",
        }
    }
}

/// Which countdowns one run skips.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Countdowns {
    /// Stop U-Boot's autoboot and run `bootcmd` at once.
    pub autoboot: bool,
    /// Type this menu entry number at the extlinux menu at once.
    pub menu: Option<usize>,
}

impl Countdowns {
    /// None skipped: the boot runs in real time.
    pub const REAL_TIME: Countdowns = Countdowns {
        autoboot: false,
        menu: None,
    };

    /// What `policy` skips for a run whose steps are `steps`: every countdown but those a step
    /// needs as they are, as the step table says of each kind
    /// ([`StepKind::countdowns`](crate::scenario::StepKind::countdowns): steps that stop U-Boot
    /// need its countdown, a `menu` step chooses the entry itself, `send` and `send_line` may
    /// type into either countdown). An `expect` still sees every line the boot prints, the
    /// countdown's first line included.
    pub fn for_steps(policy: &CountdownPolicy, real_time_boot: bool, steps: &[Step]) -> Countdowns {
        Countdowns::for_actions(policy, real_time_boot, steps.iter().map(|s| &s.action))
    }

    /// [`Countdowns::for_steps`] for the actions a run performs (a start state's own and its
    /// steps).
    pub fn for_actions<'a>(
        policy: &CountdownPolicy,
        real_time_boot: bool,
        actions: impl IntoIterator<Item = &'a Action>,
    ) -> Countdowns {
        if !policy.skip || real_time_boot {
            return Countdowns::REAL_TIME;
        }
        let mut countdowns = Countdowns {
            autoboot: true,
            menu: policy.menu_default,
        };
        for action in actions {
            let need = action.kind().countdowns();
            if need.autoboot() {
                countdowns.autoboot = false;
            }
            if need.menu() {
                countdowns.menu = None;
            }
        }
        countdowns
    }

    /// What `policy` skips for a boot that only goes to the login prompt (a snapshot's boot).
    pub fn for_boot(policy: &CountdownPolicy) -> Countdowns {
        Countdowns::for_steps(policy, false, &[])
    }
}

/// Where the skipper is in the boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the autoboot countdown to stop it.
    Autoboot,
    /// Stopped it; waiting for the prompt to type `run bootcmd`.
    Prompt,
    /// Waiting for the menu to type the default's number.
    Menu(usize),
    /// Typed `run bootcmd` (and the menu's number): U-Boot's prompt again before the kernel
    /// starts means it gave up on the image, and nobody will type at it.
    Booting,
}

/// Acts on the countdowns as a run's console reaches them; lives in the [`Session`].
#[derive(Debug, Clone)]
pub struct Skipper {
    phase: Phase,
    menu: Option<usize>,
}

impl Skipper {
    /// A skipper for `countdowns`, or `None` when nothing is skipped.
    pub fn new(countdowns: Countdowns) -> Option<Skipper> {
        let phase = if countdowns.autoboot {
            Phase::Autoboot
        } else {
            Phase::Menu(countdowns.menu?)
        };
        Some(Skipper {
            phase,
            menu: countdowns.menu,
        })
    }

    /// The console text the skipper acts on next.
    pub(super) fn pattern(&self) -> Pattern {
        Pattern::literal(match self.phase {
            Phase::Autoboot => AUTOBOOT,
            Phase::Prompt | Phase::Booting => UBOOT_PROMPT,
            Phase::Menu(_) => MENU_PROMPT,
        })
    }

    /// Acts on the text of [`Skipper::pattern`], just seen; returns the skipper for what comes
    /// next, or `None` when it has nothing left to do.
    pub(super) async fn act(mut self, s: &mut Session<'_>) -> Result<Option<Skipper>, FailReason> {
        match self.phase {
            Phase::Autoboot => {
                // Any key stops the countdown, as `interrupt_autoboot` does.
                s.send(b" ", b" ").await?;
                s.note("countdown skipped: U-Boot's autoboot stopped at once; running its own bootcmd (--real-time-boot waits it out)");
                s.mark_skipped_wait(SkippedWait::Autoboot);
                self.phase = Phase::Prompt;
            }
            Phase::Prompt => {
                let line = format!("{BOOT_COMMAND}\r");
                s.send(line.as_bytes(), line.as_bytes()).await?;
                self.phase = match self.menu {
                    Some(number) => Phase::Menu(number),
                    None => Phase::Booting,
                };
            }
            Phase::Menu(number) => {
                let line = format!("{number}\r");
                s.send(line.as_bytes(), line.as_bytes()).await?;
                s.note(&format!(
                    "countdown skipped: extlinux menu entry {number} (its DEFAULT, which the timeout would choose) chosen at once"
                ));
                s.mark_skipped_wait(SkippedWait::Menu);
                self.phase = Phase::Booting;
            }
            Phase::Booting => {
                return Err(FailReason::Check {
                    detail: format!(
                        "U-Boot gave up on the image: it is back at its prompt after running bootcmd, before any \
                         kernel started; its last error: {}",
                        last_error(&s.recent_lines())
                    ),
                });
            }
        }
        Ok(Some(self))
    }
}

/// The last line of U-Boot's that reads like an error, else its last line with any text.
fn last_error(lines: &[String]) -> String {
    let text = |line: &&String| !line.trim().is_empty() && line.trim() != UBOOT_PROMPT.trim();
    let error = |line: &&String| {
        let lower = line.to_ascii_lowercase();
        [
            "error",
            "fail",
            "not found",
            "cannot",
            "can't",
            "bad ",
            "missing",
            "no ",
        ]
        .iter()
        .any(|word| lower.contains(word))
    };
    let mut candidates = lines.iter().rev().filter(text);
    let last = candidates.clone().next();
    candidates
        .find(error)
        .or(last)
        .map(|line| line.trim().to_owned())
        .unwrap_or_else(|| "(nothing printed)".to_owned())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Location;
    use crate::scenario::MenuChoice;

    fn step(action: Action) -> Step {
        Step {
            action,
            timeout: None::<Duration>,
            stage: None,
            location: Location {
                file: "t.toml".into(),
                line: 1,
                column: 1,
            },
        }
    }

    const SKIP: CountdownPolicy = CountdownPolicy {
        skip: true,
        menu_default: Some(1),
    };

    #[test]
    fn a_boot_to_login_skips_both_countdowns() {
        let steps = [step(Action::Expect(Pattern::literal("login:")))];
        assert_eq!(
            Countdowns::for_steps(&SKIP, false, &steps),
            Countdowns {
                autoboot: true,
                menu: Some(1)
            }
        );
    }

    #[test]
    fn a_menu_step_keeps_its_own_choice_and_the_autoboot_is_still_skipped() {
        let steps = [step(Action::Menu(MenuChoice::Number(2)))];
        assert_eq!(
            Countdowns::for_steps(&SKIP, false, &steps),
            Countdowns {
                autoboot: true,
                menu: None
            }
        );
    }

    #[test]
    fn stopping_uboot_or_typing_keeps_the_countdowns_they_need() {
        let uboot = [step(Action::InterruptAutoboot)];
        assert_eq!(
            Countdowns::for_steps(&SKIP, false, &uboot),
            Countdowns {
                autoboot: false,
                menu: Some(1)
            }
        );
        let typing = [step(Action::Send(b" ".to_vec()))];
        assert_eq!(
            Countdowns::for_steps(&SKIP, false, &typing),
            Countdowns::REAL_TIME
        );
    }

    #[test]
    fn real_time_boot_or_a_policy_without_skip_keeps_every_countdown() {
        assert_eq!(Countdowns::for_steps(&SKIP, true, &[]), Countdowns::REAL_TIME);
        let keep = CountdownPolicy::default();
        assert_eq!(Countdowns::for_boot(&keep), Countdowns::REAL_TIME);
        assert!(Skipper::new(Countdowns::REAL_TIME).is_none());
    }

    #[test]
    fn without_a_known_default_the_menu_waits_its_timeout() {
        let policy = CountdownPolicy {
            skip: true,
            menu_default: None,
        };
        assert_eq!(
            Countdowns::for_boot(&policy),
            Countdowns {
                autoboot: true,
                menu: None
            }
        );
    }
}
