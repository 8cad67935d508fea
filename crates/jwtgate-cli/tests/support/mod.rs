//! What the CLI's test files share: running `jwtgate serve` until it listens.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};
use tokio::process::{Child, ChildStdout, Command};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_jwtgate");

/// The lines `jwtgate serve` prints after its address.
pub(crate) type Stdout = tokio::io::Lines<BufReader<ChildStdout>>;

/// Starts `jwtgate serve --config CONFIG ARGS` (logging off; `configure` adds the rest), killed
/// when dropped, stdout and stderr piped: the child (its stderr left to read), the stdout lines
/// after its address, and the base URL it printed ("listening on ..."); what it wrote to
/// stderr when it stopped without listening.
pub(crate) async fn serve(
    config: &Path,
    args: &[&str],
    configure: impl FnOnce(&mut Command),
) -> Result<(Child, Stdout, String), String> {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--config"])
        .arg(config)
        .args(args)
        .env("RUST_LOG", "off")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    configure(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = child.stderr.take().unwrap();
    let started = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(base) = line.strip_prefix("listening on ") {
                return Some(base.to_owned());
            }
        }
        None
    })
    .await
    .expect("jwtgate serve neither listened nor stopped within 60 s");
    match started {
        Some(base) => {
            // Its stderr stays the caller's to read (logging is off unless configured).
            child.stderr = Some(stderr);
            Ok((child, lines, base))
        }
        None => {
            let mut err = String::new();
            stderr.read_to_string(&mut err).await.unwrap();
            Err(err)
        }
    }
}
