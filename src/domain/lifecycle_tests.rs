//! The ticket lifecycle against an explicit table: every status × every change kind, the roles
//! and agencies allowed to act, the value and time rules, and the fold of an event list in any
//! order.

use std::collections::HashMap;

use super::event::{ArchiveReason, CloseReason, SlaStep};
use super::fold::fold;
use super::{
    Actor, AgencyCode, Category, Change, Channel, Created, Event, EventId, NodeId, Privacy,
    RegionCode, ReportKind, Role, Status, TicketId, TicketState, Timestamp, TrackingCode,
    TransitionError,
};
use Role as R;
use Status as S;

type Outcome = Result<TicketState, TransitionError>;

const T0: i64 = 1_790_000_000_000;
const H: i64 = 3_600_000;
const D: i64 = 24 * H;
const ORIGIN: &str = "prov-31.lapor.test";
const AGENCY_NODE: &str = "pusat.lapor.test";
const AGENCY: &str = "DKI-DISHUB";
#[rustfmt::skip]
const ROLES: [Role; 6] = [R::Citizen, R::Verifier, R::Liaison, R::Admin, R::Analyst, R::System];

/// The 13 change kinds after `created` (the columns of [`TABLE`]) and the one role allowed to
/// make each.
#[rustfmt::skip]
const KINDS: [(&str, Role); 13] = [
    ("verified", R::Verifier), ("dispatched", R::Verifier), ("postponed", R::Verifier),
    ("archived", R::Verifier), ("not_our_authority", R::Verifier),
    ("started", R::Liaison), ("responded", R::Liaison), ("resolved", R::Liaison),
    ("citizen_replied", R::Citizen), ("rated", R::Citizen), ("reopened", R::Citizen),
    ("closed", R::System), ("sla_breached", R::System),
];

/// What applying a change is expected to do.
#[derive(Debug, Clone, Copy)]
enum Exp {
    /// Accepted; the ticket moves to this status.
    To(Status),
    /// Accepted; the status stays.
    K,
    /// `IllegalStatus`.
    X,
    /// `WrongAgency`: the ticket has no agency (yet, or any more).
    W,
    /// `Invalid` with this message.
    I(&'static str),
}
use Exp::{K, W, X};
const VER: Exp = Exp::To(S::Verified);
const DIS: Exp = Exp::To(S::Dispatched);
const PST: Exp = Exp::To(S::Postponed);
const ARC: Exp = Exp::To(S::Archived);
const NOA: Exp = Exp::To(S::NotOurAuthority);
const INP: Exp = Exp::To(S::InProgress);
const RSP: Exp = Exp::To(S::Responded);
const RES: Exp = Exp::To(S::Resolved);
const CLO: Exp = Exp::To(S::Closed);
const REO: Exp = Exp::To(S::Reopened);
const NOT_YET: &str = "the deadline has not passed";
const NP: Exp = Exp::I(NOT_YET);

/// A closed ticket in the table was closed by its rating: it cannot be rated twice.
const RTD: Exp = Exp::I("the report is already rated");

/// The lifecycle. Each change is tried by its allowed role (a liaison of [`AGENCY`]) at a time
/// that meets its time rule ([`when`]); `sla_breached` is for the overall step.
#[rustfmt::skip]
const TABLE: [(Status, [Exp; 13]); 11] = [
    //                   ver  dis  pst  arc  noa  sta  rsp  res  cit  rat  reo  clo  sla
    (S::Submitted,       [VER, DIS, PST, ARC, NOA, W,   W,   W,   K,   X,   X,   X,   K ]),
    (S::Verified,        [X,   DIS, PST, ARC, NOA, W,   W,   W,   K,   X,   X,   X,   K ]),
    (S::Dispatched,      [X,   X,   X,   X,   NOA, INP, RSP, X,   K,   X,   X,   X,   K ]),
    (S::InProgress,      [X,   X,   X,   X,   NOA, X,   RSP, RES, K,   X,   X,   X,   K ]),
    (S::Responded,       [X,   X,   X,   X,   X,   X,   X,   RES, INP, X,   X,   CLO, K ]),
    (S::Resolved,        [X,   X,   X,   X,   X,   X,   X,   X,   X,   CLO, REO, CLO, NP]),
    (S::Closed,          [X,   X,   X,   X,   X,   X,   X,   X,   X,   RTD, REO, X,   NP]),
    (S::Postponed,       [VER, DIS, X,   ARC, NOA, W,   W,   W,   K,   X,   X,   X,   K ]),
    (S::Archived,        [X,   X,   X,   X,   X,   W,   W,   W,   X,   X,   X,   X,   NP]),
    (S::NotOurAuthority, [X,   DIS, X,   ARC, X,   W,   W,   W,   K,   X,   X,   X,   K ]),
    (S::Reopened,        [X,   DIS, X,   X,   NOA, INP, RSP, RES, K,   X,   X,   X,   K ]),
];

fn at(offset_ms: i64) -> Timestamp {
    Timestamp::from_millis(T0 + offset_ms)
}

fn node(s: &str) -> NodeId {
    NodeId::parse(s).unwrap()
}

fn code(s: &str) -> AgencyCode {
    AgencyCode::parse(s).unwrap()
}

fn staff(role: Role) -> Actor {
    let officer = Some(format!("{role:?}-1").to_lowercase());
    Actor {
        role,
        officer,
        agency: None,
    }
}

fn verifier() -> Actor {
    staff(R::Verifier)
}

fn liaison(agency: &str) -> Actor {
    Actor {
        agency: Some(code(agency)),
        ..staff(R::Liaison)
    }
}

fn invalid(why: &'static str) -> Outcome {
    Err(TransitionError::Invalid(why))
}

fn forbidden(change: &'static str, role: Role) -> Outcome {
    Err(TransitionError::Forbidden { change, role })
}

fn wrong_agency(actor: &str, ticket: &str) -> Outcome {
    let (actor, ticket) = (actor.to_owned(), ticket.to_owned());
    Err(TransitionError::WrongAgency { actor, ticket })
}

fn report() -> Created {
    Created {
        tracking_code: TrackingCode::parse("31-K7QX-9F2M").unwrap(),
        report_kind: ReportKind::Pengaduan,
        title: "Lampu lalu lintas mati".to_owned(),
        text: "Lampu di simpang Senen mati sejak Senin.".to_owned(),
        category: Category::parse("transportasi").unwrap(),
        region: RegionCode::parse("3171").unwrap(),
        suggested_agency: Some(code(AGENCY)),
        channel: Channel::Web,
        privacy: Privacy::default(),
        verify_due: at(3 * D),
        overall_due: at(60 * D),
    }
}

fn created() -> Change {
    Change::Created(Box::new(report()))
}

/// A change of `kind` with realistic fields and deadlines.
#[rustfmt::skip]
fn change(kind: &str) -> Change {
    let text = |s: &str| s.to_owned();
    match kind {
        "verified" => Change::Verified {},
        "dispatched" => Change::Dispatched {
            agency: code(AGENCY), handler: node(AGENCY_NODE), response_due: at(7 * D),
        },
        "postponed" => Change::Postponed { note: text("menunggu foto") },
        "archived" => Change::Archived { reason: ArchiveReason::Duplicate },
        "not_our_authority" => Change::NotOurAuthority { note: text("jalan nasional") },
        "started" => Change::Started {},
        "responded" => Change::Responded {
            message: text("Petugas dikirim."), auto_close_due: at(12 * D),
        },
        "resolved" => Change::Resolved {
            message: text("Sudah diperbaiki."), auto_close_due: at(13 * D), reopen_until: at(30 * D),
        },
        "citizen_replied" => Change::CitizenReplied {
            message: text("Belum menyala."), response_due: Some(at(10 * D)),
        },
        "rated" => Change::Rated { rating: 4 },
        "reopened" => Change::Reopened { message: text("Mati lagi."), response_due: at(11 * D) },
        "closed" => Change::Closed { reason: CloseReason::NoReply },
        "sla_breached" => Change::SlaBreached { step: SlaStep::Overall },
        other => panic!("unknown kind {other}"),
    }
}

/// An actor in `role` (a liaison of [`AGENCY`]).
fn actor_in(role: Role) -> Actor {
    match role {
        R::Citizen => Actor::citizen(),
        R::Liaison => liaison(AGENCY),
        R::System => Actor::system(),
        _ => staff(role),
    }
}

/// An actor of the role allowed to make `kind`.
fn actor(kind: &str) -> Actor {
    let allowed = KINDS.iter().find(|(k, _)| *k == kind).map(|(_, r)| *r);
    actor_in(allowed.unwrap_or_else(|| panic!("unknown kind {kind}")))
}

/// A time that meets the time rule of `kind` for every state [`state_in`] builds.
fn when(kind: &str) -> Timestamp {
    match kind {
        "closed" => at(20 * D),
        "sla_breached" => at(61 * D),
        _ => at(5 * D),
    }
}

/// The legal changes that lead from a new ticket to `status`.
fn path(status: Status) -> std::str::SplitWhitespace<'static> {
    match status {
        S::Submitted => "",
        S::Verified => "verified",
        S::Dispatched => "verified dispatched",
        S::InProgress => "verified dispatched started",
        S::Responded => "verified dispatched started responded",
        S::Resolved => "verified dispatched started responded resolved",
        S::Closed => "verified dispatched started responded resolved rated",
        S::Postponed => "postponed",
        S::Archived => "archived",
        S::NotOurAuthority => "verified dispatched not_our_authority",
        S::Reopened => "verified dispatched started resolved reopened",
    }
    .split_whitespace()
}

/// A ticket in `status`, reached from `created` by real changes, one hour apart.
fn state_in(status: Status) -> TicketState {
    let mut state =
        TicketState::create(&node(ORIGIN), &Actor::citizen(), &created(), at(0)).unwrap();
    for (i, kind) in (1..).zip(path(status)) {
        state = state.apply(&actor(kind), &change(kind), at(i * H)).unwrap();
    }
    assert_eq!(state.status, status);
    state
}

/// `apply`, checking that the original is untouched and that a success counts one more event.
fn try_apply(state: &TicketState, actor: &Actor, change: &Change, at: Timestamp) -> Outcome {
    let before = state.clone();
    let result = state.apply(actor, change, at);
    assert_eq!(*state, before, "apply modified its input");
    if let Ok(next) = &result {
        assert_eq!(next.events, state.events + 1);
        assert_eq!(next.updated_at, at.max(state.updated_at));
    }
    result
}

#[test]
fn every_status_and_change_follows_the_table() {
    let statuses: Vec<Status> = TABLE.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, Status::ALL);
    for (status, row) in TABLE {
        let state = state_in(status);
        for ((kind, _), exp) in KINDS.into_iter().zip(row) {
            let got = try_apply(&state, &actor(kind), &change(kind), when(kind));
            let ctx = format!("{kind} on {status:?}: expected {exp:?}, got {got:?}");
            match (exp, got) {
                (Exp::To(to), Ok(next)) => assert_eq!(next.status, to, "{ctx}"),
                (K, Ok(next)) => assert_eq!(next.status, status, "{ctx}"),
                (X, Err(TransitionError::IllegalStatus { change, status: st })) => {
                    assert_eq!((change, st), (kind, status.as_str()), "{ctx}");
                }
                (W, got @ Err(_)) => assert_eq!(got, wrong_agency(AGENCY, "no agency"), "{ctx}"),
                (Exp::I(why), got @ Err(_)) => assert_eq!(got, invalid(why), "{ctx}"),
                _ => panic!("{ctx}"),
            }
        }
    }
}

#[test]
fn other_roles_are_forbidden_and_liaisons_keep_to_their_agency() {
    let state = state_in(S::Dispatched);
    for (kind, allowed) in KINDS {
        for role in ROLES {
            let got = try_apply(&state, &actor_in(role), &change(kind), when(kind));
            // The agency's liaison may also return a ticket as not its authority.
            let also = kind == "not_our_authority" && role == R::Liaison;
            if role == allowed || also {
                let refused = matches!(got, Err(TransitionError::Forbidden { .. }));
                assert!(!refused, "{kind} by {role:?}");
            } else {
                assert_eq!(got, forbidden(kind, role), "{kind} by {role:?}");
            }
        }
        if allowed == R::Liaison || kind == "not_our_authority" {
            let other = try_apply(&state, &liaison("JABAR-DISHUB"), &change(kind), when(kind));
            assert_eq!(other, wrong_agency("JABAR-DISHUB", AGENCY), "{kind}");
            let none = try_apply(&state, &staff(R::Liaison), &change(kind), when(kind));
            assert_eq!(none, wrong_agency("no agency", AGENCY), "{kind}");
        }
    }
}

#[test]
fn rating_in_range_and_a_reply_to_a_response_with_a_deadline() {
    let state = state_in(S::Resolved);
    let citizen = Actor::citizen();
    let rate = |rating| try_apply(&state, &citizen, &Change::Rated { rating }, at(5 * D));
    let out_of_range = invalid("rating must be between 1 and 5");
    assert_eq!((rate(0), rate(6)), (out_of_range.clone(), out_of_range));
    for good in [1, 5] {
        let next = rate(good).unwrap();
        assert_eq!((next.status, next.rating), (S::Closed, Some(good)));
    }

    let state = state_in(S::Responded);
    let message = "Belum menyala.".to_owned();
    let reply = |response_due| Change::CitizenReplied {
        message: message.clone(),
        response_due,
    };
    let got = try_apply(&state, &citizen, &reply(None), at(5 * D));
    let why = "a reply to a response must carry the agency's new deadline";
    assert_eq!(got, invalid(why));
    let due = Some(at(10 * D));
    // Written on a node whose clock is behind: `updated_at` does not go back.
    let next = try_apply(&state, &citizen, &reply(due), at(H)).unwrap();
    assert_eq!((next.status, next.response_due), (S::InProgress, due));
    assert_eq!(
        (next.auto_close_due, next.updated_at),
        (None, state.updated_at)
    );
}

#[test]
fn reopen_within_the_window_and_auto_close_not_before_its_time() {
    for status in [S::Resolved, S::Closed] {
        let state = state_in(status);
        let until = state.reopen_until.unwrap();
        let reopen = |t| try_apply(&state, &Actor::citizen(), &change("reopened"), t);
        let late = reopen(until.plus_millis(1));
        assert_eq!(late, invalid("the reopen window has passed"), "{status:?}");
        let next = reopen(until).unwrap();
        assert_eq!(next.status, S::Reopened);
        assert_eq!(next.response_due, Some(at(11 * D)));
        assert_eq!((next.reopen_until, next.auto_close_due), (None, None));
    }
    for status in [S::Responded, S::Resolved] {
        let state = state_in(status);
        let due = state.auto_close_due.unwrap();
        let close = |t| try_apply(&state, &Actor::system(), &change("closed"), t);
        let early = close(due.plus_millis(-1));
        assert_eq!(early, invalid("the auto-close time has not come"));
        for t in [due, due.plus_millis(D)] {
            let next = close(t).unwrap();
            assert_eq!((next.status, next.auto_close_due), (S::Closed, None));
        }
    }
}

#[test]
fn sla_breach_only_after_the_deadline_and_once() {
    fn breach(s: &TicketState, step: SlaStep, t: Timestamp) -> Outcome {
        try_apply(s, &Actor::system(), &Change::SlaBreached { step }, t)
    }
    let cases = [
        (S::Submitted, SlaStep::VerifyDispatch, at(3 * D)),
        (S::Dispatched, SlaStep::Response, at(7 * D)),
        (S::Reopened, SlaStep::Response, at(11 * D)),
        (S::InProgress, SlaStep::Overall, at(60 * D)),
    ];
    for (status, step, due) in cases {
        let state = state_in(status);
        assert_eq!(state.breach_due(step), Some(due), "{step:?}");
        let early = breach(&state, step, due.plus_millis(-1));
        assert_eq!(early, invalid(NOT_YET), "{step:?}");
        let next = breach(&state, step, due.plus_millis(1)).unwrap();
        assert_eq!((next.breaches, next.status), (step.bit(), status));
        let again = breach(&next, step, due.plus_millis(2));
        assert_eq!(
            again,
            invalid("this breach is already recorded"),
            "{step:?}"
        );
    }
    // A step that is not running has no deadline to breach.
    let late = breach(&state_in(S::Submitted), SlaStep::Response, at(90 * D));
    assert_eq!(late, invalid(NOT_YET));
}

#[test]
fn created_starts_a_ticket_and_only_that() {
    let again = TransitionError::Existence("the ticket already exists");
    for status in Status::ALL {
        let got = try_apply(&state_in(status), &Actor::citizen(), &created(), at(5 * D));
        assert_eq!(got, Err(again.clone()), "{status:?}");
    }
    let origin = node(ORIGIN);
    let got = TicketState::create(&origin, &verifier(), &change("verified"), at(0));
    let first = TransitionError::Existence("the first event of a ticket must be `created`");
    assert_eq!(got, Err(first));
    for role in [R::Liaison, R::Admin, R::Analyst, R::System] {
        let got = TicketState::create(&origin, &actor_in(role), &created(), at(0));
        assert_eq!(got, forbidden("created", role));
    }
    let s = TicketState::create(&origin, &verifier(), &created(), at(0)).unwrap();
    assert_eq!((s.status, s.events, &s.handler), (S::Submitted, 1, &origin));
}

/// Events from `(offset, actor, change)`, each with the previous one as its parent. Liaisons
/// write on the agency's node, everyone else on the origin node.
fn events(script: &[(i64, Actor, Change)]) -> Vec<Event> {
    let ticket = TicketId::new();
    let mut chains: HashMap<NodeId, (u64, EventId)> = HashMap::new();
    let mut out: Vec<Event> = Vec::new();
    for (i, (offset, actor, change)) in script.iter().enumerate() {
        let liaison = actor.role == R::Liaison;
        let origin = node(if liaison { AGENCY_NODE } else { ORIGIN });
        let id = EventId::of_bytes(format!("lifecycle-test-event-{i}").as_bytes());
        let last = chains.get(&origin);
        let (seq, prev) = last.map_or((1, None), |(n, p)| (n + 1, Some(p.clone())));
        chains.insert(origin.clone(), (seq, id.clone()));
        let parents = out.last().map(|e| vec![e.id.clone()]).unwrap_or_default();
        let (at, actor, change, pii) = (at(*offset), actor.clone(), change.clone(), None);
        out.push(Event {
            id,
            origin,
            seq,
            prev,
            ticket,
            parents,
            at,
            actor,
            change,
            pii,
        });
    }
    out
}

/// The list as given, reversed, rotated both ways, and odd positions before even ones.
fn permutations(list: &[Event]) -> Vec<Vec<Event>> {
    let mut reversed = list.to_vec();
    reversed.reverse();
    let (mut left, mut right) = (list.to_vec(), list.to_vec());
    left.rotate_left(3);
    right.rotate_right(2);
    let odd = list.iter().skip(1).step_by(2);
    let odd_first = odd.chain(list.iter().step_by(2)).cloned().collect();
    vec![list.to_vec(), reversed, left, right, odd_first]
}

fn lifecycle_script() -> Vec<(i64, Actor, Change)> {
    let steps = [
        (H, "verified"),
        (2 * H, "dispatched"),
        (D, "started"),
        (2 * D, "responded"),
        (3 * D, "citizen_replied"),
        (4 * D, "responded"),
        (5 * D, "resolved"),
        (6 * D, "rated"),
    ];
    let mut script = vec![(0, Actor::citizen(), created())];
    script.extend(steps.map(|(t, kind)| (t, actor(kind), change(kind))));
    script
}

#[test]
fn fold_gives_the_same_state_in_any_order() {
    let list = events(&lifecycle_script());
    let folded = fold(&list);
    let expected = TicketState {
        report: report(),
        origin: node(ORIGIN),
        handler: node(AGENCY_NODE),
        status: S::Closed,
        agency: Some(code(AGENCY)),
        archive_reason: None,
        rating: Some(4),
        created_at: at(0),
        updated_at: at(6 * D),
        response_due: None,
        auto_close_due: None,
        reopen_until: Some(at(30 * D)),
        breaches: 0,
        events: 9,
        erased: false,
        // The first answer on day 2, before its deadline (day 7); resolved on day 5.
        milestones: crate::domain::milestones::Milestones {
            verified_at: Some(at(H)),
            dispatched_at: Some(at(2 * H)),
            responded_at: Some(at(2 * D)),
            responded_on_time: Some(true),
            resolved_at: Some(at(5 * D)),
            dispatches: vec![crate::domain::milestones::Dispatch {
                handler: node(AGENCY_NODE),
                agency: code(AGENCY),
                at: at(2 * H),
                first_action: Some(at(D)),
                returned: false,
            }],
        },
    };
    assert_eq!(folded.state, Some(expected));
    assert_eq!(folded.head.as_ref(), list.last().map(|e| &e.id));
    assert_eq!(folded.rejected, vec![]);
    for (n, shuffled) in permutations(&list).iter().enumerate() {
        assert_eq!(fold(shuffled), folded, "permutation {n}");
    }
}

#[test]
fn fold_rejects_events_out_of_authority() {
    let mut script = lifecycle_script();
    let clean = fold(&events(&script)).state.unwrap();
    // The citizen "verifies" their own report half an hour after filing it.
    script.insert(1, (H / 2, Actor::citizen(), change("verified")));
    let list = events(&script);
    let rogue = list[1].id.clone();
    let reason = forbidden("verified", R::Citizen).unwrap_err();
    for (n, shuffled) in permutations(&list).iter().enumerate() {
        let folded = fold(shuffled);
        let rejected = vec![(rogue.clone(), reason.clone())];
        assert_eq!(folded.rejected, rejected, "permutation {n}");
        assert_eq!(folded.state.as_ref(), Some(&clean), "permutation {n}");
        assert_eq!(folded.head.as_ref(), list.last().map(|e| &e.id));
    }
}

#[test]
fn every_state_comes_back_whole_from_its_projection_row() {
    use crate::tickets::model::TicketRow;
    let id = TicketId::new();
    let head = EventId::of_bytes(b"projection-row-test");
    let mut states: Vec<TicketState> = S::ALL.iter().map(|s| state_in(*s)).collect();
    // Members with no column of their own, and the small numbers' extremes.
    let mut odd = state_in(S::Closed);
    odd.erased = true;
    odd.report.suggested_agency = None;
    odd.report.privacy = Privacy {
        anonymous: true,
        confidential: true,
    };
    odd.report.channel = Channel::Sms;
    odd.breaches = u8::MAX;
    odd.rating = Some(5);
    states.push(odd);
    for state in states {
        let row = TicketRow::from_state(&id, &state, &head).unwrap();
        assert!(
            !row.state.contains(&state.report.text),
            "the report's text is stored once, in its column: {}",
            row.state
        );
        assert_eq!(row.state().unwrap(), state, "{:?}", state.status);
    }
}

#[test]
fn a_projection_row_written_with_the_whole_state_still_reads() {
    use crate::tickets::model::TicketRow;
    let id = TicketId::new();
    let head = EventId::of_bytes(b"projection-row-test-old");
    let mut state = state_in(S::Archived);
    state.erased = true;
    let mut row = TicketRow::from_state(&id, &state, &head).unwrap();
    // How rows were written before the state column was narrowed.
    row.state = serde_json::to_string(&state).unwrap();
    assert_eq!(row.state().unwrap(), state);
    // A column that no longer parses is an error, not a default.
    row.status = "lost".into();
    assert!(row.state().is_err());
}

/// `Status::next_actions` (what a 409 and the officers' table name) agrees with the lifecycle:
/// an action is listed for a role exactly when `apply` accepts it from that role.
#[test]
fn next_actions_name_exactly_what_the_lifecycle_accepts() {
    // API action name of each change kind people make.
    #[rustfmt::skip]
    let actions = [
        ("verified", "verify"), ("dispatched", "dispatch"), ("postponed", "postpone"),
        ("archived", "archive"), ("not_our_authority", "not_our_authority"),
        ("started", "start"), ("responded", "respond"), ("resolved", "resolve"),
        ("citizen_replied", "reply"), ("rated", "rate"), ("reopened", "reopen"),
    ];
    for status in Status::ALL {
        // A closed ticket that closed without a rating (the auto-close) may be rated.
        let state = if status == S::Closed {
            let s = state_in(S::Resolved);
            s.apply(&Actor::system(), &change("closed"), at(20 * D))
                .unwrap()
        } else {
            state_in(status)
        };
        for (kind, action) in actions {
            for role in [R::Citizen, R::Verifier, R::Liaison] {
                let accepted = state
                    .apply(&actor_in(role), &change(kind), when(kind).max(at(21 * D)))
                    .is_ok();
                let listed = status.next_actions().contains(&(action, role));
                assert_eq!(accepted, listed, "{action} by {role:?} on {status:?}");
            }
        }
    }
}

#[test]
fn only_the_agency_steps_escalate_to_the_verifiers_while_the_agency_holds_the_ticket() {
    use super::escalation::to_verifiers;
    for status in Status::ALL {
        let state = state_in(status);
        let holds = matches!(status, S::Dispatched | S::InProgress | S::Reopened);
        assert_eq!(
            to_verifiers(&state, SlaStep::VerifyDispatch),
            None,
            "{status:?}"
        );
        for step in [SlaStep::Response, SlaStep::Overall] {
            let got = to_verifiers(&state, step);
            assert_eq!(got.is_some(), holds, "{step:?} on {status:?}: {got:?}");
            if let Some(x) = got {
                assert_eq!(Some(&x.agency), state.agency.as_ref());
                assert_eq!(Some(x.due), state.breach_due(step));
            }
        }
    }
}
