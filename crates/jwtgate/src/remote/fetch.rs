//! One bounded HTTP GET: HTTPS (plain HTTP only to loopback), connect and total timeouts, a
//! body limit, at most one redirect, and `Cache-Control: max-age` read for the TTL.

use reqwest::header::{ACCEPT, CACHE_CONTROL};
use reqwest::{StatusCode, Url};

use super::http_client::HttpClient;
use super::options::RemoteKeyOptions;
use crate::error::Error;

/// Why a fetch failed; `config` marks a mistake in the configuration (no retry fixes it).
pub(crate) struct FetchError {
    pub(crate) message: String,
    pub(crate) config: bool,
}

impl From<String> for FetchError {
    fn from(message: String) -> Self {
        Self {
            message,
            config: false,
        }
    }
}

/// The HTTP client of one cache, with its redirect policy and timeouts (the app's own client
/// as it is).
pub(crate) fn client(
    http: &HttpClient,
    options: &RemoteKeyOptions,
) -> Result<reqwest::Client, Error> {
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        match redirect_refused(attempt.previous(), attempt.url()) {
            Some(why) => attempt.error(why),
            None => attempt.follow(),
        }
    });
    http.build(policy, options.connect_timeout, options.timeout)
}

/// Why a redirect from `previous` (the original URL and every redirect followed so far) to
/// `next` is not followed: more than one, a URL jwtgate would not fetch, or plain http after
/// https (an https issuer must not be sent to a loopback http service).
fn redirect_refused(previous: &[Url], next: &Url) -> Option<&'static str> {
    if previous.len() > 1 {
        Some("more than one redirect")
    } else if !allowed(next) {
        Some("redirect to a non-https URL")
    } else if previous.iter().any(|u| u.scheme() == "https") && next.scheme() != "https" {
        Some("redirect from https to plain http")
    } else {
        None
    }
}

/// HTTPS, or HTTP to a loopback address.
pub(crate) fn check_url(url: &str, what: &str) -> Result<Url, String> {
    let parsed = Url::parse(url).map_err(|e| format!("{what} {url:?} is not a URL: {e}"))?;
    if allowed(&parsed) {
        Ok(parsed)
    } else {
        Err(format!(
            "{what} {url:?} must use https (plain http only on loopback addresses)"
        ))
    }
}

fn allowed(url: &Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => url.host_str().is_some_and(is_loopback_host),
        _ => false,
    }
}

/// `localhost` or a loopback address (IPv6 in brackets or not), without a port.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// GETs `url`, returning the body (at most `max_body` bytes) and its `max-age`.
pub(crate) async fn get(
    client: &reqwest::Client,
    url: &Url,
    max_body: usize,
) -> Result<(Vec<u8>, Option<u64>), FetchError> {
    let res = client
        .get(url.clone())
        .header(ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| describe(&e))?;
    // The app's own client follows redirects by its own policy: the URL it ended at must be
    // one jwtgate would have followed.
    if res.url() != url && redirect_refused(std::slice::from_ref(url), res.url()).is_some() {
        return Err(format!("{url} was redirected to a URL jwtgate does not fetch").into());
    }
    if res.status() != StatusCode::OK {
        return Err(format!("{url} answered HTTP {}", res.status().as_u16()).into());
    }
    let max_age = res
        .headers()
        .get(CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_max_age);
    Ok((read_body(res, max_body).await?, max_age))
}

/// Reads a response body of at most `limit` bytes, refusing a larger one before and while it
/// arrives (never buffering more than the limit).
pub(crate) async fn read_body(
    mut res: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, FetchError> {
    let url = res.url().clone();
    if res.content_length().is_some_and(|n| n > limit as u64) {
        return Err(format!("{url} body is larger than {limit} bytes").into());
    }
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| describe(&e))? {
        if body.len() + chunk.len() > limit {
            return Err(format!("{url} body is larger than {limit} bytes").into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

pub(crate) fn describe(e: &reqwest::Error) -> FetchError {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_redirect() {
        "redirect refused"
    } else {
        "request failed"
    };
    let url = e
        .url()
        .map(std::string::ToString::to_string)
        .unwrap_or_default();
    format!("{url} {what}").into()
}

fn parse_max_age(value: &str) -> Option<u64> {
    let mut max_age = None;
    for directive in value.split(',') {
        let directive = directive.trim();
        if directive.eq_ignore_ascii_case("no-store") || directive.eq_ignore_ascii_case("no-cache")
        {
            return Some(0);
        }
        if let Some((name, secs)) = directive.split_once('=')
            && name.trim().eq_ignore_ascii_case("max-age")
        {
            max_age = secs.trim().trim_matches('"').parse().ok();
        }
    }
    max_age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_never_leave_https() {
        let url = |u: &str| Url::parse(u).unwrap();
        let https = [url("https://idp.example/certs")];
        assert_eq!(
            redirect_refused(&https, &url("https://cdn.example/k")),
            None
        );
        assert_eq!(
            redirect_refused(&https, &url("http://127.0.0.1:8080/certs")),
            Some("redirect from https to plain http")
        );
        assert_eq!(
            redirect_refused(&https, &url("http://10.0.0.1/certs")),
            Some("redirect to a non-https URL")
        );
        let http = [url("http://127.0.0.1:9/certs")];
        assert_eq!(redirect_refused(&http, &url("http://localhost:9/k")), None);
        let two = [url("http://127.0.0.1/a"), url("http://127.0.0.1/b")];
        assert_eq!(
            redirect_refused(&two, &url("http://127.0.0.1/c")),
            Some("more than one redirect")
        );
    }

    #[test]
    fn urls_must_be_https_or_loopback() {
        assert!(
            check_url(
                "https://team.cloudflareaccess.com/cdn-cgi/access/certs",
                "u"
            )
            .is_ok()
        );
        assert!(check_url("http://127.0.0.1:8080/certs", "u").is_ok());
        assert!(check_url("http://[::1]/certs", "u").is_ok());
        assert!(check_url("http://localhost/certs", "u").is_ok());
        let err = check_url("http://10.0.0.1/certs", "jwks_url").unwrap_err();
        assert!(err.contains("must use https"), "{err}");
        assert!(check_url("ftp://x/", "u").is_err());
        assert!(check_url("not a url", "u").is_err());
    }

    #[test]
    fn cache_control() {
        assert_eq!(parse_max_age("public, max-age=600"), Some(600));
        assert_eq!(parse_max_age("no-store"), Some(0));
        assert_eq!(parse_max_age("public"), None);
    }
}
