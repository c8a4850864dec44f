//! `POST /v1/cards/import`: the card system's file (CSV or JSON lines, as
//! `otpgw card import` reads it) as a streamed request body, stored in batches
//! through the core's idempotent upsert while it arrives. The body is bounded in
//! size and in how long it may pause; one import runs at a time per node; a body
//! that ends early (the client went away) stores nothing of its unfinished batch,
//! so a cut line never becomes a wrong phone number. The answer is the CLI's
//! summary, with the first bad lines listed by number (never their content).

use std::io::Read;
use std::time::{Duration, Instant};

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::StatusCode;
use bytes::{Buf, Bytes};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, Semaphore};

use super::caller::Admin;
use super::error::Json;
use super::{ApiError, AppState};
use crate::cardfile::{CardFile, CardFileError};
use crate::core::{Core, CoreError, ImportRun, IMPORT_BATCH};

/// The largest body taken: a million cards as CSV are about 40 MB.
pub const MAX_IMPORT_BYTES: u64 = 512 * 1024 * 1024;
/// How long the body may pause before the import gives up on it.
pub const IMPORT_IDLE: Duration = Duration::from_secs(30);
/// Lines one request may hold: the duplicate check keeps about 20 bytes per card
/// line for the whole request, so this bounds it (about 100 MB). Larger card bases
/// come in several files, or through `otpgw card import`.
pub const MAX_IMPORT_LINES: u64 = 5_000_000;
/// Bad lines listed in the answer; the count covers them all.
const LISTED_ERRORS: usize = 1000;

/// One import at a time per node: a second would only compete for the writer.
static RUNNING: Semaphore = Semaphore::const_new(1);

/// The body's schema in the OpenAPI document: any text. The file's lines are
/// checked one by one (a bad one is listed, never the whole body refused), so no
/// schema of the body as a whole is true.
pub struct CardFileBody;

impl utoipa::PartialSchema for CardFileBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::SchemaType::AnyValue)
            .description(Some(
                "CSV with a header line naming pan and msisdn (and optionally language), \
                 or JSON lines with those keys",
            ))
            .into()
    }
}

impl utoipa::ToSchema for CardFileBody {}

/// The request's body, not read yet (after the key was checked).
pub struct RawBody(axum::body::Body);

impl FromRequest<AppState> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &AppState) -> Result<Self, ApiError> {
        Ok(Self(req.into_body()))
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    /// The bank's first load: a changed phone holds no pushed codes back.
    #[serde(default)]
    initial_load: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LineError {
    /// The line's number in the body (a CSV header is line 1).
    line: u64,
    reason: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ImportSummary {
    created: u64,
    unchanged: u64,
    /// Lines whose phone or language changed (a phone change is audited).
    updated: u64,
    /// Every bad line, listed or not.
    rejected: u64,
    /// The first 1,000 bad lines, in order.
    errors: Vec<LineError>,
    /// More bad lines than listed.
    errors_truncated: bool,
    seconds: f64,
}

/// Why the body stopped arriving.
enum Cut {
    TooLarge,
    Idle,
    Broken,
}

/// Import cards (role `admin`): the body is CSV with a header line `pan,msisdn`
/// (optionally `language`) or JSON lines with those keys. An unchanged line changes
/// nothing, a changed phone is a phone change (audited, the hold applied unless
/// `initial_load`), a bad line is listed and never stops the rest; a rerun of the
/// same body changes nothing. Cards are stored while the body arrives, so on an
/// error part of it may be stored: send it again from the start.
#[utoipa::path(post, path = "/v1/cards/import", tag = "cards",
    params(ImportParams),
    request_body(content = inline(CardFileBody), content_type = "text/csv",
        description = "CSV with a header line, or JSON lines (application/x-ndjson)"),
    security(("bearer" = [])),
    responses((status = 200, body = ImportSummary), super::answers::ImportErrors))]
pub async fn import(
    State(state): State<AppState>,
    query: Result<Query<ImportParams>, QueryRejection>,
    admin: Admin<RawBody>,
) -> Result<Json<ImportSummary>, ApiError> {
    let Query(params) = query.map_err(|_| {
        ApiError::bad_request("invalid_query", "initial_load must be true or false")
    })?;
    let _running = RUNNING.try_acquire().map_err(|_| {
        ApiError::new(
            StatusCode::CONFLICT,
            "import_running",
            "another import runs on this node; send this one when it has finished",
        )
    })?;
    let actor = admin.key.actor();
    let RawBody(body) = admin.body;
    let (tx, rx) = mpsc::channel(16);
    let core = state.core.clone();
    let handle = tokio::runtime::Handle::current();
    let work = tokio::task::spawn_blocking(move || {
        let reader = ChannelReader {
            rx,
            chunk: Bytes::new(),
            ended: false,
        };
        run(
            &core,
            &handle,
            Box::new(reader),
            params.initial_load,
            &actor,
        )
    });
    let (cut, worked) = tokio::join!(pump(body, tx), work);
    let worked = worked.map_err(|_| ApiError::internal())?;
    match (cut, worked) {
        (_, Ok(summary)) => Ok(Json(summary)),
        (_, Err(Failed::TooManyLines)) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "the body has over 5,000,000 lines: split the file; the lines before are stored",
        )),
        (Some(Cut::TooLarge), Err(_)) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "the body is over 512 MiB: split the file; what came before the cut is stored",
        )),
        (Some(Cut::Idle), Err(_)) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            "the body paused for over 30 s; send it again from the start",
        )),
        (Some(Cut::Broken), Err(_)) => Err(ApiError::bad_request(
            "body_cut",
            "the body ended early; send it again from the start",
        )),
        (None, Err(Failed::File(CardFileError::Header))) => Err(ApiError::bad_request(
            "invalid_file",
            CardFileError::Header.to_string(),
        )),
        (None, Err(Failed::File(CardFileError::Read(_)))) => Err(ApiError::bad_request(
            "body_cut",
            "the body could not be read; send it again from the start",
        )),
        (None, Err(Failed::Store(e))) => Err(e.into()),
    }
}

enum Failed {
    File(CardFileError),
    Store(CoreError),
    TooManyLines,
}

/// Parses and stores on a blocking thread: the parser reads synchronously, and each
/// batch's upsert is awaited on the runtime through `handle`.
fn run(
    core: &Core,
    handle: &tokio::runtime::Handle,
    reader: Box<dyn Read + Send>,
    initial_load: bool,
    actor: &str,
) -> Result<ImportSummary, Failed> {
    let started = Instant::now();
    let mut file = CardFile::open(reader).map_err(Failed::File)?;
    let mut summary = ImportSummary {
        created: 0,
        unchanged: 0,
        updated: 0,
        rejected: 0,
        errors: Vec::new(),
        errors_truncated: false,
        seconds: 0.0,
    };
    let mut run = ImportRun::default();
    loop {
        let mut rejected = Vec::new();
        // A read error (the body cut) stops before its batch is stored.
        let batch = file
            .next_batch(IMPORT_BATCH, &mut rejected)
            .map_err(Failed::File)?;
        if !batch.is_empty() {
            let report = handle
                .block_on(core.enroll.import(&mut run, &batch, initial_load, actor))
                .map_err(Failed::Store)?;
            summary.created += report.created;
            summary.unchanged += report.unchanged;
            summary.updated += report.updated;
            rejected.extend(report.rejected);
        }
        rejected.sort_unstable();
        summary.rejected += rejected.len() as u64;
        if summary.created + summary.unchanged + summary.updated + summary.rejected
            > MAX_IMPORT_LINES
        {
            return Err(Failed::TooManyLines);
        }
        for (line, reason) in rejected {
            if summary.errors.len() < LISTED_ERRORS {
                summary.errors.push(LineError { line, reason });
            } else {
                summary.errors_truncated = true;
            }
        }
        if batch.is_empty() {
            break;
        }
    }
    summary.seconds = (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    Ok(summary)
}

/// Moves the body's chunks to the parser, bounded in size and idle time; `None`
/// when the body ended whole (then the reader sees a clean end).
async fn pump(
    body: axum::body::Body,
    tx: mpsc::Sender<std::io::Result<Option<Bytes>>>,
) -> Option<Cut> {
    let mut body = body.into_data_stream();
    let mut seen = 0u64;
    let cut = loop {
        let data = match tokio::time::timeout(IMPORT_IDLE, body.next()).await {
            Err(_) => break Some(Cut::Idle),
            Ok(None) => break None,
            Ok(Some(Err(_))) => break Some(Cut::Broken),
            Ok(Some(Ok(data))) => data,
        };
        seen += data.len() as u64;
        if seen > MAX_IMPORT_BYTES {
            break Some(Cut::TooLarge);
        }
        if tx.send(Ok(Some(data))).await.is_err() {
            // The parser stopped (a bad header or a store error): it answers.
            return None;
        }
    };
    let last = match cut {
        None => Ok(None),
        Some(_) => Err(std::io::Error::other("body cut")),
    };
    let _ = tx.send(last).await;
    cut
}

/// The body as a `Read` for the parser. Only an explicit end is an end: a channel
/// closed without one (the request dropped) is an error, so a cut last line is
/// never stored.
struct ChannelReader {
    rx: mpsc::Receiver<std::io::Result<Option<Bytes>>>,
    chunk: Bytes,
    ended: bool,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while !self.chunk.has_remaining() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Ok(Some(chunk))) => self.chunk = chunk,
                Some(Ok(None)) => self.ended = true,
                Some(Err(e)) => return Err(e),
                None => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            }
        }
        let n = buf.len().min(self.chunk.len());
        self.chunk.copy_to_slice(&mut buf[..n]);
        Ok(n)
    }
}
