//! The quickstart starts, discovers its demo issuer's keys and answers as it prints.

use std::ffi::OsStr;
use std::process::Command;

/// `quickstart --listen 127.0.0.1:0 --self-test ARGS`, which must succeed; what it printed.
fn self_test(args: &[&OsStr]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_quickstart"))
        .args(["--listen", "127.0.0.1:0", "--self-test"])
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .expect("quickstart runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn quickstart_self_test_passes() {
    // In a folder that does not exist yet, as `<repo>/target` does not when CARGO_TARGET_DIR
    // points elsewhere (this stopped at once with "unable to open database file").
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("quickstart-self-test");
    let _ = std::fs::remove_dir_all(&dir);
    let db = dir.join("not-yet").join("quickstart.db");
    let stdout = self_test(&["--database".as_ref(), db.as_os_str()]);
    assert!(
        stdout.contains("curl -i -H 'Authorization: Bearer ey"),
        "{stdout}"
    );
    // The demo user was registered in the SQLite file on first sight: user 1.
    assert!(
        stdout.contains("/whoami (token) -> 200 {\"partner_id\":null"),
        "{stdout}"
    );
    assert!(stdout.contains("\"uid\":1"), "{stdout}");
    assert!(
        stdout.contains("registered: user 1 <ada@example.com>"),
        "{stdout}"
    );
    assert!(
        stdout.contains("users list --database-url sqlite://"),
        "{stdout}"
    );

    assert!(
        stdout.contains("/.well-known") || stdout.contains("\"jwks_uri\":\"http://127.0.0.1:"),
        "{stdout}"
    );
    assert!(stdout.contains("self-test passed"), "{stdout}");
}

#[test]
fn quickstart_runs_on_its_default_database_path() {
    // `cargo run -p quickstart` with no options: the database goes to `<repo>/target/`, which the
    // quickstart creates when cargo builds elsewhere (CARGO_TARGET_DIR); a second run finds the
    // demo user already registered and passes all the same.
    for _ in 0..2 {
        let stdout = self_test(&[]);
        let default = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/quickstart.db");
        assert!(
            stdout.contains(&format!("users list --database-url sqlite://{default}")),
            "{stdout}"
        );
        assert!(stdout.contains("self-test passed"), "{stdout}");
    }
}

#[test]
fn quickstart_keeps_sign_outs_on_redis_when_given_one() {
    let Ok(url) = std::env::var("JWTGATE_TEST_REDIS_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must set JWTGATE_TEST_REDIS_URL"
        );
        eprintln!("quickstart --redis: skipped, JWTGATE_TEST_REDIS_URL is not set");
        return;
    };
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("quickstart-redis");
    let db = dir.join("quickstart.db");
    let stdout = self_test(&[
        "--redis".as_ref(),
        url.as_ref(),
        "--database".as_ref(),
        db.as_os_str(),
    ]);
    assert!(
        stdout.contains(&format!("sign-outs live on Redis at {url}")),
        "{stdout}"
    );
    assert!(stdout.contains("self-test passed"), "{stdout}");
}
