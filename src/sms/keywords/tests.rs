use proptest::prelude::*;

use super::*;

fn code(s: &str) -> TrackingCode {
    TrackingCode::parse(s).unwrap()
}

fn report_of(message: &str) -> SmsReport {
    match parse(message) {
        Command::Report(r) => r,
        other => panic!("{message:?} read as {other:?}"),
    }
}

#[test]
fn lapor_in_the_ways_citizens_type_it() {
    for m in [
        "LAPOR jalan rusak",
        "lapor jalan rusak",
        "  Lapor   jalan    rusak  ",
        "LAPOR: jalan rusak",
        "LAPOR:jalan rusak",
        "lapor, jalan rusak",
        "LAPORAN jalan rusak",
        "Laporkan jalan rusak",
        "LPR jalan rusak",
        "LAOPR jalan rusak",
        "LAPRO jalan rusak",
        "LAPPOR jalan rusak",
        "*LAPOR* jalan rusak",
        "lapor\njalan\trusak",
    ] {
        assert_eq!(report_of(m).text, "jalan rusak", "{m:?}");
    }
}

#[test]
fn tags_set_category_region_kind_and_flags_and_leave_the_text() {
    let r = report_of("LAPOR Puskesmas tutup sejak senin #kesehatan @3171, mohon dibantu #rahasia");
    assert_eq!(r.text, "Puskesmas tutup sejak senin mohon dibantu");
    assert_eq!(r.category, Some(Category::parse("kesehatan").unwrap()));
    assert_eq!(r.region, Some(RegionCode::parse("3171").unwrap()));
    assert!(r.confidential);
    assert!(
        !r.named,
        "an SMS report is anonymous unless the citizen writes #terbuka"
    );
    let r = report_of("lapor #ASPIRASI #Terbuka taman kota perlu lampu");
    assert_eq!(r.kind, ReportKind::Aspirasi);
    assert!(r.named);
    assert_eq!(r.text, "taman kota perlu lampu");
    let r = report_of("LAPOR banjir @99x #Kesehatan! #x");
    assert_eq!(r.region, None);
    assert_eq!(r.category, Some(Category::parse("kesehatan").unwrap()));
    assert_eq!(r.unknown_tags, vec!["@99x".to_owned(), "#x".to_owned()]);
    assert_eq!(report_of("LAPOR").text, "");
    assert_eq!(report_of("lapor #kesehatan").text, "");
}

#[test]
fn cek_reads_codes_with_or_without_separators_in_any_case() {
    let c = code("31-K7QX-9F2M");
    for m in [
        "CEK 31-K7QX-9F2M",
        "cek 31-k7qx-9f2m",
        "Cek 31 K7QX 9F2M",
        "CEK 31K7QX9F2M",
        "CEK31-K7QX-9F2M",
        "cek: 31.k7qx.9f2m.",
        "CEK #31-K7QX-9F2M",
        "CHECK 31-K7QX-9F2M",
        "status 31-k7qx-9f2m",
        "CEKK 31-K7QX-9F2M",
        "ck 31k7qx9f2m",
    ] {
        assert_eq!(parse(m), Command::Check(Some(c.clone())), "{m:?}");
    }
    assert_eq!(parse("CEK"), Command::Check(None));
    assert_eq!(parse("CEK 31-K7QX"), Command::Check(None));
    assert_eq!(parse("CEK 31-K7QX-9F2MZZ"), Command::Check(None));
    // 0, 1, I, L, O and U are not in codes.
    assert_eq!(parse("CEK 31-K7QX-9F2O"), Command::Check(None));
}

#[test]
fn balas_and_nilai_take_a_code_and_a_text_or_rating() {
    let c = code("31-K7QX-9F2M");
    assert_eq!(
        parse("BALAS 31-K7QX-9F2M belum diperbaiki, pak"),
        Command::Reply(Some(c.clone()), "belum diperbaiki, pak".into())
    );
    assert_eq!(
        parse("bls 31k7qx9f2m: terima kasih"),
        Command::Reply(Some(c.clone()), "terima kasih".into())
    );
    assert_eq!(
        parse("BALES 31-K7QX-9F2M"),
        Command::Reply(Some(c.clone()), String::new())
    );
    assert_eq!(
        parse("BALAS jalan masih rusak"),
        Command::Reply(None, "jalan masih rusak".into())
    );
    for (m, n) in [
        ("NILAI 31-K7QX-9F2M 5", Some(5)),
        ("nilay 31-k7qx-9f2m 4", Some(4)),
        ("Nilai 31K7QX9F2M lima", Some(5)),
        ("NILAI 31-K7QX-9F2M ***", Some(3)),
        ("NILAI 31-K7QX-9F2M 9", None),
        ("NILAI 31-K7QX-9F2M bagus", None),
        ("RATING 31-K7QX-9F2M: 1", Some(1)),
    ] {
        assert_eq!(parse(m), Command::Rate(Some(c.clone()), n), "{m:?}");
    }
}

#[test]
fn help_and_anything_else() {
    for m in [
        "BANTUAN", "bantuan", "Bantuan.", "HELP", "?", "menu", "BANTUN", "tolong",
    ] {
        assert_eq!(parse(m), Command::Help, "{m:?}");
    }
    for m in [
        "",
        "   ",
        "halo",
        "apa kabar",
        "12345",
        "😀",
        "LAPORANKU jalan",
    ] {
        assert_eq!(parse(m), Command::Unknown, "{m:?}");
    }
}

proptest! {
    #[test]
    fn any_message_reads_as_a_command_and_gets_an_answer(s in "\\PC{0,300}") {
        let step = crate::sms::inbound::plan(parse(&s));
        if let crate::sms::inbound::Step::Answer(r) = step {
            let t = r.text();
            prop_assert!(!t.is_empty());
            prop_assert!(crate::sms::gsm::len(&t) <= crate::sms::gsm::SINGLE);
        }
    }

    #[test]
    fn keyword_noise_never_panics(s in "(?i)(lapor|cek|balas|nilai|bantuan)[ :#@*.,0-9a-z-]{0,80}") {
        let _ = crate::sms::inbound::plan(parse(&s));
    }

    #[test]
    fn split_parts_fit_and_keep_every_word(s in "[a-z {}€é]{0,600}") {
        let t = crate::sms::gsm::to_gsm7(&s);
        let parts = crate::sms::gsm::split(&t);
        for p in &parts {
            prop_assert!(crate::sms::gsm::len(p) <= crate::sms::gsm::SINGLE);
        }
        let words = |x: &str| x.split_whitespace().collect::<String>();
        prop_assert_eq!(words(&parts.join(" ")), words(&t));
    }
}
