//! extlinux.conf as U-Boot reads it: NixOS-generated and hand-written configs, U-Boot's quirks,
//! and rendering back to text.

use std::path::Path;

use r2s_harness::image::extlinux::{Config, Label, ParseError};

fn data(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/extlinux")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn parse(text: &str) -> Config {
    Config::parse(text).unwrap_or_else(|e| panic!("expected a valid config, got {e}"))
}

fn names(config: &Config) -> Vec<&str> {
    config.labels.iter().map(|l| l.name.as_str()).collect()
}

/// What survives rendering: everything but line numbers and the lines U-Boot ignores.
fn semantics(config: &Config) -> Config {
    let mut config = config.clone();
    config.unknown.clear();
    config.malformed_menu.clear();
    for (line, _) in &mut config.includes {
        *line = 0;
    }
    for label in &mut config.labels {
        label.line = 0;
    }
    config
}

fn assert_round_trips(config: &Config) {
    let rendered = config.render();
    let reparsed = parse(&rendered);
    assert_eq!(
        semantics(&reparsed),
        semantics(config),
        "rendered as:\n{rendered}"
    );
    assert_eq!(reparsed.render(), rendered, "rendering is not stable");
}

#[test]
fn nixos_generated_config_lists_generations_in_menu_order() {
    let config = parse(&data("nixos-generations.conf"));
    assert_eq!(
        config.title.as_deref(),
        Some("------------------------------------------------------------")
    );
    assert_eq!(config.default.as_deref(), Some("nixos-default"));
    assert_eq!(config.timeout, Some(50));
    assert_eq!(config.menu_timeout_secs(), 5);
    assert!(config.prompt, "MENU TITLE makes U-Boot show the menu");
    assert_eq!(
        names(&config),
        ["nixos-default", "nixos-3-default", "nixos-2-default"]
    );
    assert_eq!(config.menu_number("nixos-default"), Some(1));
    assert_eq!(config.menu_number("nixos-2-default"), Some(3));
    assert_eq!(config.menu_number("nixos-9-default"), None);
    assert!(config.unknown.is_empty());
    assert!(config.malformed_menu.is_empty());
    assert!(config.includes.is_empty());
}

#[test]
fn nixos_generated_label_has_every_boot_file() {
    let config = parse(&data("nixos-generations.conf"));
    let label = config.label("nixos-2-default").expect("generation 2");
    assert_eq!(
        label,
        &Label {
            name: "nixos-2-default".into(),
            menu_label: Some("NixOS - Configuration 2-default (2025-07-01 18:05 - 25.05.20250701.1a2b3c4)".into()),
            kernel: Some("../nixos/x1l4r0r6g0c2bfm3i8zq2j6pc0sw9yxa-linux-6.12.30-Image".into()),
            initrd: Some("../nixos/a8a7gq1fzbmqmmfc5bhbd7w5cj5x2gw1-initrd-linux-6.12.30-initrd".into()),
            append: Some(
                "init=/nix/store/r4k9d1g1y4a5kq0b1h6vhx3m1pqf3d7s-nixos-system-ivy-25.05.20250701.1a2b3c4/init \
                 console=ttyS2,1500000 earlycon=uart8250,mmio32,0xff130000 loglevel=4"
                    .into()
            ),
            fdt: Some(
                "../nixos/m5pdr0bq4n7a4y1fj9xq8ihc2n0d3wcz-linux-6.12.30-dtbs/rockchip/rk3328-nanopi-r2s.dtb".into()
            ),
            line: 23,
            ..Label::default()
        }
    );
    assert_eq!(
        label.menu_text(),
        "NixOS - Configuration 2-default (2025-07-01 18:05 - 25.05.20250701.1a2b3c4)"
    );
    assert_eq!(
        config.default_label().map(Label::menu_text),
        Some("NixOS - Default")
    );
}

#[test]
fn nixos_config_with_fdtdir_keeps_the_directory() {
    let config = parse(&data("nixos-fdtdir.conf"));
    let label = config.default_label().expect("default label");
    assert_eq!(label.fdt, None);
    assert_eq!(
        label.fdtdir.as_deref(),
        Some("../nixos/9ywb8q9x4r8rp7vkf0fw2m6cm9a3b4ar-linux-6.12.34-dtbs")
    );
    assert_eq!(config.menu_timeout_secs(), 1);
    assert_eq!(names(&config), ["nixos-default", "nixos-1-default"]);
}

#[test]
fn handwritten_first_boot_config_boots_without_a_menu() {
    let config = parse(&data("handwritten-first-boot.conf"));
    assert_eq!(config.title, None);
    assert!(!config.prompt, "no MENU line: U-Boot boots the default at once");
    assert_eq!(config.default.as_deref(), Some("NixOS"));
    assert_eq!(config.timeout, Some(1));
    assert_eq!(config.menu_timeout_secs(), 1);
    let label = config.default_label().expect("default label");
    assert_eq!(label.kernel.as_deref(), Some("/Image"));
    assert_eq!(label.initrd.as_deref(), Some("/initrd"));
    assert_eq!(label.fdt.as_deref(), Some("/rk3328-nanopi-r2s.dtb"));
    assert!(label
        .append
        .as_deref()
        .is_some_and(|a| a.starts_with("console=ttyS2,1500000 ")));
    assert_eq!(label.menu_text(), "NixOS");
    assert_eq!(label.line, 3);
}

#[test]
fn shipped_configs_round_trip_through_render() {
    for name in [
        "nixos-generations.conf",
        "nixos-fdtdir.conf",
        "handwritten-first-boot.conf",
    ] {
        assert_round_trips(&parse(&data(name)));
    }
}

#[test]
fn render_writes_a_readable_config() {
    let config = parse(&data("handwritten-first-boot.conf"));
    assert_eq!(
        config.render(),
        "TIMEOUT 1\n\
         DEFAULT NixOS\n\
         \n\
         LABEL NixOS\n\
         \x20 LINUX /Image\n\
         \x20 INITRD /initrd\n\
         \x20 FDT /rk3328-nanopi-r2s.dtb\n\
         \x20 APPEND console=ttyS2,1500000 earlycon=uart8250,mmio32,0xff130000 root=LABEL=NIXOS_SD rootfstype=ext4 \
         rootwait init=/nix/store/crzbn8gb8c1gs54wdw2kgizxmwp1pq0i-nixos-system-ivy-25.05.20250817.48f4c98/init\n"
    );
}

#[test]
fn keywords_are_case_insensitive() {
    let config =
        parse("default b\nmenu title Boot\nLabel a\n  kernel /a\nlAbEl b\n  Menu Label Bee\n  linux /b\n");
    assert_eq!(config.title.as_deref(), Some("Boot"));
    assert_eq!(names(&config), ["a", "b"]);
    assert_eq!(config.labels[1].menu_label.as_deref(), Some("Bee"));
    assert_eq!(config.labels[1].kernel.as_deref(), Some("/b"));
}

#[test]
fn comments_start_only_where_a_token_starts() {
    let config =
        parse("# a comment\n   # an indented comment\nLABEL a # not a comment\n  APPEND x=1 # kept\n");
    assert_eq!(config.labels[0].name, "a # not a comment");
    assert_eq!(config.labels[0].append.as_deref(), Some("x=1 # kept"));
}

#[test]
fn values_keep_trailing_blanks_and_cr_as_uboot_does() {
    let config = parse("LABEL a\r\n  LINUX /Image \r\n");
    assert_eq!(config.labels[0].name, "a\r");
    assert_eq!(config.labels[0].kernel.as_deref(), Some("/Image \r"));
}

#[test]
fn unknown_top_level_keywords_are_kept_with_their_line() {
    let config = parse("TIMEOUT 5\nSERIAL 0 115200\n\nfoo bar\nLABEL a\n");
    assert_eq!(config.unknown, [(2, "SERIAL".to_owned()), (4, "foo".to_owned())]);
    assert_eq!(names(&config), ["a"]);
}

#[test]
fn unknown_keyword_ends_a_label_and_strands_the_rest() {
    let config = parse("LABEL a\n  LINUX /Image\n  SAY hello\n  APPEND console=ttyS2\n");
    assert_eq!(config.labels[0].kernel.as_deref(), Some("/Image"));
    assert_eq!(
        config.labels[0].append, None,
        "U-Boot reads APPEND at the top level, where it means nothing"
    );
    assert_eq!(config.unknown, [(3, "SAY".to_owned()), (4, "APPEND".to_owned())]);
}

#[test]
fn second_initrd_ends_the_label() {
    let config = parse("LABEL a\n  INITRD /one\n  INITRD /two\n  APPEND x\n");
    assert_eq!(config.labels[0].initrd.as_deref(), Some("/one"));
    assert_eq!(config.labels[0].append, None);
    assert_eq!(config.unknown, [(3, "/two".to_owned()), (4, "APPEND".to_owned())]);
}

#[test]
fn later_kernel_and_append_lines_replace_earlier_ones() {
    let config = parse("LABEL a\n  KERNEL /old\n  LINUX /new\n  APPEND one\n  APPEND two\n");
    assert_eq!(config.labels[0].kernel.as_deref(), Some("/new"));
    assert_eq!(config.labels[0].append.as_deref(), Some("two"));
}

#[test]
fn initrd_comes_from_append_when_no_initrd_line_precedes() {
    let config = parse("LABEL a\n  APPEND console=ttyS2 initrd=/boot/initrd rw\n  INITRD /ignored\n");
    assert_eq!(config.labels[0].initrd.as_deref(), Some("/boot/initrd"));
    assert_round_trips(&config);
}

#[test]
fn an_append_initrd_word_that_names_no_file_gives_no_initrd() {
    // `initrd=` followed by nothing or by a comment sign is not a path an INITRD line could
    // give, so the label has no initrd and still renders to a config that parses the same.
    for append in ["initrd=# note", "initrd= rw", "initrd=\trw"] {
        let config = parse(&format!("LABEL a\n  LINUX /Image\n  APPEND {append}\n"));
        assert_eq!(config.labels[0].initrd, None, "{append:?}");
        assert_round_trips(&config);
    }
}

#[test]
fn device_tree_keywords_and_aliases() {
    let config = parse(
        "LABEL a\n  DEVICETREE /a.dtb\n  FDT /ignored.dtb\n\
         LABEL b\n  DEVICETREEDIR /dtbs\n  devicetree-overlay /o1.dtbo /o2.dtbo\n",
    );
    assert_eq!(
        config.labels[0].fdt.as_deref(),
        Some("/a.dtb"),
        "the first FDT line counts"
    );
    assert_eq!(config.labels[1].fdtdir.as_deref(), Some("/dtbs"));
    assert_eq!(config.labels[1].fdtoverlays.as_deref(), Some("/o1.dtbo /o2.dtbo"));
}

#[test]
fn localboot_ipappend_and_kaslrseed() {
    let config = parse("LABEL a\n  LOCALBOOT 1\n  IPAPPEND 3\n  KASLRSEED\n");
    let label = &config.labels[0];
    assert_eq!(
        (label.localboot, label.ipappend, label.kaslrseed),
        (Some(1), Some(3), true)
    );
    assert_round_trips(&config);
}

#[test]
fn explicit_default_wins_over_menu_default() {
    let config = parse("DEFAULT b\nLABEL a\n  MENU DEFAULT\nLABEL b\n");
    assert_eq!(config.default.as_deref(), Some("b"));
    assert!(config.labels[0].menu_default);
    assert_round_trips(&config);
}

#[test]
fn menu_default_applies_when_no_default_precedes() {
    let config = parse("LABEL a\nLABEL b\n  MENU DEFAULT\nLABEL c\n  MENU DEFAULT\n");
    assert_eq!(
        config.default.as_deref(),
        Some("b"),
        "the first MENU DEFAULT counts"
    );
    assert_round_trips(&config);
}

#[test]
fn default_after_menu_default_replaces_it() {
    let config = parse("LABEL a\n  MENU DEFAULT\nLABEL b\nDEFAULT b\n");
    assert_eq!(config.default.as_deref(), Some("b"));
    assert_round_trips(&config);
}

#[test]
fn ontimeout_acts_as_default() {
    let config = parse("DEFAULT a\nONTIMEOUT b\nLABEL a\nLABEL b\n");
    assert_eq!(config.default.as_deref(), Some("b"));
    assert_eq!(config.ontimeout.as_deref(), Some("b"));
    assert_round_trips(&config);
    let config = parse("ONTIMEOUT b\nDEFAULT a\nLABEL a\nLABEL b\n");
    assert_eq!(config.default.as_deref(), Some("a"));
    assert_round_trips(&config);
}

#[test]
fn prompt_follows_menu_lines_and_prompt_directives() {
    assert!(parse("MENU BACKGROUND /splash.bmp\nLABEL a\n").prompt);
    assert!(parse("PROMPT 1\nLABEL a\n").prompt);
    assert!(!parse("MENU TITLE x\nPROMPT 0\nLABEL a\n").prompt);
    assert!(parse("PROMPT 0\nMENU TITLE x\nLABEL a\n").prompt);
    assert!(!parse("PROMPT\nLABEL a\n").prompt, "a bare PROMPT is tolerated");
    for text in ["MENU TITLE x\nPROMPT 0\nLABEL a\n", "PROMPT 1\nLABEL a\n"] {
        assert_round_trips(&parse(text));
    }
}

#[test]
fn includes_are_recorded_not_followed() {
    let config = parse("INCLUDE common.conf\nMENU INCLUDE menu.conf\nLABEL a\n");
    assert_eq!(
        config.includes,
        [(1, "common.conf".to_owned()), (2, "menu.conf".to_owned())]
    );
    assert!(config.prompt, "MENU INCLUDE is a MENU line");
}

#[test]
fn malformed_menu_commands_are_kept() {
    let config = parse("MENU COLOR red\nLABEL a\n  MENU HIDDEN\n  LINUX /Image\n");
    assert_eq!(
        config.malformed_menu,
        [(1, "MENU COLOR".to_owned()), (3, "MENU HIDDEN".to_owned())]
    );
    assert_eq!(config.labels[0].kernel.as_deref(), Some("/Image"));
}

#[test]
fn bare_menu_line_swallows_the_next_line_as_uboot_does() {
    let config = parse("MENU\nTIMEOUT 30\nLABEL a\n");
    assert_eq!(config.timeout, None);
    assert_eq!(config.malformed_menu, [(1, "MENU".to_owned())]);
}

#[test]
fn timeout_takes_leading_digits_like_strtol() {
    assert_eq!(parse("TIMEOUT 30s\n").timeout, Some(30));
    assert_eq!(parse("TIMEOUT soon\n").timeout, Some(0));
    assert_eq!(parse("TIMEOUT -5\n").timeout, Some(-5));
    assert_eq!(parse("TIMEOUT -5\n").menu_timeout_secs(), 0);
    assert_eq!(
        parse("TIMEOUT 11\n").menu_timeout_secs(),
        2,
        "tenths round up to whole seconds"
    );
}

#[test]
fn missing_values_fail_the_whole_file() {
    let cases = [
        ("LABEL\n", 1, "LABEL needs a name"),
        ("LABEL a\n  KERNEL\n", 2, "KERNEL needs a path"),
        ("\nTIMEOUT\n", 2, "TIMEOUT needs a number"),
        ("DEFAULT   \n", 1, "DEFAULT needs a label name"),
        ("LABEL a\n  linux # no path\n", 2, "linux needs a path"),
        ("MENU TITLE\n", 1, "MENU TITLE needs a title"),
    ];
    for (text, line, what) in cases {
        let error = Config::parse(text).unwrap_err();
        assert_eq!(
            error,
            ParseError {
                line,
                message: format!("{what}; U-Boot rejects the whole file (\"Error parsing config file\")")
            },
            "for {text:?}"
        );
    }
    assert_eq!(
        Config::parse("LABEL\n").unwrap_err().to_string(),
        "line 1: LABEL needs a name; U-Boot rejects the whole file (\"Error parsing config file\")"
    );
}

#[test]
fn empty_text_is_an_empty_config() {
    assert_eq!(parse(""), Config::default());
    assert_eq!(Config::default().render(), "");
}

#[test]
fn menu_number_counts_labels_from_one_and_finds_the_first_duplicate() {
    let config = parse("LABEL a\nLABEL b\nLABEL a\n");
    assert_eq!(config.menu_number("a"), Some(1));
    assert_eq!(config.menu_number("b"), Some(2));
}
