// validate-k8s.js - offline schema validation of Kubernetes objects.
//
//   node validate-k8s.js FILE.yaml...     (FILE may be /dev/stdin)
//
// Every object is checked against the JSON schema of its apiVersion/kind:
// kubernetes-models (Kubernetes 1.27 core and apps, autoscaling/v2, policy/v1,
// networking.k8s.io/v1, ...), @kubernetes-models/keda (ScaledObject,
// TriggerAuthentication) and @kubernetes-models/prometheus-operator
// (ServiceMonitor, PrometheusRule). An object of a kind none of them knows is
// a failure, not a skip. Prints one line per object and "N passed, N failed";
// exits 1 when any failed. As a module: validate(doc) returns a list of
// error strings (empty when valid).
'use strict';
const fs = require('fs');
const yaml = require('js-yaml');

function modelFor(apiVersion, kind) {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  const paths = group === ''
    ? [`kubernetes-models/${version}/${kind}`]
    : [`kubernetes-models/${group}/${version}/${kind}`,
       `@kubernetes-models/keda/${group}/${version}/${kind}`,
       `@kubernetes-models/prometheus-operator/${group}/${version}/${kind}`];
  for (const p of paths) {
    try { return require(p)[kind]; } catch (e) {
      if (e.code !== 'MODULE_NOT_FOUND' && e.code !== 'ERR_PACKAGE_PATH_NOT_EXPORTED') throw e;
    }
  }
  return null;
}

function validate(doc) {
  const M = modelFor(doc.apiVersion || '', doc.kind || '');
  if (!M) return [`no schema for ${doc.apiVersion}/${doc.kind}`];
  try {
    new M(doc).validate();
    return [];
  } catch (e) {
    return (e.errors || [e]).map((er) => `${er.instancePath || ''} ${er.message}`);
  }
}

function main(files) {
  let bad = 0, n = 0;
  for (const f of files) {
    for (const doc of yaml.loadAll(fs.readFileSync(f, 'utf8'))) {
      if (!doc) continue;
      n++;
      const id = `${f}: ${doc.kind}/${doc.metadata && doc.metadata.name}`;
      const errors = validate(doc);
      if (errors.length === 0) { console.log(`ok      ${id}`); continue; }
      bad++;
      console.log(`INVALID ${id}`);
      for (const e of errors) console.log(`   ${e}`);
    }
  }
  console.log(`${n - bad} passed, ${bad} failed`);
  return bad ? 1 : 0;
}

module.exports = { validate, modelFor };
if (require.main === module) process.exit(main(process.argv.slice(2)));
