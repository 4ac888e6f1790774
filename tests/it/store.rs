//! The node core against real databases: migrations, the lifecycle through the ticket
//! commands, atomicity, the SLA sweep and the projection rebuild. Each test runs on SQLite and,
//! when `LAPOR_TEST_PG_URL` is set, on PostgreSQL.

use diesel::RunQueryDsl;
use lapor_node::db::{migrations, schema};
use lapor_node::domain::event::SlaStep;
use lapor_node::domain::{
    Actor, AgencyCode, Category, Channel, Privacy, RegionCode, ReportKind, Status, TicketId,
};
use lapor_node::event_log::store as log;
use lapor_node::tickets::store as ticket_store;
use lapor_node::tickets::{Action, Contact, NewReport, TicketError, Tickets};
use proptest::prelude::*;

use crate::helpers::{self, DAY_MS, backends, liaison, monday_morning, verifier};

pub fn report() -> NewReport {
    NewReport {
        kind: ReportKind::Pengaduan,
        title: "Jalan berlubang di Jl. Sudirman".into(),
        text: "Lubang besar di lajur kiri sejak dua minggu, membahayakan pengendara motor.".into(),
        category: Category::parse("infrastruktur").unwrap(),
        region: RegionCode::parse("3171").unwrap(),
        agency: None,
        channel: Channel::Web,
        privacy: Privacy::default(),
        contact: Some(Contact {
            name: Some("Budi".into()),
            phone: Some("+6281234567890".into()),
            email: None,
        }),
    }
}

fn counts(t: &Tickets) -> (i64, usize) {
    let mut c = t.db().read().unwrap();
    (
        log::count(&mut c).unwrap(),
        ticket_store::all(&mut c).unwrap().len(),
    )
}

fn status(t: &Tickets, id: &TicketId) -> Status {
    let mut c = t.db().read().unwrap();
    ticket_store::by_id(&mut c, id)
        .unwrap()
        .unwrap()
        .state()
        .unwrap()
        .status
}

#[test]
fn migrations_run_up_and_down_on_every_backend() {
    for db in backends() {
        let database = helpers::open(&db);
        let applied = database
            .with_writer(migrations::run_pending)
            .unwrap()
            .unwrap();
        assert!(!applied.is_empty(), "{}: nothing applied", db.name);
        assert!(
            database
                .with_writer(migrations::all_applied)
                .unwrap()
                .unwrap()
        );
        // A second run applies nothing.
        assert!(
            database
                .with_writer(migrations::run_pending)
                .unwrap()
                .unwrap()
                .is_empty()
        );
        let reverted = database
            .with_writer(migrations::revert_all)
            .unwrap()
            .unwrap();
        assert_eq!(reverted.len(), applied.len(), "{}", db.name);
        let gone = database
            .with_writer(|c| diesel::sql_query("SELECT count(*) FROM events").execute(c))
            .unwrap();
        assert!(
            gone.is_err(),
            "{}: events table still exists after revert",
            db.name
        );
        assert!(
            !database
                .with_writer(migrations::all_applied)
                .unwrap()
                .unwrap()
        );
        assert_eq!(
            database
                .with_writer(migrations::run_pending)
                .unwrap()
                .unwrap()
                .len(),
            applied.len()
        );
    }
}

#[test]
fn a_report_goes_through_the_whole_lifecycle() {
    for db in backends() {
        let t = helpers::tickets(&db);
        let mut now = monday_morning();
        let created = t.submit(&report(), &Actor::citizen(), now).unwrap().event;
        let id = created.ticket;
        assert_eq!(created.seq, 1);
        assert!(created.prev.is_none());
        let steps: Vec<(Actor, Action, Status)> = vec![
            (verifier(), Action::Verify, Status::Verified),
            (
                verifier(),
                Action::Dispatch {
                    agency: AgencyCode::parse("DKI-DISHUB").unwrap(),
                },
                Status::Dispatched,
            ),
            (liaison("DKI-DISHUB"), Action::Start, Status::InProgress),
            (
                liaison("DKI-DISHUB"),
                Action::Respond {
                    message: "Akan ditambal minggu ini.".into(),
                },
                Status::Responded,
            ),
            (
                Actor::citizen(),
                Action::Reply {
                    message: "Kapan tepatnya?".into(),
                },
                Status::InProgress,
            ),
            (
                liaison("DKI-DISHUB"),
                Action::Respond {
                    message: "Kamis, 3 Desember.".into(),
                },
                Status::Responded,
            ),
            (
                liaison("DKI-DISHUB"),
                Action::Resolve {
                    message: "Sudah ditambal.".into(),
                },
                Status::Resolved,
            ),
            (Actor::citizen(), Action::Rate { rating: 5 }, Status::Closed),
        ];
        let mut prev = created.id.clone();
        for (i, (actor, action, expect)) in steps.into_iter().enumerate() {
            now = now.plus_millis(3_600_000);
            let (event, state) = t.act(&id, &actor, action, now).unwrap();
            assert_eq!(state.status, expect, "{}: step {i}", db.name);
            assert_eq!(status(&t, &id), expect);
            // The node's chain: seq without gaps, prev = the previous event, parents = ticket head.
            assert_eq!(event.seq, i as u64 + 2);
            assert_eq!(event.prev.as_ref(), Some(&prev));
            assert_eq!(event.parents, vec![prev.clone()]);
            prev = event.id.clone();
        }
        let mut c = t.db().read().unwrap();
        let row = ticket_store::by_id(&mut c, &id).unwrap().unwrap();
        assert_eq!(row.rating, Some(5));
        assert_eq!(row.event_count, 9);
        assert_eq!(log::for_ticket(&mut c, &id).unwrap().len(), 9);
        // The contact is stored apart and is not in any event.
        let contact = ticket_store::contact(&mut c, &id).unwrap().unwrap();
        assert_eq!(contact.phone.as_deref(), Some("+6281234567890"));
        for r in log::for_ticket(&mut c, &id).unwrap() {
            assert!(
                !r.raw.contains("6281234567890") && !r.raw.contains("Budi"),
                "personal data in event {}",
                r.id
            );
            // Every stored event decodes and its id matches its content.
            log::decode(&r).unwrap();
        }
    }
}

#[test]
fn refused_commands_write_nothing() {
    for db in backends() {
        let t = helpers::tickets(&db);
        let now = monday_morning();
        let id = t
            .submit(&report(), &Actor::citizen(), now)
            .unwrap()
            .event
            .ticket;
        let before = counts(&t);

        // Illegal transition, wrong role, wrong agency, unknown agency, oversized text.
        let e = t
            .act(&id, &liaison("DKI-DISHUB"), Action::Start, now)
            .unwrap_err();
        assert!(matches!(e, TicketError::Transition(_)), "{e}");
        let e = t
            .act(&id, &Actor::citizen(), Action::Verify, now)
            .unwrap_err();
        assert!(matches!(e, TicketError::Transition(_)), "{e}");
        let e = t
            .act(
                &id,
                &verifier(),
                Action::Dispatch {
                    agency: AgencyCode::parse("NOPE").unwrap(),
                },
                now,
            )
            .unwrap_err();
        assert!(matches!(e, TicketError::UnknownAgency(_)), "{e}");
        let e = t
            .act(
                &id,
                &verifier(),
                Action::Postpone {
                    note: "x".repeat(8001),
                },
                now,
            )
            .unwrap_err();
        assert!(
            matches!(e, TicketError::Invalid { field: "note", .. }),
            "{e}"
        );
        let e = t
            .act(&TicketId::new(), &verifier(), Action::Verify, now)
            .unwrap_err();
        assert!(matches!(e, TicketError::NotFound), "{e}");
        t.act(
            &id,
            &verifier(),
            Action::Dispatch {
                agency: AgencyCode::parse("DKI-DISHUB").unwrap(),
            },
            now,
        )
        .unwrap();
        let before_wrong_agency = counts(&t);
        let e = t
            .act(&id, &liaison("DKI-DINKES"), Action::Start, now)
            .unwrap_err();
        assert!(matches!(e, TicketError::Transition(_)), "{e}");
        assert_eq!(counts(&t), before_wrong_agency);
        assert_eq!(before_wrong_agency.0, before.0 + 1);

        // Bad reports.
        let mut r = report();
        r.title = "x".repeat(201);
        assert!(matches!(
            t.submit(&r, &Actor::citizen(), now),
            Err(TicketError::Invalid { field: "title", .. })
        ));
        let mut r = report();
        r.text = "   ".into();
        assert!(matches!(
            t.submit(&r, &Actor::citizen(), now),
            Err(TicketError::Invalid { field: "body", .. })
        ));
        let mut r = report();
        r.agency = Some(AgencyCode::parse("NOT-AN-AGENCY").unwrap());
        assert!(matches!(
            t.submit(&r, &Actor::citizen(), now),
            Err(TicketError::UnknownAgency(_))
        ));
        let mut r = report();
        r.region = RegionCode::parse("9901").unwrap();
        assert!(matches!(
            t.submit(&r, &Actor::citizen(), now),
            Err(TicketError::UnknownRegion(_))
        ));
        let mut r = report();
        r.contact = Some(Contact {
            phone: Some("call me".into()),
            ..Contact::default()
        });
        assert!(matches!(
            t.submit(&r, &Actor::citizen(), now),
            Err(TicketError::Invalid {
                field: "contact.phone",
                ..
            })
        ));
        assert_eq!(
            counts(&t),
            before_wrong_agency,
            "{}: a refused command wrote something",
            db.name
        );
    }
}

#[test]
fn sla_sweep_records_breaches_and_auto_closes() {
    for db in backends() {
        let t = helpers::tickets(&db);
        let monday = monday_morning();
        let late = t
            .submit(&report(), &Actor::citizen(), monday)
            .unwrap()
            .event
            .ticket;
        let answered = t
            .submit(&report(), &Actor::citizen(), monday)
            .unwrap()
            .event
            .ticket;
        t.act(
            &answered,
            &verifier(),
            Action::Dispatch {
                agency: AgencyCode::parse("DKI-DISHUB").unwrap(),
            },
            monday,
        )
        .unwrap();
        t.act(
            &answered,
            &liaison("DKI-DISHUB"),
            Action::Respond {
                message: "Sudah kami cek.".into(),
            },
            monday,
        )
        .unwrap();

        // Thursday: verification deadline (3 working days after Monday = end of Thursday) not yet.
        let thursday = monday.plus_millis(3 * DAY_MS);
        assert_eq!(t.sla_sweep(thursday, 1000).unwrap().breaches, 0);
        // Friday morning: the unverified ticket is late.
        let friday = monday.plus_millis(4 * DAY_MS);
        let s = t.sla_sweep(friday, 1000).unwrap();
        assert_eq!((s.breaches, s.closed), (1, 0), "{}", db.name);
        // Sweeping again records nothing twice.
        assert_eq!(t.sla_sweep(friday, 1000).unwrap().breaches, 0);
        let mut c = t.db().read().unwrap();
        let row = ticket_store::by_id(&mut c, &late).unwrap().unwrap();
        assert_eq!(row.breaches, i32::from(SlaStep::VerifyDispatch.bit()));
        drop(c);

        // Auto-close 10 working days after the response: Monday + 2 weeks is the end of that day.
        let two_weeks = monday.plus_millis(14 * DAY_MS);
        assert_eq!(t.sla_sweep(two_weeks, 1000).unwrap().closed, 0);
        let after = monday.plus_millis(15 * DAY_MS);
        assert_eq!(t.sla_sweep(after, 1000).unwrap().closed, 1, "{}", db.name);
        assert_eq!(status(&t, &answered), Status::Closed);
    }
}

#[test]
fn the_sla_sweep_reads_only_due_tickets_and_corrects_a_stale_next_time() {
    use diesel::prelude::*;
    for db in backends() {
        let t = helpers::tickets(&db);
        let monday = monday_morning();
        let late = t.submit(&report(), &Actor::citizen(), monday).unwrap();
        let late = late.event.ticket;
        let candidates = |at: lapor_node::domain::Timestamp| {
            let mut c = t.db().read().unwrap();
            ticket_store::sweep_candidates(&mut c, "prov-31.lapor.test", at.millis(), None, 100)
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        };
        let next_due = || {
            let mut c = t.db().read().unwrap();
            ticket_store::by_id(&mut c, &late)
                .unwrap()
                .unwrap()
                .next_due_ms
        };
        let thursday = monday.plus_millis(3 * DAY_MS);
        let friday = monday.plus_millis(4 * DAY_MS);
        assert!(candidates(thursday).is_empty(), "{}", db.name);
        assert_eq!(candidates(friday), vec![late.to_string()], "{}", db.name);
        let verify_due = next_due().unwrap();
        assert!(verify_due > thursday.millis() && verify_due <= friday.millis());
        // Once the breach is recorded, the next time is the overall deadline (60 days).
        assert_eq!(t.sla_sweep(friday, 1000).unwrap().breaches, 1);
        assert!(candidates(friday).is_empty(), "{}", db.name);
        assert!(next_due().unwrap() > monday.plus_millis(59 * DAY_MS).millis());
        // A row whose next time is too early (as migrated rows are) is read once and corrected.
        let id = late.to_string();
        t.db()
            .with_writer(move |c| {
                diesel::update(schema::tickets::table.find(id))
                    .set(schema::tickets::next_due_ms.eq(Some(0i64)))
                    .execute(c)
            })
            .unwrap()
            .unwrap();
        assert_eq!(candidates(friday).len(), 1);
        let s = t.sla_sweep(friday, 1000).unwrap();
        assert_eq!((s.breaches, s.closed), (0, 0), "{}", db.name);
        assert!(candidates(friday).is_empty(), "{}", db.name);
        assert!(next_due().unwrap() > monday.plus_millis(59 * DAY_MS).millis());
        // Closed and archived tickets have no next time.
        t.act(
            &late,
            &verifier(),
            Action::Archive {
                reason: lapor_node::domain::event::ArchiveReason::Spam,
            },
            friday,
        )
        .unwrap();
        assert_eq!(next_due(), None, "{}", db.name);
    }
}

fn projection(t: &Tickets) -> Vec<lapor_node::tickets::model::TicketRow> {
    let mut c = t.db().read().unwrap();
    ticket_store::all(&mut c).unwrap()
}

/// Rebuilds the projection as `lapor-node rebuild` does (the code book read afresh).
pub fn rebuild(t: &Tickets) -> ticket_store::Rebuilt {
    let province = t.codes().province().clone();
    t.db()
        .write(move |conn| ticket_store::rebuild(conn, &province))
        .unwrap()
}

#[test]
fn rebuild_on_every_backend_equals_the_live_projection() {
    for db in backends() {
        let t = helpers::tickets(&db);
        let now = monday_morning();
        run_script(&t, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 3, 3, 6, 1], now);
        let live = projection(&t);
        assert!(!live.is_empty());
        let done = rebuild(&t);
        assert_eq!(done.rejected, 0);
        assert_eq!(projection(&t), live, "{}", db.name);
        // The table really was rebuilt: wipe a row by hand and get it back.
        t.db()
            .write(|c| {
                diesel::delete(schema::tickets::table)
                    .execute(c)
                    .map_err(lapor_node::db::DbError::from)
            })
            .unwrap();
        assert!(projection(&t).is_empty());
        rebuild(&t);
        assert_eq!(projection(&t), live);
    }
}

/// Applies a script of action choices to a few tickets; illegal choices are refused (and must
/// write nothing), legal ones advance the tickets.
fn run_script(t: &Tickets, script: &[u8], start: lapor_node::domain::Timestamp) {
    let mut now = start;
    let mut ids = vec![
        t.submit(&report(), &Actor::citizen(), now)
            .unwrap()
            .event
            .ticket,
    ];
    for (i, choice) in script.iter().enumerate() {
        now = now.plus_millis(7 * 3_600_000);
        let id = ids[i % ids.len()];
        let dishub = || AgencyCode::parse("DKI-DISHUB").unwrap();
        let (actor, action) = match choice % 14 {
            0 => (verifier(), Action::Verify),
            1 => (verifier(), Action::Dispatch { agency: dishub() }),
            2 => (
                verifier(),
                Action::Postpone {
                    note: "menunggu data".into(),
                },
            ),
            3 => (liaison("DKI-DISHUB"), Action::Start),
            4 => (
                liaison("DKI-DISHUB"),
                Action::Respond {
                    message: "ditangani".into(),
                },
            ),
            5 => (
                Actor::citizen(),
                Action::Reply {
                    message: "terima kasih".into(),
                },
            ),
            6 => (
                liaison("DKI-DISHUB"),
                Action::Resolve {
                    message: "selesai".into(),
                },
            ),
            7 => (Actor::citizen(), Action::Rate { rating: 4 }),
            8 => (
                Actor::citizen(),
                Action::Reopen {
                    message: "belum beres".into(),
                },
            ),
            9 => (
                verifier(),
                Action::NotOurAuthority {
                    note: "bukan wewenang".into(),
                },
            ),
            10 => (
                verifier(),
                Action::Archive {
                    reason: lapor_node::domain::event::ArchiveReason::Duplicate,
                },
            ),
            11 => {
                ids.push(
                    t.submit(&report(), &Actor::citizen(), now)
                        .unwrap()
                        .event
                        .ticket,
                );
                continue;
            }
            12 => {
                t.sla_sweep(now.plus_millis(20 * DAY_MS), 1000).unwrap();
                continue;
            }
            _ => (liaison("DKI-DINKES"), Action::Start),
        };
        let before = counts(t);
        if t.act(&id, &actor, action, now).is_err() {
            assert_eq!(counts(t), before, "a refused action wrote something");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn rebuild_equals_live_after_random_actions(script in proptest::collection::vec(0u8..14, 1..40)) {
        let db = helpers::sqlite();
        let t = helpers::tickets(&db);
        run_script(&t, &script, monday_morning());
        let live = projection(&t);
        let done = rebuild(&t);
        prop_assert_eq!(done.rejected, 0);
        prop_assert_eq!(projection(&t), live);
    }
}

#[test]
fn postgres_url_errors_keep_their_cause() {
    let Some(db) = helpers::postgres() else {
        return;
    };
    assert!(helpers::is_pg(&db));
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_username("no_such_role_here").unwrap();
    let e = lapor_node::db::Db::open(
        &lapor_node::config::DatabaseUrl::parse(url.as_str()).unwrap(),
        1,
    )
    .unwrap_err();
    assert!(e.to_string().contains("no_such_role_here"), "{e}");
}

/// Keeps the writer busy for 300 ms (from 50 ms after the call returns, at the latest), so
/// that jobs sent meanwhile queue up and run together in the next group.
fn hold_writer(t: &Tickets) -> std::thread::JoinHandle<Result<(), lapor_node::db::DbError>> {
    let d = t.db().clone();
    let held = std::thread::spawn(move || {
        d.write(|_| {
            std::thread::sleep(std::time::Duration::from_millis(300));
            Ok::<_, lapor_node::db::DbError>(())
        })
    });
    std::thread::sleep(std::time::Duration::from_millis(50));
    held
}

/// Files `n` reports (report `i` changed by `edit`) from `n` threads while the writer is held
/// busy, so that they queue up and are filed in groups. Returns each report's result.
pub fn file_concurrently(
    t: &Tickets,
    n: usize,
    edit: fn(usize, &mut NewReport),
) -> Vec<(usize, Result<lapor_node::tickets::Submitted, TicketError>)> {
    let now = monday_morning();
    let held = hold_writer(t);
    let results = (0..n)
        .map(|i| {
            let t = t.clone();
            std::thread::spawn(move || {
                let mut r = report();
                edit(i, &mut r);
                (i, t.submit(&r, &Actor::citizen(), now))
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    held.join().unwrap().unwrap();
    results
}

#[test]
fn concurrent_reports_are_filed_in_groups_and_a_bad_one_fails_alone() {
    use diesel::prelude::*;
    for db in backends() {
        let t = helpers::tickets(&db);
        let results = file_concurrently(&t, 24, |i, r| {
            if i % 4 == 3 {
                r.agency = Some(AgencyCode::parse("NO-SUCH-AGENCY").unwrap());
            }
        });

        let mut codes = std::collections::HashSet::new();
        for (i, r) in &results {
            if i % 4 == 3 {
                assert!(
                    matches!(r, Err(TicketError::UnknownAgency(_))),
                    "report {i}: {r:?}"
                );
                continue;
            }
            let s = r.as_ref().unwrap();
            let lapor_node::domain::Change::Created(c) = &s.event.change else {
                panic!("report {i} did not create: {:?}", s.event.change);
            };
            assert!(codes.insert(c.tracking_code.to_string()), "code repeated");
            let mut conn = t.db().read().unwrap();
            assert_eq!(
                ticket_store::follow_up_hash(&mut conn, &s.event.ticket).unwrap(),
                Some(lapor_node::tickets::hash_token(&s.follow_up_token))
            );
            assert!(
                ticket_store::contact(&mut conn, &s.event.ticket)
                    .unwrap()
                    .is_some()
            );
        }
        // Only the good reports were written, in groups, on one unbroken chain.
        assert_eq!(counts(&t), (18, 18));
        let lapor_node::tickets::IntakeStats {
            groups, reports, ..
        } = t.intake_stats();
        assert_eq!(reports, 24);
        assert!(groups < 24, "{groups} groups for 24 reports");
        let mut conn = t.db().read().unwrap();
        let chain: Vec<(i64, Option<String>, String)> = schema::events::table
            .order(schema::events::seq.asc())
            .select((
                schema::events::seq,
                schema::events::prev,
                schema::events::id,
            ))
            .load(&mut conn)
            .unwrap();
        for (k, (seq, prev, _)) in chain.iter().enumerate() {
            assert_eq!(*seq, i64::try_from(k + 1).unwrap());
            let expected = k.checked_sub(1).map(|j| chain[j].2.clone());
            assert_eq!(prev, &expected, "event {seq} links to its predecessor");
        }
    }
}

#[test]
fn a_group_that_fails_in_the_database_is_refiled_report_by_report() {
    use diesel::prelude::*;
    // SQLite only: a trigger stands in for a database fault hit by one report of a group.
    let db = helpers::sqlite();
    let t = helpers::tickets(&db);
    t.db()
        .write(|c| {
            diesel::sql_query(
                "CREATE TRIGGER refuse_fail BEFORE INSERT ON tickets WHEN NEW.title = 'FAIL' \
                 BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END",
            )
            .execute(c)
            .map(|_| ())
            .map_err(lapor_node::db::DbError::from)
        })
        .unwrap();
    let results = file_concurrently(&t, 8, |i, r| {
        if i == 5 {
            r.title = "FAIL".into();
        }
    });
    for (i, r) in &results {
        if *i == 5 {
            let e = r.as_ref().unwrap_err().to_string();
            assert!(e.contains("refused by the test trigger"), "{e}");
        } else {
            assert!(r.is_ok(), "report {i}: {r:?}");
        }
    }
    // The failing report left nothing behind; the others are filed on one unbroken chain.
    assert_eq!(counts(&t), (7, 7));
    let lapor_node::tickets::IntakeStats {
        groups, reports, ..
    } = t.intake_stats();
    assert_eq!(reports, 8);
    assert!(
        groups < 8,
        "the reports were grouped first ({groups} groups)"
    );
    let mut conn = t.db().read().unwrap();
    let seqs: Vec<i64> = schema::events::table
        .order(schema::events::seq.asc())
        .select(schema::events::seq)
        .load(&mut conn)
        .unwrap();
    assert_eq!(seqs, (1..=7).collect::<Vec<i64>>());
    let orphans: i64 = schema::follow_up_tokens::table
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(orphans, 7, "no follow-up token of the failed report");
}

fn agency_codes(t: &Tickets) -> Vec<String> {
    use diesel::prelude::*;
    let mut c = t.db().read().unwrap();
    schema::agencies::table
        .select(schema::agencies::code)
        .order(schema::agencies::code.asc())
        .load(&mut c)
        .unwrap()
}

/// A writer job that inserts an agency `code`, then fails when `fail` is set.
fn agency_job(
    code: &'static str,
    fail: bool,
) -> impl FnOnce(&mut lapor_node::db::DbConn) -> Result<(), lapor_node::db::DbError> + Send + 'static
{
    move |c| {
        diesel::sql_query(format!(
            "INSERT INTO agencies (code, name, level, region, owner_node) \
             VALUES ('{code}', 'Dinas {code}', 'province', '31', 'prov-31.lapor.test')"
        ))
        .execute(c)?;
        if fail {
            return Err(lapor_node::db::DbError::Unavailable(format!(
                "{code} gives up"
            )));
        }
        Ok(())
    }
}

#[test]
fn a_failed_writer_job_leaves_nothing_alone_or_in_a_group() {
    for db in backends() {
        let t = helpers::tickets(&db);
        let before = agency_codes(&t);
        // Alone in its group: its own transaction, rolled back.
        let e = t.db().write(agency_job("X-ALONE", true)).unwrap_err();
        assert!(e.to_string().contains("X-ALONE gives up"), "{e}");
        assert_eq!(agency_codes(&t), before, "{}", db.name);
        // In a group (the writer is held so that both jobs wait and run together): the
        // failing job is rolled back to its savepoint, the other one is committed.
        let held = hold_writer(&t);
        let jobs: Vec<_> = [("X-FAIL", true), ("X-KEPT", false)]
            .into_iter()
            .map(|(code, fail)| {
                let d = t.db().clone();
                std::thread::spawn(move || d.write(agency_job(code, fail)))
            })
            .collect();
        held.join().unwrap().unwrap();
        let results: Vec<_> = jobs.into_iter().map(|j| j.join().unwrap()).collect();
        assert!(results[0].is_err() && results[1].is_ok(), "{results:?}");
        let mut expected = before.clone();
        expected.push("X-KEPT".to_owned());
        expected.sort();
        assert_eq!(agency_codes(&t), expected, "{}", db.name);
        let stats = t.db().writer_stats();
        assert!(
            stats.jobs.load(std::sync::atomic::Ordering::Relaxed)
                > stats.groups.load(std::sync::atomic::Ordering::Relaxed),
            "the two jobs ran in one group"
        );
    }
}

/// A stopped node's SQLite file holds everything it committed once its handles are closed:
/// the probe says when (the writer and checkpoint threads included), and a copy of the file
/// alone, without its log, reads every ticket — what a restore by file copy relies on.
#[test]
fn once_every_handle_is_closed_the_sqlite_file_alone_holds_every_commit() {
    let db = helpers::sqlite();
    let t = helpers::tickets(&db);
    for _ in 0..20 {
        t.submit(&report(), &Actor::citizen(), monday_morning())
            .unwrap();
    }
    let probe = t.db().closed_probe();
    assert!(!probe.is_closed());
    drop(t);
    assert!(probe.wait(std::time::Duration::from_secs(10)));
    let copied = helpers::sqlite_copy_of(&db);
    let t = helpers::tickets(&copied);
    assert_eq!(counts(&t), (20, 20));
}
