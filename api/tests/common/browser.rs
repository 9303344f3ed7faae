//! The browser of the console's tests: Debian's headless chromium driven through its
//! chromedriver (both installed by `scripts/setup.sh --browser`; never downloaded), and the few
//! steps every test takes (type, click, read, sign in, screenshot). Shared by the API's browser
//! test and the `vigie run` one of the workspace's integration tests (`tests/console.rs`, which
//! includes this file).
#![allow(dead_code)]

use fantoccini::{Client, ClientBuilder, Locator};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A chromedriver on a free port, killed when dropped.
pub struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts Debian's chromedriver on a free port of 127.0.0.1 and waits until it listens.
pub fn driver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver (Debian's chromium-driver): run scripts/setup.sh --broker");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen within 20 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

/// A headless chromium session whose language (`Accept-Language` and UI) is `lang`.
pub async fn browser(driver: &Driver, lang: &str) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,900",
                     format!("--lang={lang}")],
            "prefs": {"intl.accept_languages": lang},
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a chromium session")
}

/// `target/console-screenshots/` of the workspace (the directory above the test's crate that
/// holds `Cargo.lock`), made if missing: where the README's screenshots come from.
pub fn shots() -> PathBuf {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = crate_dir
        .ancestors()
        .find(|d| d.join("Cargo.lock").is_file())
        .unwrap_or(&crate_dir);
    let dir = root.join("target/console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Saves what the browser shows as `<shots()>/<name>.png`.
pub async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(shots().join(format!("{name}.png")), png).unwrap();
}

/// Types `text` into the element `css` finds (once there is one).
pub async fn type_into(c: &Client, css: &str, text: &str) {
    let field = c.wait().for_element(Locator::Css(css)).await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// Clicks the element `css` finds (once there is one).
pub async fn click(c: &Client, css: &str) {
    let element = c.wait().for_element(Locator::Css(css)).await.unwrap();
    element.click().await.unwrap();
}

/// The text of the element `css` finds, once there is one (a page may still be loading, and
/// an element of the page being left goes stale: both are tried again, for 10 s).
pub async fn text_of(c: &Client, css: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(element) = c.find(Locator::Css(css)).await {
            if let Ok(text) = element.text().await {
                return text;
            }
        }
        assert!(Instant::now() < deadline, "no `{css}` within 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Signs in on `base`'s console with `token`, stating `purpose`; returns on the queue.
pub async fn sign_in(c: &Client, base: &str, token: &str, purpose: &str) {
    c.goto(&format!("{base}/console/login")).await.unwrap();
    type_into(c, "#token", token).await;
    type_into(c, "#purpose", purpose).await;
    click(c, "form button[type=submit]").await;
    c.wait()
        .for_url(url::Url::parse(&format!("{base}/console/")).unwrap())
        .await
        .unwrap();
}

/// What the page in `c` breaks of WCAG 2.1 AA that a script can tell, one line each (none: an
/// empty list):
/// - **labels** (1.3.1, 4.1.2): each visible field (`input`, `select`, `textarea`) has a label
///   or an `aria-label`; each `role="img"` has an `aria-label`;
/// - **contrast** (1.4.3): each visible text against the first opaque background behind it
///   reaches 4.5:1 (3:1 for large text: 24 px, or 18.66 px bold);
/// - **language** (3.1.1): `<html lang>` is set;
/// - **bypass** (2.4.1): the first focusable element is a link to `#main`, and `main` exists.
pub async fn accessibility_problems(c: &Client) -> Vec<String> {
    let script = r#"
const problems = [];
const visible = (el) => {
  const s = getComputedStyle(el);
  const r = el.getBoundingClientRect();
  return s.visibility !== 'hidden' && s.display !== 'none' && r.width > 0 && r.height > 0
    && r.right > 0 && r.bottom > 0;
};
const rgba = (c) => {
  const m = c.match(/rgba?\(([^)]+)\)/);
  if (!m) return [0, 0, 0, 1];
  const p = m[1].split(',').map(x => parseFloat(x));
  return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
};
const lum = ([r, g, b]) => {
  const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
};
const background = (el) => {
  for (let e = el; e; e = e.parentElement) {
    const c = rgba(getComputedStyle(e).backgroundColor);
    if (c[3] >= 0.99) return c;
  }
  return [255, 255, 255, 1];
};
if (!document.documentElement.lang) problems.push('html has no lang');
if (!document.querySelector('main')) problems.push('no main landmark');
const focusable = [...document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea')];
if (!focusable.length || focusable[0].getAttribute('href') !== '#main')
  problems.push('the first focusable element is not a skip link to #main');
for (const el of document.querySelectorAll('input:not([type=hidden]):not([type=submit]), select, textarea')) {
  if (!visible(el)) continue;
  const named = (el.labels && el.labels.length) || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
  if (!named) problems.push('unlabelled field ' + (el.name || el.id || el.outerHTML.slice(0, 60)));
}
for (const el of document.querySelectorAll('[role=img]')) {
  if (!el.getAttribute('aria-label')) problems.push('image without a name ' + el.outerHTML.slice(0, 60));
}
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
const seen = new Set();
for (let n = walker.nextNode(); n; n = walker.nextNode()) {
  const el = n.parentElement;
  if (!n.textContent.trim() || !el || seen.has(el) || el.closest('svg')) continue;
  seen.add(el);
  if (!visible(el)) continue;
  const s = getComputedStyle(el);
  const fg = rgba(s.color);
  const bg = background(el);
  const a = fg[3];
  const mixed = [0, 1, 2].map(i => fg[i] * a + bg[i] * (1 - a));
  const [hi, lo] = [lum(mixed), lum(bg)].sort((x, y) => y - x);
  const ratio = (hi + 0.05) / (lo + 0.05);
  const size = parseFloat(s.fontSize);
  const large = size >= 24 || (size >= 18.66 && parseInt(s.fontWeight, 10) >= 700);
  if (ratio < (large ? 3 : 4.5))
    problems.push('contrast ' + ratio.toFixed(2) + ' of "' + n.textContent.trim().slice(0, 30) + '" in ' + el.tagName);
}
return problems;
"#;
    let found = c.execute(script, vec![]).await.unwrap();
    serde_json::from_value(found).unwrap()
}

/// Asserts that the page in `c`, called `page`, has no [`accessibility_problems`].
pub async fn assert_accessible(c: &Client, page: &str) {
    let problems = accessibility_problems(c).await;
    assert!(problems.is_empty(), "{page}: {problems:#?}");
}

/// The elements the Tab key reaches from the top of the page in `c`, in order (at most
/// `presses`), each as `tag#id.class[name=..][value=..]` or its link: what a keyboard user can
/// get to.
pub async fn tab_order(c: &Client, presses: usize) -> Vec<String> {
    c.execute(
        "document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);",
        vec![],
    )
    .await
    .unwrap();
    let describe = r#"
const e = document.activeElement;
if (!e || e === document.body) return '';
let d = e.tagName.toLowerCase();
if (e.id) d += '#' + e.id;
if (e.getAttribute('href')) d += '[href=' + e.getAttribute('href') + ']';
if (e.name) d += '[name=' + e.name + ']';
if (e.type === 'radio') d += '[value=' + e.value + ']';
const form = e.closest('form');
if (form && form.className) d = 'form.' + form.className.split(' ')[0] + ' ' + d;
return d;
"#;
    let mut order = Vec::new();
    for _ in 0..presses {
        c.active_element()
            .await
            .unwrap()
            .send_keys(&fantoccini::key::Key::Tab)
            .await
            .unwrap();
        let now: String =
            serde_json::from_value(c.execute(describe, vec![]).await.unwrap()).unwrap();
        if now.is_empty() || order.contains(&now) {
            break;
        }
        order.push(now);
    }
    order
}
