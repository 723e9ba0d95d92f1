//! Large scenario files parse, every step placed in the file: parsing is linear in the number
//! of steps (BENCHMARKS.md, "Scenario parsing", has the times and the command).

use std::path::Path;

use r2s_harness::scenario::{self, Action};

const STEPS: usize = 100_000;

#[test]
fn a_file_of_100000_steps_parses_with_every_step_located() {
    let mut text = String::from("name = \"big\"\n");
    for i in 0..STEPS {
        text.push_str(&format!("[[steps]]\nexpect = \"line {i}\"\n"));
    }
    let scenario = scenario::parse(&text, Path::new("big.toml")).expect("valid");
    assert_eq!(scenario.steps.len(), STEPS);
    let last = scenario.steps.last().unwrap();
    assert!(matches!(&last.action, Action::Expect(p) if p.to_string() == format!("\"line {}\"", STEPS - 1)));
    assert_eq!(last.location.to_string(), format!("big.toml:{}:1", 2 * STEPS));
}

#[test]
fn a_file_of_100000_steps_on_one_line_parses_with_every_step_located() {
    let items: Vec<String> = (0..STEPS)
        .map(|i| format!("{{ send_line = \"{i:06}\" }}"))
        .collect();
    let text = format!("name = \"big\"\nsteps = [{}]\n", items.join(","));
    let scenario = scenario::parse(&text, Path::new("big.toml")).expect("valid");
    assert_eq!(scenario.steps.len(), STEPS);
    // `steps = [` is 9 characters, and each item 24 plus a comma.
    let column = 10 + (STEPS - 1) * 25;
    assert_eq!(
        scenario.steps.last().unwrap().location.to_string(),
        format!("big.toml:2:{column}")
    );
}
