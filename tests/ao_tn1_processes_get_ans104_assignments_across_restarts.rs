//! SPEC §10.3: a process whose definition says `variant: "ao.TN.1"` gets,
//! with every hb assignment, an ANS-104 item signed by the node key with
//! the ao SU's tags, linked by the ao CU's hash-chain rule, with strictly
//! increasing timestamps — and the chain continues across a restart of the
//! whole actor graph (the sequencer resumes from the stored head's item).

use hb_ans104::DataItem;
use hb_message::{Id, Value};
use hb_scheduler::ao_assignment::{self, first_link, AoFields};
use hb_scheduler::{verify_chain, ExpectedSigner, SchedulerConfig};
use hb_testkit::Harness;

fn items(schedule: &[hb_message::Message]) -> anyhow::Result<Vec<DataItem>> {
    schedule
        .iter()
        .map(|m| match ao_assignment::item_of(m) {
            Some(Ok(item)) => Ok(item),
            Some(Err(e)) => Err(anyhow::anyhow!("slot item unreadable: {e}")),
            None => Err(anyhow::anyhow!("an ao.TN.1 assignment without its item")),
        })
        .collect()
}

#[actix_rt::test]
async fn the_ao_chain_links_every_item_and_survives_a_restart() -> anyhow::Result<()> {
    let mut h = Harness::start(SchedulerConfig::default());
    let client = Harness::client(4);
    let mut def = h.process_definition(&client, 1);
    def.remove(hb_message::COMMITMENTS);
    def.insert("variant", Value::from("ao.TN.1"))?;
    let def = def.commit(&client, None)?;
    let pid: Id = def.id_all()?;
    h.schedule(def).await?;
    for n in 0..5 {
        h.schedule(Harness::message(&client, &pid, n)).await?;
    }
    h.restart().await;
    for n in 5..8 {
        h.schedule(Harness::message(&client, &pid, n)).await?;
    }

    let schedule = h.schedule_of(pid).await?;
    assert_eq!(schedule.len(), 9);
    // Both chains and every item's signature and signer check out.
    verify_chain(pid, ExpectedSigner::FromDefinition, &schedule)
        .map_err(|f| anyhow::anyhow!("{f}"))?;

    let items = items(&schedule)?;
    let node = h.key.address().to_string();
    let mut previous: Option<(DataItem, AoFields)> = None;
    for (slot, (item, assignment)) in items.iter().zip(&schedule).enumerate() {
        item.verify()?;
        assert_eq!(item.owner_address(), node, "signed by the node key");
        let fields = AoFields::read(item).map_err(|e| anyhow::anyhow!(e))?;
        assert_eq!(fields.slot, slot as u64);
        assert_eq!(fields.pid, pid);
        let body_id = assignment.get_message("body").expect("a body").id_all()?;
        assert_eq!(fields.message, (slot > 0).then_some(body_id));
        match &previous {
            None => assert_eq!(fields.hash_chain, first_link(&pid)),
            Some((p_item, p_fields)) => {
                let expected = ao_assignment::next_link(&p_item.id_bytes(), &p_fields.hash_chain);
                assert_eq!(
                    fields.hash_chain, expected,
                    "slot {slot} links by the CU's rule"
                );
                assert!(
                    fields.timestamp > p_fields.timestamp,
                    "slot {slot} is stamped later"
                );
            }
        }
        previous = Some((item.clone(), fields));
    }
    Ok(())
}

#[actix_rt::test]
async fn hb_native_processes_carry_no_ao_item() -> anyhow::Result<()> {
    let h = Harness::start(SchedulerConfig::default());
    let client = Harness::client(5);
    let (pid, _) = h.spawn_process(&client, 1).await?;
    h.schedule(Harness::message(&client, &pid, 1)).await?;
    for a in h.schedule_of(pid).await? {
        assert!(ao_assignment::item_of(&a).is_none());
    }
    Ok(())
}
