// What the harness puts on the server and who asks: environments, experiments
// covering every evaluation feature and lifecycle state, and users.

export const ENVIRONMENTS = ["production", "staging"];

const variant = (key, weight, value) => ({ key, weight, value });

/**
 * Each experiment: its definition for POST /api/v1/experiments, the lifecycle
 * steps after creation, and where it must be served (checked against assign,
 * so a scenario the server ignores cannot pass silently).
 */
export const EXPERIMENTS = [
  {
    definition: {
      key: "targeted-price",
      variants: [variant("control", 0.5, { price: 199, currency: "USD" }), variant("premium", 0.5, { price: 249, currency: "USD" })],
      condition: { country: { $in: ["CN", "US"] }, age: { $gte: 18 } },
    },
    lifecycle: ["start"],
  },
  {
    definition: {
      key: "partial-coverage",
      variants: [variant("control", 0.5, "blue"), variant("green", 0.5, "green")],
      coverage: 0.3,
    },
    lifecycle: ["start"],
  },
  {
    definition: {
      key: "checkout-left",
      variants: [variant("control", 0.5, false), variant("one-click", 0.5, true)],
      namespace: { name: "checkout", range: [0, 0.4] },
    },
    lifecycle: ["start"],
  },
  {
    definition: {
      key: "checkout-right",
      variants: [variant("control", 0.5, 10), variant("bigger-cart", 0.5, 20)],
      namespace: { name: "checkout", range: [0.4, 0.9] },
    },
    lifecycle: ["start"],
  },
  {
    definition: {
      key: "legacy-v1",
      variants: [variant("control", 0.2, "classic"), variant("compact", 0.3, "compact"), variant("cards", 0.5, "cards")],
      hash_version: 1,
      seed: "imported-from-growthbook-2023",
    },
    lifecycle: ["start"],
  },
  {
    definition: {
      key: "layout-v2",
      variants: [
        variant("control", 0.2, { layout: "list", columns: [1] }),
        variant("grid", 0.3, { layout: "grid", columns: [2, 3], dense: false }),
        variant("masonry", 0.5, { layout: "masonry", columns: [3, 4, 5], dense: true, label: "瀑布流 ✨" }),
      ],
      hash_version: 2,
      condition: { $or: [{ beta: true }, { country: { $nin: ["DE", "FR"] } }] },
    },
    lifecycle: ["start"],
  },
  {
    definition: {
      key: "device-onboarding",
      variants: [variant("control", 0.5, 0.5), variant("longer-tour", 0.5, 1.75)],
      hash_attribute: "device_id",
      seed: "onboarding-2024",
    },
    lifecycle: ["start"],
  },
  {
    definition: { key: "paused-banner", variants: [variant("control", 0.5, "none"), variant("banner", 0.5, "spring-sale")] },
    lifecycle: ["start", "pause"],
  },
  {
    definition: { key: "rolled-back-checkout", variants: [variant("control", 0.5, { steps: 3 }), variant("one-page", 0.5, { steps: 1 })] },
    lifecycle: ["start", "rollback"],
  },
  {
    definition: {
      key: "shipped-search",
      variants: [variant("control", 0.5, { engine: "keyword" }), variant("semantic", 0.5, { engine: "semantic", k: 20 })],
    },
    lifecycle: ["start", ["ship", { variant: "semantic" }]],
  },
  {
    definition: { key: "stopped-reminder", variants: [variant("control", 0.5, 0), variant("daily", 0.5, 1)] },
    lifecycle: ["start", "stop"],
  },
  {
    definition: {
      key: "staging-only",
      variants: [variant("control", 0.5, "v1"), variant("v2", 0.5, "v2")],
      environments: ["staging"],
    },
    lifecycle: ["start"],
    servedIn: ["staging"],
  },
  {
    definition: { key: "draft-idea", variants: [variant("control", 0.5, "old"), variant("idea", 0.5, "new")] },
    lifecycle: [],
    servedIn: [],
  },
  {
    // Its exposures come only from the GrowthBook tracking callback test
    // (tracking.js): the OFREP checks leave it out, since OFREP logs exposures.
    // Half the users are out of it, and must send none.
    definition: {
      key: "tracked-welcome",
      variants: [variant("control", 0.4, "Welcome"), variant("welcome-back", 0.6, "Welcome back!")],
      coverage: 0.5,
    },
    lifecycle: ["start"],
    ofrep: false,
  },
];

export const servedIn = (experiment) => experiment.servedIn ?? ENVIRONMENTS;

/** Creates the staging environment and every experiment, and walks their lifecycles. */
export async function createScenario(api) {
  await api("POST", "/api/v1/environments", { key: "staging", name: "Staging" });
  for (const { definition, lifecycle } of EXPERIMENTS) {
    await api("POST", "/api/v1/experiments", { name: definition.key, ...definition });
    for (const step of lifecycle) {
      const [action, body] = Array.isArray(step) ? step : [step];
      await api("POST", `/api/v1/experiments/${definition.key}/${action}`, body);
    }
  }
}

/** The OFREP getter an app would call for this experiment's values. */
export function valueType({ definition }) {
  const value = definition.variants[0].value;
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "float";
  return typeof value;
}

/** mulberry32: a small seeded generator, so every run asks about the same users. */
function seededRandom(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Ids hash over UTF-16 code units: kana, accents, RTL script and astral
// emoji (surrogate pairs) must bucket alike in every SDK.
const ID_SHAPES = ["user-", "ユーザー", "élodie.", "😀", "Zoë ", "用户_", "مستخدم", "🦊🚀", ""];
const COUNTRIES = ["CN", "US", "DE", "JP", "BR", "IN", "FR"];

function makeUser(index, random) {
  const user = { id: `${ID_SHAPES[index % ID_SHAPES.length]}${index}` };
  const pick = (list) => list[Math.floor(random() * list.length)];
  // Some attributes are missing, so conditions and hashing meet absent values.
  if (random() < 0.9) user.country = pick(COUNTRIES);
  if (random() < 0.95) user.age = 10 + Math.floor(random() * 60);
  if (random() < 0.9) user.device_id = `dev-${Math.floor(random() * 2 ** 32).toString(16)}`;
  user.beta = random() < 0.3;
  return user;
}

/** `count` users, the same every run; the first few are the ids people try by hand. */
export function makeUsers(count) {
  const random = seededRandom(20261202);
  const handPicked = [{ id: "ユーザー42", country: "JP", age: 42 }, { id: "élodie", country: "FR", age: 17 }, { id: "😀", country: "CN", age: 30 }];
  const generated = Array.from({ length: count - handPicked.length }, (_, i) => makeUser(i, random));
  return [...handPicked, ...generated];
}
