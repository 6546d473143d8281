// Validates the custom resources in rendered manifests against the precompiled schemas of
// the `kubernetes-models` packages (KEDA, Istio, prometheus-operator): types, enums and
// required fields. Core kinds are left to kubernetes-validate, operator CRs to
// check_rendered.py; any other API group is an error, so a new CRD cannot slip through
// unvalidated.
//
// usage: node validate-crds.mjs FILE...   (resolves packages from NODE_PATH)
// Prints one "PASS crds <file>" or "FAIL crds <file>" line per file, errors indented below;
// exits 1 when any file fails.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join } from "node:path";
import { pathToFileURL } from "node:url";

const require = createRequire(process.env.NODE_PATH.split(":")[0] + "/");
const yaml = require("js-yaml");

const MODELS = {
  "keda.sh": "@kubernetes-models/keda",
  "security.istio.io": "@kubernetes-models/istio",
  "networking.istio.io": "@kubernetes-models/istio",
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
};
// Checked elsewhere: core and built-in groups (kubernetes-validate) and the operators' CRs
// (check_rendered.py, against cr-subset.schema.json, which also rejects unknown fields in
// the objects validated here).
const ELSEWHERE = new Set([
  "", "apps", "batch", "policy", "autoscaling", "networking.k8s.io", "rbac.authorization.k8s.io",
  "postgresql.cnpg.io", "kafka.strimzi.io", "flink.apache.org",
]);

async function modelFor(apiVersion, kind) {
  const group = apiVersion.includes("/") ? apiVersion.split("/")[0] : "";
  const version = apiVersion.split("/").pop();
  if (ELSEWHERE.has(group)) return null;
  const pkg = MODELS[group];
  if (!pkg) throw new Error(`no validator for ${apiVersion} ${kind}`);
  // The packages export ESM only: import the model file from the package directory.
  const dir = dirname(require.resolve(`${pkg}/package.json`));
  const mod = await import(pathToFileURL(join(dir, group, version, `${kind}.js`)).href);
  return mod[kind];
}

let failed = false;
for (const file of process.argv.slice(2)) {
  const errors = [];
  let checked = 0;
  const docs = yaml.loadAll(readFileSync(file, "utf8")).filter((d) => d && d.kind);
  for (const doc of docs) {
    const where = `${doc.kind} ${doc.metadata?.namespace ?? "-"}/${doc.metadata?.name}`;
    try {
      const Model = await modelFor(doc.apiVersion, doc.kind);
      if (!Model) continue;
      checked++;
      new Model(doc).validate();
    } catch (e) {
      errors.push(`${where}: ${e.message}`);
    }
  }
  failed ||= errors.length > 0;
  console.log(`${errors.length ? "FAIL" : "PASS"} crds ${basename(file)} (${checked} custom resources)`);
  for (const e of errors) console.log(`    ${e}`);
}
process.exit(failed ? 1 : 0);
