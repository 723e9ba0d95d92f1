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
use crate::image::extlinux::MenuWait;
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
    /// The image's menu waits for a key without limit: nobody types on the board, so a run
    /// that reaches it without a step that chooses fails there, skipping or not.
    pub menu_waits: Option<MenuWait>,
}

impl CountdownPolicy {
    /// The policy for booting `image`: skipping or not, with its extlinux.conf's `DEFAULT`
    /// menu number and whether its menu waits without limit (both unknown when the image's
    /// extlinux.conf cannot be read).
    pub fn for_image(image: Option<&std::path::Path>, skip: bool) -> CountdownPolicy {
        let config = image
            .and_then(|image| crate::image::boot_config::find(image).ok())
            .map(|found| found.config);
        CountdownPolicy {
            skip,
            menu_default: config
                .as_ref()
                .and_then(|c| c.menu_number(&c.default_label()?.name)),
            menu_waits: config.as_ref().and_then(|c| c.menu_waits_forever()),
        }
    }
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
    /// Fail at the extlinux menu, which would wait for a key without limit and no step
    /// chooses.
    pub menu_waits: Option<MenuWait>,
    /// Nobody types at U-Boot in this run (no step stops or types into it): U-Boot's prompt
    /// after its autoboot countdown, before a kernel starts, means it gave up on the image, and
    /// the run fails there whether or not the countdowns are skipped.
    pub unattended: bool,
}

impl Countdowns {
    /// None skipped: the boot runs in real time.
    pub const REAL_TIME: Countdowns = Countdowns {
        autoboot: false,
        menu: None,
        menu_waits: None,
        unattended: false,
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
        let skip = policy.skip && !real_time_boot;
        let mut countdowns = Countdowns {
            autoboot: skip,
            menu: policy.menu_default.filter(|_| skip),
            menu_waits: policy.menu_waits,
            unattended: true,
        };
        for action in actions {
            let need = action.kind().countdowns();
            if need.autoboot() {
                countdowns.autoboot = false;
                countdowns.unattended = false;
            }
            if need.menu() {
                countdowns.menu = None;
                countdowns.menu_waits = None;
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
    /// Waiting for the autoboot countdown, to let it run out: U-Boot's prompt after it means
    /// U-Boot gave up on the image.
    AutobootRunsOut,
    /// Stopped it; waiting for the prompt to type `run bootcmd`.
    Prompt,
    /// Waiting for the menu to type the default's number.
    Menu(usize),
    /// Waiting for a menu that waits for a key without limit, to fail there.
    MenuWaits(MenuWait),
    /// Typed `run bootcmd` (and the menu's number): U-Boot's prompt again before the kernel
    /// starts means it gave up on the image, and nobody will type at it.
    Booting,
}

/// Acts on the countdowns as a run's console reaches them; lives in the [`Session`].
#[derive(Debug, Clone)]
pub struct Skipper {
    phase: Phase,
    /// U-Boot's boot command has run (typed, or autoboot's own): its prompt from now on, before
    /// a kernel starts, means it gave up on the image.
    bootcmd_ran: bool,
    menu: Option<usize>,
    menu_waits: Option<MenuWait>,
}

impl Skipper {
    /// A skipper for `countdowns`, or `None` when nothing is skipped or watched for.
    pub fn new(countdowns: Countdowns) -> Option<Skipper> {
        let phase = if countdowns.autoboot {
            Phase::Autoboot
        } else if let Some(phase) = Skipper::menu_phase(countdowns.menu_waits, countdowns.menu) {
            phase
        } else if countdowns.unattended {
            Phase::AutobootRunsOut
        } else {
            return None;
        };
        Some(Skipper {
            phase,
            bootcmd_ran: false,
            menu: countdowns.menu,
            menu_waits: countdowns.menu_waits,
        })
    }

    /// What the skipper watches the menu for: one that waits forever, else to type `menu`.
    fn menu_phase(menu_waits: Option<MenuWait>, menu: Option<usize>) -> Option<Phase> {
        match (menu_waits, menu) {
            (Some(wait), _) => Some(Phase::MenuWaits(wait)),
            (None, Some(number)) => Some(Phase::Menu(number)),
            (None, None) => None,
        }
    }

    /// The console text the skipper acts on next; `uboot_prompt` is U-Boot's prompt.
    pub(super) fn pattern(&self, uboot_prompt: &str) -> Pattern {
        Pattern::literal(match self.phase {
            Phase::Autoboot | Phase::AutobootRunsOut => AUTOBOOT,
            Phase::Prompt | Phase::Booting => uboot_prompt,
            Phase::Menu(_) | Phase::MenuWaits(_) => MENU_PROMPT,
        })
    }

    /// U-Boot's prompt, watched beside [`Skipper::pattern`] once the boot command ran and the
    /// menu is still to come: U-Boot back at it instead means it gave up before any menu.
    pub(super) fn gave_up_pattern(&self, uboot_prompt: &str) -> Option<Pattern> {
        let waiting_for_menu = matches!(self.phase, Phase::Menu(_) | Phase::MenuWaits(_));
        (self.bootcmd_ran && waiting_for_menu).then(|| Pattern::literal(uboot_prompt))
    }

    /// Acts on the text of [`Skipper::pattern`], just seen; returns the skipper for what comes
    /// next, or `None` when it has nothing left to do.
    pub(super) async fn act(self, s: &mut Session<'_>) -> Result<Option<Skipper>, FailReason> {
        self.act_on(s, false).await
    }

    /// Acts on [`Skipper::gave_up_pattern`], just seen: the run fails naming U-Boot's last error.
    pub(super) async fn gave_up(self, s: &mut Session<'_>) -> Result<Option<Skipper>, FailReason> {
        self.act_on(s, true).await
    }

    async fn act_on(mut self, s: &mut Session<'_>, gave_up: bool) -> Result<Option<Skipper>, FailReason> {
        if gave_up {
            self.phase = Phase::Booting;
        }
        match self.phase {
            Phase::Autoboot => {
                // Any key stops the countdown, as `interrupt_autoboot` does.
                s.send(b" ", b" ").await?;
                s.note("countdown skipped: U-Boot's autoboot stopped at once; running its own bootcmd (--real-time-boot waits it out)");
                s.mark_skipped_wait(SkippedWait::Autoboot);
                self.phase = Phase::Prompt;
            }
            Phase::AutobootRunsOut => {
                self.bootcmd_ran = true;
                self.phase = Phase::Booting;
            }
            Phase::Prompt => {
                let line = format!("{BOOT_COMMAND}\r");
                s.send(line.as_bytes(), line.as_bytes()).await?;
                self.bootcmd_ran = true;
                self.phase = Skipper::menu_phase(self.menu_waits, self.menu).unwrap_or(Phase::Booting);
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
            Phase::MenuWaits(wait) => {
                return Err(FailReason::Check {
                    detail: format!(
                        "{wait} (not typed past under the harness, as nobody types at the board); {}",
                        MenuWait::FIX
                    ),
                });
            }
            Phase::Booting => {
                return Err(FailReason::Check {
                    detail: format!(
                        "U-Boot gave up on the image: it is back at its prompt after running bootcmd (its \
                         autoboot), before any kernel started, and no step types at it; its last error: {}",
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
        menu_waits: None,
    };

    const WAITS: MenuWait = MenuWait {
        timeout: Some(-10),
        entries: 2,
    };

    #[test]
    fn a_boot_to_login_skips_both_countdowns() {
        let steps = [step(Action::Expect(Pattern::literal("login:")))];
        assert_eq!(
            Countdowns::for_steps(&SKIP, false, &steps),
            Countdowns {
                autoboot: true,
                menu: Some(1),
                menu_waits: None,
                unattended: true,
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
                menu: None,
                menu_waits: None,
                unattended: true,
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
                menu: Some(1),
                menu_waits: None,
                unattended: false,
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
        let unattended = Countdowns {
            unattended: true,
            ..Countdowns::REAL_TIME
        };
        assert_eq!(Countdowns::for_steps(&SKIP, true, &[]), unattended);
        let keep = CountdownPolicy::default();
        assert_eq!(Countdowns::for_boot(&keep), unattended);
        assert!(Skipper::new(Countdowns::REAL_TIME).is_none());
    }

    #[test]
    fn a_boot_nobody_types_at_watches_for_uboot_s_prompt_after_its_countdown_skipping_or_not() {
        for policy in [SKIP, CountdownPolicy::default()] {
            let skipper = Skipper::new(Countdowns::for_boot(&policy)).expect("watches U-Boot");
            assert_eq!(
                format!("{:?}", skipper.pattern(UBOOT_PROMPT)),
                format!("{:?}", Pattern::literal(AUTOBOOT))
            );
        }
        let mut at_uboot = Countdowns::for_steps(&SKIP, true, &[step(Action::InterruptAutoboot)]);
        assert!(!at_uboot.unattended);
        at_uboot.menu_waits = None;
        assert!(Skipper::new(at_uboot).is_none());
    }

    #[test]
    fn without_a_known_default_the_menu_waits_its_timeout() {
        let policy = CountdownPolicy {
            skip: true,
            menu_default: None,
            menu_waits: None,
        };
        assert_eq!(
            Countdowns::for_boot(&policy),
            Countdowns {
                autoboot: true,
                menu: None,
                menu_waits: None,
                unattended: true,
            }
        );
    }

    #[test]
    fn a_menu_that_waits_forever_is_watched_for_whether_or_not_countdowns_are_skipped() {
        for skip in [true, false] {
            let policy = CountdownPolicy {
                skip,
                menu_default: Some(1),
                menu_waits: Some(WAITS),
            };
            let countdowns = Countdowns::for_boot(&policy);
            assert_eq!(countdowns.menu_waits, Some(WAITS));
            let skipper = Skipper::new(countdowns).expect("watches the menu");
            let first = if skip { AUTOBOOT } else { MENU_PROMPT };
            assert_eq!(
                format!("{:?}", skipper.pattern(UBOOT_PROMPT)),
                format!("{:?}", Pattern::literal(first))
            );
        }
    }

    #[test]
    fn a_step_that_chooses_at_the_menu_is_not_failed_by_a_menu_that_waits() {
        let policy = CountdownPolicy {
            skip: true,
            menu_default: Some(1),
            menu_waits: Some(WAITS),
        };
        let steps = [step(Action::Menu(MenuChoice::Number(2)))];
        assert_eq!(Countdowns::for_steps(&policy, false, &steps).menu_waits, None);
    }
}
