//! The replies path on its own, on tokio's paused clock: order, priority, lanes,
//! the caps, the expiry sweep, and which taker is woken. A wake-up is observed by
//! waiting for `ready()` under a timeout, which the paused clock runs out at once.

use std::time::Duration;

use tokio::time::{advance, timeout, Instant};

use super::*;

const LIFE: Duration = Duration::from_secs(60);

fn outgoing(text: &str, code: bool, life: Duration) -> Outgoing {
    Outgoing {
        source: String::new(),
        to: "989121110080".into(),
        text: text.into(),
        label: if code { "code" } else { "notice" },
        code_id: code.then_some(1),
        ussd: None,
        deliver_by: Instant::now() + life,
        send_before: None,
        resume: None,
    }
}

/// A message carrying a code (the texts here are labels, not codes).
fn code(text: &str) -> Outgoing {
    outgoing(text, true, LIFE)
}

/// A notice: no code in it.
fn notice(text: &str) -> Outgoing {
    outgoing(text, false, LIFE)
}

fn peer(id: &str) -> Target {
    Target::Peer(id.into())
}

fn route(r: &str) -> Target {
    Target::Route(r.into())
}

fn replies() -> Replies {
    Replies::new(Routes::default(), Arc::new(crate::core::SystemClock))
}

/// A session taking from one target with `rank` and, for client mode, its lane.
fn taker(r: &Replies, target: &Target, rank: u32, lane: Option<usize>) -> Taker {
    r.taker(&[(target.clone(), (rank, lane.unwrap_or(0)), lane)])
}

/// A route with two client connections: `takers[i]` has rank `i` and lane `i`.
/// They join in `join` order, so a test can show that rank, not arrival, decides.
fn route_of_two(prefix: &str, join: [usize; 2]) -> (Replies, Target, [Taker; 2]) {
    let r = replies();
    let rt = route(prefix);
    let mut seats = [None, None];
    for i in join {
        seats[i] = Some(taker(&r, &rt, i as u32, Some(i)));
    }
    let takers = seats.map(|t| t.expect("both join"));
    (r, rt, takers)
}

/// The text of what `t` pulls next, if anything.
fn pull(t: &Taker) -> Option<String> {
    t.pull().map(|(_, m)| m.text)
}

fn pull_all(t: &Taker) -> Vec<String> {
    std::iter::from_fn(|| pull(t)).collect()
}

/// Whether `t` has been woken (consumes the wake-up).
async fn woken(t: &Taker) -> bool {
    timeout(Duration::from_secs(1), t.ready()).await.is_ok()
}

fn on_routes(r: &Replies) -> usize {
    r.lock().on_routes
}

#[tokio::test(start_paused = true)]
async fn messages_come_out_in_the_order_they_went_in() {
    let r = replies();
    let p = peer("bank");
    let t = taker(&r, &p, 0, None);
    for text in ["a", "b", "c"] {
        r.push(p.clone(), notice(text), None).unwrap();
    }
    assert_eq!(r.waiting(&p), 3);
    assert_eq!(pull(&t).as_deref(), Some("a"));
    // What a session could not finish goes back ahead of newer messages.
    r.push(p.clone(), notice("d"), None).unwrap();
    t.give_back(&p, vec![notice("a"), notice("a2")]);
    assert_eq!(pull_all(&t), ["a", "a2", "b", "c", "d"]);
    assert_eq!(r.waiting(&p), 0);
    assert!(r.holds(&p));
    drop(t);
    assert!(!r.holds(&p), "nobody takes from it any more");
}

#[tokio::test(start_paused = true)]
async fn a_push_wakes_a_waiting_taker_and_a_late_taker_finds_its_work() {
    let r = replies();
    let p = peer("bank");
    let t = taker(&r, &p, 0, None);
    assert!(!woken(&t).await, "nothing to do");
    r.push(p.clone(), notice("a"), None).unwrap();
    assert!(woken(&t).await, "a push wakes it");
    assert_eq!(pull(&t).as_deref(), Some("a"));
    assert!(!woken(&t).await);
    // Messages queued before a session binds wake it as it takes its seat.
    let q = peer("other");
    r.push(q.clone(), notice("early"), None).unwrap();
    let late = taker(&r, &q, 0, None);
    assert!(woken(&late).await);
    assert_eq!(pull(&late).as_deref(), Some("early"));
    assert!(!woken(&t).await, "another peer's work is not its");
}

/// One push wakes one session of a peer; a session that takes a message and
/// leaves more behind wakes another, so the queue drains in parallel without
/// waking every session for every message.
#[tokio::test(start_paused = true)]
async fn a_taker_that_leaves_work_behind_wakes_another() {
    let r = replies();
    let p = peer("bank");
    let t1 = taker(&r, &p, 0, None);
    let t2 = taker(&r, &p, 0, None);
    r.push_front(&p, vec![notice("a"), notice("b"), notice("c")]);
    let (w1, w2) = (woken(&t1).await, woken(&t2).await);
    assert!(w1 ^ w2, "exactly one is woken for one push: {w1} {w2}");
    let (first, second) = if w1 { (&t1, &t2) } else { (&t2, &t1) };
    assert_eq!(pull(first).as_deref(), Some("a"));
    assert!(woken(second).await, "work left behind wakes the other");
    assert!(!woken(first).await);
    assert_eq!(pull(second).as_deref(), Some("b"));
    assert!(woken(first).await, "and back");
    assert_eq!(pull(first).as_deref(), Some("c"));
    // The queue is empty: nobody is woken for nothing.
    assert!(!woken(second).await);
    assert!(!woken(first).await);
}

/// On a route only the first-ranked session takes (lower rank first); when it
/// leaves, the next one is woken and takes over what waits.
#[tokio::test(start_paused = true)]
async fn only_the_first_ranked_taker_of_a_route_pulls() {
    let (r, rt, [primary, backup]) = route_of_two("98912", [1, 0]);
    r.push(rt.clone(), code("m1"), None).unwrap();
    assert!(woken(&primary).await);
    assert!(!woken(&backup).await, "the backup is not woken");
    assert_eq!(pull(&backup), None, "nor may it take");
    assert_eq!(pull(&primary).as_deref(), Some("m1"));
    r.push(rt.clone(), code("m2"), None).unwrap();
    r.push(rt.clone(), code("m3"), None).unwrap();
    assert_eq!(on_routes(&r), 2);
    drop(primary);
    assert!(woken(&backup).await, "the next in rank takes over");
    assert_eq!(pull_all(&backup), ["m2", "m3"]);
    assert_eq!(on_routes(&r), 0);
}

/// A push that prefers connection `i` waits in that connection's lane while it
/// takes from the route: only it pulls the message, even when it is not first
/// by rank. Once it left, the next sweep moves its lane back to the route's
/// queue, where the first-ranked connection takes it.
#[tokio::test(start_paused = true)]
async fn a_lane_holds_messages_for_its_connection_until_it_leaves() {
    let (r, rt, [first, second]) = route_of_two("", [0, 1]);
    r.push(rt.clone(), code("for-1"), Some(1)).unwrap();
    assert!(woken(&second).await, "its lane's owner is woken");
    assert!(!woken(&first).await);
    assert_eq!(r.waiting_in_lane(1), 1);
    assert_eq!(pull(&first), None, "not in the route's queue");
    assert_eq!(pull(&second).as_deref(), Some("for-1"));

    // A connection that is not a taker of the route has no lane: the route's queue.
    r.push(rt.clone(), code("for-7"), Some(7)).unwrap();
    assert_eq!(r.waiting_in_lane(7), 0);
    assert_eq!(pull(&second), None);
    assert_eq!(pull(&first).as_deref(), Some("for-7"));

    r.push(rt.clone(), code("stranded"), Some(1)).unwrap();
    drop(second);
    assert_eq!(r.waiting_in_lane(1), 1, "left in the lane until the sweep");
    assert_eq!(pull(&first), None);
    let _ = woken(&first).await;
    assert!(r.sweep().is_empty(), "nothing expired");
    assert_eq!(r.waiting_in_lane(1), 0);
    assert_eq!(r.waiting(&rt), 1);
    assert!(woken(&first).await, "the sweep wakes the route's taker");
    assert_eq!(pull(&first).as_deref(), Some("stranded"));
    assert_eq!(on_routes(&r), 0);
}

/// A peer's queue holds PEER_CAPACITY; above PEER_HIGH_WATER only codes get in
/// (a flood of notices cannot take the room of codes). Other peers have their
/// own room.
#[tokio::test(start_paused = true)]
async fn a_peer_queue_is_capped_and_refuses_notices_above_high_water() {
    let r = replies();
    let p = peer("bank");
    for i in 0..PEER_HIGH_WATER {
        r.push(p.clone(), notice(&format!("n{i}")), None)
            .expect("below high water");
    }
    assert_eq!(
        r.push(p.clone(), notice("one too many"), None),
        Err(Refusal::Crowded)
    );
    for i in PEER_HIGH_WATER..PEER_CAPACITY {
        r.push(p.clone(), code(&format!("c{i}")), None)
            .expect("codes still get in");
    }
    assert_eq!(r.waiting(&p), PEER_CAPACITY);
    assert_eq!(r.push(p.clone(), code("full"), None), Err(Refusal::Full));
    assert_eq!(r.push(p.clone(), notice("full"), None), Err(Refusal::Full));
    assert_eq!(r.push(peer("other"), notice("x"), None), Ok(()));
    // Taking one makes room for one code, not for a notice.
    let t = taker(&r, &p, 0, None);
    assert_eq!(pull(&t).as_deref(), Some("n0"));
    assert_eq!(r.push(p.clone(), notice("n"), None), Err(Refusal::Crowded));
    assert_eq!(r.push(p.clone(), code("c"), None), Ok(()));
    assert_eq!(on_routes(&r), 0, "peer queues are not route queues");
}

/// All routes together hold ROUTE_CAPACITY, codes or not; peers are apart.
#[tokio::test(start_paused = true)]
async fn all_routes_together_are_capped() {
    let r = replies();
    let (a, b) = (route("98912"), route("98935"));
    for i in 0..ROUTE_CAPACITY {
        let target = if i % 2 == 0 { &a } else { &b };
        r.push(target.clone(), code(&format!("m{i}")), None)
            .expect("below the cap");
    }
    assert_eq!(on_routes(&r), ROUTE_CAPACITY);
    assert_eq!(r.push(route("98991"), code("x"), None), Err(Refusal::Full));
    assert_eq!(r.push(a.clone(), code("x"), None), Err(Refusal::Full));
    assert_eq!(r.push(peer("bank"), notice("x"), None), Ok(()));
    let t = taker(&r, &b, 0, None);
    assert_eq!(pull(&t).as_deref(), Some("m1"));
    assert_eq!(r.push(route("98991"), code("x"), None), Ok(()));
    assert_eq!(r.push(a, code("y"), None), Err(Refusal::Full));
}

/// One route holds at most its share of ROUTE_CAPACITY: a route whose messages
/// nobody takes (or a hostile SMSC's own) leaves the other routes their room.
#[tokio::test(start_paused = true)]
async fn one_route_cannot_take_the_room_of_the_others() {
    let r = Replies::new(
        Routes::of(&[&["98912"], &["98935"]]),
        Arc::new(crate::core::SystemClock),
    );
    let (a, b) = (route("98912"), route("98935"));
    for i in 0..ROUTE_CAPACITY / 2 {
        r.push(a.clone(), code(&format!("m{i}")), None)
            .expect("within its share");
    }
    assert_eq!(r.push(a.clone(), code("x"), None), Err(Refusal::Full));
    assert_eq!(r.push(b, code("y"), None), Ok(()), "the other route's room");
}

/// The sweep drops what can no longer be delivered in time (at its deadline
/// exactly) and hands it back, keeps the rest in order, frees the routes' room
/// and forgets targets nobody takes from once they are empty.
#[tokio::test(start_paused = true)]
async fn the_sweep_drops_and_returns_what_expired() {
    let r = replies();
    let (p, rt) = (peer("bank"), route("98912"));
    let short = Duration::from_secs(10);
    r.push(p.clone(), outgoing("p-short", true, short), None)
        .unwrap();
    r.push(p.clone(), outgoing("p-long", true, LIFE), None)
        .unwrap();
    r.push(rt.clone(), outgoing("r-short", true, short), None)
        .unwrap();
    advance(short - Duration::from_millis(1)).await;
    assert!(r.sweep().is_empty(), "not yet");
    assert_eq!((r.waiting(&p), r.waiting(&rt)), (2, 1));
    advance(Duration::from_millis(1)).await;
    let mut expired: Vec<(Target, String)> =
        r.sweep().into_iter().map(|(t, m)| (t, m.text)).collect();
    expired.sort_by(|x, y| x.1.cmp(&y.1));
    assert_eq!(
        expired,
        [
            (p.clone(), "p-short".to_owned()),
            (rt.clone(), "r-short".to_owned())
        ]
    );
    assert_eq!((r.waiting(&p), r.waiting(&rt)), (1, 0));
    assert_eq!(on_routes(&r), 0, "the route's room is freed");
    assert!(
        !r.lock().slots.contains_key(&rt),
        "an empty target nobody takes from is forgotten"
    );
    let t = taker(&r, &p, 0, None);
    assert_eq!(pull_all(&t), ["p-long"]);
    advance(LIFE).await;
    assert!(r.sweep().is_empty());
    assert!(r.lock().slots.contains_key(&p), "a held target stays");
}
