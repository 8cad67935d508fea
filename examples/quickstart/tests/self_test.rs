//! The quickstart starts, discovers its demo issuer's keys and answers as it prints.

use std::process::Command;

#[test]
fn quickstart_self_test_passes() {
    let out = Command::new(env!("CARGO_BIN_EXE_quickstart"))
        .args(["--listen", "127.0.0.1:0", "--self-test"])
        .env("RUST_LOG", "off")
        .output()
        .expect("quickstart runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("curl -i -H 'Authorization: Bearer ey"),
        "{stdout}"
    );
    assert!(
        stdout.contains("/whoami (token) -> 200 {\"partner_id\":17"),
        "{stdout}"
    );
    assert!(stdout.contains("\"uid\":\"ada\""), "{stdout}");
    assert!(
        stdout.contains("/.well-known") || stdout.contains("\"jwks_uri\":\"http://127.0.0.1:"),
        "{stdout}"
    );
    assert!(stdout.contains("self-test passed"), "{stdout}");
}
