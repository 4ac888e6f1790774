//! Accept and return across nodes (issue 25, item 5): NTT forwards a ticket to a Jakarta
//! agency; Jakarta's liaison sees it as forwarded from province 53 (API and console), returns
//! it as not their authority with a reason; it comes back to NTT's verifier queue with the
//! reason; NTT re-dispatches it to a national agency, and the hub (its owner) gets it.

use lapor_node::demo::scenario::{AGENCY, Api, HUB, JAKARTA, NTT, ntt_report};
use lapor_node::domain::Role;
use serde_json::json;

use crate::federation::{cluster, node, same_state_everywhere};

const REASON: &str = "Jalan ini jalan nasional, bukan wewenang Dukcapil DKI";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_ticket_is_returned_with_its_reason_and_dispatched_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(dir.path(), None).await;
    let (ntt, jkt, hub) = (
        Api::of(node(&c, NTT)),
        Api::of(node(&c, JAKARTA)),
        Api::of(node(&c, HUB)),
    );
    let (_, _, ticket) = ntt.file(&ntt_report(0)).await.unwrap();
    let verifier = ntt.officer("v.ntt", Role::Verifier, None).await.unwrap();
    for action in [
        json!({"action": "verify"}),
        json!({"action": "dispatch", "agency": AGENCY}),
    ] {
        ntt.act(&verifier, &ticket, &action).await.unwrap();
    }
    c.settle(10).await.unwrap();

    // At Jakarta: forwarded from province 53, in the liaison's inbox and on the console.
    let liaison = jkt
        .officer("penghubung.dukcapil", Role::Liaison, Some(AGENCY))
        .await
        .unwrap();
    let (st, inbox) = jkt.get("/api/v1/tickets", Some(&liaison)).await.unwrap();
    assert_eq!(st, 200, "{inbox}");
    let row = inbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == ticket.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("not in the liaison's inbox: {inbox}"));
    assert_eq!(row["agency"], AGENCY, "{row}");
    assert_eq!(row["origin_node"], NTT);
    assert_eq!(row["origin_province"], "53");
    assert_eq!(row["handling_node"], JAKARTA);
    let web = crate::web::Client::new(&node(&c, JAKARTA).api);
    crate::web_officers::login(
        &node(&c, JAKARTA).state,
        &web,
        "penghubung.web",
        Role::Liaison,
        Some(AGENCY),
    )
    .await;
    let page = web.get(&format!("/petugas/tiket/{ticket}")).await;
    assert!(
        page.body.contains("diteruskan dari provinsi 53"),
        "{}",
        page.body
    );

    // The liaison returns it: not their authority, with the reason.
    let returned = jkt
        .act(
            &liaison,
            &ticket,
            &json!({"action": "not_our_authority", "note": REASON}),
        )
        .await
        .unwrap();
    assert_eq!(returned["status"], "not_our_authority", "{returned}");
    c.settle(10).await.unwrap();
    same_state_everywhere(&c, &ticket, &[NTT, JAKARTA, HUB]);

    // Back in NTT's verifier queue, with the reason on the ticket.
    let (st, queue) = ntt
        .get("/api/v1/tickets?status=not_our_authority", Some(&verifier))
        .await
        .unwrap();
    assert_eq!(st, 200, "{queue}");
    let back = queue["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == ticket.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("not in the verifiers' queue: {queue}"));
    assert_eq!(back["handling_node"], NTT);
    assert!(back["agency"].is_null(), "{back}");
    let (st, detail) = ntt
        .get(&format!("/api/v1/tickets/{ticket}"), Some(&verifier))
        .await
        .unwrap();
    assert_eq!(st, 200, "{detail}");
    let step = detail["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|s| s["kind"] == "not_our_authority")
        .cloned()
        .unwrap_or_else(|| panic!("no return step: {detail}"));
    assert_eq!(step["message"], REASON, "{detail}");
    assert_eq!(step["officer"], "penghubung.dukcapil", "{detail}");
    assert_eq!(step["role"], "liaison", "{detail}");
    assert!(
        detail["allowed_actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "dispatch"),
        "{detail}"
    );
    // Jakarta's liaison can no longer act on it.
    let e = jkt
        .act(&liaison, &ticket, &json!({"action": "start"}))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("40"), "{e}");

    // NTT re-dispatches it to a national agency: the hub owns it now.
    ntt.act(
        &verifier,
        &ticket,
        &json!({"action": "dispatch", "agency": "KEMENPUPR"}),
    )
    .await
    .unwrap();
    c.settle(10).await.unwrap();
    same_state_everywhere(&c, &ticket, &[NTT, JAKARTA, HUB]);
    let hub_liaison = hub
        .officer("penghubung.pupr", Role::Liaison, Some("KEMENPUPR"))
        .await
        .unwrap();
    let (st, at_hub) = hub
        .get(&format!("/api/v1/tickets/{ticket}"), Some(&hub_liaison))
        .await
        .unwrap();
    assert_eq!(st, 200, "{at_hub}");
    assert_eq!(at_hub["status"], "dispatched", "{at_hub}");
    assert_eq!(at_hub["handling_node"], HUB, "{at_hub}");
    assert_eq!(at_hub["origin_province"], "53", "{at_hub}");
    hub.act(&hub_liaison, &ticket, &json!({"action": "start"}))
        .await
        .unwrap();
    c.settle(10).await.unwrap();
    same_state_everywhere(&c, &ticket, &[NTT, HUB]);
    assert_eq!(c.undelivered().unwrap(), 0);
    c.shutdown().await;
}
