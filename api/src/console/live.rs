//! `GET /console/queue/events`: tells an open alert queue that it is out of date.
//!
//! The stream sends `event: changed` when the index shows a new commit or a review was stored
//! since the page was made, checked every [`POLL`]. It carries no data (the page reloads
//! itself, and that view is logged with what it shows), so the stream's own entry, written when
//! it opens, is all it needs. Streams count against the same limits as the alert streams (see
//! [`crate::watches`]) and end when the server stops.

use crate::guard::Outcome;
use crate::watches::StreamSlot;
use crate::{AppState, Problem};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Extension;
use futures_util::Stream;
use std::convert::Infallible;
use std::time::Duration;

use super::Session;

/// How often the queue's inputs are compared.
pub const POLL: Duration = Duration::from_secs(1);

/// What the queue depends on: the index's commit and the number of reviews.
fn inputs(state: &AppState) -> (u64, usize) {
    (state.index.generation(), state.reviews.reviewed().len())
}

struct Watching {
    state: AppState,
    seen: (u64, usize),
    closed: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    _slot: StreamSlot,
}

/// The queue's change events (analysts).
pub(crate) async fn get_queue_events(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
) -> Result<
    (
        Extension<Outcome>,
        Sse<impl Stream<Item = Result<Event, Infallible>>>,
    ),
    Problem,
> {
    let slot = state.alerts.slot(&session.caller.name).ok_or_else(|| {
        Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too many streams",
            "too many live pages are open for this user; close one",
        )
    })?;
    let watching = Watching {
        seen: inputs(&state),
        closed: Box::pin(state.alerts.hub.closed()),
        state,
        _slot: slot,
    };
    let stream = futures_util::stream::unfold(watching, |mut w| async move {
        loop {
            tokio::select! {
                () = &mut w.closed => return None,
                () = tokio::time::sleep(POLL) => {}
            }
            let now = inputs(&w.state);
            if now != w.seen {
                w.seen = now;
                // An event with no data is never dispatched by browsers: it carries the commit.
                let event = Event::default().event("changed").data(now.0.to_string());
                return Some((Ok::<_, Infallible>(event), w));
            }
        }
    });
    let outcome = Outcome {
        purpose: Some(session.purpose.clone()),
        ..Outcome::default()
    };
    Ok((
        Extension(outcome),
        Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))),
    ))
}
