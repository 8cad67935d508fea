//! Headless Chromium for browser tests: Debian's `chromium` and `chromium-driver`, driven over
//! WebDriver (fantoccini), with a fresh profile per browser.
//!
//! Without them on the machine (a laptop), `Browser::start` says the test is skipped and
//! returns `None`; in CI (`CI` set) it fails instead, since `.ci/run` installs them.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// The flags every browser test runs Chromium with.
const FLAGS: [&str; 7] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
];

/// A headless Chromium session; the driver and profile go away with it.
#[derive(Debug)]
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Child,
    profile: PathBuf,
}

fn find(names: &[&str]) -> Option<PathBuf> {
    names.iter().map(PathBuf::from).find(|p| p.exists())
}

impl Browser {
    /// Starts chromedriver and a headless Chromium, or says why the test is skipped.
    pub async fn start(test: &str) -> Option<Self> {
        let binary = find(&["/usr/bin/chromium", "/usr/bin/chromium-browser"]);
        let driver = find(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]);
        let (Some(binary), Some(driver)) = (binary, driver) else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must have chromium and chromium-driver (.ci/run installs them)"
            );
            eprintln!("{test}: skipped, chromium and chromium-driver are not installed");
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile =
            std::env::temp_dir().join(format!("jwtgate-chromium-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        let mut args: Vec<String> = FLAGS.iter().map(|f| (*f).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        args.push("--window-size=1024,768".into());
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": binary, "args": args }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let mut last = String::new();
        for _ in 0..100 {
            match ClientBuilder::rustls()
                .expect("rustls connector")
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    return Some(Self {
                        client,
                        driver,
                        profile,
                    });
                }
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not answer on {url}: {last}");
    }

    /// The element with `id`, waiting (up to 10 s) for it to appear.
    pub async fn element(&self, id: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Id(id))
            .await
            .unwrap_or_else(|e| panic!("#{id}: {e}"))
    }

    /// Clicks the element with `id`, waiting for it to appear.
    pub async fn click(&self, id: &str) {
        self.element(id)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click #{id}: {e}"));
    }

    /// Types `text` into the input with `id` (after clearing it), waiting for it to appear.
    pub async fn fill(&self, id: &str, text: &str) {
        let input = self.element(id).await;
        input
            .clear()
            .await
            .unwrap_or_else(|e| panic!("clear #{id}: {e}"));
        input
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into #{id}: {e}"));
    }

    /// The text of the element with `id`, waiting for it to appear.
    pub async fn text(&self, id: &str) -> String {
        self.element(id)
            .await
            .text()
            .await
            .unwrap_or_else(|e| panic!("text of #{id}: {e}"))
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("current url")
            .to_string()
    }

    /// The names of the cookies the browser holds for the current page.
    pub async fn cookie_names(&self) -> Vec<String> {
        self.client
            .get_all_cookies()
            .await
            .expect("cookies")
            .iter()
            .map(|c| c.name().to_owned())
            .collect()
    }

    /// Saves a PNG screenshot under the workspace's `target/` and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// Ends the session and the driver.
    pub async fn stop(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
