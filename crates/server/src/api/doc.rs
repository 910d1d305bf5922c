//! What the OpenAPI document says beyond each handler's own annotation: the API's title,
//! its two ways to authenticate, the error catalogue's body, the Segment message a
//! tracking endpoint reads, and the answers every handler behind an extractor may give.
//!
//! The document is built with the router (`utoipa-axum`): a handler is served only with its
//! `#[utoipa::path]`, so what is served and what is documented cannot drift apart.

use std::borrow::Cow;

use prossimo_model::ErrorCode;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, RefOr, ResponseBuilder, ResponsesBuilder};
use utoipa::{Modify, PartialSchema, ToSchema};

/// The document's fixed parts; the paths come from the handlers.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Prossimo API",
        description = "Segment-compatible tracking API, the customer 360 read API, analytics, \
                       audiences and webhook destinations. Every error is the catalogue's JSON \
                       {code, message, details, doc}; docs/errors.md explains each code.",
        license(name = "Apache-2.0"),
    ),
    components(schemas(ErrorBody, SegmentMessage, SegmentBatch)),
    modifiers(&Security),
)]
pub(crate) struct ApiDoc;

/// The admin API's scheme.
pub(crate) const ADMIN: &str = "adminToken";
/// The tracking API's scheme.
pub(crate) const WRITE_KEY: &str = "writeKey";

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut basic = Http::new(HttpAuthScheme::Basic);
        basic.description = Some(
            "The source's write key as the basic-auth user, empty password; `writeKey` in a \
             batch body also works."
                .into(),
        );
        components.add_security_scheme(WRITE_KEY, SecurityScheme::Http(basic));
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.description = Some("An admin token (`prossimo keys create-token`).".into());
        components.add_security_scheme(ADMIN, SecurityScheme::Http(bearer));
    }
}

/// The catalogue's error body (`prossimo_model::ErrorBody`), its codes listed from
/// [`ErrorCode::ALL`].
pub(crate) struct ErrorBody;

impl PartialSchema for ErrorBody {
    fn schema() -> RefOr<Schema> {
        let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        let detail = ObjectBuilder::new()
            .description(Some(
                "One problem: a message's field (index: its place in the batch), a \
                 position in a definition (line, column), or a journey's step and field.",
            ))
            .property("index", integer())
            .property("step", string())
            .property("field", string())
            .property("reason", string())
            .property("line", integer())
            .property("column", integer())
            .required("field")
            .required("reason");
        ObjectBuilder::new()
            .property(
                "code",
                ObjectBuilder::new()
                    .schema_type(SchemaType::Type(Type::String))
                    .enum_values(Some(codes)),
            )
            .property("message", string())
            .property("details", ArrayBuilder::new().items(detail))
            .property(
                "doc",
                ObjectBuilder::new()
                    .schema_type(SchemaType::Type(Type::String))
                    .description(Some("Where the code is explained: docs/errors.md#<code>")),
            )
            .required("code")
            .required("message")
            .required("details")
            .required("doc")
            .into()
    }
}

impl ToSchema for ErrorBody {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Error")
    }
}

fn integer() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::Type(Type::Integer))
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(SchemaType::Type(Type::String))
}

/// A Segment-spec message as a tracking endpoint reads it. `prossimo_model` parses it by
/// hand (field by field, with the limits and the error each field gets), so its schema is
/// written by hand too, in `segment_spec.json`.
pub(crate) struct SegmentMessage;
/// A batch of Segment messages (`/v1/batch`, `/v1/import`, `/v1/b`).
pub(crate) struct SegmentBatch;

fn segment_spec(name: &str) -> RefOr<Schema> {
    let spec: serde_json::Value =
        serde_json::from_str(include_str!("segment_spec.json")).unwrap_or_default();
    serde_json::from_value(spec[name].clone()).unwrap_or_else(|_| RefOr::T(Schema::default()))
}

impl PartialSchema for SegmentMessage {
    fn schema() -> RefOr<Schema> {
        segment_spec("Message")
    }
}

impl ToSchema for SegmentMessage {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Message")
    }
}

impl PartialSchema for SegmentBatch {
    fn schema() -> RefOr<Schema> {
        segment_spec("Batch")
    }
}

impl ToSchema for SegmentBatch {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Batch")
    }
}

/// Adds to every operation the answers its extractors and the edge may give, so each
/// handler's annotation lists only its own: a 401 behind a key or token, a 400 where a
/// path, query or body is read, a 413/415 where a body is, a 503 wherever the store is
/// touched (a write lock held too long; retry).
pub(crate) fn add_edge_answers(openapi: &mut OpenApi) {
    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                        "Error",
                    ))))
                    .build(),
            )
            .build()
    };
    for (path, item) in openapi.paths.paths.iter_mut() {
        let operations: [&mut Option<Operation>; 5] = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.options,
        ];
        for operation in operations.into_iter().flatten() {
            let secured_by = |scheme: &str| {
                operation.security.iter().flatten().any(|requirement| {
                    serde_json::to_value(requirement).is_ok_and(|v| v.get(scheme).is_some())
                })
            };
            let (admin, write_key) = (secured_by(ADMIN), secured_by(WRITE_KEY));
            let reads_input = operation.request_body.is_some()
                || operation.parameters.as_ref().is_some_and(|p| !p.is_empty())
                || path.contains('{');
            let has_body = operation.request_body.is_some();
            let mut added = ResponsesBuilder::new();
            if admin || write_key {
                added = added.response("401", error("Missing, unknown or revoked key or token"));
            }
            if reads_input || write_key {
                added = added.response(
                    "400",
                    error("A path, query or body value that cannot be read"),
                );
            }
            if has_body {
                added = added
                    .response("413", error("The body is larger than the limit"))
                    .response("415", error("A body of another type or encoding"));
            }
            if admin || write_key {
                added = added.response(
                    "503",
                    error("Storage is busy or unavailable; retry after Retry-After seconds"),
                );
            }
            let mut added = added.build();
            // What the handler documents itself wins.
            for (status, response) in std::mem::take(&mut operation.responses.responses) {
                added.responses.insert(status, response);
            }
            operation.responses = added;
        }
    }
}
