//! Helpers shared by the console test binaries: driving the matcher the way the runner does.

// Each test binary uses its own subset of these.
#![allow(dead_code)]

use r2s_harness::console::{Event, Expected, Matcher, Pattern};

/// Chunk sizes every transcript is fed in: single bytes, odd sizes, a typical read, all at once.
pub const CHUNK_SIZES: [usize; 6] = [1, 2, 3, 7, 4096, usize::MAX];

pub fn lit(text: &str) -> Pattern {
    Pattern::literal(text)
}

pub fn re(source: &str) -> Pattern {
    Pattern::regex(source).unwrap()
}

pub fn feed_in_chunks(matcher: &mut Matcher, bytes: &[u8], size: usize) -> Vec<Event> {
    bytes.chunks(size).flat_map(|chunk| matcher.feed(chunk)).collect()
}

/// What a runner sees: watch events, and expectation matches with the step they answered.
#[derive(Debug, Default)]
pub struct Run {
    pub watches: Vec<(usize, String)>,
    pub expected: Vec<(usize, Expected)>,
}

/// Drives the matcher like the runner does: installs each step's expectation (which may match
/// retained text at once), feeds chunks, and moves to the next step on each match.
pub fn run_steps(input: &[u8], size: usize, watches: Vec<Pattern>, steps: &[Vec<Pattern>]) -> Run {
    run_chunks(input.chunks(size), watches, steps).0
}

/// [`run_steps`] over the given chunks; also returns the matcher, to ask what it holds after.
pub fn run_chunks<'a>(
    chunks: impl IntoIterator<Item = &'a [u8]>,
    watches: Vec<Pattern>,
    steps: &[Vec<Pattern>],
) -> (Run, Matcher) {
    let mut matcher = Matcher::new(watches);
    let mut run = Run::default();
    let mut step = 0;
    // Installs the current step's expectation; each one found in retained text moves on.
    let arm = |matcher: &mut Matcher, step: &mut usize, run: &mut Run| {
        while *step < steps.len() {
            match matcher.expect(&steps[*step]) {
                Some(found) => {
                    run.expected.push((*step, found));
                    *step += 1;
                }
                None => break,
            }
        }
    };
    arm(&mut matcher, &mut step, &mut run);
    for chunk in chunks {
        let mut matched = false;
        for event in matcher.feed(chunk) {
            match event {
                Event::Watch { index, line } => run.watches.push((index, line.into())),
                Event::Expected(found) => {
                    run.expected.push((step, found));
                    step += 1;
                    matched = true;
                }
            }
        }
        if matched {
            arm(&mut matcher, &mut step, &mut run);
        }
    }
    (run, matcher)
}

/// Same watch indices and expectation matches; a line may hold less when it had not fully
/// arrived when the event fired.
pub fn assert_same_run(whole: &Run, run: &Run, context: &str) {
    let indices = |run: &Run| run.watches.iter().map(|(index, _)| *index).collect::<Vec<_>>();
    assert_eq!(indices(run), indices(whole), "{context}");
    for ((_, line), (_, full)) in run.watches.iter().zip(&whole.watches) {
        assert!(
            full.starts_with(line.as_str()),
            "{context}: {line:?} is not a prefix of {full:?}"
        );
    }
    assert_eq!(run.expected.len(), whole.expected.len(), "{context}");
    for ((step, found), (whole_step, full)) in run.expected.iter().zip(&whole.expected) {
        assert_eq!(
            (step, found.index, &found.matched, &found.before),
            (whole_step, full.index, &full.matched, &full.before),
            "{context}"
        );
        assert!(
            full.line.starts_with(found.line.as_str()),
            "{context}: {:?} vs {:?}",
            found.line,
            full.line
        );
    }
}
