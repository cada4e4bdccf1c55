#!/usr/bin/env node
// Compiles contracts/src/*.sol with the npm solc (imports resolved from node_modules) into contracts/out/<Name>.json
// ({abi, bytecode}). With --check, compiles in memory and fails if a committed artifact differs, so the artifacts
// in the repository are provably what the pinned compiler makes of the sources.
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const root = path.resolve(__dirname, "..");
const srcDir = path.join(__dirname, "src");
const outDir = path.join(__dirname, "out");
const check = process.argv.includes("--check");

const sources = {};
for (const f of fs.readdirSync(srcDir).filter((f) => f.endsWith(".sol")).sort()) {
  sources[f] = { content: fs.readFileSync(path.join(srcDir, f), "utf8") };
}
const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "cancun",
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};
function findImports(p) {
  const full = path.join(root, "node_modules", p);
  if (fs.existsSync(full)) return { contents: fs.readFileSync(full, "utf8") };
  return { error: `not found: ${p}` };
}
const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const errors = (output.errors || []).filter((e) => e.severity === "error");
if (errors.length) {
  for (const e of errors) console.error(e.formattedMessage);
  process.exit(1);
}
let problems = 0;
let written = 0;
for (const file of Object.keys(sources)) {
  for (const [name, c] of Object.entries(output.contracts[file] || {})) {
    if (!c.evm.bytecode.object) continue; // interfaces: nothing to deploy
    const artifact = JSON.stringify({ compiler: solc.version(), abi: c.abi, bytecode: "0x" + c.evm.bytecode.object }, null, 1) + "\n";
    const target = path.join(outDir, `${name}.json`);
    if (check) {
      if (!fs.existsSync(target) || fs.readFileSync(target, "utf8") !== artifact) {
        console.error(`differs from what solc ${solc.version()} makes: ${path.relative(root, target)}`);
        problems++;
      }
    } else {
      fs.mkdirSync(outDir, { recursive: true });
      fs.writeFileSync(target, artifact);
      written++;
    }
  }
}
if (check) {
  if (problems) process.exit(1);
  console.log(`contract artifacts in ${path.relative(root, outDir)} are up to date (solc ${solc.version()})`);
} else {
  console.log(`wrote ${written} artifacts to ${path.relative(root, outDir)} with solc ${solc.version()}`);
}
