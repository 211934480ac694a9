// Generates ANS-104 fixtures with arbundles (npm @dha-team/arbundles 1.0.4),
// for hb-ans104's tests. Run from a directory where that package is
// installed, with rsa4096-test-key.der next to this script:
//   npm install @dha-team/arbundles@1.0.4 axios && node gen-arbundles-fixtures.cjs > arbundles-fixtures.txt 2> arbundles-bundle.txt
// Output: one line per item, "<name> <item ID> <owner address> <hex bytes>";
// on stderr, a bundle: run with 2> arbundles-bundle.txt.
const crypto = require("crypto");
const fs = require("fs");
const path = require("path");
const bs58 = require("bs58");
const { Wallet } = require("@ethersproject/wallet");
const {
  createData, ArweaveSigner, EthereumSigner, bundleAndSignData,
} = require("@dha-team/arbundles");

const tags = [
  { name: "Data-Protocol", value: "ao" },
  { name: "Action", value: "Eval" },
  { name: "Action", value: "Again" },
  { name: "Empty", value: "" },
];
const target = "fixtureTargetfixtureTargetfixtureTargetABCD".slice(0, 43);
const anchor = "anchor-anchor-anchor-anchor-0123"; // 32 bytes
const data = "1 + 1";

async function main() {
  const out = [];
  const der = fs.readFileSync(path.join(__dirname, "rsa4096-test-key.der"));
  const jwk = crypto.createPrivateKey({ key: der, format: "der", type: "pkcs1" })
    .export({ format: "jwk" });
  const arweave = new ArweaveSigner(jwk);
  const a = createData(data, arweave, { tags, target, anchor });
  await a.sign(arweave);
  out.push(["type1-salt-default", a]);
  // The same fields signed with salt length 32.
  const b = createData(data, arweave, { tags, target, anchor });
  const msg = await b.getSignatureData();
  const sig = crypto.sign("sha256", Buffer.from(msg), {
    key: crypto.createPrivateKey({ key: der, format: "der", type: "pkcs1" }),
    padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
    saltLength: 32,
  });
  await b.setSignature(sig);
  out.push(["type1-salt-32", b]);

  const seed = Buffer.alloc(32, 9);
  const edPriv = crypto.createPrivateKey({
    key: Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]),
    format: "der", type: "pkcs8",
  });
  const edPub = crypto.createPublicKey(edPriv).export({ format: "der", type: "spki" }).subarray(12);
  const { default: SolanaSigner } = require("@dha-team/arbundles/build/node/cjs/src/signing/chains/SolanaSigner");
  const sol = new SolanaSigner((bs58.default || bs58).encode(Buffer.concat([seed, edPub])));
  const c = createData(data, sol, { tags });
  await c.sign(sol);
  out.push(["type2", c]);
  const d = createData("", sol, {});
  await d.sign(sol);
  out.push(["type2-bare", d]);

  const eth = new EthereumSigner("05".repeat(32));
  const e = createData(data, eth, { tags, anchor });
  await e.sign(eth);
  out.push(["type3", e]);

  for (const [name, item] of out) {
    if (!(await item.isValid())) throw new Error(name + " does not verify in arbundles");
    const addr = name.startsWith("type3")
      ? new Wallet("0x" + "05".repeat(32)).address.toLowerCase()
      : crypto.createHash("sha256").update(item.rawOwner).digest("base64url");
    console.log(name, item.id, addr, Buffer.from(item.getRaw()).toString("hex"));
  }
  // A bundle of three type-2 items, written to stderr:
  // "bundle <item IDs joined by ','> <hex bytes>".
  const items = [
    createData("first", sol, { tags }),
    createData("", sol, {}),
    createData("third", sol, { anchor }),
  ];
  const bundle = await bundleAndSignData(items, sol);
  console.error("bundle", bundle.getIds().join(","), Buffer.from(bundle.getRaw()).toString("hex"));
}
main().catch((e) => { console.error(e); process.exit(1); });
