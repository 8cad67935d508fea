//! The original request a proxy asks about, read from the two header families proxies send:
//! `X-Forwarded-Method`, `-Uri`, `-Host`, `-Proto` (Traefik, Caddy) and `X-Original-Method`,
//! `X-Original-URI` (nginx). A client can add the family its proxy does not set, so a request
//! whose families disagree is refused: `/app/x` is never judged as a public `/feed/x`.

use std::borrow::Cow;

use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, HeaderValue, Method, Uri};

use crate::percent::decode_path;

/// What the proxy says the client asked for.
#[derive(Debug)]
pub(super) struct Original {
    pub(super) method: Method,
    pub(super) uri: Uri,
    pub(super) host: Option<HeaderValue>,
}

const DISAGREE: &str = "the X-Forwarded-* and X-Original-* headers describe different requests; \
                        a client may have added one of them";

/// Reads the original request; `own` is the check request's own method (used when the proxy
/// sends none: nginx's `auth_request` and Envoy keep the client's method), `in_path` the
/// original path and query when the check's own path carries them (Envoy's `ext_authz` asks
/// at its `path_prefix` followed by the original path).
pub(super) fn read(
    headers: &HeaderMap,
    own: &Method,
    in_path: Option<&str>,
) -> Result<Original, &'static str> {
    let uri = match (
        agreed(headers, "x-forwarded-uri", "x-original-uri")?,
        in_path,
    ) {
        (Some(named), Some(path)) if named.as_bytes() != path.as_bytes() => return Err(DISAGREE),
        (Some(named), _) => named.to_str().ok(),
        (None, Some(path)) => Some(path),
        (None, None) => {
            return Err("the proxy sent neither X-Forwarded-Uri nor X-Original-URI");
        }
    };
    let method = match agreed(headers, "x-forwarded-method", "x-original-method")? {
        Some(m) => Method::from_bytes(m.as_bytes())
            .map_err(|_| "the forwarded method is not an HTTP method")?,
        None => own.clone(),
    };
    let path_and_query = uri
        .filter(|u| u.starts_with('/') && !u.contains('#'))
        .and_then(|u| PathAndQuery::try_from(u).ok())
        .ok_or("the forwarded URI is not a path and query")?;
    let host = single(headers, "x-forwarded-host")?;
    let scheme = single(headers, "x-forwarded-proto")?
        .map(|p| match p.as_bytes() {
            b"http" => Ok(Scheme::HTTP),
            b"https" => Ok(Scheme::HTTPS),
            _ => Err("X-Forwarded-Proto is neither http nor https"),
        })
        .transpose()?;
    let authority = host
        .map(|h| Authority::try_from(h.as_bytes()).map_err(|_| "X-Forwarded-Host is not a host"))
        .transpose()?;
    // The original URI in absolute form when the proxy says where it was sent, so that what
    // reads the request sees the scheme and host the browser used.
    let uri = match (scheme, authority) {
        (Some(scheme), Some(authority)) => Uri::builder()
            .scheme(scheme)
            .authority(authority)
            .path_and_query(path_and_query)
            .build()
            .map_err(|_| "the forwarded URI is not a URI")?,
        _ => Uri::from(path_and_query),
    };
    Ok(Original {
        method,
        uri,
        host: host.cloned(),
    })
}

/// The value of one of two headers naming the same thing: the one sent, or both when equal.
fn agreed<'h>(
    headers: &'h HeaderMap,
    forwarded: &'static str,
    original: &'static str,
) -> Result<Option<&'h HeaderValue>, &'static str> {
    match (single(headers, forwarded)?, single(headers, original)?) {
        (Some(a), Some(b)) if a != b => Err(DISAGREE),
        (a, b) => Ok(a.or(b)),
    }
}

/// A header sent at most once (two values: a client added one beside the proxy's).
fn single<'h>(
    headers: &'h HeaderMap,
    name: &'static str,
) -> Result<Option<&'h HeaderValue>, &'static str> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err("a forwarded header was sent more than once");
    }
    Ok(first)
}

/// The original path as routes are matched against it: percent-decoded once. A path that a
/// proxy and an app could read as different paths is refused: dot segments, empty segments,
/// encoded slashes or backslashes, control characters (`/feed/../app` may be served as
/// `/app`, `/feed%2F..%2Fapp` likewise by an app that decodes slashes).
pub(super) fn route_path(raw: &str) -> Result<Cow<'_, str>, &'static str> {
    const UNCLEAR: &str = "the original path has dot or empty segments, an encoded slash or \
                           backslash, or a control character: the proxy and the app could \
                           read it as different paths";
    let lower = |needle: &str| {
        raw.as_bytes()
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
    };
    if raw.contains('\\') || lower("%2f") || lower("%5c") {
        return Err(UNCLEAR);
    }
    let path = decode_path(raw).ok_or("the original path has a broken percent-escape")?;
    if path.chars().any(char::is_control) {
        return Err(UNCLEAR);
    }
    let mut segments = path.split('/').skip(1).peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        if segment == "." || segment == ".." || (segment.is_empty() && !last) {
            return Err(UNCLEAR);
        }
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn either_family_names_the_original_and_they_must_agree() {
        let nginx = read(
            &headers(&[
                ("x-original-uri", "/app/x?y=1"),
                ("x-original-method", "POST"),
            ]),
            &Method::GET,
            None,
        )
        .unwrap();
        assert_eq!(nginx.method, Method::POST);
        assert_eq!(nginx.uri, "/app/x?y=1");
        assert_eq!(nginx.host, None);
        let caddy = read(
            &headers(&[
                ("x-forwarded-uri", "/app/x"),
                ("x-forwarded-method", "DELETE"),
                ("x-forwarded-host", "app.example"),
                ("x-forwarded-proto", "https"),
            ]),
            &Method::GET,
            None,
        )
        .unwrap();
        assert_eq!(caddy.method, Method::DELETE);
        assert_eq!(caddy.uri, "https://app.example/app/x");
        assert_eq!(caddy.host.unwrap(), "app.example");
        // No method: the check's own (nginx's auth_request keeps it).
        let own = read(&headers(&[("x-original-uri", "/a")]), &Method::PUT, None).unwrap();
        assert_eq!(own.method, Method::PUT);
        // Both families, equal: fine.
        read(
            &headers(&[("x-original-uri", "/a"), ("x-forwarded-uri", "/a")]),
            &Method::GET,
            None,
        )
        .unwrap();
        // Envoy: the original in the check's path; a family header beside it must agree.
        let envoy = read(&headers(&[]), &Method::PATCH, Some("/app/x?y=1")).unwrap();
        assert_eq!(
            (envoy.method, envoy.uri),
            (Method::PATCH, "/app/x?y=1".parse().unwrap())
        );
        read(
            &headers(&[("x-forwarded-uri", "/app/x")]),
            &Method::GET,
            Some("/app/x"),
        )
        .unwrap();
        assert_eq!(
            read(
                &headers(&[("x-forwarded-uri", "/feed/x")]),
                &Method::GET,
                Some("/app/x")
            )
            .unwrap_err(),
            DISAGREE
        );
        let refused = [
            (
                vec![("x-original-uri", "/app/x"), ("x-forwarded-uri", "/feed/x")],
                "describe different requests",
            ),
            (
                vec![
                    ("x-original-uri", "/a"),
                    ("x-original-method", "GET"),
                    ("x-forwarded-method", "POST"),
                ],
                "describe different requests",
            ),
            (
                vec![("x-forwarded-uri", "/a"), ("x-forwarded-uri", "/b")],
                "more than once",
            ),
            (vec![], "neither X-Forwarded-Uri nor X-Original-URI"),
            (vec![("x-forwarded-uri", "app")], "not a path and query"),
            (
                vec![("x-forwarded-uri", "https://evil.example/a")],
                "not a path and query",
            ),
            (vec![("x-forwarded-uri", "/a#b")], "not a path and query"),
            (
                vec![("x-forwarded-uri", "/a"), ("x-forwarded-method", "G T")],
                "not an HTTP method",
            ),
            (
                vec![("x-forwarded-uri", "/a"), ("x-forwarded-proto", "ftp")],
                "neither http nor https",
            ),
            (
                vec![("x-forwarded-uri", "/a"), ("x-forwarded-host", "a b")],
                "not a host",
            ),
        ];
        for (pairs, why) in refused {
            let e = read(&headers(&pairs), &Method::GET, None).unwrap_err();
            assert!(e.contains(why), "{pairs:?}: {e}");
        }
    }

    #[test]
    fn paths_an_app_could_read_otherwise_are_refused() {
        for ok in ["/", "/app/x", "/app/", "/a+b", "/caf%C3%A9", "/a.b/..c/.d"] {
            assert!(route_path(ok).is_ok(), "{ok}");
        }
        assert_eq!(route_path("/%61pp/x").unwrap(), "/app/x");
        assert_eq!(route_path("/caf%C3%A9").unwrap(), "/café");
        for bad in [
            "/feed/../app",
            "/feed/%2e%2e/app",
            "/feed/%2E%2E/app",
            "/./app",
            "/app/.",
            "/app/..",
            "//app",
            "/feed//app",
            "/feed%2F..%2Fapp",
            "/feed%2f..",
            "/feed\\app",
            "/feed%5Capp",
            "/a%00",
            "/a%0d%0aX: y",
        ] {
            assert!(route_path(bad).is_err(), "{bad}");
        }
        assert_eq!(
            route_path("/%zz").unwrap_err(),
            "the original path has a broken percent-escape"
        );
    }
}
