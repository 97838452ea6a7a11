// Compile contracts/*.sol with solcjs (npm `solc`, pinned in package-lock.json) into build/<Contract>.json
// ({abi, bytecode, deployedBytecode}); memebot.testing runs it when a source is newer than its output.
const fs = require("fs");
const path = require("path");
const solc = require("solc");
const src = path.join(__dirname, "contracts");
const out = path.join(__dirname, "build");
const sources = {};
for (const f of fs.readdirSync(src).filter((f) => f.endsWith(".sol")).sort())
  sources[f] = { content: fs.readFileSync(path.join(src, f), "utf8") };
const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "paris",
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
  },
};
const res = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (res.errors || []).filter((e) => e.severity === "error");
if (errors.length) {
  for (const e of errors) console.error(e.formattedMessage);
  process.exit(1);
}
fs.mkdirSync(out, { recursive: true });
for (const [file, contracts] of Object.entries(res.contracts))
  for (const [name, c] of Object.entries(contracts))
    fs.writeFileSync(
      path.join(out, name + ".json"),
      JSON.stringify({ abi: c.abi, bytecode: "0x" + c.evm.bytecode.object,
                       deployedBytecode: "0x" + c.evm.deployedBytecode.object, source: file, solc: solc.version() })
    );
console.log(`compiled ${Object.keys(sources).length} file(s) with solc ${solc.version()} into ${out}`);
