// static_test.js - the offline half of tests/chart/run: the chart is linted,
// rendered and checked without any cluster.
//
//   HELM=/path/to/helm NODE_PATH=.../node_modules node tests/chart/static_test.js
//
// Checks, each printed as "ok" or "FAIL", then "N passed, N failed":
//   * helm lint --strict with the default values and with every ci/ file;
//   * helm template with the same values: every rendered object passes the
//     schema of its kind (validate-k8s.js; a broken object must fail it);
//   * every bad-values/ file is rejected with its "# expect:" message;
//   * values.yaml and values.schema.json name the same keys, and every key of
//     values.yaml is documented by a comment that starts with its name;
//   * on every render: names, labels and selectors (stable across an upgrade
//     and equal to selectors.snapshot.json), security contexts and probes on
//     every container, the config checksum, the worker's grace period above
//     its drain budget, no replicas when autoscaling, one replica owner, PDBs,
//     Services and probes pointing at declared ports;
//   * autoscaling: the HPA's target, the KEDA threshold and the demand query
//     follow worker.concurrency and worker.queues; the HPA annotation, the
//     KEDA trigger and the prometheus-adapter rule in NOTES.txt carry the
//     same query; the Redis trigger's keys use jobmill's slot tags;
//   * hostNetwork: one Deployment per replica on distinct ports;
//   * the generated config, the PrometheusRule and the dashboard ConfigMap
//     carry exactly what they should; k8s/ is listed by its kustomization.
'use strict';
const assert = require('assert');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const yaml = require('js-yaml');
const { validate } = require('./validate-k8s');

const ROOT = path.resolve(__dirname, '..', '..');
const CHART = path.join(ROOT, 'charts', 'jobmill');
const CI_DIR = path.join(CHART, 'ci');
const BAD_DIR = path.join(__dirname, 'bad-values');
const HELM = process.env.HELM || 'helm';
const KUBE_VERSION = '1.30.0';
const SNAPSHOT = path.join(__dirname, 'selectors.snapshot.json');

// ---- helpers ----

function helm(args, env) {
  const p = spawnSync(HELM, args, {
    encoding: 'utf8', maxBuffer: 64 << 20,
    env: Object.assign({}, process.env, { KUBECONFIG: '/dev/null' }, env || {}),
  });
  if (p.error) throw p.error;
  return p;
}

// render returns the parsed objects of `helm template` (test hooks included).
function render({ files = [], sets = [], chart = CHART, release = 'jobmill', namespace = 'default' } = {}) {
  const args = ['template', release, chart, '--namespace', namespace, '--kube-version', KUBE_VERSION];
  for (const f of files) args.push('-f', f);
  for (const s of sets) args.push('--set', s);
  const p = helm(args);
  if (p.status !== 0) throw new Error(`helm ${args.join(' ')} failed:\n${p.stderr}`);
  return yaml.loadAll(p.stdout).filter(Boolean);
}

const ciFiles = fs.readdirSync(CI_DIR).filter((f) => f.endsWith('.yaml')).sort()
  .map((f) => path.join(CI_DIR, f));
const variants = [{ name: 'default values', files: [] }]
  .concat(ciFiles.map((f) => ({ name: `ci/${path.basename(f)}`, files: [f] })));
const rendered = new Map(); // variant name -> objects
function objects(variant) {
  if (!rendered.has(variant.name)) rendered.set(variant.name, render({ files: variant.files }));
  return rendered.get(variant.name);
}

const byKind = (objs, kind) => objs.filter((o) => o.kind === kind);
const named = (objs, kind, name) => objs.find((o) => o.kind === kind && o.metadata.name === name);
const isHook = (o) => Boolean(o.metadata.annotations && o.metadata.annotations['helm.sh/hook']);
function podSpecs(objs) { // [{owner, spec, labels, annotations}] of every pod template and Pod
  const out = [];
  for (const o of objs) {
    if (o.kind === 'Deployment' || o.kind === 'StatefulSet') {
      out.push({ owner: `${o.kind}/${o.metadata.name}`, spec: o.spec.template.spec,
                 labels: o.spec.template.metadata.labels || {},
                 annotations: o.spec.template.metadata.annotations || {} });
    } else if (o.kind === 'Pod') {
      out.push({ owner: `Pod/${o.metadata.name}`, spec: o.spec, labels: o.metadata.labels || {},
                 annotations: o.metadata.annotations || {} });
    }
  }
  return out;
}
const component = (o) => o.metadata.labels && o.metadata.labels['app.kubernetes.io/component'];
const workerDeployments = (objs) => byKind(objs, 'Deployment').filter((d) => component(d) === 'worker');
function envOf(container) {
  const m = {};
  for (const e of container.env || []) m[e.name] = e.value !== undefined ? e.value : e.valueFrom;
  return m;
}
function configOf(objs) {
  const cm = byKind(objs, 'ConfigMap').find((c) => c.metadata.name.endsWith('-config'));
  return yaml.load(cm.data['jobmill.yaml']);
}
const sha256 = (s) => crypto.createHash('sha256').update(s).digest('hex');
// listenPort: the port a jobmill container listens on (from its env), or
// its declared port for others (Redis).
function listenPort(c) {
  const env = envOf(c);
  const listen = env.JOBMILL_LISTEN || env.JOBMILL_METRICS_LISTEN;
  return listen ? Number(listen.split(':').pop()) : (c.ports || [])[0].containerPort;
}
// servesPort: a named port the container declares for its listener, or the
// listener's number (hostNetwork declares no ports).
function servesPort(c, port) {
  if (typeof port === 'number') return port === listenPort(c);
  return (c.ports || []).some((p) => p.name === port && p.containerPort === listenPort(c));
}

// jobmill's slot tag (libshared jm_slot_tag): CRC16-XMODEM mod 16384, 4 hex digits.
function slotTag(queue) {
  let crc = 0;
  for (const byte of Buffer.from(queue, 'utf8')) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return (crc % 16384).toString(16).padStart(4, '0');
}

// ---- the runner ----

let passed = 0, failed = 0;
function check(name, fn) {
  try {
    fn();
    passed++;
    console.log(`ok      ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL    ${name}`);
    for (const line of String(e && e.stack ? e.message : e).split('\n').slice(0, 40)) console.log(`   ${line}`);
  }
}

// ---- lint, render, validate ----

for (const v of variants) {
  check(`helm lint --strict (${v.name})`, () => {
    const args = ['lint', '--strict', CHART];
    for (const f of v.files) args.push('-f', f);
    const p = helm(args);
    assert.strictEqual(p.status, 0, p.stdout + p.stderr);
  });
  check(`every object validates against its schema (${v.name})`, () => {
    const objs = objects(v);
    assert(objs.length > 5, `only ${objs.length} objects rendered`);
    const errors = [];
    for (const o of objs) {
      for (const e of validate(o)) errors.push(`${o.kind}/${o.metadata.name}: ${e}`);
    }
    assert.deepStrictEqual(errors, []);
  });
}

check('the validator rejects a broken object (negative control)', () => {
  const d = JSON.parse(JSON.stringify(named(objects(variants[0]), 'Deployment', 'jobmill-worker')));
  d.spec.replicas = 'two';
  delete d.spec.template.spec.containers[0].image;
  d.spec.template.spec.containers[0].ports[0].containerPort = 'metrics';
  assert(validate(d).length >= 2, 'a Deployment with a string replicas passed');
  assert(validate({ apiVersion: 'keda.sh/v1alpha1', kind: 'ScaledObject', metadata: { name: 'x' }, spec: {} }).length > 0);
  assert(validate({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'x' } }).length > 0,
    'an unknown kind passed');
});

// ---- bad values ----

for (const f of fs.readdirSync(BAD_DIR).filter((x) => x.endsWith('.yaml')).sort()) {
  check(`bad values rejected: ${f}`, () => {
    const file = path.join(BAD_DIR, f);
    const expect = (fs.readFileSync(file, 'utf8').match(/^# expect: (.+)$/m) || [])[1];
    assert(expect, `${f} has no "# expect:" line`);
    const p = helm(['template', 'jobmill', CHART, '-f', file, '--kube-version', KUBE_VERSION]);
    assert.notStrictEqual(p.status, 0, `helm template accepted ${f}`);
    assert(p.stderr.includes(expect), `expected "${expect}" in:\n${p.stderr}`);
    // and so does `helm install` (client-side dry run: it renders like the real one)
    const inst = helm(['install', 'jobmill', CHART, '--dry-run=client', '-f', file]);
    assert.notStrictEqual(inst.status, 0, `helm install accepted ${f}`);
    assert(inst.stderr.includes(expect), `expected "${expect}" from helm install in:\n${inst.stderr}`);
  });
}

check('Chart.yaml: apiVersion v2, SemVer version, appVersion = the project version', () => {
  const chart = yaml.load(fs.readFileSync(path.join(CHART, 'Chart.yaml'), 'utf8'));
  const project = fs.readFileSync(path.join(ROOT, 'CMakeLists.txt'), 'utf8').match(/project\(jobmill VERSION ([0-9][0-9A-Za-z.-]*)/)[1];
  assert.strictEqual(chart.apiVersion, 'v2');
  assert.match(chart.version, /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/);
  assert.strictEqual(chart.appVersion, project);
  const api = named(objects(variants[0]), 'Deployment', 'jobmill-api');
  assert.strictEqual(api.spec.template.spec.containers[0].image, `localhost/jobmill-api:${project}`);
});

// ---- values.yaml and the schema ----

const valuesText = fs.readFileSync(path.join(CHART, 'values.yaml'), 'utf8');
const values = yaml.load(valuesText);
const schema = JSON.parse(fs.readFileSync(path.join(CHART, 'values.schema.json'), 'utf8'));

function resolve(node) {
  while (node && node.$ref) node = node.$ref.split('/').slice(1).reduce((n, k) => n[k], schema);
  return node;
}

check('values.yaml and values.schema.json name the same keys', () => {
  const problems = [];
  (function walk(v, s, p) {
    s = resolve(s);
    if (!s || !s.properties || v === null || typeof v !== 'object' || Array.isArray(v)) return;
    for (const k of Object.keys(v)) {
      if (!(k in s.properties)) problems.push(`${p}${k}: in values.yaml, not in the schema`);
      else walk(v[k], s.properties[k], `${p}${k}.`);
    }
    // (an empty map in values.yaml, like config: {}, is open for its documented keys)
    for (const k of Object.keys(s.properties)) {
      if (!(k in v) && Object.keys(v).length > 0) problems.push(`${p}${k}: in the schema, not in values.yaml`);
    }
    if (s.additionalProperties !== false) problems.push(`${p || '(top level)'}: schema allows unknown keys`);
  })(values, schema, '');
  assert.deepStrictEqual(problems, []);
});

check('every key of values.yaml is documented by a comment starting with its name', () => {
  const lines = valuesText.split('\n');
  const stack = []; // [{indent, key, documented}]
  const problems = [];
  for (let i = 0; i < lines.length; i++) {
    const m = lines[i].match(/^( *)([A-Za-z_][A-Za-z0-9_]*):(.*)$/);
    if (!m) continue;
    const indent = m[1].length;
    while (stack.length && stack[stack.length - 1].indent >= indent) stack.pop();
    const keyPath = stack.map((s) => s.key).concat(m[2]).join('.');
    // the comment block right above the key
    const comment = [];
    for (let j = i - 1; j >= 0 && /^\s*#/.test(lines[j]); j--) comment.unshift(lines[j].trim());
    const covered = stack.some((s) => s.documented);
    const documented = comment.length > 0 && new RegExp(`^# (${keyPath.replace(/\./g, '\\.')}|${m[2]})\\b`)
      .test(comment.find((c) => !c.startsWith('# yaml-language-server')) || '');
    const next = lines.slice(i + 1).find((l) => l.trim() && !/^\s*#/.test(l)) || '';
    const isParent = m[3].trim() === '' && /^( *)/.exec(next)[1].length > indent && !/^\s*-/.test(next);
    if (!documented && !covered && !isParent) problems.push(`line ${i + 1}: ${keyPath}`);
    stack.push({ indent, key: m[2], documented: documented || covered });
  }
  assert.deepStrictEqual(problems, [], 'undocumented keys');
});

// ---- every render ----

const DNS1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const SELECTOR_KEYS = new Set(['app.kubernetes.io/name', 'app.kubernetes.io/instance',
  'app.kubernetes.io/component', 'jobmill.io/host-slot']);

for (const v of variants) {
  const objs = () => objects(v);

  check(`names, labels and namespaces (${v.name})`, () => {
    for (const o of objs()) {
      const id = `${o.kind}/${o.metadata.name}`;
      assert(DNS1123.test(o.metadata.name) && o.metadata.name.length <= 63, `${id}: bad name`);
      assert(!('namespace' in o.metadata), `${id} sets metadata.namespace`);
      const l = o.metadata.labels || {};
      for (const k of ['app.kubernetes.io/name', 'app.kubernetes.io/instance', 'app.kubernetes.io/managed-by',
        'helm.sh/chart']) assert(l[k], `${id} lacks label ${k}`);
      for (const [k, val] of Object.entries(l)) assert(String(val).length <= 63, `${id}: label ${k} too long`);
    }
    for (const d of byKind(objs(), 'Deployment')) {
      assert(['api', 'worker', 'janitor'].includes(component(d)), `Deployment/${d.metadata.name} has no component`);
    }
  });

  check(`selectors: only stable labels, matching their pods (${v.name})`, () => {
    for (const o of objs().filter((x) => x.kind === 'Deployment' || x.kind === 'StatefulSet')) {
      const sel = o.spec.selector.matchLabels;
      for (const k of Object.keys(sel)) assert(SELECTOR_KEYS.has(k), `${o.metadata.name}: selector key ${k}`);
      for (const [k, val] of Object.entries(sel)) {
        assert.strictEqual(o.spec.template.metadata.labels[k], val, `${o.metadata.name}: pods lack ${k}=${val}`);
      }
    }
    // Services and PDBs select pods that exist, Services on ports they declare.
    const pods = podSpecs(objs().filter((o) => !isHook(o)));
    const selects = (sel) => pods.filter((p) => Object.entries(sel).every(([k, val]) => p.labels[k] === val));
    for (const s of byKind(objs(), 'Service')) {
      const chosen = selects(s.spec.selector);
      assert(chosen.length > 0, `Service/${s.metadata.name} selects no pod`);
      for (const port of s.spec.ports) {
        for (const p of chosen) {
          assert(servesPort(p.spec.containers[0], port.targetPort), `Service/${s.metadata.name}: ${p.owner} has no port ${port.targetPort}`);
        }
      }
    }
    for (const b of byKind(objs(), 'PodDisruptionBudget')) {
      assert(selects(b.spec.selector.matchLabels).length > 0, `PDB/${b.metadata.name} selects no pod`);
    }
  });

  check(`security contexts on every pod and container (${v.name})`, () => {
    for (const p of podSpecs(objs())) {
      const sc = p.spec.securityContext || {};
      assert.strictEqual(sc.runAsNonRoot, true, `${p.owner}: runAsNonRoot`);
      assert(sc.runAsUser > 0, `${p.owner}: runAsUser`);
      assert.strictEqual((sc.seccompProfile || {}).type, 'RuntimeDefault', `${p.owner}: seccomp`);
      assert.strictEqual(p.spec.automountServiceAccountToken, false, `${p.owner}: token mounted`);
      for (const c of (p.spec.initContainers || []).concat(p.spec.containers)) {
        const cs = c.securityContext || {};
        const id = `${p.owner}/${c.name}`;
        assert.strictEqual(cs.readOnlyRootFilesystem, true, `${id}: readOnlyRootFilesystem`);
        assert.strictEqual(cs.allowPrivilegeEscalation, false, `${id}: allowPrivilegeEscalation`);
        assert.strictEqual(cs.runAsNonRoot, true, `${id}: runAsNonRoot`);
        assert.deepStrictEqual((cs.capabilities || {}).drop, ['ALL'], `${id}: capabilities`);
        assert.strictEqual((cs.seccompProfile || {}).type, 'RuntimeDefault', `${id}: seccomp`);
        assert(!(cs.capabilities || {}).add, `${id}: adds capabilities`);
        assert(!cs.privileged, `${id}: privileged`);
      }
    }
  });

  check(`probes, ports, images and the config checksum (${v.name})`, () => {
    const all = objs();
    for (const d of byKind(all, 'Deployment')) {
      const t = d.spec.template;
      assert(/^[0-9a-f]{64}$/.test(t.metadata.annotations['checksum/config']), `${d.metadata.name}: checksum/config`);
      const [c] = t.spec.containers;
      assert.strictEqual(t.spec.containers.length, 1);
      assert.strictEqual(c.livenessProbe.httpGet.path, '/healthz', `${d.metadata.name}: liveness`);
      assert.strictEqual(c.readinessProbe.httpGet.path, '/readyz', `${d.metadata.name}: readiness`);
      assert(servesPort(c, c.livenessProbe.httpGet.port) && servesPort(c, c.readinessProbe.httpGet.port),
        `${d.metadata.name}: probes on a port the service does not listen on`);
      if (t.spec.hostNetwork) assert(!c.ports, `${d.metadata.name}: podman 4 refuses declared ports with hostNetwork`);
      else assert.strictEqual(c.ports.length, 1);
      assert(!c.lifecycle, `${d.metadata.name}: a lifecycle hook (a preStop signal would cut the drain short)`);
      assert(!c.command, `${d.metadata.name}: command overrides the image's entrypoint (PID 1 must be the service)`);
      assert.deepStrictEqual(c.args, ['--config', '/etc/jobmill/config/jobmill.yaml']);
      assert(/:[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(c.image) && !c.image.endsWith(':latest'), `${d.metadata.name}: image ${c.image}`);
      const env = envOf(c);
      assert(env.JOBMILL_LISTEN || env.JOBMILL_METRICS_LISTEN, `${d.metadata.name}: no listen address`);
      assert(env.REDIS_URL || (env.REDIS_HOST && env.REDIS_PASSWORD && env.REDIS_PASSWORD.secretKeyRef),
        `${d.metadata.name}: no Redis`);
      if (env.REDIS_PASSWORD) assert(!env.REDIS_URL, `${d.metadata.name}: REDIS_URL would beat REDIS_PASSWORD`);
    }
    const sums = new Set(byKind(all, 'Deployment').map((d) => d.spec.template.metadata.annotations['checksum/config']));
    assert.strictEqual(sums.size, 1, 'components disagree on the config checksum');
    for (const s of byKind(all, 'StatefulSet')) {
      const [c] = s.spec.template.spec.containers;
      assert(c.livenessProbe && c.readinessProbe, `${s.metadata.name}: probes`);
    }
  });

  check(`worker grace period covers the drain; one owner of replicas (${v.name})`, () => {
    const all = objs();
    const cfg = configOf(all);
    const values = yaml.load(fs.readFileSync(path.join(CHART, 'values.yaml'), 'utf8'));
    const given = v.files.length ? yaml.load(fs.readFileSync(v.files[0], 'utf8')) : {};
    const margin = ((given.worker || {}).drainMarginSeconds) || values.worker.drainMarginSeconds;
    const mode = (((given.worker || {}).autoscaling || {}).mode) || 'none';
    for (const d of workerDeployments(all)) {
      const grace = d.spec.template.spec.terminationGracePeriodSeconds;
      const budget = Math.ceil(cfg.worker.shutdown_grace_ms / 1000) + 2; // drain + handler kill grace
      assert(grace >= budget + 3, `${d.metadata.name}: grace ${grace} s is not above the drain budget ${budget} s + 3`);
      assert.strictEqual(grace, budget + margin);
      const env = envOf(d.spec.template.spec.containers[0]);
      assert(!('JOBMILL_SHUTDOWN_GRACE_MS' in env), 'the drain budget must come from the config file only');
      if (mode === 'none') assert(Number.isInteger(d.spec.replicas), `${d.metadata.name}: replicas missing`);
      else assert(!('replicas' in d.spec), `${d.metadata.name}: replicas set although ${mode} owns the count`);
      if (!v.name.includes('host-network')) {
        assert.strictEqual(d.spec.strategy.rollingUpdate.maxUnavailable, 0, 'workers must surge, not drop, on a rollout');
        assert(d.spec.template.spec.topologySpreadConstraints.length > 0, 'no topology spread for workers');
      }
    }
    const hpas = byKind(all, 'HorizontalPodAutoscaler');
    const keda = byKind(all, 'ScaledObject');
    assert.strictEqual(hpas.length, mode === 'hpa' ? 1 : 0);
    assert.strictEqual(keda.length, mode === 'keda' ? 1 : 0);
    for (const a of hpas.concat(keda)) {
      const target = a.spec.scaleTargetRef.name;
      assert(workerDeployments(all).some((d) => d.metadata.name === target), `${a.kind} targets ${target}`);
    }
    for (const h of hpas) assert(h.spec.behavior.scaleDown.stabilizationWindowSeconds >= 60, 'scale-in must be damped');
    for (const k of keda) {
      assert(k.spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.stabilizationWindowSeconds >= 60);
    }
  });
}

// ---- selectors across upgrades ----

function selectorsOf(objs) {
  const out = {};
  for (const o of objs) {
    if (o.spec && o.spec.selector && (o.kind === 'Deployment' || o.kind === 'StatefulSet')) {
      out[`${o.kind}/${o.metadata.name}`] = o.spec.selector.matchLabels;
    }
  }
  return out;
}

check('selectors equal selectors.snapshot.json (immutable once installed)', () => {
  const got = selectorsOf(render({ sets: ['redis.deploy=true'] }));
  const want = JSON.parse(fs.readFileSync(SNAPSHOT, 'utf8'));
  assert.deepStrictEqual(got, want, 'selectors changed: existing releases could not be upgraded');
});

check('an upgrade (new chart version, appVersion, image tag, values) keeps every selector', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'jobmill-chart-'));
  try {
    const copy = path.join(tmp, 'jobmill');
    fs.cpSync(CHART, copy, { recursive: true });
    const chartYaml = path.join(copy, 'Chart.yaml');
    fs.writeFileSync(chartYaml, fs.readFileSync(chartYaml, 'utf8')
      .replace(/^version: .*$/m, 'version: 9.9.9').replace(/^appVersion: .*$/m, 'appVersion: "9.9.9"'));
    const before = render({ sets: ['redis.deploy=true'] });
    const after = render({ chart: copy, sets: ['redis.deploy=true', 'image.tag=9.9.9', 'worker.concurrency=32',
      'worker.autoscaling.mode=keda', 'worker.autoscaling.keda.serverAddress=http://p:9090'] });
    assert.deepStrictEqual(selectorsOf(after), selectorsOf(before));
    const labels = named(after, 'Deployment', 'jobmill-worker').metadata.labels;
    assert.strictEqual(labels['helm.sh/chart'], 'jobmill-9.9.9', 'the copy was not the one rendered');
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

// ---- autoscaling ----

for (const concurrency of [1, 8, 64]) {
  check(`autoscaling targets follow worker.concurrency=${concurrency}`, () => {
    const sets = [`worker.concurrency=${concurrency}`, 'worker.resources.requests.cpu=100m'];
    const hpa = byKind(render({ sets: sets.concat(['worker.autoscaling.mode=hpa',
      'worker.autoscaling.hpa.external.enabled=true']) }), 'HorizontalPodAutoscaler')[0];
    const ext = hpa.spec.metrics.find((m) => m.type === 'External');
    assert.strictEqual(ext.external.target.type, 'AverageValue');
    assert.strictEqual(ext.external.target.averageValue, String(concurrency));
    const kobjs = render({ sets: sets.concat(['worker.autoscaling.mode=keda',
      'worker.autoscaling.keda.serverAddress=http://prom:9090']) });
    const trigger = byKind(kobjs, 'ScaledObject')[0].spec.triggers[0];
    assert.strictEqual(trigger.metadata.threshold, String(concurrency));
    assert.strictEqual(configOf(kobjs).worker.concurrency, concurrency);
  });
}

check('the HPA annotation, the KEDA trigger and the NOTES.txt adapter rule carry one query', () => {
  const sets = ['worker.queues={default,reports.daily,high-prio}', 'worker.resources.requests.cpu=100m'];
  const hpa = byKind(render({ sets: sets.concat(['worker.autoscaling.mode=hpa',
    'worker.autoscaling.hpa.external.enabled=true']) }), 'HorizontalPodAutoscaler')[0];
  const query = hpa.metadata.annotations['jobmill.io/demand-query'];
  const so = byKind(render({ sets: sets.concat(['worker.autoscaling.mode=keda',
    'worker.autoscaling.keda.serverAddress=http://prom:9090']) }), 'ScaledObject')[0];
  assert.strictEqual(so.spec.triggers[0].metadata.query, query);
  assert(query.includes('queue=~"default|reports\\\\.daily|high-prio"'), query);
  assert(query.includes('job="jobmill-api",namespace="default"'), query);
  assert(query.includes('state="queued"') && query.includes('state="running"') && !query.includes('scheduled'));
  // NOTES.txt (helm install --dry-run=client renders it offline)
  const args = ['install', 'jobmill', CHART, '--dry-run=client',
    '--set', 'worker.autoscaling.mode=hpa', '--set', 'worker.autoscaling.hpa.external.enabled=true'];
  for (const s of sets) args.push('--set', s);
  const p = helm(args);
  assert.strictEqual(p.status, 0, p.stderr);
  const notes = p.stdout.slice(p.stdout.indexOf('NOTES:'));
  const rule = yaml.load(notes.slice(notes.indexOf('    external:')).split('\n  Scale-in')[0]
    .split('\n').map((l) => l.slice(4)).join('\n'));
  assert.strictEqual(rule.external[0].metricsQuery, query);
  assert.strictEqual(rule.external[0].name.as, hpa.spec.metrics.find((m) => m.type === 'External').external.metric.name);
});

check('labelMatchers replace the default job/namespace matchers', () => {
  const objs = render({ namespace: 'jobs', sets: ['worker.autoscaling.mode=keda',
    'worker.autoscaling.keda.serverAddress=http://prom:9090'] });
  assert(byKind(objs, 'ScaledObject')[0].spec.triggers[0].metadata.query.includes('namespace="jobs"'));
  const custom = render({ sets: ['worker.autoscaling.mode=keda', 'worker.autoscaling.keda.serverAddress=http://prom:9090',
    'worker.autoscaling.labelMatchers=cluster="eu1"'] });
  const q = byKind(custom, 'ScaledObject')[0].spec.triggers[0].metadata.query;
  assert(q.includes('cluster="eu1"') && !q.includes('job="'), q);
});

check('the KEDA redis trigger reads the keys jobmill writes (slot tags, prefix, formula)', () => {
  assert.strictEqual(slotTag('default'), '1656'); // the tag of job ids in queue "default"
  assert.strictEqual(slotTag('123456789'), (0x31c3 % 16384).toString(16).padStart(4, '0')); // CRC16-XMODEM check value
  const queues = ['default', 'critical', 'reports.daily', 'a', 'Z_9-x.y', 'q'.repeat(64)];
  const objs = render({ sets: [`worker.queues={${queues.join(',')}}`, 'redis.prefix=jm:prod', 'worker.concurrency=3',
    'worker.autoscaling.mode=keda', 'worker.autoscaling.keda.trigger=redis', 'redis.url=redis://cache:6380/4'] });
  const so = byKind(objs, 'ScaledObject')[0];
  const triggers = so.spec.triggers;
  assert.strictEqual(triggers.length, 3 * queues.length);
  queues.forEach((q, i) => {
    const [pending, prio, active] = [triggers[3 * i], triggers[3 * i + 1], triggers[3 * i + 2]];
    assert.strictEqual(pending.name, `pending_${i}`);
    assert.strictEqual(prio.name, `prio_${i}`);
    assert.strictEqual(pending.metadata.listName, `jm:prod:{${slotTag(q)}}:q:${q}:pending`);
    assert.strictEqual(prio.metadata.listName, `jm:prod:{${slotTag(q)}}:q:${q}:prio`);
    assert.strictEqual(active.metadata.listName, `jm:prod:{${slotTag(q)}}:q:${q}:active`);
    assert.strictEqual(pending.metadata.address, 'cache.default.svc:6380');
    assert.strictEqual(pending.metadata.databaseIndex, '4');
  });
  const mod = so.spec.advanced.scalingModifiers;
  assert.strictEqual(mod.target, '3');
  assert.strictEqual(mod.metricType, 'AverageValue');
  assert.strictEqual(mod.formula, queues.map((_, i) => `pending_${i} + prio_${i} + active_${i}`).join(' + '));
  assert.strictEqual(byKind(objs, 'TriggerAuthentication').length, 0);
  const withSecret = render({ sets: ['redis.existingSecret=r', 'worker.autoscaling.mode=keda',
    'worker.autoscaling.keda.trigger=redis', 'redis.deploy=true'] });
  const ta = byKind(withSecret, 'TriggerAuthentication')[0];
  assert.strictEqual(ta.spec.secretTargetRef[0].name, 'r');
  assert(byKind(withSecret, 'ScaledObject')[0].spec.triggers.every((t) => t.authenticationRef.name === ta.metadata.name));
  const np = byKind(withSecret, 'NetworkPolicy')[0];
  assert(np.spec.ingress[0].from.some((f) => f.namespaceSelector), 'KEDA cannot reach Redis through the NetworkPolicy');
});

check('scale-to-zero only with KEDA; the KEDA fallback keeps a worker', () => {
  const so = byKind(objects(variants.find((v) => v.name === 'ci/keda-values.yaml')), 'ScaledObject')[0];
  assert.strictEqual(so.spec.minReplicaCount, 0);
  assert.strictEqual(so.spec.fallback.replicas, 1);
  assert.strictEqual(so.spec.cooldownPeriod, 300);
});

// ---- hostNetwork ----

check('hostNetwork: one Deployment per replica, every listener on its own port', () => {
  const objs = objects(variants.find((v) => v.name === 'ci/host-network-values.yaml'));
  const deps = byKind(objs, 'Deployment');
  const counts = { api: 0, worker: 0, janitor: 0 };
  const ports = [];
  for (const d of deps) {
    counts[component(d)]++;
    const s = d.spec.template.spec;
    assert.strictEqual(d.spec.replicas, 1, d.metadata.name);
    assert.strictEqual(s.hostNetwork, true);
    assert.strictEqual(s.dnsPolicy, 'ClusterFirstWithHostNet');
    assert.strictEqual(d.spec.strategy.type, 'Recreate', `${d.metadata.name}: a surge pod would take the same port`);
    const c = s.containers[0];
    const listen = envOf(c).JOBMILL_LISTEN || envOf(c).JOBMILL_METRICS_LISTEN;
    assert(listen.startsWith('127.0.0.1:'), listen);
    ports.push(listenPort(c));
    assert.strictEqual(c.readinessProbe.httpGet.port, listenPort(c));
  }
  assert.deepStrictEqual(counts, { api: 1, worker: 3, janitor: 2 });
  assert.strictEqual(new Set(ports).size, ports.length, `ports collide: ${ports}`);
  assert.deepStrictEqual(workerDeployments(objs).map((d) => listenPort(d.spec.template.spec.containers[0])),
    [9090, 9091, 9092]);
  assert.strictEqual(named(objs, 'Service', 'jobmill-api').spec.ports[0].targetPort, 8080);
  // podman kube play rewrites a ConfigMap's volume for every pod it starts: no two share one
  const mounted = deps.map((d) => d.spec.template.spec.volumes.find((v) => v.configMap).configMap.name);
  assert.strictEqual(new Set(mounted).size, deps.length, `Deployments share a config ConfigMap: ${mounted}`);
  for (const name of mounted) assert(named(objs, 'ConfigMap', name), `no ConfigMap ${name}`);
  // the per-replica Deployments do not select each other's pods
  const sels = workerDeployments(objs).map((d) => JSON.stringify(d.spec.selector.matchLabels));
  assert.strictEqual(new Set(sels).size, sels.length);
  const test = byKind(objs, 'Pod')[0];
  assert.strictEqual(test.spec.hostNetwork, true);
  assert.strictEqual(envOf(test.spec.containers[0]).JOBMILL_TEST_ADDRESS, '127.0.0.1:8080');
});

// ---- Redis ----

check('in-chart Redis: AOF, noeviction, a PVC, a NetworkPolicy, and the services pointed at it', () => {
  const objs = objects(variants.find((v) => v.name === 'ci/in-chart-redis-values.yaml'));
  const conf = byKind(objs, 'ConfigMap').find((c) => c.metadata.name === 'jobmill-redis').data['redis.conf'];
  for (const line of ['appendonly yes', 'appendfsync always', 'maxmemory-policy noeviction', 'maxmemory 2gb', 'dir /data']) {
    assert(conf.split('\n').map((l) => l.trim()).includes(line), `redis.conf lacks "${line}"`);
  }
  const sts = named(objs, 'StatefulSet', 'jobmill-redis');
  assert.strictEqual(sts.spec.replicas, 1);
  const claim = sts.spec.volumeClaimTemplates[0];
  assert.strictEqual(claim.spec.resources.requests.storage, '20Gi');
  assert.strictEqual(claim.spec.storageClassName, 'fast-ssd');
  assert(sts.spec.template.spec.containers[0].volumeMounts.some((m) => m.name === 'data' && m.mountPath === '/data'));
  assert(sts.spec.template.metadata.annotations['checksum/config']);
  const np = named(objs, 'NetworkPolicy', 'jobmill-redis');
  assert.deepStrictEqual(np.spec.podSelector.matchLabels, sts.spec.selector.matchLabels);
  const peers = np.spec.ingress[0].from;
  assert.deepStrictEqual(peers[0].podSelector.matchExpressions[0].values, ['api', 'worker', 'janitor']);
  assert.strictEqual(peers[0].podSelector.matchLabels['app.kubernetes.io/instance'], 'jobmill');
  assert(peers.some((p) => p.namespaceSelector && p.namespaceSelector.matchLabels['kubernetes.io/metadata.name'] === 'backup'));
  for (const d of byKind(objs, 'Deployment')) {
    const env = envOf(d.spec.template.spec.containers[0]);
    assert.strictEqual(env.REDIS_HOST, 'jobmill-redis');
    assert.strictEqual(env.REDIS_PORT, '6379');
    assert.strictEqual(env.REDIS_PASSWORD.secretKeyRef.name, 'jobmill-redis');
  }
  const noSecret = render({ sets: ['redis.deploy=true'] });
  for (const d of byKind(noSecret, 'Deployment')) {
    assert.strictEqual(envOf(d.spec.template.spec.containers[0]).REDIS_URL, 'redis://jobmill-redis:6379/0');
  }
  assert.strictEqual(byKind(render({}), 'StatefulSet').length, 0, 'Redis deployed although redis.deploy is false');
});

check('Redis Cluster and Sentinel: seeds and sentinels reach every service', () => {
  const cl = objects(variants.find((v) => v.name === 'ci/redis-cluster-values.yaml'));
  for (const d of byKind(cl, 'Deployment')) {
    const env = envOf(d.spec.template.spec.containers[0]);
    assert.strictEqual(env.REDIS_CLUSTER, 'redis-cluster-0.redis-cluster.data.svc.cluster.local:6379,' +
      'redis-cluster-1.redis-cluster.data.svc.cluster.local:6379,redis-cluster-2.redis-cluster.data.svc.cluster.local:6379');
    assert.deepStrictEqual(env.REDIS_PASSWORD.secretKeyRef, { name: 'jobmill-redis', key: 'redis-password' });
    assert(!env.REDIS_SENTINELS, `${d.metadata.name}: Sentinel set with Cluster`);
  }
  const se = objects(variants.find((v) => v.name === 'ci/redis-sentinel-values.yaml'));
  for (const d of byKind(se, 'Deployment')) {
    const env = envOf(d.spec.template.spec.containers[0]);
    assert.strictEqual(env.REDIS_SENTINELS, 'sentinel-0.data.svc.cluster.local:26379,' +
      'sentinel-1.data.svc.cluster.local:26379,sentinel-2.data.svc.cluster.local:26379');
    assert.strictEqual(env.REDIS_SENTINEL_MASTER, 'jobmill');
    assert(!env.REDIS_CLUSTER, `${d.metadata.name}: Cluster set with Sentinel`);
  }
  for (const d of byKind(render({}), 'Deployment')) {
    const env = envOf(d.spec.template.spec.containers[0]);
    assert(!env.REDIS_CLUSTER && !env.REDIS_SENTINELS, 'defaults must name neither');
  }
});

check('external Redis: host, port and db from redis.url, the password from the Secret', () => {
  const objs = objects(variants.find((v) => v.name === 'ci/external-redis-values.yaml'));
  for (const d of byKind(objs, 'Deployment')) {
    const env = envOf(d.spec.template.spec.containers[0]);
    assert.strictEqual(env.REDIS_HOST, 'redis-master.data.svc.cluster.local');
    assert.strictEqual(env.REDIS_PORT, '6380');
    assert.strictEqual(env.REDIS_DB, '2');
    assert.deepStrictEqual(env.REDIS_PASSWORD.secretKeyRef, { name: 'jobmill-redis', key: 'password' });
  }
  const api = byKind(objs, 'Deployment').find((d) => component(d) === 'api');
  assert.strictEqual(envOf(api.spec.template.spec.containers[0]).JOBMILL_API_TOKENS_FILE, '/etc/jobmill/auth/tokens');
  const test = byKind(objs, 'Pod')[0];
  assert.strictEqual(envOf(test.spec.containers[0]).JOBMILL_TEST_TOKENS_FILE, '/etc/jobmill/auth/tokens');
  assert.strictEqual(test.spec.volumes[0].secret.secretName, 'jobmill-api-tokens');
});

// ---- config, rules, dashboard, test hook ----

check('the generated config carries the values (and config: extras)', () => {
  const cfg = configOf(objects(variants.find((v) => v.name === 'ci/everything-values.yaml')));
  assert.deepStrictEqual(cfg.worker.queues, [{ name: 'critical', weight: 3 }, { name: 'default', weight: 1 }]);
  assert.strictEqual(cfg.worker.concurrency, 16);
  assert.strictEqual(cfg.worker.shutdown_grace_ms, 120000);
  assert.deepStrictEqual(cfg.worker.handlers.thumbnail, { exec: ['/usr/bin/python3', '/app/thumbnail.py'], timeout_s: 300 });
  assert.strictEqual(cfg.worker.lease_ms, 30000);
  assert.strictEqual(cfg.jobs.result_ttl_s, 86400);
  assert.strictEqual(cfg.log.level, 'warn');
  assert.deepStrictEqual(Object.keys(cfg).sort(), ['api', 'janitor', 'jobs', 'log', 'redis', 'worker']);
  const def = configOf(objects(variants[0]));
  assert.deepStrictEqual(def, { api: { drain_delay_ms: 5000 }, log: { level: 'info' }, redis: { prefix: 'jm' },
    worker: { concurrency: 4, queues: ['default'], shutdown_grace_ms: 25000 } });
  // a config change rolls the pods
  const a = named(render({}), 'Deployment', 'jobmill-worker').spec.template.metadata.annotations['checksum/config'];
  const b = named(render({ sets: ['worker.concurrency=5'] }), 'Deployment', 'jobmill-worker')
    .spec.template.metadata.annotations['checksum/config'];
  assert.notStrictEqual(a, b);
});

check('PrometheusRule = rules/jobmill-alerts.yaml; dashboard ConfigMap = dashboards/jobmill.json', () => {
  const objs = objects(variants.find((v) => v.name === 'ci/everything-values.yaml'));
  const rule = byKind(objs, 'PrometheusRule')[0];
  assert.deepStrictEqual(rule.spec, yaml.load(fs.readFileSync(path.join(CHART, 'rules', 'jobmill-alerts.yaml'), 'utf8')));
  assert.strictEqual(rule.metadata.labels.release, 'kube-prometheus-stack');
  const dash = byKind(objs, 'ConfigMap').find((c) => c.metadata.name.endsWith('-dashboard'));
  assert.strictEqual(dash.metadata.labels.grafana_dashboard, '1');
  assert.strictEqual(sha256(dash.data['jobmill.json']),
    sha256(fs.readFileSync(path.join(CHART, 'dashboards', 'jobmill.json'), 'utf8').replace(/\n$/, '')));
  const sm = byKind(objs, 'ServiceMonitor')[0];
  assert.deepStrictEqual(sm.spec.endpoints.map((e) => e.port), ['http', 'metrics']);
  const services = byKind(objs, 'Service').filter((s) => s.spec.ports.some((p) => ['http', 'metrics'].includes(p.name)));
  assert.deepStrictEqual(services.map((s) => s.metadata.name).sort(), ['jm-prod-api', 'jm-prod-janitor', 'jm-prod-worker']);
  const def = objects(variants[0]);
  for (const k of ['ServiceMonitor', 'PrometheusRule', 'Ingress', 'HorizontalPodAutoscaler', 'ScaledObject', 'StatefulSet']) {
    assert.strictEqual(byKind(def, k).length, 0, `${k} rendered by default`);
  }
});

check('the helm test pod: a test hook submitting to the api Service in the api image', () => {
  const objs = objects(variants[0]);
  const pod = byKind(objs, 'Pod')[0];
  assert.strictEqual(pod.metadata.annotations['helm.sh/hook'], 'test');
  assert.strictEqual(pod.spec.restartPolicy, 'Never');
  assert(pod.spec.activeDeadlineSeconds > 0);
  const c = pod.spec.containers[0];
  assert.strictEqual(c.image, named(objs, 'Deployment', 'jobmill-api').spec.template.spec.containers[0].image);
  assert.strictEqual(envOf(c).JOBMILL_TEST_ADDRESS, `${named(objs, 'Service', 'jobmill-api').metadata.name}:8080`);
  assert.strictEqual(envOf(c).JOBMILL_TEST_QUEUE, 'default');
  assert(c.args[0].includes('"type\\":\\"echo\\"') && c.args[0].includes('"status":"succeeded"'));
  assert.strictEqual(byKind(render({ sets: ['tests.enabled=false'] }), 'Pod').length, 0);
});

check('PDBs: one per component, none for a component without pods', () => {
  const objs = objects(variants[0]);
  assert.deepStrictEqual(byKind(objs, 'PodDisruptionBudget').map((p) => p.metadata.name).sort(),
    ['jobmill-api', 'jobmill-janitor', 'jobmill-worker']);
  for (const p of byKind(objs, 'PodDisruptionBudget')) assert.strictEqual(p.spec.maxUnavailable, 1);
  const none = render({ sets: ['janitor.replicaCount=0', 'worker.replicaCount=0'] });
  assert.deepStrictEqual(byKind(none, 'PodDisruptionBudget').map((p) => p.metadata.name), ['jobmill-api']);
});

check('k8s/kustomization.yaml lists every manifest in k8s/', () => {
  const dir = path.join(ROOT, 'k8s');
  const k = yaml.load(fs.readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8'));
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.yaml') && !['kustomization.yaml', 'values.yaml'].includes(f));
  assert.deepStrictEqual(k.resources.slice().sort(), files.sort());
  const errors = [];
  for (const f of files) {
    for (const o of yaml.loadAll(fs.readFileSync(path.join(dir, f), 'utf8')).filter(Boolean)) {
      for (const e of validate(o)) errors.push(`${f}: ${o.kind}/${o.metadata.name}: ${e}`);
      assert(!isHook(o), `${f}: a helm hook in the plain manifests`);
    }
  }
  assert.deepStrictEqual(errors, []);
});

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
