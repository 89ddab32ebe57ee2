//! The `sluice` binary as a separate process: started, asked over HTTP, stopped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn sluice() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command.env_remove("SLUICE_DB").env_remove("SLUICE_ADDR");
    command
}

pub fn http_get(port: u16, path: &str, key: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

/// Starts `sluice serve` on a free port with extra arguments and waits until it
/// answers `/healthz`.
pub fn serve(db: &str, extra: &[&str]) -> (Child, u16) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = sluice()
        .args(["serve", "--db", db, "--addr", &format!("127.0.0.1:{port}")])
        .args([
            "--max-event-skew-seconds",
            &super::TEST_EVENT_SKEW.as_secs().to_string(),
        ])
        .args(extra)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let health = loop {
        if let Some(response) = http_get(port, "/healthz", "") {
            break response;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    (server, port)
}
