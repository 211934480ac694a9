// aoconnect in `legacy` mode against an hb node (SPEC §10.6): spawn a
// process and send it messages through MU_URL = the node, then read the
// schedule back through aoconnect's own SU readers.
//
// Env: HB_URL (the node), HB_GATEWAY_URL (the gateway stand-in that knows
// HB_AO_MODULE and the node's Scheduler-Location), HB_AO_MODULE,
// HB_AO_SIGNER (rsa, the default, or ed25519). Prints one JSON line.
import { installOfflineFetch, freshSigner, origin, run } from "./common.mjs";

const MESSAGES = 3;

const node = origin("HB_URL");
const gateway = origin("HB_GATEWAY_URL");
installOfflineFetch({ [node]: "node", [gateway]: "gateway" });
// ao-scheduler-utils reads this when it is loaded (it locates schedulers).
process.env.GRAPHQL_URL = `${gateway}/graphql`;
const { connect, createDataItemSigner } = await import("@permaweb/aoconnect");

run(async () => {
  const module = process.env.HB_AO_MODULE;
  if (!module) throw new Error("HB_AO_MODULE is not set");
  const wallet = freshSigner(process.env.HB_AO_SIGNER ?? "rsa", createDataItemSigner);
  const ao = connect({ MODE: "legacy", MU_URL: node, CU_URL: node, GATEWAY_URL: gateway });

  // The SU's root names its address: the Scheduler tag a process needs.
  const root = await fetch(`${node}/`).then(ok).then((r) => r.json());
  const scheduler = root.address;

  const processId = await ao.spawn({
    module,
    scheduler,
    signer: wallet.signer,
    tags: [{ name: "Name", value: "hb-aoconnect-legacy" }],
    data: "hb interop test process",
  });
  const messages = [];
  for (let i = 1; i <= MESSAGES; i++) {
    messages.push(
      await ao.message({
        process: processId,
        signer: wallet.signer,
        tags: [{ name: "Action", value: "Ping" }, { name: "Seq", value: String(i) }],
        data: `ping ${i}`,
      }),
    );
  }

  // Read the schedule as aoconnect does: locate the SU, then GET /{pid}.
  const page = await ao.getMessages({
    processId,
    from: "0",
    to: String(Date.now() + 60_000),
    limit: "100",
  });
  const edges = (page.edges ?? []).map((e) => ({
    cursor: e.cursor,
    message: e.node?.message?.id,
    nonce: tag(e.node?.assignment, "Nonce"),
    process: tag(e.node?.assignment, "Process"),
    type: tag(e.node?.message, "Type"),
  }));
  const last = messages[messages.length - 1];
  const byId = await ao.getMessageById({ processId, messageId: last });
  const lastSlot = await ao.getLastSlot({ processId });

  return {
    mode: "legacy",
    signature_type: wallet.type,
    address: wallet.address,
    scheduler,
    process: processId,
    messages,
    schedule: { has_next_page: page.page_info?.has_next_page, edges },
    by_id: { message: byId?.message?.id, nonce: tag(byId?.assignment, "Nonce") },
    last_slot: lastSlot,
  };
});

function tag(item, name) {
  return item?.tags?.find((t) => t.name === name)?.value;
}

async function ok(res) {
  if (!res.ok) throw new Error(`${res.status} ${res.url}: ${await res.text()}`);
  return res;
}
