//! A browser without JavaScript for the login tests: a cookie jar per origin, no automatic
//! redirects, and just enough HTML to find and submit the forms of medicus's pages and of an
//! OpenID provider's.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::blocking::Client;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::Value;

/// One answer, read completely.
pub struct Page {
    pub url: String,
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Page {
    pub fn location(&self) -> Option<String> {
        let loc = self.headers.get(LOCATION)?.to_str().ok()?;
        Some(resolve(&self.url, loc))
    }
}

/// `location` relative to `base` (absolute URLs and absolute paths are all the servers send).
pub fn resolve(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_owned();
    }
    let origin_end = base
        .find("://")
        .and_then(|i| base[i + 3..].find('/').map(|j| i + 3 + j))
        .unwrap_or(base.len());
    if location.starts_with('/') {
        format!("{}{location}", &base[..origin_end])
    } else {
        let dir_end = base
            .rfind('/')
            .filter(|i| *i >= origin_end)
            .unwrap_or(base.len());
        format!("{}/{location}", &base[..dir_end])
    }
}

pub fn origin_of(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..].find('/').map_or(url.len(), |i| start + i);
    url[..end].to_owned()
}

/// A browser without JavaScript: a cookie jar per origin (name → value; paths are not needed
/// by these servers), no automatic redirects.
pub struct Browser {
    http: Client,
    /// Cookies per origin (`scheme://host:port`), name → value.
    pub jar: HashMap<String, HashMap<String, String>>,
}

impl Browser {
    pub fn new() -> Browser {
        Browser {
            http: Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
            jar: HashMap::new(),
        }
    }

    fn cookie_header(&self, url: &str) -> Option<String> {
        let cookies = self.jar.get(&origin_of(url))?;
        (!cookies.is_empty()).then(|| {
            cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    fn keep_cookies(&mut self, url: &str, headers: &HeaderMap) {
        let jar = self.jar.entry(origin_of(url)).or_default();
        for value in headers.get_all(SET_COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            let mut attrs = text.split(';');
            let Some((name, value)) = attrs.next().and_then(|p| p.trim().split_once('=')) else {
                continue;
            };
            let expired = attrs.any(|a| {
                let a = a.trim().to_ascii_lowercase();
                a == "max-age=0" || a.starts_with("expires=thu, 01 jan 1970")
            });
            if expired || value.is_empty() {
                jar.remove(name);
            } else {
                jar.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    pub fn send(&mut self, request: reqwest::blocking::RequestBuilder, url: &str) -> Page {
        let request = match self.cookie_header(url) {
            Some(c) => request.header(reqwest::header::COOKIE, c),
            None => request,
        };
        let response = request.send().expect("request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        self.keep_cookies(url, &headers);
        Page {
            url: url.to_owned(),
            status,
            headers,
            text: response.text().expect("body"),
        }
    }

    /// The cookies the browser holds for the origin of `url`.
    pub fn cookies(&self, url: &str) -> HashMap<String, String> {
        self.jar.get(&origin_of(url)).cloned().unwrap_or_default()
    }

    pub fn get(&mut self, url: &str) -> Page {
        let request = self.http.get(url);
        self.send(request, url)
    }

    pub fn post(&mut self, url: &str, form: &[(String, String)]) -> Page {
        let request = self.http.post(url).form(form);
        self.send(request, url)
    }

    /// Follows redirects until a page, or until the next URL starts with `stop` (returned
    /// unvisited as a 303 pointing there).
    pub fn follow(&mut self, mut page: Page, stop: &[&str]) -> Page {
        for _ in 0..20 {
            let Some(next) = page
                .location()
                .filter(|_| (300..400).contains(&page.status))
            else {
                return page;
            };
            if stop.iter().any(|s| next.starts_with(s)) {
                return page;
            }
            page = self.get(&next);
        }
        panic!("too many redirects");
    }

    /// Submits the form of `page` whose action contains `action`, with `fill` overriding or
    /// adding fields and `button` (name, value) as the pressed button.
    pub fn submit(
        &mut self,
        page: &Page,
        action: &str,
        fill: &[(&str, &str)],
        button: Option<(&str, &str)>,
    ) -> Page {
        let mut fill = fill.to_vec();
        fill.extend(button);
        self.submit_where(page, |f| f.action.contains(action), &fill)
    }

    /// Submits the first form of `page` that satisfies `pick`, with `fill` replacing or adding
    /// fields (as typing, ticking a radio button or pressing a named button would).
    pub fn submit_where(
        &mut self,
        page: &Page,
        pick: impl Fn(&Form) -> bool,
        fill: &[(&str, &str)],
    ) -> Page {
        let form = forms(&page.text)
            .into_iter()
            .find(|f| pick(f))
            .unwrap_or_else(|| panic!("no such form in:\n{}", page.text));
        let mut fields: Vec<(String, String)> = form
            .fields
            .into_iter()
            .filter(|(name, _)| !fill.iter().any(|(n, _)| n == name))
            .collect();
        fields.extend(fill.iter().map(|(n, v)| (n.to_string(), v.to_string())));
        let url = resolve(&page.url, &form.action);
        self.post(&url, &fields)
    }
}

pub struct Form {
    pub action: String,
    /// Hidden and text inputs, checked checkboxes and radios, in document order.
    pub fields: Vec<(String, String)>,
    /// The form's HTML (for picking a form by its content).
    pub html: String,
}

pub fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let Some(end) = tail.find(';').filter(|e| *e < 10) else {
            out.push('&');
            rest = &tail[1..];
            continue;
        };
        let entity = &tail[1..end];
        let c = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match c {
            Some(c) => out.push(c),
            None => out.push_str(&tail[..=end]),
        }
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    out
}

pub fn attr(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find(name) {
        let at = from + i;
        from = at + name.len();
        let before = lower[..at].chars().last();
        if !before.is_some_and(char::is_whitespace) {
            continue;
        }
        let after = lower[at + name.len()..].trim_start();
        if !after.starts_with('=') {
            if after.starts_with(['>', '/'])
                || after.starts_with(char::is_whitespace)
                || after.is_empty()
            {
                return Some(String::new());
            }
            continue;
        }
        let value_start = tag.len() - after.len() + 1;
        let value = tag[value_start..].trim_start();
        let (quote, body) = match value.chars().next() {
            Some(q @ ('"' | '\'')) => (q, &value[1..]),
            _ => {
                let end = value.find([' ', '>']).unwrap_or(value.len());
                return Some(unescape(&value[..end]));
            }
        };
        let end = body.find(quote)?;
        return Some(unescape(&body[..end]));
    }
    None
}

pub fn has_flag(tag: &str, name: &str) -> bool {
    attr(tag, name).is_some()
}

/// The forms of a page: just enough HTML for the pages of medicus and the provider.
pub fn forms(html: &str) -> Vec<Form> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<form") {
        let body = &rest[start..];
        let end = body.find("</form>").unwrap_or(body.len());
        let form = &body[..end];
        let open_end = form.find('>').unwrap_or(form.len());
        let action = attr(&form[..open_end], "action").unwrap_or_default();
        let mut fields = Vec::new();
        let mut tags = form;
        while let Some(i) = tags.find("<input") {
            let tag_end = tags[i..].find('>').map_or(tags.len(), |e| i + e + 1);
            let tag = &tags[i..tag_end];
            let kind = attr(tag, "type").unwrap_or_else(|| "text".into());
            if let Some(name) = attr(tag, "name") {
                let value = attr(tag, "value").unwrap_or_default();
                let take = match kind.as_str() {
                    "checkbox" | "radio" => has_flag(tag, "checked"),
                    "submit" | "button" => false,
                    _ => true,
                };
                if take {
                    fields.push((name, value));
                }
            }
            tags = &tags[tag_end..];
        }
        out.push(Form {
            action,
            fields,
            html: form.to_owned(),
        });
        rest = &body[end..];
    }
    out
}

pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&text[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| percent_decode(v))
    })
}

pub fn with_param(url: &str, name: &str, value: &str) -> String {
    let (base, query) = url.split_once('?').expect("a query");
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if k == name => format!("{k}={value}"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{base}?{}", pairs.join("&"))
}

/// The claims of a JWT, unverified (the tests check what the servers put in).
pub fn jwt_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = medicus_auth::crypto::b64url_decode(payload).expect("base64url");
    serde_json::from_slice(&bytes).expect("claims")
}
