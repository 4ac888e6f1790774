//! What a zstd dictionary trained on events saves on the wire (`cargo bench --bench
//! dictionary`; prints a table for `docs/BENCHMARKS.md`), and how the dictionary shipped in the
//! binary (`src/federation/events.zdict`) is made.
//!
//! A province node (SQLite, no HTTP) files varied synthetic reports — titles and texts drawn
//! from a list of everyday complaints, regions, categories, channels and privacy flags — and
//! verifies or postpones some of them, so its log holds `created`, `verified` and `postponed`
//! events as a slow link would carry them. No real person's data is involved. Two such logs
//! are made with different draws: the first trains a dictionary, the second is measured, so
//! the table shows what the dictionary does for events it has not seen.
//!
//! For batches of 1 to 500 events (the sizes the delivery's adaptive batches take on a thin
//! link), the table gives compressed bytes per event of the batch body (`{"batch","events",
//! "pii"}` JSON) with zstd 3 and 19, without and with the dictionary, and the bound the link
//! benchmark uses: zstd 19 over all events concatenated.
//!
//! `LAPOR_WRITE_DICT=PATH` writes the trained dictionary there (the shipped one is made with
//! `LAPOR_WRITE_DICT=src/federation/events.zdict cargo bench --bench dictionary`);
//! `LAPOR_DICT_KB` its size (default 16); `BENCH_N` events per log (default 6,000).

#![expect(
    clippy::expect_used,
    clippy::print_stdout,
    clippy::cast_precision_loss,
    dead_code,
    reason = "a benchmark program: it reports on stdout, stops on any setup failure, and uses \
              one helper of the shared set-up"
)]

use lapor_node::domain::{Actor, Category, Channel, Privacy, RegionCode, Role, Timestamp};
use lapor_node::federation::dictionary;
use lapor_node::tickets::{Action, Contact, NewReport};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

mod common;

const TITLES: &[&str] = &[
    "Lampu jalan mati",
    "Jalan berlubang di depan pasar",
    "Sampah menumpuk tidak diangkut",
    "Pungutan liar di kantor kelurahan",
    "Antrean BPJS terlalu lama",
    "Air PDAM tidak mengalir",
    "KTP-el belum jadi",
    "Guru sering tidak hadir",
    "Puskesmas tutup pada jam layanan",
    "Banjir karena saluran tersumbat",
    "Bantuan sosial tidak tepat sasaran",
    "Izin usaha dipersulit",
    "Jembatan rusak membahayakan warga",
    "Listrik sering padam",
    "Obat tidak tersedia di apotek puskesmas",
];

const SENTENCES: &[&str] = &[
    "Sudah tiga minggu tidak ada perbaikan.",
    "Warga sudah melapor ke RT dan RW tetapi belum ada tindak lanjut.",
    "Kondisi ini membahayakan anak-anak yang berangkat sekolah.",
    "Petugas meminta biaya tambahan di luar ketentuan.",
    "Mohon segera ditindaklanjuti oleh dinas terkait.",
    "Kejadian berulang setiap musim hujan.",
    "Saya sudah datang tiga kali ke kantor tersebut.",
    "Pelayanan dibuka terlambat dan ditutup lebih awal.",
    "Banyak lansia yang terpaksa menunggu di luar.",
    "Lokasinya di dekat masjid, sebelah kantor desa.",
    "Terima kasih atas perhatiannya.",
    "Foto kondisi dapat dikirim bila diperlukan.",
];

const CATEGORIES: &[&str] = &[
    "infrastruktur",
    "kesehatan",
    "pendidikan",
    "kependudukan",
    "sosial",
    "lingkungan",
    "transportasi",
];

const REGIONS: &[&str] = &["3171", "3172", "3173", "3174", "3175", "3101"];

fn pick<'a>(rng: &mut StdRng, list: &[&'a str]) -> &'a str {
    list[rng.gen_range(0..list.len())]
}

fn report(rng: &mut StdRng) -> NewReport {
    let mut text = String::new();
    for _ in 0..rng.gen_range(1..5) {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(pick(rng, SENTENCES));
    }
    let anonymous = rng.gen_bool(0.3);
    let channel = [Channel::Web, Channel::Sms, Channel::Api, Channel::WalkIn][rng.gen_range(0..4)];
    NewReport {
        kind: common::report().kind,
        title: format!("{} (RT {:02})", pick(rng, TITLES), rng.gen_range(1..20)),
        text,
        category: Category::parse(pick(rng, CATEGORIES)).expect("category"),
        region: RegionCode::parse(pick(rng, REGIONS)).expect("region"),
        agency: None,
        channel,
        privacy: Privacy {
            anonymous,
            confidential: rng.gen_bool(0.1),
        },
        contact: (!anonymous).then(|| Contact {
            name: Some(format!("Warga {}", rng.gen_range(1..1000))),
            phone: Some(format!("+62812{:07}", rng.gen_range(0..10_000_000))),
            email: None,
        }),
    }
}

/// A node's log after `n` events drawn with `seed`: the events' JSON in log order.
fn events(n: usize, seed: u64) -> Vec<Vec<u8>> {
    let node = common::node();
    let mut rng = StdRng::seed_from_u64(seed);
    let verifier = Actor {
        role: Role::Verifier,
        officer: Some("verifikator".into()),
        agency: None,
    };
    let mut written = 0;
    while written < n {
        let id = node
            .tickets
            .submit(&report(&mut rng), &Actor::citizen(), Timestamp::now())
            .expect("submit")
            .event
            .ticket;
        written += 1;
        if written < n && rng.gen_bool(0.4) {
            let action = if rng.gen_bool(0.7) {
                Action::Verify
            } else {
                Action::Postpone {
                    note: pick(&mut rng, SENTENCES).to_owned(),
                }
            };
            node.tickets
                .act(&id, &verifier, action, Timestamp::now())
                .expect("act");
            written += 1;
        }
    }
    let mut conn = node.db.read().expect("db");
    let mut out = Vec::new();
    let mut after: Option<(String, String)> = None;
    loop {
        let page = lapor_node::event_log::store::page(
            &mut conn,
            after.as_ref().map(|(t, i)| (t.as_str(), i.as_str())),
            1000,
        )
        .expect("page");
        let Some(last) = page.last() else { break };
        after = Some((last.ticket.clone(), last.id.clone()));
        out.extend(page.into_iter().map(|r| r.raw.into_bytes()));
    }
    out
}

/// A batch body as the outbox builds it (no personal-data part: the hub never gets one).
fn body(events: &[Vec<u8>]) -> Vec<u8> {
    let values: Vec<serde_json::Value> = events
        .iter()
        .map(|e| serde_json::from_slice(e).expect("json"))
        .collect();
    let batch = lapor_node::federation::protocol::Batch {
        batch: lapor_node::federation::protocol::batch_id(&values),
        events: values,
        pii: Vec::new(),
        key_statements: Vec::new(),
    };
    serde_json::to_vec(&batch).expect("json")
}

fn main() {
    let n = common::bench_n(6_000);
    let kb = std::env::var("LAPOR_DICT_KB")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(16);
    let training = events(n, 1);
    let trained = zstd::dict::from_samples(&training, kb * 1024).expect("train");
    if let Ok(path) = std::env::var("LAPOR_WRITE_DICT") {
        std::fs::write(&path, &trained).expect("write dictionary");
        println!("wrote a {} B dictionary to {path}", trained.len());
    }
    let measured = events(n, 2);
    let all: Vec<u8> = measured
        .iter()
        .flat_map(|e| [&e[..], b"\n"].concat())
        .collect();
    let bound = zstd::bulk::compress(&all, 19).expect("zstd").len() as f64 / measured.len() as f64;
    let json = all.len() as f64 / measured.len() as f64;
    println!(
        "{} events measured ({} trained on), JSON {json:.0} B/event, bound (zstd 19 over all) {bound:.1} B/event",
        measured.len(),
        training.len()
    );
    println!(
        "shipped dictionary: {} B (id {}); trained now: {} B",
        dictionary::BYTES.len(),
        dictionary::id(),
        trained.len()
    );
    println!();
    println!(
        "| batch | zstd 3 | zstd 19 | shipped dict, 3 | shipped dict, 19 | trained now, 19 | best ÷ bound |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for size in [1usize, 10, 50, 100, 200, 500] {
        let mut sums = [0usize; 5];
        let mut count = 0usize;
        for chunk in measured.chunks(size) {
            let b = body(chunk);
            sums[0] += zstd::bulk::compress(&b, 3).expect("zstd").len();
            sums[1] += zstd::bulk::compress(&b, 19).expect("zstd").len();
            sums[2] += dictionary::compress(&b, 3).len();
            sums[3] += dictionary::compress(&b, 19).len();
            sums[4] = sums[4].saturating_add(
                zstd::bulk::Compressor::with_dictionary(19, &trained)
                    .expect("dict")
                    .compress(&b)
                    .expect("zstd")
                    .len(),
            );
            count += chunk.len();
        }
        let per = |s: usize| s as f64 / count as f64;
        let best = per(sums[3]).min(per(sums[4]));
        println!(
            "| {size} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} |",
            per(sums[0]),
            per(sums[1]),
            per(sums[2]),
            per(sums[3]),
            per(sums[4]),
            best / bound
        );
    }
}
