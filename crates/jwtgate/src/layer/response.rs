//! How a [`Rejection`] is written to the client, in the shape of tower-http's csrf
//! `with_rejection_response`: a [`RejectionResponse`] trait with a closure blanket impl, and
//! the responders most services need.
//!
//! Whatever the responder returns, the layer then sets the RFC 6750 `WWW-Authenticate`
//! challenge, `Retry-After`, `Cache-Control: no-store` and the cookies to set or clear, makes a
//! browser's sign-in redirect a 302 to its login, and puts the [`Rejection`] in the response
//! extensions: a responder chooses the body and the framing, never the semantics. A responder
//! writes status, headers and body only, once.

use http::header::CONTENT_TYPE;
use http::request::Parts;
use http::{HeaderValue, Response, StatusCode};

use crate::rejection::{Rejection, RejectionKind};

/// Writes a [`Rejection`] as a response with body type `B`.
///
/// Any `FnMut(&Parts, &Rejection) -> Response<B> + Clone` is one:
///
/// ```
/// use http::{Response, request::Parts};
/// use jwtgate::{rejection::Rejection, layer::RejectionResponse};
///
/// let plain = |_: &Parts, r: &Rejection| {
///     let mut res = Response::new(format!("{}\n", r.description()));
///     *res.status_mut() = r.status();
///     res
/// };
/// # fn check<R: RejectionResponse<String>>(_: R) {}
/// # check(plain);
/// ```
pub trait RejectionResponse<B>: Clone {
    /// The response for `rejection` of the request whose head is `request`.
    fn respond(&mut self, request: &Parts, rejection: &Rejection) -> Response<B>;
}

impl<B, F> RejectionResponse<B> for F
where
    F: FnMut(&Parts, &Rejection) -> Response<B> + Clone,
{
    fn respond(&mut self, request: &Parts, rejection: &Rejection) -> Response<B> {
        self(request, rejection)
    }
}

/// `{"error": "...", "error_description": "..."}` with the rejection's status
/// (`application/json`).
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonRejection;

impl<B: From<String>> RejectionResponse<B> for JsonRejection {
    fn respond(&mut self, _: &Parts, rejection: &Rejection) -> Response<B> {
        rejection.json_response()
    }
}

/// RFC 9457 problem details (`application/problem+json`): `type`, `title`, `status`, `detail`,
/// and the OAuth `error` code (and `scope`) as extension members.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProblemRejection;

impl<B: From<String>> RejectionResponse<B> for ProblemRejection {
    fn respond(&mut self, _: &Parts, rejection: &Rejection) -> Response<B> {
        let status = rejection.status();
        let mut body = serde_json::json!({
            "type": "about:blank",
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": rejection.description(),
            "error": rejection.error_code(),
        });
        if let Some(scope) = rejection.scope() {
            body["scope"] = serde_json::Value::from(scope);
        }
        let mut res = Response::new(B::from(body.to_string()));
        *res.status_mut() = status;
        res.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        res
    }
}

/// The status and headers only, with an empty body (any `B: Default`, such as
/// `http_body_util::Empty`); still a complete RFC 6750 answer.
#[derive(Clone, Copy, Debug, Default)]
pub struct EmptyRejection;

impl<B: Default> RejectionResponse<B> for EmptyRejection {
    fn respond(&mut self, _: &Parts, rejection: &Rejection) -> Response<B> {
        let mut res = Response::new(B::default());
        *res.status_mut() = rejection.status();
        res
    }
}

/// A gRPC "trailers-only" answer: HTTP 200, `content-type: application/grpc`, `grpc-status`
/// 16 UNAUTHENTICATED (401 cases), 7 PERMISSION_DENIED (403), 14 UNAVAILABLE (503) or
/// 13 INTERNAL (500), and the description as a percent-encoded `grpc-message`. Any
/// `B: Default`, tonic's body included.
#[derive(Clone, Copy, Debug, Default)]
pub struct GrpcRejection;

impl GrpcRejection {
    /// The gRPC status code of a rejection.
    pub fn code(rejection: &Rejection) -> u16 {
        match rejection.kind() {
            RejectionKind::InsufficientScope
            | RejectionKind::ProfileIncomplete
            | RejectionKind::GatewayDenied => 7,
            RejectionKind::KeysUnavailable
            | RejectionKind::DirectoryUnavailable
            | RejectionKind::LoginUnavailable
            | RejectionKind::RevocationUnavailable
            | RejectionKind::SessionUnavailable => 14,
            RejectionKind::Internal => 13,
            _ => 16,
        }
    }
}

impl<B: Default> RejectionResponse<B> for GrpcRejection {
    fn respond(&mut self, request: &Parts, rejection: &Rejection) -> Response<B> {
        let mut res = Response::new(B::default());
        *res.status_mut() = StatusCode::OK;
        let headers = res.headers_mut();
        // Answer grpc-web in its own content type; anything else as plain gRPC.
        let content_type = request
            .headers
            .get(CONTENT_TYPE)
            .filter(|v| is_grpc(v))
            .cloned()
            .unwrap_or(HeaderValue::from_static("application/grpc"));
        headers.insert(CONTENT_TYPE, content_type);
        headers.insert("grpc-status", HeaderValue::from(Self::code(rejection)));
        if let Ok(message) = HeaderValue::try_from(grpc_message(rejection.description())) {
            headers.insert("grpc-message", message);
        }
        res
    }
}

/// gRPC requests get [`GrpcRejection`]'s answer, every other request [`JsonRejection`]'s. The
/// layer's default: gRPC clients behind an axum router see `Unauthenticated`, not a JSON body
/// misread as a frame.
///
/// A gRPC request is one over HTTP/2 (or later) whose `content-type` is `application/grpc`,
/// alone or followed by `+` or `;` (`application/grpc+proto`): gRPC runs on nothing else. A
/// plain HTTP/1.1 request that only says `application/grpc` gets the JSON 401, so that no
/// client can turn its own refusals into HTTP 200 (hiding them from access logs and from
/// rate limiters that count 401s). gRPC-Web, which runs over HTTP/1.1, gets the JSON form
/// here too; an app serving it answers with [`GrpcRejection`] on its gRPC-Web routes.
///
/// Browser navigations on routes whose validator has a login get a 302 to it (no credential)
/// or a 401 HTML page (credentials refused): see [`Rejection::login_redirect`].
#[derive(Clone, Copy, Debug, Default)]
pub struct GrpcOrJsonRejection;

impl<B: Default + From<String>> RejectionResponse<B> for GrpcOrJsonRejection {
    fn respond(&mut self, request: &Parts, rejection: &Rejection) -> Response<B> {
        // The layer makes it a 302 to the login; the body of a redirect stays empty.
        if rejection.login_redirect().is_some() {
            return Response::new(B::default());
        }
        if rejection.wants_page() {
            let title = if rejection.kind() == RejectionKind::LoginUnavailable {
                "Sign-in unavailable"
            } else {
                "Sign-in required"
            };
            let mut res = Response::new(B::from(crate::rejection::page_html(
                title,
                rejection.description(),
            )));
            *res.status_mut() = rejection.status();
            res.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            return res;
        }
        if is_grpc_request(request) {
            GrpcRejection.respond(request, rejection)
        } else {
            JsonRejection.respond(request, rejection)
        }
    }
}

fn is_grpc(content_type: &HeaderValue) -> bool {
    content_type
        .as_bytes()
        .get(..16)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"application/grpc"))
}

/// Whether `request` is a gRPC call: HTTP/2 or later, `application/grpc` alone or with a `+`
/// or `;` suffix (not `application/grpcfoo`, not gRPC-Web).
fn is_grpc_request(request: &Parts) -> bool {
    request.version >= http::Version::HTTP_2
        && request.headers.get(CONTENT_TYPE).is_some_and(|v| {
            let v = v.as_bytes();
            v.get(..16)
                .is_some_and(|p| p.eq_ignore_ascii_case(b"application/grpc"))
                && matches!(v.get(16), None | Some(b'+' | b';'))
        })
}

/// The gRPC spec's percent-encoding of `grpc-message`: bytes outside `0x20..=0x7E`, and `%`.
fn grpc_message(text: &str) -> String {
    crate::percent::encode(text, |b| (0x20..=0x7e).contains(&b) && b != b'%')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(content_type: Option<&str>) -> Parts {
        parts_over(http::Version::HTTP_2, content_type)
    }

    fn parts_over(version: http::Version, content_type: Option<&str>) -> Parts {
        let mut req = http::Request::builder().version(version);
        if let Some(ct) = content_type {
            req = req.header(CONTENT_TYPE, ct);
        }
        req.body(()).unwrap().into_parts().0
    }

    #[test]
    fn grpc_codes_and_messages() {
        let cases = [
            (Rejection::missing_credentials("r"), "16"),
            (
                Rejection::new(RejectionKind::InvalidToken, "token expired", "r"),
                "16",
            ),
            (Rejection::insufficient_scope("r", ["a"]), "7"),
            (
                Rejection::new(RejectionKind::KeysUnavailable, "keys 100% down", "r"),
                "14",
            ),
            (Rejection::new(RejectionKind::Internal, "x", "r"), "13"),
        ];
        for (rejection, code) in cases {
            let res: Response<String> =
                GrpcRejection.respond(&parts(Some("application/grpc+proto")), &rejection);
            assert_eq!(res.status(), 200);
            assert_eq!(res.headers()["grpc-status"], code);
            assert_eq!(res.headers()[CONTENT_TYPE], "application/grpc+proto");
            assert!(res.body().is_empty());
        }
        assert_eq!(grpc_message("keys 100% down\n"), "keys 100%25 down%0A");
    }

    #[test]
    fn the_default_tells_grpc_from_json() {
        let r = Rejection::missing_credentials("r");
        let grpc: Response<String> =
            GrpcOrJsonRejection.respond(&parts(Some("application/grpc")), &r);
        assert_eq!(grpc.headers()["grpc-status"], "16");
        let json: Response<String> =
            GrpcOrJsonRejection.respond(&parts(Some("application/json")), &r);
        assert_eq!(json.status(), 401);
        assert!(json.body().contains("missing_token"));
        let none: Response<String> = GrpcOrJsonRejection.respond(&parts(None), &r);
        assert_eq!(none.status(), 401);
        let is_grpc = |version, ct| {
            let res: Response<String> =
                GrpcOrJsonRejection.respond(&parts_over(version, Some(ct)), &r);
            res.headers().contains_key("grpc-status")
        };
        use http::Version;
        for ct in [
            "application/grpc",
            "application/grpc+proto",
            "application/GRPC;x=1",
        ] {
            assert!(is_grpc(Version::HTTP_2, ct), "{ct}");
            // Only HTTP/2 carries gRPC: on HTTP/1.1 the same header gets the plain 401.
            assert!(!is_grpc(Version::HTTP_11, ct), "{ct}");
        }
        for ct in [
            "application/grpcfoo",
            "application/grpc-web",
            "application/grp",
        ] {
            assert!(!is_grpc(Version::HTTP_2, ct), "{ct}");
        }
    }

    #[test]
    fn problem_details() {
        let r = Rejection::insufficient_scope("r", ["admin"]);
        let res: Response<String> = ProblemRejection.respond(&parts(None), &r);
        assert_eq!(res.status(), 403);
        assert_eq!(res.headers()[CONTENT_TYPE], "application/problem+json");
        let body: serde_json::Value = serde_json::from_str(res.body()).unwrap();
        assert_eq!(body["status"], 403);
        assert_eq!(body["title"], "Forbidden");
        assert_eq!(body["error"], "insufficient_scope");
        assert_eq!(body["scope"], "admin");
    }
}
