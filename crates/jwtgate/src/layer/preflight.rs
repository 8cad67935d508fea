//! CORS preflights: `OPTIONS` requests with `Access-Control-Request-Method`, which browsers
//! send without credentials before a cross-origin call.

/// What a layer does with a CORS preflight (option values in the manner of tower-http's
/// `AllowOrigin`): answered here without calling the handler (the default), passed on as an
/// anonymous request, or authenticated like any request.
///
/// A CORS layer belongs outside jwtgate's (tower-http's `CorsLayer` added with `.layer(..)`
/// after `.route_layer(registry.layer(..))`): it answers preflights before they get here.
/// Whatever still gets here never reaches a `jwt_` handler as an anonymous call unless the app
/// asks for that with [`Preflight::pass_anonymous`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[must_use]
pub struct Preflight(Kind);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(super) enum Kind {
    #[default]
    Answer,
    PassAnonymous,
    Authenticate,
}

impl Preflight {
    /// `204 No Content` with `Vary` on the preflight's headers, the handler never called (the
    /// default). It grants nothing: without a CORS layer's `Access-Control-Allow-*` headers the
    /// browser does not make the cross-origin call.
    pub fn answer() -> Self {
        Self(Kind::Answer)
    }

    /// Passed to the inner service as an anonymous request (an [`Anonymous`](crate::identity::Anonymous)
    /// extension), for apps whose CORS answer comes from inside (a handler, an inner layer): the
    /// handler must then do nothing for `OPTIONS` but answer it.
    pub fn pass_anonymous() -> Self {
        Self(Kind::PassAnonymous)
    }

    /// Authenticated like any request: without credentials, a 401.
    pub fn authenticate() -> Self {
        Self(Kind::Authenticate)
    }

    pub(super) fn kind(self) -> Kind {
        self.0
    }
}
