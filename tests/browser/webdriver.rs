//! A small W3C WebDriver client over reqwest, enough to drive Debian's chromedriver:
//! start it, open a headless Chromium session, find elements, type, click, read
//! text and take screenshots. The driver process ends when the client is dropped.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The W3C name of the key under which an element reference is returned.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const DRIVER_START: Duration = Duration::from_secs(20);
/// How long finding an element or reaching a URL may take: a click that submits a
/// form returns before the next page has loaded.
const PAGE_LOAD: Duration = Duration::from_secs(10);

pub(crate) struct Browser {
    http: reqwest::Client,
    /// The driver's `127.0.0.1:PORT`.
    host: String,
    /// `/session/ID` once the session is open.
    session: String,
    driver: Child,
}

/// A reference to an element of the current page.
struct Element(String);

impl Browser {
    /// Starts chromedriver and a headless Chromium window of 1280×900. Fails with a
    /// message naming the packages when they are not installed.
    pub(crate) async fn start() -> Browser {
        for program in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(program).exists(),
                "{program} is missing: the browser test needs Debian's chromium and \
                 chromium-driver (apt-get install -y chromium chromium-driver; .ci/run does this)"
            );
        }
        let port = free_port();
        // Date fields take keys in the order of the browser's locale: pin it.
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .env("LANG", "en_US.UTF-8")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let http = reqwest::Client::new();
        let host = format!("127.0.0.1:{port}");
        wait_until_ready(&http, &host).await;
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": [
                "--headless=new", "--lang=en-US", "--no-sandbox", "--disable-gpu", "--window-size=1280,900",
                "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions"]}
        }}});
        let mut browser = Browser {
            http,
            host,
            session: String::new(),
            driver,
        };
        let created = browser.call("POST", "/session", Some(capabilities)).await;
        let id = created["sessionId"].as_str().expect("a session id");
        browser.session = format!("/session/{id}");
        let implicit = json!({"implicit": PAGE_LOAD.as_millis() as u64});
        browser.call("POST", "/timeouts", Some(implicit)).await;
        browser
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("http://{}{}{path}", self.host, self.session);
        let request = match method {
            "GET" => self.http.get(&url),
            "DELETE" => self.http.delete(&url),
            _ => self.http.post(&url),
        };
        let body = body.unwrap_or_else(|| json!({}));
        let response = request
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap_or_else(|err| panic!("WebDriver {method} {path}: {err}"));
        let status = response.status();
        let bytes = response.bytes().await.expect("WebDriver response");
        let reply: Value = serde_json::from_slice(&bytes).expect("WebDriver JSON");
        assert!(
            status.is_success(),
            "WebDriver {method} {path} failed: {status} {reply}"
        );
        reply["value"].clone()
    }

    pub(crate) async fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({"url": url}))).await;
    }

    /// Waits until the current URL is `url`, and fails the test if it never is.
    pub(crate) async fn wait_for_url(&self, url: &str) {
        let started = Instant::now();
        while self.url().await != url {
            assert!(
                started.elapsed() < PAGE_LOAD,
                "still at {} instead of {url}",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) async fn url(&self) -> String {
        self.call("GET", "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The element matching a CSS selector; fails the test if there is none.
    async fn find(&self, css: &str) -> Element {
        let found = self
            .call(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        let id = found[ELEMENT].as_str();
        Element(
            id.unwrap_or_else(|| panic!("no element {css}: {found}"))
                .to_owned(),
        )
    }

    /// How many elements match a CSS selector.
    pub(crate) async fn count(&self, css: &str) -> usize {
        let found = self
            .call(
                "POST",
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found.as_array().map_or(0, Vec::len)
    }

    /// Replaces the text of the field matching `css`.
    pub(crate) async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        self.call("POST", &format!("/element/{}/clear", field.0), None)
            .await;
        self.call(
            "POST",
            &format!("/element/{}/value", field.0),
            Some(json!({"text": text})),
        )
        .await;
    }

    pub(crate) async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.call("POST", &format!("/element/{}/click", element.0), None)
            .await;
    }

    /// The HTML of the current page, for checking what is not there without waiting
    /// for it.
    pub(crate) async fn source(&self) -> String {
        self.call("GET", "/source", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The visible text of the element matching `css`.
    pub(crate) async fn text(&self, css: &str) -> String {
        let element = self.find(css).await;
        self.call("GET", &format!("/element/{}/text", element.0), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// An attribute of the element matching `css`, if it has it.
    pub(crate) async fn attribute(&self, css: &str, name: &str) -> Option<String> {
        let element = self.find(css).await;
        self.call(
            "GET",
            &format!("/element/{}/attribute/{name}", element.0),
            None,
        )
        .await
        .as_str()
        .map(str::to_owned)
    }

    /// Runs a script in the page and returns what it returns.
    pub(crate) async fn execute(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    pub(crate) async fn resize(&self, width: u32, height: u32) {
        self.call(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }

    /// Saves a PNG of the window to `path`.
    pub(crate) async fn screenshot(&self, path: &Path) {
        let encoded = self.call("GET", "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().expect("base64 PNG"))
            .expect("decode screenshot");
        std::fs::write(path, png).expect("write screenshot");
    }
}

impl Drop for Browser {
    /// Ends the Chromium session even when the test failed half-way: chromedriver
    /// alone does not take its browser down when it is killed, so a failing test
    /// would leave Chromium running. Drop cannot await, hence a plain blocking
    /// request to the local driver.
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = delete_blocking(&self.host, &self.session);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `DELETE path` over HTTP/1.1 to `host`, waiting for the answer.
fn delete_blocking(host: &str, path: &str) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(host)?;
    stream.set_read_timeout(Some(PAGE_LOAD))?;
    write!(
        stream,
        "DELETE {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

async fn wait_until_ready(http: &reqwest::Client, host: &str) {
    let started = Instant::now();
    while started.elapsed() < DRIVER_START {
        if let Ok(response) = http.get(format!("http://{host}/status")).send().await {
            if response.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not answer within {DRIVER_START:?}");
}
