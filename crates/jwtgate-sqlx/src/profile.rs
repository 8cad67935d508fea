//! A minimal profile form (first and last name) for users registered as placeholders: the
//! page a validator's `profile_url` sends their browsers to. Put the validator's layer on it,
//! as on any `jwt_` route; after saving, the browser goes back to `next`.
//!
//! ```no_run
//! # async fn run(directory: jwtgate_sqlx::SqlDirectory, registry: jwtgate::Registry)
//! # -> Result<(), jwtgate::Error> {
//! let app: axum::Router = jwtgate_sqlx::profile::router(directory, "/profile")
//!     .route_layer(registry.layer("jwt_app")?);
//! # let _ = app; Ok(()) }
//! ```

use axum::extract::{Form, Query, State};
use axum::http::header::{HOST, LOCATION, ORIGIN};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use jwtgate::identity::UserRecord;
use serde::Deserialize;

use crate::{ErrorKind, SqlDirectory};

/// The form's routes at `path`: `GET` shows it, `POST` saves it.
pub fn router(directory: SqlDirectory, path: &str) -> axum::Router {
    axum::Router::new()
        .route(path, get(show).post(save))
        .with_state(directory)
}

#[derive(Debug, Deserialize)]
struct NextQuery {
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ProfileForm {
    first_name: String,
    last_name: String,
    next: Option<String>,
}

async fn show(user: UserRecord, Query(q): Query<NextQuery>) -> Response {
    page(&user, safe_next(q.next.as_deref()), None, StatusCode::OK)
}

async fn save(
    State(directory): State<SqlDirectory>,
    user: UserRecord,
    headers: HeaderMap,
    Form(form): Form<ProfileForm>,
) -> Response {
    if !same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "cross-site form posts are refused").into_response();
    }
    let next = safe_next(form.next.as_deref());
    match directory
        .complete_profile(&user.id, &form.first_name, &form.last_name)
        .await
    {
        Ok(_) => {
            let mut res = StatusCode::SEE_OTHER.into_response();
            if let Ok(location) = HeaderValue::try_from(next) {
                res.headers_mut().insert(LOCATION, location);
            }
            res
        }
        Err(e) if e.kind() == ErrorKind::Invalid => {
            let mut shown = user;
            shown.first_name = Some(form.first_name);
            shown.last_name = Some(form.last_name);
            page(&shown, next, Some(&e.to_string()), StatusCode::BAD_REQUEST)
        }
        Err(e) => {
            tracing::error!(error = %e, "profile not saved");
            let status = if e.kind() == ErrorKind::Unavailable {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            (status, "the profile could not be saved; try again").into_response()
        }
    }
}

/// A form post from this site: `Sec-Fetch-Site`, when sent, is `same-origin` (or `none`,
/// typed by the user), and `Origin`, when sent, names the `Host` the request went to.
fn same_origin(headers: &HeaderMap) -> bool {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let fetch_site_ok = header(axum::http::HeaderName::from_static("sec-fetch-site"))
        .is_none_or(|s| s.eq_ignore_ascii_case("same-origin") || s.eq_ignore_ascii_case("none"));
    let origin_ok = match (header(ORIGIN), header(HOST)) {
        (None, _) => true,
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host)),
        (Some(_), None) => false,
    };
    fetch_site_ok && origin_ok
}

/// `next` when it is a path on this site, else `/`.
fn safe_next(next: Option<&str>) -> &str {
    next.filter(|n| {
        n.starts_with('/')
            && !n.starts_with("//")
            && !n.contains('\\')
            && !n.bytes().any(|b| b.is_ascii_control() || b == b' ')
    })
    .unwrap_or("/")
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(user: &UserRecord, next: &str, error: Option<&str>, status: StatusCode) -> Response {
    let value = |v: &Option<String>| escape(v.as_deref().unwrap_or(""));
    let error = error.map_or_else(String::new, |e| {
        format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e))
    });
    let email = user.email.as_deref().map_or_else(String::new, |e| {
        format!("<p>Signed in as <strong>{}</strong>.</p>", escape(e))
    });
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Complete your profile</title></head><body>\
         <h1>Complete your profile</h1>{email}{error}\
         <form method=\"post\">\
         <input type=\"hidden\" name=\"next\" value=\"{next}\">\
         <p><label>First name <input id=\"first_name\" name=\"first_name\" value=\"{first}\" required maxlength=\"100\"></label></p>\
         <p><label>Last name <input id=\"last_name\" name=\"last_name\" value=\"{last}\" required maxlength=\"100\"></label></p>\
         <p><button id=\"save\" type=\"submit\">Save</button></p>\
         </form></body></html>",
        next = escape(next),
        first = value(&user.first_name),
        last = value(&user.last_name),
    );
    let mut res = (status, Html(body)).into_response();
    res.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next(Some("/hello?x=1")), "/hello?x=1");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "",
            "/a b",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn cross_site_posts_are_refused() {
        let mut h = HeaderMap::new();
        assert!(same_origin(&h));
        h.insert(HOST, HeaderValue::from_static("app.example:3000"));
        h.insert(ORIGIN, HeaderValue::from_static("http://app.example:3000"));
        assert!(same_origin(&h));
        h.insert(ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(!same_origin(&h));
        h.remove(ORIGIN);
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&h));
    }

    #[test]
    fn names_are_escaped() {
        assert_eq!(
            escape("<b>\"O'Neil\" & co</b>"),
            "&lt;b&gt;&quot;O&#39;Neil&quot; &amp; co&lt;/b&gt;"
        );
    }
}
