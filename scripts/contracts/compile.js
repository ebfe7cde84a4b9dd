// Compiles crates/evm/contracts/*.sol with solcjs (the version pinned in package.json) and writes
// each contract's runtime bytecode as hex to crates/evm/contracts/<Name>.bin-runtime, which the
// gigagas workloads embed. Regenerate with:
//
//     npm ci --prefix scripts/contracts && node scripts/contracts/compile.js
//
// The settings (optimizer on, 200 runs, EVM version cancun) are part of the output: change them
// here only, and commit the regenerated .bin-runtime files with the source.
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const dir = path.join(__dirname, "..", "..", "crates", "evm", "contracts");
const sources = {};
for (const file of fs.readdirSync(dir).filter((f) => f.endsWith(".sol")).sort()) {
  sources[file] = { content: fs.readFileSync(path.join(dir, file), "utf8") };
}
const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "cancun",
    outputSelection: { "*": { "*": ["evm.deployedBytecode.object", "storageLayout"] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) console.error(e.formattedMessage);
if (errors.length > 0) process.exit(1);

console.log(`solc ${solc.version()}`);
for (const [file, contracts] of Object.entries(output.contracts)) {
  for (const [name, c] of Object.entries(contracts)) {
    if (c.evm.deployedBytecode.object.length === 0) continue; // interfaces
    const out = path.join(dir, `${name}.bin-runtime`);
    fs.writeFileSync(out, c.evm.deployedBytecode.object + "\n");
    const layout = c.storageLayout.storage.map((s) => `${s.label}@${s.slot}+${s.offset}`).join(" ");
    console.log(`${file}:${name}: ${c.evm.deployedBytecode.object.length / 2} bytes -> ${path.relative(process.cwd(), out)}; storage ${layout}`);
  }
}
