//! Property: what the matcher reports never depends on how the console's bytes were split into
//! reads, splits inside escape sequences, between `\r` and `\n` and inside multi-byte UTF-8
//! characters included. (Event lines may hold less of their line when a split fell before its
//! end; see `assert_same_run`.)

mod console_support;

use console_support::{assert_same_run, lit, re, run_chunks};
use proptest::prelude::*;
use r2s_harness::console::ansi::{strip, Stripper};
use r2s_harness::console::{Event, Matcher, Pattern};

/// Console pieces: text the patterns look for, line ends, colour codes and other escape
/// sequences, multi-byte characters, and stray bytes.
const PIECES: &[&[u8]] = &[
    b"ivy login: ",
    b"U-Boot 2024.01",
    b"Kernel panic",
    b"<<< NixOS Stage 1 >>>",
    b"@@R2S-END-7:0;",
    b"\r\n",
    b"\n",
    b"\r",
    b"\x1b[1;32m",
    b"\x1b[0m",
    b"\x1b]0;title\x07",
    b"\x1b(B",
    b"\x1b",
    "é".as_bytes(),
    "你好".as_bytes(),
    "🦀".as_bytes(),
    b"\xff",
    b" ",
    b"x",
];

fn console() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(PIECES).prop_map(<[u8]>::to_vec),
            1 => any::<u8>().prop_map(|b| vec![b]),
        ],
        0..120,
    )
    .prop_map(|pieces| pieces.concat())
}

/// The input and where it is cut into reads.
fn split_console() -> impl Strategy<Value = (Vec<u8>, Vec<usize>)> {
    console().prop_flat_map(|bytes| {
        let len = bytes.len();
        (Just(bytes), prop::collection::vec(0..=len, 0..24))
    })
}

fn chunks<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts = cuts.to_vec();
    cuts.sort_unstable();
    let mut chunks = Vec::new();
    let mut from = 0;
    for cut in cuts.into_iter().chain([bytes.len()]) {
        chunks.push(&bytes[from..cut]);
        from = cut;
    }
    chunks
}

/// Watches: literals, and regexes whose every match has one length (a regex that can match
/// part of a line may match less of it when the rest has not arrived; the matcher documents that).
fn watches() -> Vec<Pattern> {
    vec![
        lit("Kernel panic"),
        lit("login: "),
        lit("é你"),
        lit("\n\n"),
        re(r"U-Boot 20\d\d\.\d\d"),
        re(r"@@R2S-END-\d:\d;"),
    ]
}

fn steps() -> Vec<Vec<Pattern>> {
    vec![
        vec![lit("U-Boot")],
        vec![re(r"[a-z]{3} login: "), lit("Kernel panic")],
        vec![lit("<<< NixOS Stage 1 >>>")],
        vec![lit("🦀")],
        vec![re(r"END-\d:\d;")],
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn events_and_recent_lines_do_not_depend_on_the_split((bytes, cuts) in split_console()) {
        let (whole, whole_matcher) = run_chunks([bytes.as_slice()], watches(), &steps());
        let (split, split_matcher) = run_chunks(chunks(&bytes, &cuts), watches(), &steps());
        assert_same_run(&whole, &split, &format!("cuts {cuts:?}"));
        prop_assert_eq!(whole_matcher.recent_lines(), split_matcher.recent_lines());
        prop_assert_eq!(whole_matcher.byte_stats(), split_matcher.byte_stats());
    }

    #[test]
    fn stripped_text_does_not_depend_on_the_split((bytes, cuts) in split_console()) {
        let mut stripper = Stripper::new();
        let mut out = Vec::new();
        for chunk in chunks(&bytes, &cuts) {
            stripper.strip_into(chunk, &mut out);
        }
        prop_assert_eq!(out, strip(&bytes));
    }
}

/// Found by the property above: a line cut inside a character showed U+FFFD in its place.
#[test]
fn event_line_cut_inside_a_character_leaves_the_character_out() {
    let crab = "🦀".as_bytes();
    let mut matcher = Matcher::new(vec![lit("U-Boot")]);
    let mut first = b"U-Boot ".to_vec();
    first.extend_from_slice(&crab[..2]);
    assert_eq!(
        matcher.feed(&first),
        [Event::Watch {
            index: 0,
            line: "U-Boot ".into()
        }]
    );
    assert_eq!(matcher.feed(&crab[2..]), []);
    assert_eq!(matcher.recent_lines(), ["U-Boot 🦀"]);
}
