//! The HTML report, checked in a real headless Chromium: the page loads with no console
//! message (no script error, no fetch its Content-Security-Policy blocked), draws one bar per
//! stage at the width the result's durations give, shows a failure's fatal line, finds a line
//! searched for from the URL, and shows hostile console bytes as text.
//!
//! The runs boot real fixtures (a failing one and a passing one); the other pages are written
//! by the reporter from transcripts made with the harness's own transcript writer, no QEMU.
//! Without `chromium` these tests say so and pass, unless `CI` is set: in CI they must run.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use r2s_harness::console::Transcript;
use r2s_harness::report::baseline::{Baseline, Policy};
use r2s_harness::report::html::{self, BaselineView, Run, RunInfo};
use r2s_harness::report::timings::Timings;
use r2s_harness::runner::{FailReason, Failure, ScenarioResult, Stage, StageTiming, Verdict};
use r2s_tests::*;
use regex::Regex;

const RUN_LIMIT: Duration = Duration::from_secs(180);
const BROWSER_LIMIT: Duration = Duration::from_secs(90);

/// Where the pages of the booted runs and the failing run's screenshot are kept after the
/// test, as artifacts: `<target>/tmp/r2s-html/<run>/`.
fn artifacts(run: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("r2s-html").join(run);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Debian's Chromium, run headless with a fresh profile that is removed afterwards.
struct Chromium {
    binary: PathBuf,
}

/// A page as Chromium left it once its script ran.
struct Loaded {
    dom: String,
    /// What the page wrote to its console, including every blocked fetch and script error.
    console: Vec<String>,
}

impl Chromium {
    /// Chromium, or `None` (with a message) when it is not installed and this is not CI.
    fn find() -> Option<Chromium> {
        let found = std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("chromium"))
                .find(|candidate| candidate.is_file())
        });
        let in_ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
        match found {
            Some(binary) => Some(Chromium { binary }),
            None if in_ci => panic!("chromium is not installed, and CI is set: .ci/setup installs it"),
            None => {
                eprintln!("SKIPPED: chromium is not installed (apt-get install chromium, or run .ci/setup)");
                None
            }
        }
    }

    fn run(&self, extra: &[&OsStr], url: &str) -> (String, String) {
        let profile = tempfile::Builder::new()
            .prefix("r2s-chromium-")
            .tempdir()
            .expect("profile dir");
        let mut command = Command::new(&self.binary);
        command.args([
            "--headless",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
        ]);
        // Chromium's sandbox refuses to run as root.
        if unsafe { libc::geteuid() } == 0 {
            command.arg("--no-sandbox");
        }
        command
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let child = command.spawn().expect("spawning chromium");
        let pid = child.id();
        let waiter = std::thread::spawn(move || child.wait_with_output());
        while !waiter.is_finished() {
            if started.elapsed() > BROWSER_LIMIT {
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                let _ = waiter.join();
                panic!("chromium overran {BROWSER_LIMIT:?} on {url}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let output = waiter.join().unwrap().expect("chromium output");
        (
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// The DOM of `page` (with `fragment` after `#`) once its script ran.
    fn load(&self, page: &Path, fragment: &str) -> Loaded {
        let url = file_url(page, fragment);
        let (dom, stderr) = self.run(&[OsStr::new("--dump-dom")], &url);
        assert!(
            dom.contains("</html>"),
            "no DOM from chromium for {url}:\n{stderr}"
        );
        let console = stderr
            .lines()
            .filter(|l| l.contains(":CONSOLE"))
            .map(str::to_owned)
            .collect();
        Loaded { dom, console }
    }

    /// A PNG of `page` as a 1280-pixel-wide window shows it.
    fn screenshot(&self, page: &Path, png: &Path, height: u32) {
        let shot = format!("--screenshot={}", png.display());
        let size = format!("--window-size=1280,{height}");
        let (_, stderr) = self.run(&[OsStr::new(&shot), OsStr::new(&size)], &file_url(page, ""));
        let bytes =
            std::fs::read(png).unwrap_or_else(|e| panic!("no screenshot {}: {e}\n{stderr}", png.display()));
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 10_000,
            "not a PNG of a page: {} bytes",
            bytes.len()
        );
    }
}

fn file_url(page: &Path, fragment: &str) -> String {
    let page = page.canonicalize().expect("page path");
    let mut url = format!("file://{}", page.display());
    if !fragment.is_empty() {
        url.push('#');
        url.push_str(fragment);
    }
    url
}

impl Loaded {
    /// The page ran to its end without a script error, a blocked fetch or a console message.
    fn assert_clean(&self) {
        assert!(
            self.console.is_empty(),
            "console messages:\n{}",
            self.console.join("\n")
        );
        let check = attributes(&self.dom, r#"<div id="r2s-selfcheck"[^>]*>"#)
            .pop()
            .expect("self-check element");
        assert_eq!(
            attr(&check, "data-ready"),
            "yes",
            "the page's script did not finish"
        );
        assert_eq!(attr(&check, "data-errors"), "0");
        assert_eq!(attr(&check, "data-csp-violations"), "0");
    }

    /// The text of every element opened by a tag matching `tag_pattern` up to the first
    /// `</div>`, tags removed, entities decoded.
    fn texts(&self, tag_pattern: &str) -> Vec<String> {
        Regex::new(&format!(r#"(?s){tag_pattern}(.*?)</div>"#))
            .unwrap()
            .captures_iter(&self.dom)
            .map(|c| decode(&strip_tags(&c[1])))
            .collect()
    }
}

/// The opening tags matching `pattern`.
fn attributes(dom: &str, pattern: &str) -> Vec<String> {
    Regex::new(pattern)
        .unwrap()
        .find_iter(dom)
        .map(|m| m.as_str().to_owned())
        .collect()
}

/// The value of attribute `name` in an opening tag.
fn attr(tag: &str, name: &str) -> String {
    let re = Regex::new(&format!(r#"\s{}="([^"]*)""#, regex::escape(name))).unwrap();
    re.captures(tag)
        .map(|c| decode(&c[1]))
        .unwrap_or_else(|| panic!("no {name} in {tag}"))
}

fn strip_tags(html: &str) -> String {
    Regex::new(r"<[^>]*>").unwrap().replace_all(html, "").into_owned()
}

fn decode(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// The bars of the timelines' `track` lanes (`now` for the run, `then` for the baseline), in
/// order: stage, width %, px drawn and the px of their lane.
fn bars(dom: &str, track: &str) -> Vec<(String, f64, f64, f64)> {
    let lane_open = Regex::new(r#"<div class="(track [^"]*|axis)"[^>]*>"#).unwrap();
    let bar_open = Regex::new(r#"<div class="bar [^"]*"[^>]*>"#).unwrap();
    let lanes: Vec<regex::Match> = lane_open.find_iter(dom).collect();
    let mut out = Vec::new();
    for (i, lane) in lanes.iter().enumerate() {
        if !lane
            .as_str()
            .starts_with(&format!("<div class=\"track {track}\""))
        {
            continue;
        }
        let track_px: f64 = attr(lane.as_str(), "data-px").parse().unwrap();
        let until = lanes.get(i + 1).map_or(dom.len(), |next| next.start());
        for bar in bar_open.find_iter(&dom[lane.end()..until]) {
            let bar = bar.as_str();
            out.push((
                attr(bar, "data-stage"),
                attr(bar, "data-width-pct").parse().unwrap(),
                attr(bar, "data-px").parse().unwrap(),
                track_px,
            ));
        }
    }
    out
}

/// Checks that the bars are `stages` in order, each as wide as its share of `scale`, as
/// computed and as drawn (within 2 px: a bar is at least a pixel wide and has a border).
fn assert_bars_to_scale(bars: &[(String, f64, f64, f64)], stages: &[(String, f64)], scale: f64) {
    let names: Vec<&str> = bars.iter().map(|b| b.0.as_str()).collect();
    let wanted: Vec<&str> = stages.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(names, wanted, "one bar per stage, in order");
    for ((name, pct, px, track_px), (_, duration)) in bars.iter().zip(stages) {
        let expected = 100.0 * duration / scale;
        assert!(
            (pct - expected).abs() < 0.01,
            "{name}: width {pct}% for {duration}s of {scale}s, not {expected}%"
        );
        let drawn = track_px * expected / 100.0;
        assert!(
            (px - drawn).abs() <= 2.0,
            "{name}: drawn {px}px, not {drawn}px of {track_px}px"
        );
    }
}

/// The stages and total of a run's timings file.
fn timings_of(path: &Path) -> (Vec<(String, f64)>, f64) {
    let timings: Timings = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let scale = timings
        .stages
        .iter()
        .map(|s| s.start + s.duration)
        .fold(timings.total, f64::max);
    (
        timings.stages.into_iter().map(|s| (s.name, s.duration)).collect(),
        scale,
    )
}

fn boot(image: &Path, scenario_name: &str, transcripts: &Path, extra: &[&OsStr]) -> Finished {
    let scenario = scenario(scenario_name);
    let mut args = vec![
        OsStr::new("run"),
        OsStr::new("--image"),
        image.as_os_str(),
        OsStr::new("--transcripts"),
        transcripts.as_os_str(),
    ];
    args.extend_from_slice(extra);
    args.push(scenario.as_os_str());
    run_harness(&args, RUN_LIMIT)
}

#[test]
fn a_failing_runs_page_shows_the_fatal_line_and_its_screenshot_is_kept() {
    let Some(chromium) = Chromium::find() else { return };
    let dir = artifacts("broken-panic");
    let run = boot(&fixture("broken-panic"), "boot-to-login", &dir, &[]);
    assert_eq!(run.code(), Some(1), "{}", run.explain());
    let page = dir.join("report.html");
    let loaded = chromium.load(&page, "");
    loaded.assert_clean();

    let marked = loaded.texts(r#"<div class="line out mark"[^>]*>"#);
    assert_eq!(
        marked.len(),
        1,
        "one marked line in the failure excerpt: {marked:?}"
    );
    // The line the fatal pattern matched (the harness may have seen only its start), not the
    // closing "---[ end Kernel panic" line.
    assert!(
        marked[0].contains("] Kernel panic - not syncing") && !marked[0].contains("---[ end"),
        "{marked:?}"
    );
    let reason = loaded.texts(r#"<section class="failure">"#);
    assert!(reason.iter().any(|t| t.contains("fatal pattern")), "{reason:?}");

    let (stages, scale) = timings_of(&dir.join("boot-to-login.timings.json"));
    assert_bars_to_scale(&bars(&loaded.dom, "now"), &stages, scale);

    let png = dir.join("report.png");
    chromium.screenshot(&page, &png, 2000);
    println!("screenshot of the failing run's page: {}", png.display());
}

#[test]
fn a_passing_runs_page_draws_one_bar_per_stage_to_scale_finds_a_line_searched_for_and_holds_no_password() {
    let Some(chromium) = Chromium::find() else { return };
    let dir = artifacts("r2s-busybox");
    let page = dir.join("page").join("boot.html");
    let run = boot(
        &fixture(r2s_images::DEFAULT_FIXTURE),
        "login-and-run",
        &dir,
        &[OsStr::new("--html"), page.as_os_str()],
    );
    assert_eq!(run.code(), Some(0), "{}", run.explain());
    assert!(
        !dir.join("report.html").exists(),
        "--html names where the page goes"
    );
    // The run logged in with the fixture's password; the page shows it nowhere.
    let text = std::fs::read_to_string(&page).unwrap();
    let password = Regex::new(&format!("{}($|[^s])", regex::escape(r2s_images::ROOT_PASSWORD))).unwrap();
    assert!(!password.is_match(&text), "the password is in the page");
    assert!(
        text.contains("[redacted]"),
        "the login's input is in the page, redacted"
    );

    let loaded = chromium.load(&page, "search=Welcome%20to%20NixOS");
    loaded.assert_clean();
    let (stages, scale) = timings_of(&dir.join("login-and-run.timings.json"));
    assert!(stages.len() >= 7, "a boot to login and a body: {stages:?}");
    assert_bars_to_scale(&bars(&loaded.dom, "now"), &stages, scale);

    let count = attributes(&loaded.dom, r#"<span id="search-count"[^>]*>"#).remove(0);
    // The console's line and the harness's note of the step that waited for it.
    let hits = loaded.texts(r#"<div class="line [a-z]+ hit"[^>]*>"#);
    assert!(hits.iter().all(|h| h.contains("Welcome to NixOS")), "{hits:?}");
    let console_hits = loaded.texts(r#"<div class="line out hit"[^>]*>"#);
    assert!(
        !console_hits.is_empty(),
        "the console's welcome line is found: {hits:?}"
    );
    assert_eq!(attr(&count, "data-count"), hits.len().to_string());
    assert!(
        loaded.dom.contains("<details class=\"transcript\" open=\"\">"),
        "the transcript with the hits is opened"
    );
    assert!(
        !loaded.dom.contains("class=\"failure\""),
        "a pass shows no failure"
    );
}

/// A failed result whose transcript is what `console` printed, written by the harness's
/// transcript writer into `dir`.
fn result_with_console(dir: &Path, name: &str, console: &[(u64, &[u8])], fatal_line: &str) -> ScenarioResult {
    let mut transcript = Transcript::create(dir, "hostile", name).unwrap();
    transcript
        .note(Duration::ZERO, "step 1: expect \"login:\"")
        .unwrap();
    for (ms, bytes) in console {
        transcript.output(Duration::from_millis(*ms), bytes).unwrap();
    }
    transcript
        .note(Duration::from_millis(2_000), "console reconnected after 0.4s")
        .unwrap();
    let paths = transcript.finish().unwrap();
    let stage = |name: &str, start: u64, duration: u64| StageTiming {
        name: Stage::named(name),
        start: Duration::from_millis(start),
        duration: Duration::from_millis(duration),
        skipped_wait: None,
    };
    ScenarioResult {
        name: name.to_owned(),
        source: dir.join("hostile.toml"),
        verdict: Verdict::Fail(Failure {
            step: 1,
            step_description: "expect \"login:\" <b>(hostile.toml:3:1)</b>".into(),
            expected: "\"login:\"".into(),
            reason: FailReason::Fatal {
                pattern: "\"Kernel panic\"".into(),
                line: fatal_line.to_owned(),
                seen_at: Duration::from_millis(1_500),
            },
            at: Duration::from_millis(3_000),
            stage: Stage::Kernel,
            hint: None,
        }),
        duration: Duration::from_millis(3_000),
        stages: vec![stage("uboot", 0, 1_000), stage("kernel", 1_000, 2_000)],
        last_lines: vec![],
        failed_units: vec![],
        transcript: vec![paths.log, paths.raw, paths.cast],
        origin: Default::default(),
        earlier_tries: Vec::new(),
    }
}

fn write_page(dir: &Path, results: &[ScenarioResult], baseline: Option<&BaselineView>) -> PathBuf {
    let page = dir.join("report.html");
    let info = RunInfo {
        image: Some("<img src=x>.img".into()),
        board: "qemu-virt".into(),
        target: "QEMU".into(),
        setup: vec![],
    };
    html::write_report(
        &page,
        &Run {
            info: &info,
            against: Path::new("<img src=x>.img"),
            results,
            baseline,
        },
    )
    .unwrap();
    page
}

#[test]
fn a_scenario_passing_on_a_retry_is_shown_flaky_with_the_reason_of_each_failed_try() {
    let Some(chromium) = Chromium::find() else { return };
    let dir = temp_dir();
    let failed = result_with_console(dir.path(), "flaky", &[(100, b"U-Boot\r\n")], "Kernel panic");
    let passed = ScenarioResult {
        verdict: Verdict::Pass,
        earlier_tries: vec![failed.clone()],
        ..failed
    };
    let page = write_page(dir.path(), &[passed], None);
    let loaded = chromium.load(&page, "");
    loaded.assert_clean();
    assert_eq!(
        loaded
            .dom
            .matches(r#"<span class="badge flaky">FLAKY</span>"#)
            .count(),
        2,
        "a badge in the table and one on the scenario"
    );
    assert!(
        loaded.dom.contains("1 passed, 0 failed, 1 flaky"),
        "the run's header"
    );
    assert!(
        loaded.dom.contains("<h3>FLAKY: passed on try 2</h3>"),
        "{}",
        loaded.dom
    );
    let tries = Regex::new(r"<li>try 1 failed: step 1: fatal pattern [^<]*Kernel panic[^<]*</li>").unwrap();
    assert!(tries.is_match(&loaded.dom), "{}", loaded.dom);
}

#[test]
fn hostile_console_bytes_render_as_text() {
    let Some(chromium) = Chromium::find() else { return };
    let dir = temp_dir();
    let console: &[(u64, &[u8])] = &[
        (100, b"<script>document.title='pwned'</script>\r\n"),
        (
            200,
            b"</script><img src=http://192.0.2.1/x.png onerror=alert(1)><!--\r\n",
        ),
        (300, b"bad bytes \xff\xfe\xc0 end\r\n"),
        (400, b"\x1b[31mred\x1b[0m and \x1b]0;a title\x07plain\r\n"),
        (500, "line\u{2028}separator & \u{2029} amp\r\n".as_bytes()),
        (
            1_500,
            b"[    1.5] Kernel panic - not syncing: <b>init</b> & \"quotes\"\r\n",
        ),
    ];
    let fatal = "[    1.5] Kernel panic - not syncing: <b>init</b> & \"quotes\"";
    let result = result_with_console(dir.path(), "<i>hostile</i></script>", console, fatal);
    let page = write_page(dir.path(), &[result], None);
    let raw = std::fs::read_to_string(&page).unwrap();
    assert_eq!(raw.matches("<script").count(), raw.matches("</script>").count());
    assert_eq!(
        raw.matches("</script>").count(),
        3,
        "run, scenario, code: no console text closes a script element"
    );

    let loaded = chromium.load(&page, "");
    loaded.assert_clean();
    let title = Regex::new(r"<title>(.*?)</title>")
        .unwrap()
        .captures(&loaded.dom)
        .unwrap()[1]
        .to_owned();
    assert!(!title.contains("pwned"), "a console's script ran: {title}");
    assert!(!loaded.dom.contains("<img") && !loaded.dom.contains("<b>") && !loaded.dom.contains("<i>"));
    let lines = loaded.texts(r#"<div class="line out"[^>]*>"#);
    let shown = |needle: &str| lines.iter().any(|l| l.contains(needle));
    assert!(shown("<script>document.title='pwned'</script>"), "{lines:#?}");
    assert!(
        shown("</script><img src=http://192.0.2.1/x.png onerror=alert(1)><!--"),
        "{lines:#?}"
    );
    assert!(shown("bad bytes \u{FFFD}\u{FFFD}\u{FFFD} end"), "{lines:#?}");
    assert!(
        shown("red and plain") && !lines.iter().any(|l| l.contains('\u{1b}')),
        "{lines:#?}"
    );
    let marked = loaded.texts(r#"<div class="line out mark"[^>]*>"#);
    assert_eq!(marked.len(), 1);
    assert!(marked[0].contains(fatal), "{marked:?}");
    assert!(
        loaded.dom.contains("&lt;i&gt;hostile&lt;/i&gt;&lt;/script&gt;"),
        "the name as text"
    );
    // The replay drew the colour and not the escape sequences.
    let red = Regex::new(r#"<span class="f1">red</span>"#).unwrap();
    assert!(red.is_match(&loaded.dom), "the player draws SGR red as a span");
}

#[test]
fn console_control_characters_and_bidi_overrides_show_escaped_and_only_the_replay_gets_the_bytes() {
    let Some(chromium) = Chromium::find() else { return };
    let dir = temp_dir();
    let hostile = "a\u{8}\u{7} \u{9b}2J \u{7f} \u{202e}evil \u{2066}iso \u{2028}sep\r\n";
    let console: &[(u64, &[u8])] = &[
        (100, hostile.as_bytes()),
        (1_500, "Kernel panic \u{202e}here\r\n".as_bytes()),
    ];
    let result = result_with_console(dir.path(), "escape", console, "Kernel panic \u{202e}here");
    let page = write_page(dir.path(), &[result], None);
    let loaded = chromium.load(&page, "");
    loaded.assert_clean();
    let shown = r"a\u{8}\u{7} \u{9b}2J \u{7f} \u{202e}evil \u{2066}iso \u{2028}sep";
    let lines = loaded.texts(r#"<div class="line out"[^>]*>"#);
    assert!(lines.iter().any(|l| l.ends_with(shown)), "{lines:#?}");
    let marked = loaded.texts(r#"<div class="line out mark"[^>]*>"#);
    assert_eq!(marked.len(), 1, "the fatal line is marked");
    assert!(marked[0].ends_with(r"Kernel panic \u{202e}here"), "{marked:?}");
    assert!(
        loaded
            .dom
            .contains(r"fatal pattern &quot;Kernel panic&quot; at 1.5s: Kernel panic \u{202e}here"),
        "the reason, escaped"
    );
    // The data blocks hold the recording's bytes as they were, for the player; what the page
    // draws holds none of them.
    let drawn = Regex::new(r"(?s)<script.*?</script>")
        .unwrap()
        .replace_all(&loaded.dom, "");
    for c in [
        '\u{8}', '\u{7}', '\u{9b}', '\u{7f}', '\u{202e}', '\u{2066}', '\u{2028}',
    ] {
        assert!(!drawn.contains(c), "{c:?} drawn raw");
    }
    let screen = loaded.texts(r#"<div class="term-row"[^>]*>"#);
    assert!(
        screen.iter().any(|row| row.contains("Kernel panic here")),
        "{screen:#?}"
    );
}

#[test]
fn searching_from_the_url_fragment_marks_only_the_matching_lines() {
    let Some(chromium) = Chromium::find() else { return };
    let dir = temp_dir();
    let console: &[(u64, &[u8])] = &[
        (100, b"U-Boot 2023.01\r\n"),
        (200, b"Needle in the haystack\r\n"),
        (300, b"hay\r\n"),
        (1_500, b"Kernel panic - not syncing: x\r\n"),
    ];
    let result = result_with_console(dir.path(), "search", console, "Kernel panic - not syncing: x");
    let page = write_page(dir.path(), &[result], None);
    let loaded = chromium.load(&page, "search=needle%20IN");
    loaded.assert_clean();
    let hits = loaded.texts(r#"<div class="line out hit"[^>]*>"#);
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert!(hits[0].ends_with("Needle in the haystack"), "{hits:?}");
    let count = attributes(&loaded.dom, r#"<span id="search-count"[^>]*>"#).remove(0);
    assert_eq!(attr(&count, "data-count"), "1");
    assert!(loaded.dom.contains("1 matching line<"));
}

#[test]
fn the_baselines_bars_are_drawn_beside_the_runs_and_a_regression_is_marked() {
    let Some(chromium) = Chromium::find() else { return };
    let dir = temp_dir();
    let mut result = result_with_console(dir.path(), "timed", &[(100, b"U-Boot\r\n")], "");
    result.verdict = Verdict::Pass;
    let against = Path::new("<img src=x>.img");
    let mut before = Timings::of(&result, against);
    before.stages[0].duration = 0.9; // uboot: 1.0 s now, within the noise floor
    before.stages[1].duration = 1.0; // kernel: 2.0 s now, +100 % and +1 s: a regression
    before.stages[1].start = 0.9;
    before.total = 1.9;
    let baseline = BaselineView {
        baseline: Baseline {
            source: "main.json".into(),
            scenarios: [("timed".to_owned(), before)].into(),
        },
        policy: Policy::default(),
    };
    let page = write_page(dir.path(), &[result], Some(&baseline));
    let loaded = chromium.load(&page, "");
    loaded.assert_clean();
    let now = bars(&loaded.dom, "now");
    assert_bars_to_scale(&now, &[("uboot".into(), 1.0), ("kernel".into(), 2.0)], 3.0);
    assert_bars_to_scale(
        &bars(&loaded.dom, "then"),
        &[("uboot".into(), 0.9), ("kernel".into(), 1.0)],
        3.0,
    );
    let regressed = attributes(&loaded.dom, r#"<div class="bar [^"]*regressed"[^>]*>"#);
    assert_eq!(regressed.len(), 1, "{regressed:?}");
    assert_eq!(attr(&regressed[0], "data-stage"), "kernel");
    assert!(loaded.dom.contains("+100% REGRESSION"));
}

#[test]
fn an_interactive_part_of_the_transcript_is_a_section_of_its_own() {
    let Some(chromium) = Chromium::find() else { return };
    let dir = temp_dir();
    let mut transcript = Transcript::create(dir.path(), "debug-me", "debug-me").unwrap();
    let at = Duration::from_millis;
    transcript
        .note(at(100), "FAIL: \"false\" exited with status 1")
        .unwrap();
    transcript
        .note(
            at(200),
            "interactive session begins (debug-me: step 1 failed: \"false\" exited with status 1): \
             what follows was typed by a person, until it ends",
        )
        .unwrap();
    transcript.input(at(300), b"uname -m\r").unwrap();
    transcript
        .output(at(400), b"aarch64-typed-by-a-person\r\n")
        .unwrap();
    transcript
        .note(at(500), "interactive session ends: left with Ctrl-]")
        .unwrap();
    let paths = transcript.finish().unwrap();
    let result = ScenarioResult {
        transcript: vec![paths.log, paths.raw, paths.cast],
        ..result_with_console(dir.path(), "debug-me", &[], "Kernel panic")
    };
    let page = write_page(dir.path(), &[result], None);
    let loaded = chromium.load(&page, "");
    loaded.assert_clean();
    let summary = "<summary>Interactive session 1: debug-me: step 1 failed: \"false\" exited with status 1 \
                   (left with Ctrl-])</summary>";
    let section = loaded
        .dom
        .find(&summary.replace('"', "&quot;"))
        .or_else(|| loaded.dom.find(summary))
        .unwrap_or_else(|| panic!("no interactive section:\n{}", loaded.dom));
    let typed = loaded.dom[section..]
        .find("aarch64-typed-by-a-person")
        .expect("the part's lines");
    let transcript_at = loaded.dom[section..]
        .find("class=\"transcript\"")
        .expect("the transcript after it");
    assert!(
        typed < transcript_at,
        "the part's own lines come before the whole transcript"
    );
}
