//! Browser navigations: which requests are one, and where one may be sent back to. Login
//! redirects and the profile page both use these, so they agree on what is safe.

use http::Method;
use http::header::ACCEPT;
use http::request::Parts;

/// Whether the request is a browser navigation (a `GET` or `HEAD` asking for HTML, not
/// `fetch()` or XHR), the only kind of request jwtgate ever redirects.
pub(crate) fn is_navigation(parts: &Parts) -> bool {
    let h = &parts.headers;
    let header = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
    (parts.method == Method::GET || parts.method == Method::HEAD)
        && header(ACCEPT.as_str()).is_some_and(|a| a.contains("text/html"))
        && header("sec-fetch-mode").is_none_or(|m| m.eq_ignore_ascii_case("navigate"))
        && !header("x-requested-with").is_some_and(|x| x.eq_ignore_ascii_case("XMLHttpRequest"))
}

/// `path` when it is a local path: one leading `/`, no `//` or `/\` (protocol-relative URLs
/// to another host), no backslash, no control character or space.
pub(crate) fn safe_path(path: &str) -> Option<&str> {
    let local = path.starts_with('/')
        && !path.starts_with("//")
        && !path.contains('\\')
        && !path.bytes().any(|b| b.is_ascii_control() || b == b' ');
    local.then_some(path)
}

/// Where a navigation comes back after signing in: its own path and query when local, else `/`.
pub(crate) fn return_target(uri: &http::Uri) -> &str {
    uri.path_and_query()
        .map(http::uri::PathAndQuery::as_str)
        .and_then(safe_path)
        .unwrap_or("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: Method, headers: &[(&str, &str)]) -> Parts {
        let mut req = http::Request::builder().method(method).uri("/x");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(()).unwrap().into_parts().0
    }

    #[test]
    fn navigations_only() {
        let html = ("accept", "text/html,application/xhtml+xml");
        assert!(is_navigation(&parts(Method::GET, &[html])));
        assert!(is_navigation(&parts(
            Method::HEAD,
            &[html, ("sec-fetch-mode", "navigate")]
        )));
        let not = [
            parts(Method::POST, &[html]),
            parts(Method::GET, &[("accept", "application/json")]),
            parts(Method::GET, &[html, ("sec-fetch-mode", "cors")]),
            parts(Method::GET, &[html, ("x-requested-with", "XMLHttpRequest")]),
            parts(Method::GET, &[]),
        ];
        for p in &not {
            assert!(!is_navigation(p), "{:?}", p.headers);
        }
    }

    #[test]
    fn only_local_paths_are_safe() {
        for ok in ["/", "/hello?x=1", "/a/b?c=d&e=%2F", "/a//b"] {
            assert_eq!(safe_path(ok), Some(ok));
        }
        for bad in [
            "//evil.example",
            "//evil.example/",
            "/\\evil.example",
            "https://evil.example",
            "evil",
            "/a b",
            "/a\\b",
            "/\t/x",
            "",
        ] {
            assert_eq!(safe_path(bad), None, "{bad:?}");
        }
        let uri = |u: &str| u.parse::<http::Uri>().unwrap();
        assert_eq!(return_target(&uri("/page?x=1")), "/page?x=1");
        assert_eq!(return_target(&uri("http://evil.example//x")), "/");
    }
}
