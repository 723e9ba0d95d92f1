//! The health check: a scenario written from what an image declares, so that a run on an image
//! with no scenario given answers "is this image healthy" without anyone writing one.
//!
//! It boots from power-on and logs in (every stage timed). On a systemd image it then waits for
//! systemd to end the boot and checks it says `running` (a degraded system's failure lists the
//! failed units with their status), checks every unit the image's system enables for a default
//! boot ([`crate::image::facts::BOOT_TARGETS`]), one step each, and that every TCP socket its
//! socket units declare (`ListenStream=`) answers a connection made on the system, a failure
//! naming the unit. An image without systemd (the busybox
//! fixtures) is judged on boot and login alone, and the scenario's description says so.

use std::fmt::Write;

use crate::image::facts::ImageFacts;
use crate::image::listen_stream::ListenStream;

/// The health check's scenario name (and transcript stem).
pub const HEALTH_NAME: &str = "health";

/// The health check for the image `facts` describe (`None`: no image known, boot and login
/// only), as scenario text.
pub fn health_scenario(facts: Option<&ImageFacts>) -> String {
    let systemd = facts.is_some_and(|f| f.systemd == Some(true));
    let mut text = String::new();
    let _ = writeln!(text, "name = {}", quoted(HEALTH_NAME));
    let scope = if systemd {
        let units = facts.map_or(0, |f| f.units.len());
        format!(
            "boot from power-on, log in, systemd ends the boot `running`, and each of the {units} units the \
             image's system enables for a default boot is healthy, and the TCP sockets its socket units declare \
             answer"
        )
    } else {
        let why = match facts {
            Some(f) if f.systemd == Some(false) => "the image does not run systemd".to_owned(),
            Some(f) => format!(
                "whether the image runs systemd cannot be read ({})",
                f.unread.join("; ")
            ),
            None => "no image was given to read its units from".to_owned(),
        };
        format!("boot from power-on and log in; {why}, so nothing more is judged")
    };
    let scope = match facts.and_then(|f| f.autologin.as_deref()) {
        Some(user) => {
            format!("{scope}; the console's getty logs {user} in by itself, which the login follows")
        }
        None => scope,
    };
    let _ = writeln!(
        text,
        "description = {}",
        quoted(&format!(
            "The health check, written from the image itself: {scope}."
        ))
    );
    let _ = writeln!(text, "timeout = \"20m\"");
    let _ = writeln!(
        text,
        "\n[[steps]]\nlogin = {}\nstage = \"uboot\"\ntimeout = \"10m\"",
        login_table(facts.and_then(|f| f.autologin.as_deref()))
    );
    if !systemd {
        return text;
    }
    let _ = writeln!(text, "\n[[steps]]\nsystem_running = true\ntimeout = \"5m\"");
    let units = facts.map(|f| f.units.as_slice()).unwrap_or_default();
    for unit in units {
        let _ = writeln!(
            text,
            "\n[[steps]]\nunit_healthy = {}\ntimeout = \"1m\"",
            quoted(&unit.name)
        );
    }
    for unit in units {
        for stream in &unit.listen {
            let _ = writeln!(
                text,
                "\n[[steps]]\nrun = {}\ntimeout = \"1m\"",
                quoted(&answers_command(&unit.name, stream))
            );
        }
    }
    text
}

/// A command the system runs to see that the socket `unit` declares (`ListenStream=`) answers:
/// bash (NixOS's and Debian's shell; `/dev/tcp` needs no other tool) connects to it, and it
/// answers when data comes or the connection stays open for 3 s. A refused connection, or one
/// closed at once (a socket whose service cannot start), exits 1, naming the unit.
fn answers_command(unit: &str, stream: &ListenStream) -> String {
    let address = stream.connect_to();
    let port = stream.port;
    let said = format!("{unit} declares ListenStream={stream}");
    format!(
        "bash -c 'if ! exec 3<>/dev/tcp/{address}/{port}; then echo \"{said}, and {address} port {port} refused \
         a connection\"; exit 1; fi; read -r -t 3 -N 1 -u 3 _; r=$?; if [ $r -eq 0 ] || [ $r -gt 128 ]; then \
         echo \"{said}: {address} port {port} answered\"; else echo \"{said}, and {address} port {port} \
         closed the connection at once\"; exit 1; fi'"
    )
}

/// The login step's table: root with the password from `R2S_PASSWORD`, or the user the
/// console's getty logs in by itself, who needs no password.
fn login_table(autologin: Option<&str>) -> String {
    match autologin {
        Some(user) => format!("{{ user = {} }}", quoted(user)),
        None => "{ user = \"root\", password_env = \"R2S_PASSWORD\" }".to_owned(),
    }
}

/// `text` as a TOML basic string.
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::image::facts::UnitFacts;
    use crate::image::listen_stream::listen_streams;
    use crate::scenario::{parse_for, Action, Password, Start};

    fn systemd_image() -> ImageFacts {
        let unit = |name: &str, listen: &str| UnitFacts {
            name: name.to_owned(),
            wanted_by: "multi-user.target".to_owned(),
            listen: listen_streams(listen),
        };
        ImageFacts {
            systemd: Some(true),
            units: vec![
                unit("sshd.service", ""),
                unit("getty@tty1.service", ""),
                unit("dev-x\\x2dy.mount", ""),
                unit("web.socket", "ListenStream=8080\nListenStream=192.168.2.1:53\n"),
            ],
            ..ImageFacts::default()
        }
    }

    fn actions(facts: Option<&ImageFacts>) -> Vec<Action> {
        let text = health_scenario(facts);
        let scenario =
            parse_for(&text, Path::new("health.toml"), facts).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(scenario.start, Start::PowerOn);
        assert_eq!(scenario.skip, None);
        scenario.steps.into_iter().map(|s| s.action).collect()
    }

    #[test]
    fn on_a_systemd_image_every_enabled_unit_is_a_step() {
        let described: Vec<String> = actions(Some(&systemd_image()))
            .iter()
            .map(|a| format!("{a:?}"))
            .collect();
        // Then one connection per declared socket (below).
        assert_eq!(described.len(), 8);
        assert_eq!(
            described[1..6],
            [
                "SystemRunning",
                "UnitHealthy(\"sshd.service\")",
                "UnitHealthy(\"getty@tty1.service\")",
                "UnitHealthy(\"dev-x\\\\x2dy.mount\")",
                "UnitHealthy(\"web.socket\")",
            ]
        );
        assert!(described[0].starts_with("Login"), "{}", described[0]);
    }

    #[test]
    fn each_declared_tcp_socket_is_a_connection_made_on_the_system_naming_its_unit() {
        let commands: Vec<String> = actions(Some(&systemd_image()))
            .into_iter()
            .filter_map(|a| match a {
                Action::Run { command, status, .. } => {
                    assert_eq!(status, 0);
                    Some(command)
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            commands,
            [
                "bash -c 'if ! exec 3<>/dev/tcp/127.0.0.1/8080; then echo \"web.socket declares ListenStream=8080, \
                 and 127.0.0.1 port 8080 refused a connection\"; exit 1; fi; read -r -t 3 -N 1 -u 3 _; r=$?; if \
                 [ $r -eq 0 ] || [ $r -gt 128 ]; then echo \"web.socket declares ListenStream=8080: 127.0.0.1 port \
                 8080 answered\"; else echo \"web.socket declares ListenStream=8080, and 127.0.0.1 port 8080 closed \
                 the connection at once\"; exit 1; fi'",
                "bash -c 'if ! exec 3<>/dev/tcp/192.168.2.1/53; then echo \"web.socket declares \
                 ListenStream=192.168.2.1:53, and 192.168.2.1 port 53 refused a connection\"; exit 1; fi; read -r \
                 -t 3 -N 1 -u 3 _; r=$?; if [ $r -eq 0 ] || [ $r -gt 128 ]; then echo \"web.socket declares \
                 ListenStream=192.168.2.1:53: 192.168.2.1 port 53 answered\"; else echo \"web.socket declares \
                 ListenStream=192.168.2.1:53, and 192.168.2.1 port 53 closed the connection at once\"; exit 1; fi'",
            ]
        );
    }

    /// The command, run by the host's bash against a real socket, tells the three outcomes.
    #[test]
    fn the_connection_command_passes_an_answering_socket_and_fails_a_refused_or_closed_one() {
        use std::io::Write as _;
        use std::net::TcpListener;
        use std::process::Command;

        let run = |port: u16| {
            let stream = ListenStream { address: None, port };
            let out = Command::new("sh")
                .arg("-c")
                .arg(answers_command("t.socket", &stream))
                .output()
                .expect("sh runs");
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            )
        };
        let answering = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = answering.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut peer, _) = answering.accept().unwrap();
            let _ = peer.write_all(b"SSH-2.0-x\r\n");
        });
        assert_eq!(
            run(port),
            (
                Some(0),
                format!("t.socket declares ListenStream={port}: 127.0.0.1 port {port} answered")
            )
        );
        server.join().unwrap();

        let closing = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closing.local_addr().unwrap().port();
        let server = std::thread::spawn(move || drop(closing.accept().unwrap()));
        assert_eq!(
            run(port),
            (
                Some(1),
                format!("t.socket declares ListenStream={port}, and 127.0.0.1 port {port} closed the connection at once")
            )
        );
        server.join().unwrap();

        let gone = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = gone.local_addr().unwrap().port();
        drop(gone);
        assert_eq!(
            run(port),
            (
                Some(1),
                format!(
                    "t.socket declares ListenStream={port}, and 127.0.0.1 port {port} refused a connection"
                )
            )
        );
    }

    #[test]
    fn without_systemd_or_an_image_it_is_boot_and_login_saying_so() {
        let busybox = ImageFacts {
            systemd: Some(false),
            ..ImageFacts::default()
        };
        for facts in [Some(&busybox), None] {
            let all = actions(facts);
            assert_eq!(all.len(), 1);
            assert!(matches!(all[0], Action::Login { .. }));
        }
        assert!(health_scenario(Some(&busybox))
            .contains("log in; the image does not run systemd, so nothing more"));
        assert!(health_scenario(None).contains("log in; no image was given to read its units from"));
    }

    #[test]
    fn with_a_getty_that_logs_a_user_in_the_login_is_that_user_without_a_password() {
        let autologin = ImageFacts {
            autologin: Some("nixos".to_owned()),
            ..systemd_image()
        };
        let all = actions(Some(&autologin));
        assert!(
            matches!(&all[0], Action::Login { user, password: Password::None, .. } if user == "nixos"),
            "{:?}",
            all[0]
        );
        assert!(health_scenario(Some(&autologin)).contains("the console's getty logs nixos in by itself"));
        let plain = actions(Some(&systemd_image()));
        assert!(
            matches!(&plain[0], Action::Login { user, password: Password::Env(name), .. } if user == "root" && name == "R2S_PASSWORD"),
            "{:?}",
            plain[0]
        );
    }
}
