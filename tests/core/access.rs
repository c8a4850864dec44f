//! Console sessions: an idle limit and an absolute one, on a moved clock.

use otpgw::core::{SESSION_IDLE_MS, SESSION_MAX_MS};
use otpgw_rules::vocab::Role;

use crate::support::{core, ms, Harness, START};

async fn alive(h: &Harness, id: &str) -> bool {
    h.core.access.session(id).await.unwrap().is_some()
}

/// Signs in with a new key of `role`: the key, for signing in again, and the session.
async fn signed_in(h: &Harness, role: Role) -> (String, String) {
    let (_, key) = h.key(role).await;
    let session = h.core.access.sign_in(&key, None).await.unwrap().unwrap();
    (key, session.session_id)
}

/// A session lives while it is used at least every `SESSION_IDLE_MS`, and ends
/// after `SESSION_IDLE_MS` without a request; each request restarts that wait.
#[tokio::test]
async fn a_console_session_ends_when_left_idle() {
    let h = core().await;
    let (_, session) = signed_in(&h, Role::Helpdesk).await;
    assert!(alive(&h, &session).await);

    h.advance(ms(SESSION_IDLE_MS - 1));
    assert!(alive(&h, &session).await, "just in time");
    h.advance(ms(SESSION_IDLE_MS - 1));
    assert!(alive(&h, &session).await, "the last use counts");
    h.advance(ms(SESSION_IDLE_MS));
    assert!(!alive(&h, &session).await, "idle too long");
    // Ended for good: using it again does not revive it.
    assert!(!alive(&h, &session).await);
}

/// However busy, a session ends `SESSION_MAX_MS` after sign-in.
#[tokio::test]
async fn a_console_session_ends_at_its_absolute_limit() {
    let h = core().await;
    let (key, session) = signed_in(&h, Role::Admin).await;
    let step = SESSION_IDLE_MS / 2;
    while h.core.now_ms() + step < START + SESSION_MAX_MS {
        h.advance(ms(step));
        assert!(alive(&h, &session).await, "used every 15 minutes");
    }
    h.advance(ms(START + SESSION_MAX_MS - 1 - h.core.now_ms()));
    assert!(alive(&h, &session).await);
    h.advance(ms(1));
    assert!(!alive(&h, &session).await, "past 8 hours");
    // A new sign-in with the same key opens a new session.
    let again = h.core.access.sign_in(&key, None).await.unwrap().unwrap();
    assert!(alive(&h, &again.session_id).await);
}
