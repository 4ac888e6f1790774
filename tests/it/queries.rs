//! The tickets wing's read side and officer commands called directly, as a channel without
//! HTTP would call them (web console, SMS): the same refusals, as typed values, and the same
//! privacy as over the API. Each test runs on SQLite and, when `LAPOR_TEST_PG_URL` is set,
//! on PostgreSQL.

use lapor_node::auth::{NotAllowed, Officer};
use lapor_node::domain::visibility::Audience;
use lapor_node::domain::{Actor, AgencyCode, Change, Role};
use lapor_node::tickets::{
    Action, InboxQuery, OutOfScope, Problem, Step, Submitted, TicketError, Tickets,
};

use crate::helpers::{self, backends, monday_morning, verifier};
use crate::store::report;

fn officer(name: &str, role: Role, agency: Option<&str>) -> Officer {
    Officer {
        username: name.into(),
        role,
        agency: agency.map(|a| AgencyCode::parse(a).unwrap()),
    }
}

fn code(s: &Submitted) -> String {
    match &s.event.change {
        Change::Created(c) => c.tracking_code.to_string(),
        other => panic!("not a created event: {other:?}"),
    }
}

fn file(t: &Tickets, confidential: bool, anonymous: bool) -> Submitted {
    let mut r = report();
    r.privacy.confidential = confidential;
    r.privacy.anonymous = anonymous;
    t.submit(&r, &Actor::citizen(), monday_morning()).unwrap()
}

fn step<'a>(timeline: &'a [Step], kind: &str) -> &'a Step {
    timeline.iter().find(|s| s.kind == kind).unwrap()
}

#[test]
fn a_hidden_report_is_one_refusal_whatever_the_reason() {
    for db in backends() {
        let t = helpers::tickets(&db);
        let open = file(&t, false, false);
        let secret = file(&t, true, false);
        let found = t.find_report(&code(&open), None, false).unwrap();
        assert_eq!(found.audience, Audience::Public);
        let found = t
            .find_report(&code(&secret), Some(&secret.follow_up_token), false)
            .unwrap();
        assert_eq!(found.audience, Audience::Citizen);
        for (why, r) in [
            ("unknown code", t.find_report("31-AAAA-AAAA", None, false)),
            (
                "confidential without token",
                t.find_report(&code(&secret), None, false),
            ),
            ("wrong token", t.find_report(&code(&open), Some("x"), false)),
            (
                "another report's token",
                t.find_report(&code(&secret), Some(&open.follow_up_token), false),
            ),
        ] {
            assert!(
                matches!(r, Err(TicketError::ReportHidden)),
                "{}: {why}: {r:?}",
                db.name
            );
        }
        // A follow-up without its token is refused before the code is looked up.
        assert!(matches!(
            t.find_report("31-AAAA-AAAA", None, true),
            Err(TicketError::TokenRequired)
        ));
        assert!(matches!(
            t.find_report("not a code", Some("x"), true),
            Err(TicketError::BadTrackingCode(_))
        ));
    }
}

#[test]
fn each_audience_sees_its_part_of_the_timeline() {
    for db in backends() {
        let t = helpers::tickets(&db);
        let now = monday_morning();
        let s = file(&t, false, false);
        let id = s.event.ticket;
        t.act(
            &id,
            &verifier(),
            Action::Postpone {
                note: "cek lapangan dulu".into(),
            },
            now,
        )
        .unwrap();
        let (event, citizen) = t
            .follow_up(
                &code(&s),
                Some(&s.follow_up_token),
                Action::Reply {
                    message: "foto tambahan".into(),
                },
                now,
            )
            .unwrap();
        assert_eq!(event.change.kind(), "citizen_replied");
        let public = t.report(&code(&s), None).unwrap();
        let detail = t
            .ticket_detail(&officer("verif1", Role::Verifier, None), &id.to_string())
            .unwrap();

        let reply = |tl: &[Step]| step(tl, "citizen_replied").message.clone();
        let note = |tl: &[Step]| step(tl, "postponed").message.clone();
        let by = |tl: &[Step]| step(tl, "postponed").officer.clone();
        assert_eq!(reply(&public.timeline), None);
        assert_eq!(reply(&citizen.timeline).as_deref(), Some("foto tambahan"));
        assert_eq!(reply(&detail.timeline).as_deref(), Some("foto tambahan"));
        assert_eq!(note(&public.timeline), None);
        assert_eq!(note(&citizen.timeline), None);
        assert_eq!(note(&detail.timeline).as_deref(), Some("cek lapangan dulu"));
        assert_eq!(by(&citizen.timeline), None);
        assert_eq!(by(&detail.timeline).as_deref(), Some("verif1"));
        assert!(detail.timeline.iter().all(|s| s.verified), "{}", db.name);
    }
}

#[test]
fn officers_read_by_role_and_agency_and_the_reporter_by_the_rule() {
    for db in backends() {
        let t = helpers::tickets(&db);
        let now = monday_morning();
        let named = file(&t, false, false);
        let anonymous = file(&t, false, true);
        for s in [&named, &anonymous] {
            t.act(
                &s.event.ticket,
                &verifier(),
                Action::Dispatch {
                    agency: AgencyCode::parse("DKI-DISHUB").unwrap(),
                },
                now,
            )
            .unwrap();
        }
        let (named, anonymous) = (
            named.event.ticket.to_string(),
            anonymous.event.ticket.to_string(),
        );
        let verifier = officer("verif1", Role::Verifier, None);
        let dishub = officer("l.dishub", Role::Liaison, Some("DKI-DISHUB"));
        let dinkes = officer("l.dinkes", Role::Liaison, Some("DKI-DINKES"));
        let analyst = officer("an", Role::Analyst, None);

        let name = |o: &Officer, id: &str| {
            t.ticket_detail(o, id)
                .unwrap()
                .reporter
                .and_then(|c| c.name)
        };
        assert_eq!(name(&verifier, &named).as_deref(), Some("Budi"));
        assert_eq!(name(&dishub, &named).as_deref(), Some("Budi"));
        assert_eq!(name(&verifier, &anonymous), None);
        assert_eq!(name(&dishub, &anonymous), None);
        let d = t.ticket_detail(&dishub, &named).unwrap();
        assert_eq!(d.allowed_actions, ["start", "respond", "not_our_authority"]);

        assert!(matches!(
            t.ticket_detail(&dinkes, &named),
            Err(TicketError::OutOfScope(OutOfScope::OtherAgencyTicket))
        ));
        let refused = t.ticket_detail(&analyst, &named).unwrap_err();
        assert!(matches!(
            refused,
            TicketError::NotAllowed(NotAllowed {
                role: Role::Analyst,
                what: "read tickets"
            })
        ));
        assert_eq!(refused.to_string(), "role analyst may not read tickets");
        assert!(matches!(
            t.ticket_detail(&verifier, "0190a0c0-0000-7000-8000-000000000000"),
            Err(TicketError::NoSuchTicket(_))
        ));
        // An officer's action is refused exactly as reading would be.
        assert!(matches!(
            t.officer_action(&dinkes, &named, Action::Start, now),
            Err(TicketError::OutOfScope(OutOfScope::OtherAgencyTicket))
        ));
        t.officer_action(&dishub, &named, Action::Start, now)
            .unwrap();
    }
}

#[test]
fn the_inbox_pages_by_cursor_and_checks_its_filters() {
    for db in backends() {
        let t = helpers::tickets(&db);
        for _ in 0..3 {
            file(&t, false, false);
        }
        let verifier = officer("verif1", Role::Verifier, None);
        let first = t
            .inbox(
                &verifier,
                &InboxQuery {
                    limit: Some(2),
                    ..InboxQuery::default()
                },
            )
            .unwrap();
        assert_eq!(first.tickets.len(), 2);
        let rest = t
            .inbox(
                &verifier,
                &InboxQuery {
                    limit: Some(2),
                    cursor: first.next_cursor.clone(),
                    ..InboxQuery::default()
                },
            )
            .unwrap();
        assert_eq!((rest.tickets.len(), rest.next_cursor), (1, None));
        assert!(first.tickets[1].id > rest.tickets[0].id, "newest first");

        let refused = |o: &Officer, q: InboxQuery| t.inbox(o, &q).unwrap_err();
        let dishub = officer("l.dishub", Role::Liaison, Some("DKI-DISHUB"));
        assert!(matches!(
            refused(
                &dishub,
                InboxQuery {
                    agency: Some("DKI-DINKES".into()),
                    ..InboxQuery::default()
                }
            ),
            TicketError::OutOfScope(OutOfScope::OtherAgencyList)
        ));
        assert_eq!(
            t.inbox(&dishub, &InboxQuery::default())
                .unwrap()
                .tickets
                .len(),
            0,
            "nothing is dispatched to the liaison's agency yet"
        );
        assert!(matches!(
            refused(
                &verifier,
                InboxQuery {
                    limit: Some(101),
                    ..InboxQuery::default()
                }
            ),
            TicketError::Invalid {
                field: "limit",
                problem: Problem::OutOfRange { min: 1, max: 100 }
            }
        ));
        assert!(matches!(
            refused(
                &verifier,
                InboxQuery {
                    status: Some("lost".into()),
                    ..InboxQuery::default()
                }
            ),
            TicketError::Invalid {
                field: "status",
                problem: Problem::Unknown { .. }
            }
        ));
        assert!(matches!(
            refused(
                &verifier,
                InboxQuery {
                    cursor: Some("x".into()),
                    ..InboxQuery::default()
                }
            ),
            TicketError::Invalid {
                field: "cursor",
                problem: Problem::NotACursor
            }
        ));
    }
}

#[test]
fn statistics_are_for_analysts_and_admins() {
    for db in backends() {
        let t = helpers::tickets(&db);
        for _ in 0..2 {
            file(&t, false, false);
        }
        let stats = t.statistics(&officer("an", Role::Analyst, None)).unwrap();
        assert_eq!(stats.total, 2);
        assert_eq!(stats.by_status, [("submitted".to_owned(), 2)]);
        assert!(stats.sla.iter().all(|s| s.on_time_permille == 1000));
        assert!(matches!(
            t.statistics(&officer("verif1", Role::Verifier, None)),
            Err(TicketError::NotAllowed(_))
        ));
    }
}
