//! Writing the statistics cells, in the caller's transaction: [`apply`] adds a set of
//! [`Cells`] (`INSERT … ON CONFLICT DO UPDATE SET n = n + excluded.n`; on PostgreSQL up to
//! 500 cells a statement), [`clear`] empties the tables for a rebuild. Called by `tickets::store` wherever a ticket's
//! projection row is written, so the cells always sum the rows' states.

use diesel::prelude::*;
use diesel::upsert::excluded;

use super::cells::Cells;
use super::read::Table;
use crate::db::DbConn;
use crate::db::schema::{stat_counts, stat_flows, stat_sla};
use crate::domain::TicketState;

/// Adds the change from `old` (none for a new ticket) to `new` to the cells.
pub fn ticket_changed(
    conn: &mut DbConn,
    old: Option<&TicketState>,
    new: &TicketState,
) -> QueryResult<()> {
    apply(conn, &Cells::change(old, new))
}

/// Rows per multi-row upsert on PostgreSQL (at most 18 columns a row: 9,000 binds, far
/// below the protocol's 65,535).
const CHUNK: usize = 500;

/// The values of a count cell's row.
macro_rules! count_row {
    ($k:expr, $n:expr) => {{
        use stat_counts::dsl as t;
        let (k, n) = ($k, $n);
        let [province, regency, kind, category, channel, agency, status] = &k.dims;
        (
            t::rollup.eq(k.rollup),
            t::period.eq(&k.period),
            t::province.eq(province),
            t::regency.eq(regency),
            t::kind.eq(kind),
            t::category.eq(category),
            t::channel.eq(channel),
            t::agency.eq(agency),
            t::status.eq(status),
            t::n.eq(*n),
        )
    }};
}

/// The upsert of count rows: the figure is added to a stored cell's.
macro_rules! count_upsert {
    ($values:expr) => {{
        use stat_counts::dsl as t;
        diesel::insert_into(t::stat_counts)
            .values($values)
            .on_conflict((
                t::rollup,
                t::period,
                t::province,
                t::regency,
                t::kind,
                t::category,
                t::channel,
                t::agency,
                t::status,
            ))
            .do_update()
            .set(t::n.eq(t::n + excluded(t::n)))
    }};
}

/// The values of an SLA cell's row.
macro_rules! sla_row {
    ($k:expr, $f:expr) => {{
        use stat_sla::dsl as t;
        let (k, f) = ($k, $f);
        (
            (
                t::rollup.eq(k.rollup),
                t::period.eq(&k.period),
                t::province.eq(&k.province),
                t::agency.eq(&k.agency),
            ),
            (
                t::tickets.eq(f[0]),
                t::verified_on_time.eq(f[1]),
                t::verified_late.eq(f[2]),
                t::dispatched_on_time.eq(f[3]),
                t::dispatched_late.eq(f[4]),
                t::responded_on_time.eq(f[5]),
                t::responded_late.eq(f[6]),
                t::resolved_on_time.eq(f[7]),
                t::resolved_late.eq(f[8]),
                t::breach_verify.eq(f[9]),
                t::breach_response.eq(f[10]),
                t::breach_overall.eq(f[11]),
                t::rated.eq(f[12]),
                t::rating_sum.eq(f[13]),
            ),
        )
    }};
}

/// The upsert of SLA rows: each figure is added to a stored cell's.
macro_rules! sla_upsert {
    ($values:expr) => {{
        use stat_sla::dsl as t;
        diesel::insert_into(t::stat_sla)
            .values($values)
            .on_conflict((t::rollup, t::period, t::province, t::agency))
            .do_update()
            .set((
                t::tickets.eq(t::tickets + excluded(t::tickets)),
                t::verified_on_time.eq(t::verified_on_time + excluded(t::verified_on_time)),
                t::verified_late.eq(t::verified_late + excluded(t::verified_late)),
                t::dispatched_on_time.eq(t::dispatched_on_time + excluded(t::dispatched_on_time)),
                t::dispatched_late.eq(t::dispatched_late + excluded(t::dispatched_late)),
                t::responded_on_time.eq(t::responded_on_time + excluded(t::responded_on_time)),
                t::responded_late.eq(t::responded_late + excluded(t::responded_late)),
                t::resolved_on_time.eq(t::resolved_on_time + excluded(t::resolved_on_time)),
                t::resolved_late.eq(t::resolved_late + excluded(t::resolved_late)),
                t::breach_verify.eq(t::breach_verify + excluded(t::breach_verify)),
                t::breach_response.eq(t::breach_response + excluded(t::breach_response)),
                t::breach_overall.eq(t::breach_overall + excluded(t::breach_overall)),
                t::rated.eq(t::rated + excluded(t::rated)),
                t::rating_sum.eq(t::rating_sum + excluded(t::rating_sum)),
            ))
    }};
}

/// The values of a flow cell's row.
macro_rules! flow_row {
    ($k:expr, $f:expr) => {{
        use stat_flows::dsl as t;
        let (k, f) = ($k, $f);
        (
            (
                t::rollup.eq(k.rollup),
                t::period.eq(&k.period),
                t::origin.eq(&k.origin),
                t::handler.eq(&k.handler),
                t::dispatches.eq(f[0]),
                t::acted.eq(f[1]),
                t::returns.eq(f[2]),
            ),
            (
                t::lat_0.eq(f[3]),
                t::lat_1.eq(f[4]),
                t::lat_2.eq(f[5]),
                t::lat_3.eq(f[6]),
                t::lat_4.eq(f[7]),
                t::lat_5.eq(f[8]),
                t::lat_6.eq(f[9]),
                t::lat_7.eq(f[10]),
                t::lat_8.eq(f[11]),
                t::lat_9.eq(f[12]),
                t::lat_10.eq(f[13]),
            ),
        )
    }};
}

/// The upsert of flow rows: each figure is added to a stored cell's.
macro_rules! flow_upsert {
    ($values:expr) => {{
        use stat_flows::dsl as t;
        diesel::insert_into(t::stat_flows)
            .values($values)
            .on_conflict((t::rollup, t::period, t::origin, t::handler))
            .do_update()
            .set((
                (
                    t::dispatches.eq(t::dispatches + excluded(t::dispatches)),
                    t::acted.eq(t::acted + excluded(t::acted)),
                    t::returns.eq(t::returns + excluded(t::returns)),
                ),
                (
                    t::lat_0.eq(t::lat_0 + excluded(t::lat_0)),
                    t::lat_1.eq(t::lat_1 + excluded(t::lat_1)),
                    t::lat_2.eq(t::lat_2 + excluded(t::lat_2)),
                    t::lat_3.eq(t::lat_3 + excluded(t::lat_3)),
                    t::lat_4.eq(t::lat_4 + excluded(t::lat_4)),
                    t::lat_5.eq(t::lat_5 + excluded(t::lat_5)),
                    t::lat_6.eq(t::lat_6 + excluded(t::lat_6)),
                    t::lat_7.eq(t::lat_7 + excluded(t::lat_7)),
                    t::lat_8.eq(t::lat_8 + excluded(t::lat_8)),
                    t::lat_9.eq(t::lat_9 + excluded(t::lat_9)),
                    t::lat_10.eq(t::lat_10 + excluded(t::lat_10)),
                ),
            ))
    }};
}

/// Adds `cells` to the stored ones: on PostgreSQL one multi-row upsert per `CHUNK` (500) cells of
/// a table (a cell's key appears once in [`Cells`], so no statement touches a row twice, and
/// the keys' order is the same in every writer, so two writers cannot deadlock on them); on
/// SQLite one cached single-row upsert per cell (local calls, no round trip to save).
#[tracing::instrument(name = "hub.cells.apply", skip_all, fields(cells = cells.counts.len()))]
pub fn apply(conn: &mut DbConn, cells: &Cells) -> QueryResult<()> {
    match conn {
        DbConn::Sqlite(c) => {
            for (k, n) in &cells.counts {
                let [p, r, kind, cat, ch, a, st] = &k.dims;
                let keys = [p, r, kind, cat, ch, a, st].map(String::as_str);
                CellUpsert::<Counts>::new(k.rollup, &k.period, &keys, std::slice::from_ref(n))
                    .execute(c)?;
            }
            for (k, f) in &cells.sla {
                let keys = [k.province.as_str(), k.agency.as_str()];
                CellUpsert::<Sla>::new(k.rollup, &k.period, &keys, f).execute(c)?;
            }
            for (k, f) in &cells.flows {
                let keys = [k.origin.as_str(), k.handler.as_str()];
                CellUpsert::<Flows>::new(k.rollup, &k.period, &keys, f).execute(c)?;
            }
        }
        DbConn::Pg(c) => {
            let counts: Vec<_> = cells.counts.iter().collect();
            for chunk in counts.chunks(CHUNK) {
                let rows: Vec<_> = chunk.iter().map(|(k, n)| count_row!(*k, *n)).collect();
                count_upsert!(rows).execute(c)?;
            }
            let sla: Vec<_> = cells.sla.iter().collect();
            for chunk in sla.chunks(CHUNK) {
                let rows: Vec<_> = chunk.iter().map(|(k, f)| sla_row!(*k, *f)).collect();
                sla_upsert!(rows).execute(c)?;
            }
            let flows: Vec<_> = cells.flows.iter().collect();
            for chunk in flows.chunks(CHUNK) {
                let rows: Vec<_> = chunk.iter().map(|(k, f)| flow_row!(*k, *f)).collect();
                flow_upsert!(rows).execute(c)?;
            }
        }
    }
    Ok(())
}

/// A statistics table, as a type: [`CellUpsert`]'s statement is cached by type.
trait CellTable: 'static {
    const OF: Table;
}

#[derive(Debug)]
struct Counts;
impl CellTable for Counts {
    const OF: Table = Table::Counts;
}

#[derive(Debug)]
struct Sla;
impl CellTable for Sla {
    const OF: Table = Table::Sla;
}

#[derive(Debug)]
struct Flows;
impl CellTable for Flows {
    const OF: Table = Table::Flows;
}

/// One cell's upsert on SQLite with a fixed statement per table: diesel does not keep its own
/// upserts prepared (`ON CONFLICT … DO UPDATE` is marked unsafe to cache), and preparing one
/// per cell was a third of a hub's ingest time. Keyed by type, this one is prepared once per
/// connection.
#[derive(Debug)]
struct CellUpsert<'a, T> {
    rollup: i32,
    period: &'a str,
    keys: &'a [&'a str],
    sums: &'a [i64],
    table: std::marker::PhantomData<T>,
}

impl<'a, T: CellTable> CellUpsert<'a, T> {
    fn new(rollup: i32, period: &'a str, keys: &'a [&'a str], sums: &'a [i64]) -> Self {
        Self {
            rollup,
            period,
            keys,
            sums,
            table: std::marker::PhantomData,
        }
    }
}

impl<T: CellTable> diesel::query_builder::QueryId for CellUpsert<'_, T> {
    type QueryId = CellUpsert<'static, T>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<T: CellTable> diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite>
    for CellUpsert<'_, T>
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{BigInt, Integer, Text};
        // The statement is cached by type: every value must fill the same placeholders.
        let (keys, sums) = (T::OF.keys(), T::OF.sums());
        if self.keys.len() != keys.len() || self.sums.len() != sums.len() {
            return Err(diesel::result::Error::QueryBuilderError(
                format!("{}: cell of the wrong shape", T::OF.name()).into(),
            ));
        }
        out.push_sql("INSERT INTO ");
        out.push_sql(T::OF.name());
        out.push_sql(" (rollup, period");
        for c in keys.iter().chain(sums) {
            out.push_sql(", ");
            out.push_sql(c);
        }
        out.push_sql(") VALUES (");
        out.push_bind_param::<Integer, _>(&self.rollup)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(self.period)?;
        for k in self.keys {
            out.push_sql(", ");
            out.push_bind_param::<Text, _>(*k)?;
        }
        for n in self.sums {
            out.push_sql(", ");
            out.push_bind_param::<BigInt, _>(n)?;
        }
        out.push_sql(") ON CONFLICT (rollup, period");
        for c in keys {
            out.push_sql(", ");
            out.push_sql(c);
        }
        out.push_sql(") DO UPDATE SET ");
        for (i, c) in sums.iter().enumerate() {
            if i > 0 {
                out.push_sql(", ");
            }
            out.push_sql(c);
            out.push_sql(" = ");
            out.push_sql(c);
            out.push_sql(" + excluded.");
            out.push_sql(c);
        }
        Ok(())
    }
}

impl<T> RunQueryDsl<diesel::sqlite::SqliteConnection> for CellUpsert<'_, T> {}

/// Empties every statistics table (a rebuild refills them).
pub fn clear(conn: &mut DbConn) -> QueryResult<()> {
    diesel::delete(stat_counts::table).execute(conn)?;
    diesel::delete(stat_sla::table).execute(conn)?;
    diesel::delete(stat_flows::table).execute(conn)?;
    Ok(())
}

/// Every stored cell with a figure other than zero, as [`Cells`] (tests compare the
/// incremental tables with a recomputation).
pub fn load(conn: &mut DbConn) -> QueryResult<Cells> {
    use super::cells::{COUNT_ROLLUPS, CountKey, FLOW_ROLLUPS, OPEN_ROLLUPS, SLA_ROLLUPS, SlaKey};
    use super::read::cells_of;
    let mut cells = Cells::default();
    let counts = [COUNT_ROLLUPS, OPEN_ROLLUPS].concat();
    for (rollup, a) in cells_of(conn, Table::Counts, &counts)? {
        let dims = a.keys().map(str::to_owned);
        let n = a.sums.0.first().copied().unwrap_or_default();
        cells.counts.insert(
            CountKey {
                rollup,
                period: a.period,
                dims,
            },
            n,
        );
    }
    for (rollup, a) in cells_of(conn, Table::Sla, SLA_ROLLUPS)? {
        let mut f = [0; 14];
        f.copy_from_slice(a.sums.0.get(..14).unwrap_or(&[0; 14]));
        let key = SlaKey {
            rollup,
            period: a.period,
            province: a.k0,
            agency: a.k1,
        };
        cells.sla.insert(key, f);
    }
    for (rollup, a) in cells_of(conn, Table::Flows, FLOW_ROLLUPS)? {
        let mut f = [0; super::cells::FLOW_FIGURES];
        f.copy_from_slice(
            a.sums
                .0
                .get(..super::cells::FLOW_FIGURES)
                .unwrap_or(&[0; 14]),
        );
        let key = super::cells::FlowKey {
            rollup,
            period: a.period,
            origin: a.k0,
            handler: a.k1,
        };
        cells.flows.insert(key, f);
    }
    cells.prune();
    Ok(cells)
}
