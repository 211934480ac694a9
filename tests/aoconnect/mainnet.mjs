// aoconnect in `mainnet` mode against an hb node (SPEC §10.6): spawn the
// Lua counter of counter.lua (execution-device lua@5.3a, the script as the
// item's data), send it messages, read results and dry-run it.
//
// Env: HB_URL (the node), HB_GATEWAY_URL (optional: the gateway stand-in;
// mainnet mode should not need it), HB_AO_SIGNER (rsa, the default, or
// ed25519). Prints one JSON line.
import { readFileSync } from "node:fs";
import { installOfflineFetch, freshSigner, origin, requests, run } from "./common.mjs";

const INCS = 3;
// Any text: mainnet spawn requires a Module tag but never looks it up.
const MODULE = "hb-aoconnect-mainnet-test-module-not-wasm00";

const node = origin("HB_URL");
const names = { [node]: "node" };
if (process.env.HB_GATEWAY_URL) {
  const gateway = origin("HB_GATEWAY_URL");
  names[gateway] = "gateway";
  process.env.GRAPHQL_URL = `${gateway}/graphql`;
}
installOfflineFetch(names);
const { connect, createSigner } = await import("@permaweb/aoconnect");

run(async () => {
  const wallet = freshSigner(process.env.HB_AO_SIGNER ?? "rsa", createSigner);
  const ao = connect({ MODE: "mainnet", URL: node, signer: wallet.signer });
  const script = readFileSync(new URL("./counter.lua", import.meta.url), "utf8");

  const processId = await ao.spawn({
    module: MODULE,
    // The exact key aoconnect uses, so this value replaces genesis-wasm@1.0.
    tags: [
      { name: "execution-device", value: "lua@5.3a" },
      { name: "Name", value: "hb-aoconnect-mainnet" },
    ],
    data: script,
  });
  const slots = [];
  for (let i = 1; i <= INCS; i++) {
    slots.push(
      await ao.message({
        process: processId,
        tags: [{ name: "Action", value: "Inc" }],
        data: `inc ${i}`,
      }),
    );
  }
  const last = slots[slots.length - 1];
  const bySlot = await ao.result({ process: processId, slot: last });
  // The first message's ID, from the request that carried it.
  const sent = requests.filter((r) => r.path.endsWith("~process@1.0/push"));
  const firstId = sent[0]?.item?.id;
  const byMessage = await ao.result({ process: processId, message: firstId });
  const dryGet = await ao.dryrun({ process: processId, tags: [{ name: "Action", value: "Get" }] });
  const dryInc = await ao.dryrun({ process: processId, tags: [{ name: "Action", value: "Inc" }] });
  const dryGetAfter = await ao.dryrun({
    process: processId,
    tags: [{ name: "Action", value: "Get" }],
  });
  const latest = await ao.results({ process: processId });

  return {
    mode: "mainnet",
    signature_type: wallet.type,
    address: wallet.address,
    process: processId,
    messages: sent.map((r) => r.item?.id),
    slots,
    result_by_slot: brief(bySlot),
    result_by_message: brief(byMessage),
    dryrun_get: brief(dryGet),
    dryrun_inc: brief(dryInc),
    dryrun_get_after: brief(dryGetAfter),
    results: { cursor: latest.edges?.[0]?.cursor, node: brief(latest.edges?.[0]?.node) },
  };
});

/** What a result carries that the test checks. */
function brief(r) {
  return {
    Output: r?.Output,
    Messages: r?.Messages,
    Error: r?.Error,
  };
}
