//! The order of the crate's layers, lowest first: the one place the architecture's direction
//! (image → target → console → matcher → runner → events → reporters) is written down.
//!
//! A module may use modules of lower layers only: never one of its own layer (siblings stay
//! independent) and never one above. The test below reads every source file's `crate::…`
//! paths and fails on an edge that goes the other way, naming the file, the line and the two
//! modules; the binary's `cli` is the top layer and reaches the library as `r2s_harness::…`.

/// Top-level modules of the crate, grouped by layer, lowest first.
pub const LAYERS: &[&[&str]] = &[
    // Leaves: facts and helpers that know nothing of the harness.
    &[
        "hex",
        "private",
        "qemu_devices",
        "scratch",
        "escape",
        "layers",
        "terminal",
        "debug_timing",
    ],
    // Caches of disk files, on private directories.
    &["disk_cache"],
    &["config", "file_memo"],
    &["board", "image"],
    &["console", "adapt", "unpacked"],
    &["scenario", "inspect"],
    // Things with a console: QEMU, boards, ports. No runner, snapshot cache or suite.
    &["targets"],
    // The snapshot cache: keys, locks, seals of saved machines.
    &["snapshot"],
    &["runner"],
    // The start-up strategy, scheduling and the event stream.
    &["suite"],
    &["report"],
    &["flash"],
    &["cli"],
];

/// The layer of a top-level module, if it is one of [`LAYERS`].
pub fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::{layer_of, LAYERS};

    /// One `crate::…` path in a source file.
    #[derive(Debug, PartialEq)]
    struct Edge {
        line: usize,
        to: String,
    }

    /// The top-level module a source file belongs to (`runner/steps.rs` → `runner`), or `None`
    /// for the crate roots.
    fn module_of(relative: &Path) -> Option<String> {
        let first = relative.components().next()?.as_os_str().to_str()?;
        match first {
            "lib.rs" => None,
            "main.rs" => Some("cli".to_string()),
            _ => Some(first.trim_end_matches(".rs").to_string()),
        }
    }

    /// The source as the compiler reads its paths: comments and the contents of string
    /// literals blanked, lines kept where they were.
    fn code_of(source: &str) -> String {
        let mut code = String::with_capacity(source.len());
        let mut chars = source.chars().peekable();
        let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
        while let Some(c) = chars.next() {
            match c {
                '"' => {
                    code.push('"');
                    while let Some(c) = chars.next() {
                        if c == '"' {
                            break;
                        }
                        code.push(blank(c));
                        if c == '\\' {
                            if let Some(escaped) = chars.next() {
                                code.push(blank(escaped));
                            }
                        }
                    }
                    code.push('"');
                }
                // A character literal such as '"' must not open a string; a lifetime is kept.
                '\'' => {
                    code.push('\'');
                    let mut ahead = chars.clone();
                    let literal_end = match (ahead.next(), ahead.next(), ahead.next()) {
                        (Some('\\'), Some(_), Some('\'')) => Some(3),
                        (Some(_), Some('\''), _) => Some(2),
                        _ => None,
                    };
                    for _ in 0..literal_end.unwrap_or(0) {
                        chars.next();
                        code.push(' ');
                    }
                }
                '/' if chars.peek() == Some(&'/') => {
                    for c in chars.by_ref() {
                        if c == '\n' {
                            code.push('\n');
                            break;
                        }
                    }
                }
                '/' if chars.peek() == Some(&'*') => {
                    let mut last = ' ';
                    for c in chars.by_ref() {
                        code.push(blank(c));
                        if last == '*' && c == '/' {
                            break;
                        }
                        last = c;
                    }
                }
                c => code.push(c),
            }
        }
        code
    }

    /// The top-level modules each `crate::` path names, with `crate::{a::X, b::Y}` groups
    /// opened, and `super::super` reported as a module of its own so that it cannot hide an
    /// edge.
    fn edges_of(source: &str) -> Vec<Edge> {
        let code = code_of(source);
        let line_at = |offset: usize| code[..offset].matches('\n').count() + 1;
        let mut edges = Vec::new();
        for (at, _) in code.match_indices("super::super") {
            edges.push(Edge {
                line: line_at(at),
                to: "super::super".to_string(),
            });
        }
        for (at, found) in code.match_indices("crate::") {
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let rest = &code[at + found.len()..];
            if let Some(group) = rest.strip_prefix('{') {
                for name in group_heads(group) {
                    edges.push(Edge {
                        line: line_at(at),
                        to: name,
                    });
                }
            } else {
                edges.push(Edge {
                    line: line_at(at),
                    to: ident_at(rest),
                });
            }
        }
        edges
    }

    /// The first path segment of each item of a `{…}` group, up to its closing brace.
    fn group_heads(group: &str) -> Vec<String> {
        let mut heads = Vec::new();
        let mut depth = 0;
        let mut item_start = true;
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => item_start = true,
                c if item_start && depth == 0 && (c.is_alphanumeric() || c == '_') => {
                    heads.push(ident_at(&group[i..]));
                    item_start = false;
                }
                _ => {}
            }
        }
        heads
    }

    fn ident_at(text: &str) -> String {
        text.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    }

    fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
            .map(|entry| entry.expect("directory entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                sources(&path, found);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                found.push(path);
            }
        }
    }

    /// Every edge of the crate that goes up or sideways, as `file:line: from uses to`.
    fn upward_edges() -> Vec<String> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&src, &mut files);
        let mut wrong = Vec::new();
        for file in files {
            let relative = file.strip_prefix(&src).expect("under src");
            let Some(from) = module_of(relative) else { continue };
            let from_layer = layer_of(&from).unwrap_or_else(|| {
                panic!("{}: module `{from}` is in no layer of LAYERS", relative.display())
            });
            let source = std::fs::read_to_string(&file).expect("source file");
            for edge in edges_of(&source) {
                if edge.to == from || edge.to == "self" {
                    continue;
                }
                let goes_down = layer_of(&edge.to).is_some_and(|to_layer| to_layer < from_layer);
                if !goes_down {
                    wrong.push(format!(
                        "{}:{}: `{from}` (layer {from_layer}) uses `{}` ({})",
                        relative.display(),
                        edge.line,
                        edge.to,
                        match layer_of(&edge.to) {
                            Some(layer) if layer == from_layer => "the same layer".to_string(),
                            Some(layer) => format!("layer {layer}, above"),
                            None => "in no layer".to_string(),
                        }
                    ));
                }
            }
        }
        wrong
    }

    #[test]
    fn no_module_uses_a_module_of_its_own_or_a_higher_layer() {
        let wrong = upward_edges();
        assert!(
            wrong.is_empty(),
            "{} edge(s) against the layer order:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
    }

    #[test]
    fn every_top_level_module_of_the_library_is_in_a_layer() {
        let lib = include_str!("lib.rs");
        let declared: Vec<&str> = lib
            .lines()
            .filter_map(|line| {
                line.trim()
                    .strip_prefix("pub mod ")
                    .or_else(|| line.trim().strip_prefix("mod "))
            })
            .map(|rest| rest.trim_end_matches(';'))
            .collect();
        assert!(declared.contains(&"runner"), "lib.rs read as {declared:?}");
        for module in declared {
            assert!(
                layer_of(module).is_some(),
                "module `{module}` is in no layer of LAYERS"
            );
        }
    }

    #[test]
    fn a_module_is_named_in_one_layer_only() {
        let mut seen = Vec::new();
        for name in LAYERS.iter().flat_map(|layer| layer.iter()) {
            assert!(!seen.contains(name), "`{name}` is in two layers");
            seen.push(name);
        }
    }

    #[test]
    fn layer_edges_are_read_from_paths_groups_and_code_but_not_comments() {
        let source = "use crate::console::Transcript;\n\
                      // crate::escape in a comment\n\
                      use crate::{\n    runner::RunContext,\n    targets::{Console, Target},\n};\n\
                      let x = \"// not a comment\"; let y = crate::suite::run_one;\n\
                      let z = '\"'; crate::hex::lower_hex(&[]); // crate::flash\n\
                      use super::super::cli;\n";
        let edges = edges_of(source);
        let seen: Vec<(usize, &str)> = edges.iter().map(|e| (e.line, e.to.as_str())).collect();
        assert_eq!(
            seen,
            vec![
                (9, "super::super"),
                (1, "console"),
                (3, "runner"),
                (3, "targets"),
                (7, "suite"),
                (8, "hex")
            ]
        );
    }

    #[test]
    fn a_file_belongs_to_the_top_level_module_of_its_path() {
        assert_eq!(module_of(Path::new("runner/steps.rs")).as_deref(), Some("runner"));
        assert_eq!(module_of(Path::new("hex.rs")).as_deref(), Some("hex"));
        assert_eq!(
            module_of(Path::new("report/html/mod.rs")).as_deref(),
            Some("report")
        );
        assert_eq!(module_of(Path::new("main.rs")).as_deref(), Some("cli"));
        assert_eq!(module_of(Path::new("lib.rs")), None);
    }
}
