//! The console matcher, specified by feeding it console text the way a target delivers it.

mod console_support;

use std::time::Instant;

use console_support::{assert_same_run, feed_in_chunks, lit, re, run_steps, CHUNK_SIZES};
use r2s_harness::console::matcher::{RECENT_LINES, RETAINED_CAP, SHOWN_LINE_CAP};
use r2s_harness::console::{ByteStats, Event, Expected, Matcher, Pattern};

fn watch(index: usize, line: &str) -> Event {
    Event::Watch {
        index,
        line: line.into(),
    }
}

fn expected(index: usize, matched: &str, before: &str, line: &str) -> Expected {
    Expected {
        index,
        matched: matched.to_owned(),
        before: before.to_owned(),
        line: line.to_owned(),
    }
}

#[test]
fn watch_literal_matches_through_colour_codes() {
    let mut matcher = Matcher::new(vec![lit("<<< NixOS Stage 2 >>>")]);
    let events = matcher.feed(b"\x1b[1;32m<<< NixOS Stage 2 >>>\x1b[0m\r\n");
    assert_eq!(events, [watch(0, "<<< NixOS Stage 2 >>>")]);
}

#[test]
fn watch_literal_split_across_chunks_and_escape_codes_is_found_once() {
    let input = b"[    1.0] x\r\n\x1b[1;32m<<< NixOS \x1b[0mStage 2 >>>\r\nrunning activation script...\r\n";
    for size in CHUNK_SIZES {
        let mut matcher = Matcher::new(vec![lit("<<< NixOS Stage 2 >>>")]);
        let events = feed_in_chunks(&mut matcher, input, size);
        let indices: Vec<usize> = events
            .iter()
            .map(|e| match e {
                Event::Watch { index, .. } => *index,
                Event::Expected(_) => panic!("no expectation was set"),
            })
            .collect();
        assert_eq!(indices, [0], "chunk size {size}");
    }
}

#[test]
fn watch_line_is_as_much_of_the_line_as_has_arrived() {
    let mut matcher = Matcher::new(vec![lit("Kernel panic")]);
    assert_eq!(
        matcher.feed(b"[    2.1] Kernel panic - not sync"),
        [watch(0, "[    2.1] Kernel panic - not sync")]
    );
    assert_eq!(matcher.feed(b"ing: VFS\r\n"), []);
}

#[test]
fn literal_matches_across_a_line_break() {
    let mut matcher = Matcher::new(vec![lit("Starting kernel ...\n\n")]);
    let events = feed_in_chunks(
        &mut matcher,
        b"Starting kernel ...\r\n\r\n[    0.000000] Booting Linux\r\n",
        3,
    );
    assert_eq!(events, [watch(0, "Starting kernel ...")]);
}

#[test]
fn overlapping_watch_literals_each_fire() {
    let mut matcher = Matcher::new(vec![lit("Kernel panic"), lit("panic - not syncing")]);
    let events = matcher.feed(b"Kernel panic - not syncing: Attempted to kill init!\n");
    let line = "Kernel panic - not syncing: Attempted to kill init!";
    assert_eq!(events, [watch(0, line), watch(1, line)]);
}

#[test]
fn every_occurrence_of_a_watch_fires() {
    let mut matcher = Matcher::new(vec![lit("Retry count exceeded"), re(r"^Resetting CPU")]);
    let events =
        matcher.feed(b"Retry count exceeded\nResetting CPU ...\nRetry count exceeded\nResetting CPU ...\n");
    assert_eq!(
        events,
        [
            watch(0, "Retry count exceeded"),
            watch(1, "Resetting CPU ..."),
            watch(0, "Retry count exceeded"),
            watch(1, "Resetting CPU ..."),
        ]
    );
}

#[test]
fn watch_regex_matches_within_a_complete_line() {
    let mut matcher = Matcher::new(vec![re(
        r"Skipping \S+ for failure retrieving (kernel|initrd|FDT)",
    )]);
    let events = matcher
        .feed(b"Retrieving file: /nixos/x-Image\r\nSkipping nixos-default for failure retrieving kernel\r\n");
    assert_eq!(
        events,
        [watch(0, "Skipping nixos-default for failure retrieving kernel")]
    );
}

#[test]
fn regex_does_not_match_across_lines() {
    let mut matcher = Matcher::new(vec![re(r"failure\s+retrieving")]);
    assert_eq!(matcher.feed(b"Skipping x for failure\nretrieving kernel\n"), []);
}

#[test]
fn regex_matches_a_prompt_that_has_no_newline() {
    let mut matcher = Matcher::new(vec![]);
    assert_eq!(matcher.expect(&[re(r"^[a-z0-9-]+ login: $")]), None);
    let events = matcher.feed(b"\r\n<<< Welcome to NixOS 25.05 (aarch64) - ttyS2 >>>\r\n\r\nnixos login: ");
    assert_eq!(
        events,
        [Event::Expected(expected(
            0,
            "nixos login: ",
            "\n<<< Welcome to NixOS 25.05 (aarch64) - ttyS2 >>>\n\n",
            "nixos login: "
        ))]
    );
}

#[test]
fn regex_never_matches_the_same_text_twice_as_its_line_grows() {
    let mut matcher = Matcher::new(vec![re(r"login: ")]);
    let mut events = Vec::new();
    for piece in [&b"nixos log"[..], b"in: ", b"ro", b"ot", b"\r\n", b"Password: "] {
        events.extend(matcher.feed(piece));
    }
    assert_eq!(events, [watch(0, "nixos login: ")]);
}

#[test]
fn regex_watch_fires_for_each_occurrence_on_one_line() {
    let mut matcher = Matcher::new(vec![re(r"=> ")]);
    let events = feed_in_chunks(&mut matcher, b"=> => \n", 1);
    assert_eq!(events, [watch(0, "=> "), watch(0, "=> => ")]);
}

#[test]
fn expect_finds_a_match_in_text_retained_before_it_was_set() {
    let mut matcher = Matcher::new(vec![]);
    assert_eq!(
        matcher.feed(b"U-Boot 2024.01\r\nHit any key to stop autoboot:  2 "),
        []
    );
    assert_eq!(
        matcher.expect(&[lit("Hit any key to stop autoboot")]),
        Some(expected(
            0,
            "Hit any key to stop autoboot",
            "U-Boot 2024.01\n",
            "Hit any key to stop autoboot:  2 "
        ))
    );
}

#[test]
fn expect_returns_the_match_that_ends_first_in_retained_text() {
    let mut matcher = Matcher::new(vec![]);
    matcher.feed(b"Retrieving file: /Image\nBad Linux ARM64 Image magic!\nnixos login: ");
    let found = matcher.expect(&[re(r"login: $"), lit("Bad Linux ARM64 Image magic!")]);
    assert_eq!(
        found.map(|e| (e.index, e.before)),
        Some((1, "Retrieving file: /Image\n".to_owned()))
    );
}

#[test]
fn at_the_same_end_the_pattern_listed_first_wins() {
    let mut matcher = Matcher::new(vec![]);
    matcher.feed(b"nixos login: ");
    let found = matcher.expect(&[lit("login: "), lit("nixos login: ")]);
    assert_eq!(
        found.map(|e| (e.index, e.matched)),
        Some((0, "login: ".to_owned()))
    );
}

#[test]
fn before_holds_command_output_between_two_matches() {
    let prompt = [re(r"\[root@nixos:~\]# $")];
    let mut matcher = Matcher::new(vec![]);
    matcher.feed(b"[root@nixos:~]# ");
    assert!(matcher.expect(&prompt).is_some());
    assert_eq!(matcher.expect(&prompt), None);
    let events = feed_in_chunks(
        &mut matcher,
        b"uname -r\r\n6.12.8\r\n\x1b[1;31m[root@nixos:~]# \x1b[0m",
        5,
    );
    assert_eq!(
        events,
        [Event::Expected(expected(
            0,
            "[root@nixos:~]# ",
            "uname -r\n6.12.8\n",
            "[root@nixos:~]# "
        ))]
    );
}

#[test]
fn text_after_a_match_stays_retained_for_the_next_expect() {
    let mut matcher = Matcher::new(vec![]);
    matcher.expect(&[lit("Starting kernel ...")]);
    let events =
        matcher.feed(b"Starting kernel ...\r\n\r\n[    0.000000] Booting Linux on physical CPU 0x0\r\n");
    assert!(matches!(&events[..], [Event::Expected(e)] if e.index == 0));
    assert_eq!(
        matcher.expect(&[lit("Booting Linux on physical CPU")]),
        Some(expected(
            0,
            "Booting Linux on physical CPU",
            "\n\n[    0.000000] ",
            "[    0.000000] Booting Linux on physical CPU 0x0"
        ))
    );
}

#[test]
fn at_most_one_expected_per_feed_and_the_rest_stays_retained() {
    let mut matcher = Matcher::new(vec![]);
    matcher.expect(&[lit("=> ")]);
    let events = matcher.feed(b"=> => ");
    assert_eq!(events, [Event::Expected(expected(0, "=> ", "", "=> => "))]);
    assert_eq!(
        matcher.expect(&[lit("=> ")]),
        Some(expected(0, "=> ", "", "=> => "))
    );
    assert_eq!(matcher.expect(&[lit("=> ")]), None);
}

#[test]
fn regex_is_not_found_again_in_the_consumed_part_of_a_line() {
    let mut matcher = Matcher::new(vec![]);
    matcher.feed(b"count 1 then 2");
    let digit = [re(r"\d")];
    assert_eq!(matcher.expect(&digit).map(|e| e.matched), Some("1".to_owned()));
    assert_eq!(
        matcher.expect(&digit).map(|e| (e.matched, e.before)),
        Some(("2".to_owned(), " then ".to_owned()))
    );
    assert_eq!(matcher.expect(&digit), None);
}

#[test]
fn line_start_anchor_does_not_match_in_the_middle_of_a_consumed_line() {
    let mut matcher = Matcher::new(vec![]);
    matcher.feed(b"=> help\n");
    assert!(matcher.expect(&[lit("=> ")]).is_some());
    assert_eq!(matcher.expect(&[re(r"^help")]), None);
    assert_eq!(
        matcher.feed(b"help\n"),
        [Event::Expected(expected(0, "help", "help\n", "help"))]
    );
}

#[test]
fn discard_retained_stops_stale_output_from_matching() {
    let mut matcher = Matcher::new(vec![]);
    matcher.feed(b"nixos login: ");
    matcher.discard_retained();
    assert_eq!(matcher.expect(&[lit("login: ")]), None);
    assert_eq!(
        matcher.feed(b"root\r\nnixos login: "),
        [Event::Expected(expected(
            0,
            "login: ",
            "root\nnixos ",
            "nixos login: "
        ))]
    );
}

#[test]
fn a_match_cannot_start_in_text_discarded_while_expecting() {
    let mut matcher = Matcher::new(vec![]);
    matcher.expect(&[re(r"login: "), lit("Password: ")]);
    matcher.feed(b"nixos log");
    matcher.discard_retained();
    assert_eq!(matcher.feed(b"in: \nPassw"), []);
    matcher.discard_retained();
    assert_eq!(matcher.feed(b"ord: \n"), []);
}

#[test]
fn clear_expect_removes_the_expectation() {
    let mut matcher = Matcher::new(vec![]);
    matcher.expect(&[lit("Password: ")]);
    matcher.clear_expect();
    assert_eq!(matcher.feed(b"Password: "), []);
    assert!(matcher.expect(&[lit("Password: ")]).is_some());
}

#[test]
fn a_new_expect_replaces_the_previous_one() {
    let mut matcher = Matcher::new(vec![]);
    matcher.expect(&[lit("Password: ")]);
    matcher.expect(&[lit("login: ")]);
    assert_eq!(matcher.feed(b"Password: "), []);
}

#[test]
fn watch_hit_and_expect_match_in_one_chunk_come_in_stream_order() {
    let input = b"Starting kernel ...\r\n[    0.8] Kernel panic - not syncing: no init\r\n";
    let mut matcher = Matcher::new(vec![lit("Kernel panic - not syncing")]);
    matcher.expect(&[lit("Starting kernel ...")]);
    assert_eq!(
        matcher.feed(input),
        [
            Event::Expected(expected(0, "Starting kernel ...", "", "Starting kernel ...")),
            watch(0, "[    0.8] Kernel panic - not syncing: no init"),
        ]
    );

    let mut matcher = Matcher::new(vec![lit("Starting kernel ...")]);
    matcher.expect(&[re(r"Kernel panic - not syncing: .*")]);
    assert_eq!(
        matcher.feed(input),
        [
            watch(0, "Starting kernel ..."),
            Event::Expected(expected(
                0,
                "Kernel panic - not syncing: no init",
                "Starting kernel ...\n[    0.8] ",
                "[    0.8] Kernel panic - not syncing: no init"
            )),
        ]
    );
}

#[test]
fn watches_keep_firing_after_the_expectation_matched_in_the_chunk() {
    let mut matcher = Matcher::new(vec![lit("loading module"), re(r"^running udev\.\.\.$")]);
    matcher.expect(&[lit("<<< NixOS Stage 1 >>>")]);
    let events =
        matcher.feed(b"<<< NixOS Stage 1 >>>\r\n\r\nloading module virtio_blk...\r\nrunning udev...\r\n");
    assert_eq!(
        events,
        [
            Event::Expected(expected(0, "<<< NixOS Stage 1 >>>", "", "<<< NixOS Stage 1 >>>")),
            watch(0, "loading module virtio_blk..."),
            watch(1, "running udev..."),
        ]
    );
}

#[test]
fn a_pattern_split_by_multibyte_utf8_chunks_matches() {
    let mut matcher = Matcher::new(vec![lit("Grüße ✓"), re(r"^résumé$")]);
    let events = feed_in_chunks(&mut matcher, "x Grüße ✓ y\nrésumé\n".as_bytes(), 1);
    assert_eq!(events, [watch(0, "x Grüße ✓"), watch(1, "résumé")]);
}

#[test]
fn invalid_utf8_is_shown_lossily_and_does_not_stop_matching() {
    let mut matcher = Matcher::new(vec![lit("login: "), re(r"^(?-u:\xff)ok$")]);
    let events = matcher.feed(b"\xfe nixos login: \xff\r\n\xffok\r\n");
    assert_eq!(
        events,
        [watch(0, "\u{fffd} nixos login: \u{fffd}"), watch(1, "\u{fffd}ok")]
    );
}

#[test]
fn empty_patterns_never_match() {
    let mut matcher = Matcher::new(vec![lit(""), re("^")]);
    assert_eq!(matcher.expect(&[lit("")]), None);
    assert_eq!(matcher.feed(b"anything\n"), []);
}

#[test]
fn recent_lines_are_the_last_complete_lines_and_the_incomplete_one() {
    let mut matcher = Matcher::new(vec![]);
    let mut input = String::new();
    for i in 0..30 {
        input.push_str(&format!("\x1b[0mline {i}\r\n"));
    }
    input.push_str("nixos login: ");
    feed_in_chunks(&mut matcher, input.as_bytes(), 7);
    let mut want: Vec<String> = (10..30).map(|i| format!("line {i}")).collect();
    want.push("nixos login: ".to_owned());
    assert_eq!(matcher.recent_lines(), want);
    assert_eq!(want.len(), RECENT_LINES + 1);
}

#[test]
fn recent_lines_are_the_last_lines_of_a_long_stream_in_any_chunking() {
    // Over 2 MiB, so retained text is dropped while lines are remembered; line lengths vary so
    // reads end anywhere in a line and hold from none to hundreds of lines.
    let mut input = String::new();
    let mut i = 0;
    while input.len() < 2_500_000 {
        input.push_str(&format!("line {i} {}\r\n", "=".repeat(i % 97)));
        i += 1;
    }
    input.push_str("nixos login: ");
    let mut want: Vec<String> = ((i - RECENT_LINES)..i)
        .map(|n| format!("line {n} {}", "=".repeat(n % 97)))
        .collect();
    want.push("nixos login: ".to_owned());
    for size in [13, 4096, 100_000] {
        let mut matcher = Matcher::new(vec![]);
        feed_in_chunks(&mut matcher, input.as_bytes(), size);
        assert_eq!(matcher.recent_lines(), want, "chunk size {size}");
        assert_eq!(
            matcher.buffer_sizes().recent_lines,
            RECENT_LINES,
            "chunk size {size}"
        );
    }
}

#[test]
fn recent_lines_are_cut_to_their_last_bytes() {
    let mut matcher = Matcher::new(vec![]);
    let long = format!("{}end\n", "x".repeat(5000));
    matcher.feed(long.as_bytes());
    let lines = matcher.recent_lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0], format!("…{}end", "x".repeat(SHOWN_LINE_CAP - 3)));
}

#[test]
fn byte_stats_count_bytes_a_person_cannot_read() {
    let mut matcher = Matcher::new(vec![]);
    matcher.feed(b"\x1b[0mok \xe2\x9c\x93\r\n");
    matcher.feed(b"\x00\xff\x8f\x07");
    assert_eq!(
        matcher.byte_stats(),
        ByteStats {
            total: 16,
            non_printable: 4
        }
    );
}

/// A boot as design.md §2 describes it, with the serial line's `\r\n` and NixOS's colours.
const BOOT: &[u8] = b"\r\nU-Boot TPL 2024.01 (Jan 01 2024 - 00:00:00)\r\nU-Boot SPL 2024.01 (Jan 01 2024 - 00:00:00)\r\n\
Trying to boot from MMC1\r\n\r\n\r\nU-Boot 2024.01 (Jan 01 2024 - 00:00:00 +0000)\r\n\r\n\
Model: FriendlyElec NanoPi R2S\r\nDRAM:  1 GiB\r\nHit any key to stop autoboot:  2 \x08\x08\x08 1 \x08\x08\x08 0 \r\n\
Scanning mmc 1:1...\r\nFound /extlinux/extlinux.conf\r\nRetrieving file: /extlinux/extlinux.conf\r\n\
------------------------------------------------------------\r\n1:\tNixOS - Default\r\nEnter choice: 1:\tNixOS - Default\r\n\
Retrieving file: /nixos/abc-linux-6.12-Image\r\nRetrieving file: /nixos/def-initrd-linux-6.12-initrd\r\n\
append: init=/nix/store/xyz-nixos-system/init console=ttyS2,1500000 loglevel=4\r\n\
Retrieving file: /nixos/ghi-dtbs/rockchip/rk3328-nanopi-r2s.dtb\r\n\
## Flattened Device Tree blob at 01f00000\r\n   Booting using the fdt blob at 0x1f00000\r\n\
Starting kernel ...\r\n\r\n[    0.000000] Booting Linux on physical CPU 0x0000000000 [0x410fd034]\r\n\
[    0.000000] Linux version 6.12.8 (nixbld@localhost) #1-NixOS SMP PREEMPT\r\n\
[    1.234567] Run /init as init process\r\n\r\n\x1b[1;32m<<< NixOS Stage 1 >>>\x1b[0m\r\n\r\n\
loading module dm_mod...\r\nrunning udev...\r\nStarting systemd-udevd version 256.8\r\n\
mounting /dev/disk/by-label/NIXOS_SD on /...\r\n\r\n\x1b[1;32m<<< NixOS Stage 2 >>>\x1b[0m\r\n\r\n\
running activation script...\r\nsetting up /etc...\r\nstarting systemd...\r\n\r\n\
\x1b[0;1;39mWelcome to \x1b[0m\x1b[38;2;126;186;228mNixOS 25.05 (Warbler)\x1b[0m!\r\n\r\n\
[  \x1b[0;32mOK  \x1b[0m] Reached target \x1b[0;1;39mMulti-User System\x1b[0m.\r\n\r\n\r\n\
<<< Welcome to NixOS 25.05.20250101.abcdef (aarch64) - ttyS2 >>>\r\n\r\nRun 'nixos-help' for the NixOS manual.\r\n\r\n\
nixos login: ";

fn boot_watches() -> Vec<Pattern> {
    vec![
        lit("Kernel panic - not syncing"),
        lit("An error occurred in stage 1 of the boot process"),
        lit("### ERROR ### Please RESET the board ###"),
        lit("U-Boot SPL "),
        re(r"^U-Boot 20\d\d\.\d\d"),
        lit("Starting kernel ..."),
        lit("<<< NixOS Stage 1 >>>"),
        lit("<<< NixOS Stage 2 >>>"),
        re(r"<<< Welcome to NixOS \S+ \(aarch64\) - \w+ >>>"),
        re(r"^Skipping \S+ for failure retrieving"),
    ]
}

fn boot_steps() -> Vec<Vec<Pattern>> {
    vec![
        vec![lit("Hit any key to stop autoboot")],
        vec![lit("Enter choice: ")],
        vec![re(r"console=ttyS\d+,\d+ ")],
        vec![lit("Run /init as init process")],
        vec![lit("starting systemd..."), lit("An error occurred in stage 1")],
        vec![re(r"^[a-z0-9-]+ login: $")],
    ]
}

#[test]
fn boot_markers_and_steps_are_found_in_order() {
    let run = run_steps(BOOT, usize::MAX, boot_watches(), &boot_steps());
    let watch_indices: Vec<usize> = run.watches.iter().map(|(index, _)| *index).collect();
    assert_eq!(watch_indices, [3, 4, 5, 6, 7, 8]);
    assert_eq!(run.watches[1].1, "U-Boot 2024.01 (Jan 01 2024 - 00:00:00 +0000)");
    let answers: Vec<(usize, usize, &str)> = run
        .expected
        .iter()
        .map(|(step, e)| (*step, e.index, e.matched.as_str()))
        .collect();
    assert_eq!(
        answers,
        [
            (0, 0, "Hit any key to stop autoboot"),
            (1, 0, "Enter choice: "),
            (2, 0, "console=ttyS2,1500000 "),
            (3, 0, "Run /init as init process"),
            (4, 0, "starting systemd..."),
            (5, 0, "nixos login: "),
        ]
    );
    assert_eq!(
        run.expected[4].1.before,
        "\n\n<<< NixOS Stage 1 >>>\n\nloading module dm_mod...\nrunning udev...\nStarting systemd-udevd version 256.8\n\
         mounting /dev/disk/by-label/NIXOS_SD on /...\n\n<<< NixOS Stage 2 >>>\n\nrunning activation script...\n\
         setting up /etc...\n"
    );
}

#[test]
fn boot_gives_the_same_events_in_every_chunking() {
    let whole = run_steps(BOOT, usize::MAX, boot_watches(), &boot_steps());
    for size in CHUNK_SIZES {
        let run = run_steps(BOOT, size, boot_watches(), &boot_steps());
        assert_same_run(&whole, &run, &format!("chunk size {size}"));
    }
}

#[test]
fn boot_with_stage_1_failure_reports_the_fatal_line() {
    let failing = b"<<< NixOS Stage 1 >>>\r\n\r\nwaiting for device /dev/disk/by-label/NIXOS_SD to appear....... timed out\r\n\
\r\nAn error occurred in stage 1 of the boot process, which must mount the\r\nroot filesystem on `/mnt-root' and then start stage 2.  Press one\r\n";
    for size in CHUNK_SIZES {
        let run = run_steps(failing, size, boot_watches(), &[vec![lit("starting systemd...")]]);
        let watches: Vec<usize> = run.watches.iter().map(|(index, _)| *index).collect();
        assert_eq!(watches, [6, 1], "chunk size {size}");
        assert!(run.expected.is_empty());
    }
}

/// 50 patterns like a real scenario's: fatal messages and stage markers.
fn many_watches() -> Vec<Pattern> {
    let mut patterns: Vec<Pattern> = (0..40)
        .map(|i| lit(&format!("fatal marker number {i}")))
        .collect();
    patterns.extend((0..10).map(|i| re(&format!(r"^stage {i}: \w+ reached in \d+ ms$"))));
    patterns
}

#[test]
fn ten_megabytes_without_a_newline_keep_memory_bounded() {
    let mut matcher = Matcher::new(many_watches());
    matcher.expect(&[re(r"login: $")]);
    let chunk: Vec<u8> = b"\x1b[0mgarbage ".iter().copied().cycle().take(4096).collect();
    let mut largest = 0;
    for _ in 0..(10 * 1024 * 1024 / chunk.len()) {
        assert_eq!(matcher.feed(&chunk), []);
        largest = largest.max(matcher.buffer_sizes().text_capacity);
    }
    let sizes = matcher.buffer_sizes();
    assert!(
        largest <= 2 * RETAINED_CAP + 64 * 1024,
        "text buffer grew to {largest} bytes"
    );
    assert!(sizes.retained <= RETAINED_CAP, "{sizes:?}");
    assert_eq!(sizes.recent_lines, 0);
    assert!(matcher.recent_lines()[0].len() <= SHOWN_LINE_CAP + '…'.len_utf8());
    // Everything still works at the end of the line.
    assert!(
        matches!(&matcher.feed(b"nixos login: ")[..], [Event::Expected(e)] if e.before.len() <= RETAINED_CAP)
    );
}

#[test]
fn time_stays_linear_in_the_length_of_a_line_without_newline() {
    let chunk: Vec<u8> = b"x".repeat(4096);
    let time = |megabytes: usize| {
        let mut matcher = Matcher::new(many_watches());
        matcher.expect(&[re(r"login: $")]);
        let started = Instant::now();
        for _ in 0..(megabytes * 1024 * 1024 / chunk.len()) {
            matcher.feed(&chunk);
        }
        started.elapsed()
    };
    let small = time(2);
    let large = time(10);
    // Linear is 5x; rescanning the growing line would be about 25x.
    assert!(large < small * 12, "2 MB took {small:?}, 10 MB took {large:?}");
}

/// A small deterministic generator, so failures reproduce.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    fn text(&mut self, len: usize, alphabet: &[u8]) -> Vec<u8> {
        (0..len)
            .map(|_| alphabet[self.below(alphabet.len() as u64) as usize])
            .collect()
    }
}

/// Every (pattern, end) occurrence, ordered as the matcher orders watch events.
fn naive_watch_indices(text: &[u8], literals: &[Vec<u8>], regexes: &[regex::bytes::Regex]) -> Vec<usize> {
    let mut hits = Vec::new();
    for (index, literal) in literals.iter().enumerate() {
        for end in literal.len()..=text.len() {
            if &text[end - literal.len()..end] == literal.as_slice() {
                hits.push((end, index));
            }
        }
    }
    let mut line_start = 0;
    for line in text.split(|&b| b == b'\n') {
        for (slot, regex) in regexes.iter().enumerate() {
            for m in regex.find_iter(line) {
                hits.push((line_start + m.end(), literals.len() + slot));
            }
        }
        line_start += line.len() + 1;
    }
    hits.sort();
    hits.into_iter().map(|(_, index)| index).collect()
}

#[test]
fn watches_report_every_occurrence_in_any_chunking() {
    let mut random = XorShift(0x5eed_1234_abcd_ef01);
    for round in 0..200 {
        let literals: Vec<Vec<u8>> = (0..1 + random.below(6))
            .map(|_| {
                let len = 1 + random.below(5) as usize;
                // Mostly `a` and `b`, which overlap a lot; `c` and `d` make some that cannot.
                let alphabet: &[u8] = if random.below(3) == 0 { b"cd" } else { b"ab" };
                random.text(len, alphabet)
            })
            .collect();
        // Fixed-length regexes without `$`, so a match never depends on what follows.
        let sources = ["a[ab]b", "^ab", "b.a", "(?:ba){2}"];
        let sources = &sources[..random.below(5) as usize];
        let regexes: Vec<regex::bytes::Regex> = sources
            .iter()
            .map(|s| regex::bytes::Regex::new(s).unwrap())
            .collect();
        let len = 200 + random.below(300) as usize;
        let text = random.text(len, b"aabcd\n");
        let want = naive_watch_indices(&text, &literals, &regexes);
        let patterns: Vec<Pattern> = literals
            .iter()
            .map(|l| lit(std::str::from_utf8(l).unwrap()))
            .chain(regexes.iter().map(|r| Pattern::Regex(r.clone())))
            .collect();
        for size in [1, 2, 3, 7, 64, usize::MAX] {
            let mut matcher = Matcher::new(patterns.clone());
            let got: Vec<usize> = feed_in_chunks(&mut matcher, &text, size)
                .into_iter()
                .map(|event| match event {
                    Event::Watch { index, .. } => index,
                    Event::Expected(_) => unreachable!("no expectation was set"),
                })
                .collect();
            assert_eq!(
                got, want,
                "round {round}, chunk size {size}, literals {literals:?}, regexes {sources:?}"
            );
        }
    }
}

#[test]
fn successive_literal_expectations_match_like_a_search_from_the_previous_match() {
    let mut random = XorShift(0x0dd_c0ffee);
    for round in 0..200 {
        let steps: Vec<Vec<String>> = (0..8)
            .map(|_| {
                (0..1 + random.below(3))
                    .map(|_| {
                        let len = 1 + random.below(4) as usize;
                        String::from_utf8(random.text(len, b"ab\n")).unwrap()
                    })
                    .collect()
            })
            .collect();
        let len = 50 + random.below(200) as usize;
        let text = random.text(len, b"aab\n");

        // The reference: from the end of the previous match, the occurrence that ends first,
        // at the same end the pattern listed first.
        let mut want = Vec::new();
        let mut floor = 0;
        for (step, patterns) in steps.iter().enumerate() {
            let found = patterns
                .iter()
                .enumerate()
                .filter_map(|(index, p)| {
                    let p = p.as_bytes();
                    (floor + p.len()..=text.len())
                        .find(|&end| &text[end - p.len()..end] == p)
                        .map(|end| (end, index, end - p.len()))
                })
                .min();
            let Some((end, index, start)) = found else {
                break;
            };
            let before = String::from_utf8(text[floor..start].to_vec()).unwrap();
            want.push((step, index, before));
            floor = end;
        }

        let step_patterns: Vec<Vec<Pattern>> = steps
            .iter()
            .map(|patterns| patterns.iter().map(|p| lit(p)).collect())
            .collect();
        for size in [1, 2, 3, 7, 64, usize::MAX] {
            let run = run_steps(&text, size, vec![], &step_patterns);
            let got: Vec<(usize, usize, String)> = run
                .expected
                .into_iter()
                .map(|(step, e)| (step, e.index, e.before))
                .collect();
            assert_eq!(got, want, "round {round}, chunk size {size}, steps {steps:?}");
        }
    }
}
