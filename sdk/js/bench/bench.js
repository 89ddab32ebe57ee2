// `npm run bench`: @sluice/sdk against @growthbook/growthbook (the version
// pinned in package.json) in one Node process, on the same experiments:
//   one experiment with a 3-clause condition over 1024 cycling users, and
//   100 such experiments for one user;
// then the minified + gzipped bundle of each, built the same way (bundle.js).
// It first checks that both SDKs give every user the same variant.
import { GrowthBook, GrowthBookClient } from "@growthbook/growthbook";
import { compile } from "../dist/index.js";
import { bundleRatio, reportBundles } from "./bundle.js";

const condition = { country: { $in: ["CN", "US", "DE"] }, device: "ios", age: { $gte: 18 } };
const variants = [
  { key: "control", weight: 0.5, value: { price: 199 } },
  { key: "treatment", weight: 0.5, value: { price: 249 } },
];

function experiment(key) {
  return { key, status: "running", variants, coverage: 1, condition, hash_attribute: "id", seed: key, hash_version: 2 };
}

/** The same experiment as a GrowthBook feature, as Sluice's /api/features serves it. */
function feature(e) {
  return {
    defaultValue: e.variants[0].value,
    rules: [{
      key: e.key, seed: e.seed, hashVersion: 2, hashAttribute: "id", coverage: e.coverage, condition: e.condition,
      variations: e.variants.map((v) => v.value), weights: e.variants.map((v) => v.weight),
      meta: e.variants.map((v) => ({ key: v.key })), name: e.key, phase: "0",
    }],
  };
}

const users = Array.from({ length: 1024 }, (_, i) => ({
  id: `user-${i}`,
  country: ["CN", "US", "DE", "FR", "JP"][i % 5],
  device: i % 3 === 0 ? "android" : "ios",
  age: 12 + (i % 40),
  plan: "free",
}));

const one = [experiment("checkout-cta")];
const hundred = Array.from({ length: 100 }, (_, i) => experiment(`exp-${String(i).padStart(3, "0")}`));
const featuresOf = (exps) => Object.fromEntries(exps.map((e) => [e.key, feature(e)]));

/** The best nanoseconds per call of `fn` over 5 rounds of about 150 ms each. */
function timeIt(fn) {
  let n = 1;
  const run = () => {
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn(i);
    return Number(process.hrtime.bigint() - start);
  };
  while (run() < 20e6) n *= 2;
  n = Math.ceil(n * 7.5);
  let best = Infinity;
  for (let round = 0; round < 5; round++) best = Math.min(best, run() / n);
  return best;
}

let sink = 0;
const use = (x) => { sink ^= x ? 1 : 0; };

/** GrowthBook's variant for a user, as the index into variants (-1 when not in the experiment). */
function gbIndex(result) {
  return result.experimentResult?.inExperiment ? result.experimentResult.variationId : -1;
}

function checkAgreement(client) {
  const rules = compile({ version: 1, experiments: hundred });
  let checked = 0;
  let inside = 0;
  for (const user of users) {
    const ours = rules.assignAll(user);
    for (const a of ours) {
      const theirs = client.evalFeature(a.experiment, { attributes: user });
      const index = a.in_experiment ? variants.findIndex((v) => v.key === a.variant) : -1;
      if (index !== gbIndex(theirs) || JSON.stringify(a.value) !== JSON.stringify(theirs.value)) {
        throw new Error(`${a.experiment} for ${user.id}: sluice ${a.variant} (${a.reason}), GrowthBook ${gbIndex(theirs)}`);
      }
      checked++;
      inside += a.in_experiment ? 1 : 0;
    }
  }
  return { checked, inside };
}

function benchOne() {
  const rules = compile({ version: 1, experiments: one });
  const key = one[0].key;
  const features = featuresOf(one);
  const client = new GrowthBookClient().initSync({ payload: { features } });
  const gb = new GrowthBook({ features });
  const sluice = timeIt((i) => use(rules.assign(key, users[i & 1023]).in_experiment));
  const growthbook = {
    "GrowthBookClient.evalFeature(key, {attributes})": timeIt((i) => use(client.evalFeature(key, { attributes: users[i & 1023] }).on)),
    "GrowthBook.setAttributes(user) + evalFeature(key)": timeIt((i) => {
      gb.setAttributes(users[i & 1023]);
      use(gb.evalFeature(key).on);
    }),
  };
  return { sluice, growthbook };
}

function benchHundred() {
  const rules = compile({ version: 1, experiments: hundred });
  const user = users[1];
  const keys = hundred.map((e) => e.key);
  const features = featuresOf(hundred);
  const client = new GrowthBookClient().initSync({ payload: { features } });
  const scoped = client.createScopedInstance({ attributes: user });
  const gb = new GrowthBook({ attributes: user, features });
  const sluice = timeIt(() => use(rules.assignAll(user).length));
  const sluiceEach = timeIt(() => { for (const k of keys) use(rules.assign(k, user).in_experiment); });
  const growthbook = {
    "new GrowthBook({attributes, features}) once, evalFeature(key) x100": timeIt(() => { for (const k of keys) use(gb.evalFeature(k).on); }),
    "GrowthBookClient scoped instance, evalFeature(key) x100": timeIt(() => { for (const k of keys) use(scoped.evalFeature(k).on); }),
    "GrowthBookClient.evalFeature(key, {attributes}) x100": timeIt(() => { for (const k of keys) use(client.evalFeature(k, { attributes: user }).on); }),
  };
  return { sluice, sluiceEach, growthbook };
}

const fastest = (timings) => Object.entries(timings).sort((a, b) => a[1] - b[1])[0];
const ns = (x) => `${x.toFixed(0)} ns`;

const agreement = checkAgreement(new GrowthBookClient().initSync({ payload: { features: featuresOf(hundred) } }));
console.log(`agreement: ${agreement.checked} (user, experiment) pairs, same variant in both SDKs (${agreement.inside} in an experiment)`);

const r1 = benchOne();
const [gb1, gbTime1] = fastest(r1.growthbook);
console.log("\none experiment, 3-clause condition, 1024 cycling users (per evaluation)");
console.log(`  sluice compile(ruleset).assign(key, user)           ${ns(r1.sluice)}`);
for (const [how, t] of Object.entries(r1.growthbook)) console.log(`  growthbook ${how.padEnd(50)} ${ns(t)}`);

const r100 = benchHundred();
const [gb100, gbTime100] = fastest(r100.growthbook);
console.log("\n100 experiments, one user (per user)");
console.log(`  sluice assignAll(user)                              ${ns(r100.sluice)}`);
console.log(`  sluice assign(key, user) x100                       ${ns(r100.sluiceEach)}`);
for (const [how, t] of Object.entries(r100.growthbook)) console.log(`  growthbook ${how.padEnd(64)} ${ns(t)}`);

console.log("");
const bundles = await reportBundles();
const bundle = bundleRatio(bundles);

console.log("\nratios (against GrowthBook's fastest usage of each)");
console.log(`  one experiment:   ${(gbTime1 / r1.sluice).toFixed(1)}x faster  (GrowthBook: ${gb1})`);
console.log(`  100 experiments:  ${(gbTime100 / r100.sluice).toFixed(1)}x faster with assignAll, ${(gbTime100 / r100.sluiceEach).toFixed(1)}x with assign x100  (GrowthBook: ${gb100})`);
console.log(`  bundle gzipped:   ${bundle.ratio.toFixed(2)} of GrowthBook's (${bundles.ours.gzipped} / ${bundles.theirs.gzipped} B)`);
const met = (ok) => (ok ? "met" : "MISSED");
console.log(`targets: one >= 5x ${met(gbTime1 / r1.sluice >= 5)}; 100 >= 10x ${met(gbTime100 / r100.sluiceEach >= 10)} (even without the shared-condition memo of assignAll); bundle <= 1/3 ${met(bundle.met)}`);
if (sink === 2) console.log("");
