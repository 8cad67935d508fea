//! A gRPC service on tonic's own `Server::builder()`, behind jwtgate.
//!
//! The layer goes on the server with `.layer(...)`, answering refusals in gRPC form
//! ([`GrpcRejection`]: `Unauthenticated`, `PermissionDenied`, `Unavailable`, `Internal`), and
//! handlers read the caller's [`Identity`] from the request extensions.
//!
//! The service and its messages are written by hand (what `tonic-prost-build` would generate
//! from `whoami.proto` below), so the example builds without `protoc`:
//!
//! ```proto
//! syntax = "proto3";
//! package demo;
//! service Whoami { rpc Get (WhoamiRequest) returns (WhoamiReply); }
//! message WhoamiRequest {}
//! message WhoamiReply { string user = 1; string validator = 2; string email = 3; }
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use jwtgate::layer::GrpcRejection;
use jwtgate::{Identity, layer::JwtAuthLayer};
use tonic::body::Body;
use tonic::codegen::Service;
use tonic::server::NamedService;
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;

/// `demo.WhoamiRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WhoamiRequest {}

/// `demo.WhoamiReply`: who the caller is, as jwtgate found it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WhoamiReply {
    /// The user id.
    #[prost(string, tag = "1")]
    pub user: String,
    /// The validator that accepted the token.
    #[prost(string, tag = "2")]
    pub validator: String,
    /// The `email` claim, if any.
    #[prost(string, tag = "3")]
    pub email: String,
}

/// The method's path.
pub const GET: &str = "/demo.Whoami/Get";

/// The `demo.Whoami` service.
#[derive(Clone, Debug, Default)]
pub struct WhoamiServer;

impl NamedService for WhoamiServer {
    const NAME: &'static str = "demo.Whoami";
}

/// `Get`: reads the identity the layer put in the request extensions.
#[derive(Clone, Copy, Debug)]
struct Get;

impl Service<Request<WhoamiRequest>> for Get {
    type Response = Response<WhoamiReply>;
    type Error = Status;
    type Future = std::future::Ready<Result<Response<WhoamiReply>, Status>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<WhoamiRequest>) -> Self::Future {
        let reply = match request.extensions().get::<Identity>() {
            Some(id) => Ok(Response::new(WhoamiReply {
                user: id.user_id().to_string(),
                validator: id.validator().to_string(),
                email: id.payload().get_str("email").unwrap_or_default().to_owned(),
            })),
            // Unreachable behind a `jwt_` layer; a `public_or_jwt_` layer would get here.
            None => Err(Status::unauthenticated("no identity")),
        };
        std::future::ready(reply)
    }
}

impl Service<http::Request<Body>> for WhoamiServer {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        Box::pin(async move {
            if req.uri().path() == GET {
                let mut grpc =
                    tonic::server::Grpc::new(ProstCodec::<WhoamiReply, WhoamiRequest>::default());
                Ok(grpc.unary(Get, req).await)
            } else {
                Ok(Status::unimplemented("no such method").into_http())
            }
        })
    }
}

/// Serves [`WhoamiServer`] behind `layer` (answering in gRPC form) on `listener` until the
/// runtime stops.
pub async fn serve(
    listener: tokio::net::TcpListener,
    layer: JwtAuthLayer,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .layer(layer.with_rejection_response(GrpcRejection))
        .add_service(WhoamiServer)
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
        .await
}

/// Calls `Get` on the server at `addr`, with `token` (if any) as `authorization: Bearer`.
pub async fn call(addr: SocketAddr, token: Option<&str>) -> Result<WhoamiReply, Status> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .map_err(|e| Status::internal(e.to_string()))?
        .connect()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let mut client = tonic::client::Grpc::new(channel);
    client
        .ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let mut request = Request::new(WhoamiRequest {});
    if let Some(token) = token {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| Status::invalid_argument("token"))?;
        request.metadata_mut().insert("authorization", value);
    }
    let reply = client
        .unary(
            request,
            http::uri::PathAndQuery::from_static(GET),
            ProstCodec::<WhoamiRequest, WhoamiReply>::default(),
        )
        .await?;
    Ok(reply.into_inner())
}
